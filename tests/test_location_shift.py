"""Location shift and scale: sample_gumbel(loc=a, scale=b) ~ Gumbel(a, b).

Chapter *Location shift and scale*. False-failure budget: 1e-6 over the six DKWM decisions
that can fail by chance (three laws that must pass, three controls that must be rejected; the
controls sit at Kolmogorov distance 0.18 or more from the claimed law, far beyond the 0.01 the
sample size resolves with miss rate ALPHA).
"""

from __future__ import annotations

import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import sample_gumbel
from gumbel_lib.stats import dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 6
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
    assert torch.equal(x, loc + scale * g)  # the same operations in the same order


@pytest.mark.parametrize(("loc", "scale"), [(2.5, 1.0), (-1.0, 0.3), (1.5, 2.0)])
def test_number_parameters_are_applied_exactly(loc: float, scale: float) -> None:
    x = sample_gumbel((1000,), loc=loc, scale=scale, generator=seeded(6), dtype=torch.float64)
    g = sample_gumbel((1000,), generator=seeded(6), dtype=torch.float64)
    assert torch.equal(x, loc + scale * g)  # bit for bit: mu + beta * g, in that order


def test_gradients_flow_through_tensor_parameters() -> None:
    """Reparameterisation in the library itself: d/dloc = 1 and d/dscale = g, per draw."""
    loc = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    x = sample_gumbel((50,), loc=loc, scale=scale, generator=seeded(4), dtype=torch.float64)
    assert x.requires_grad
    x.sum().backward()
    g = sample_gumbel((50,), generator=seeded(4), dtype=torch.float64)
    assert loc.grad is not None and loc.grad.item() == 50.0
    assert scale.grad is not None and torch.equal(scale.grad, g.sum())
