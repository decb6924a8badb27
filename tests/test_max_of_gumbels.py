"""The max of Gumbels: max ~ Gumbel(logsumexp), argmax ~ softmax, and the two independent.

Chapter *The max of Gumbels*. False-failure budget: 1e-6 over the three claims below.
(gumbel_max's own chi-square tests, with their controls, are in test_sampling.py.)
"""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import perturb, sample_gumbel
from gumbel_lib.stats import dkwm_sample_size, dkwm_test, independence_test

ALPHA = 1e-6 / 3
LOGITS = torch.tensor([1.0, -0.5, 0.3, 2.0, -2.0, 0.7], dtype=torch.float64)
LSE = torch.logsumexp(LOGITS, 0).item()
N = dkwm_sample_size(0.01, ALPHA)


def test_max_is_gumbel_logsumexp() -> None:
    maxima = perturb(LOGITS.expand(N, 6), generator=seeded(1)).amax(-1)
    verdict = dkwm_test(maxima, scipy.stats.gumbel_r(loc=LSE).cdf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_max_at_the_largest_logit_is_rejected() -> None:
    maxima = perturb(LOGITS.expand(N, 6), generator=seeded(1)).amax(-1)
    wrong = scipy.stats.gumbel_r(loc=LOGITS.max().item()).cdf
    assert not dkwm_test(maxima, wrong, alpha=ALPHA).passed


def test_max_with_a_common_scale() -> None:
    # max_i (mu_i + beta g_i) ~ Gumbel(beta * logsumexp(mu / beta), beta)
    beta = 0.5
    values = LOGITS + beta * sample_gumbel((N, 6), generator=seeded(2), dtype=torch.float64)
    loc = beta * torch.logsumexp(LOGITS / beta, 0).item()
    law = scipy.stats.gumbel_r(loc=loc, scale=beta)
    assert dkwm_test(values.amax(-1), law.cdf, alpha=ALPHA).passed


def contingency(values: torch.Tensor) -> np.ndarray:
    edges = scipy.stats.gumbel_r(loc=LSE).ppf(np.linspace(0, 1, 11)[1:-1])
    table = np.zeros((6, 10))
    bins = np.searchsorted(edges, values.amax(-1).numpy())
    np.add.at(table, (values.argmax(-1).numpy(), bins), 1)
    return table


def test_max_and_argmax_are_independent() -> None:
    table = contingency(perturb(LOGITS.expand(300_000, 6), generator=seeded(3)))
    verdict = independence_test(table, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_unequal_noise_scales_make_them_dependent() -> None:
    scales = torch.tensor([1, 1, 1, 1, 1, 2.0], dtype=torch.float64)
    noise = sample_gumbel((300_000, 6), generator=seeded(4), dtype=torch.float64)
    assert not independence_test(contingency(LOGITS + scales * noise), alpha=ALPHA).passed
