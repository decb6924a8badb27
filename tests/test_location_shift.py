"""Location shift and scale: sample_gumbel(loc=a, scale=b) ~ Gumbel(a, b).

Chapter *Location shift and scale*. False-failure budget: 1e-6 over the three DKWM claims.
"""

from __future__ import annotations

import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import sample_gumbel
from gumbel_lib.stats import dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 3
N = dkwm_sample_size(0.01, ALPHA)  # detects a cdf error of 0.01 with miss rate ALPHA


@pytest.mark.parametrize(("loc", "scale"), [(2.5, 1.0), (-1.0, 0.3), (1.5, 2.0)])
def test_shifted_and_scaled_law(loc: float, scale: float) -> None:
    x = sample_gumbel((N,), loc=loc, scale=scale, generator=seeded(1), dtype=torch.float64)
    verdict = dkwm_test(x, scipy.stats.gumbel_r(loc=loc, scale=scale).cdf, alpha=ALPHA)
    assert verdict.passed, verdict


@pytest.mark.parametrize(
    "wrong",
    [
        lambda g: 1.5 + g,  # scale forgotten
        lambda g: 2.0 * (1.5 + g),  # scale applied to the location too
        lambda g: 1.5 - 2.0 * g,  # a negative scale: the mirrored (minimum) law
    ],
)
def test_negative_controls_are_rejected(wrong) -> None:
    g = sample_gumbel((N,), generator=seeded(2), dtype=torch.float64)
    verdict = dkwm_test(wrong(g), scipy.stats.gumbel_r(loc=1.5, scale=2.0).cdf, alpha=ALPHA)
    assert not verdict.passed, verdict


def test_tensor_parameters_broadcast_per_column() -> None:
    loc = torch.tensor([0.0, 5.0], dtype=torch.float64)
    scale = torch.tensor([1.0, 0.5], dtype=torch.float64)
    x = sample_gumbel((N, 2), loc=loc, scale=scale, generator=seeded(3), dtype=torch.float64)
    g = sample_gumbel((N, 2), generator=seeded(3), dtype=torch.float64)
    assert torch.allclose(x, loc + scale * g, rtol=0, atol=1e-12)


def test_gradients_are_one_and_the_noise() -> None:
    loc = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    g = sample_gumbel((50,), generator=seeded(4), dtype=torch.float64)
    (loc + scale * g).sum().backward()
    assert loc.grad.item() == 50.0
    assert torch.isclose(scale.grad, g.sum())
