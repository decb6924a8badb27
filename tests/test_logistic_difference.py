"""The logistic difference: G1 - G2 ~ Logistic(mu1 - mu2, beta) for equal scales.

Chapter *The logistic difference*. False-failure budget: 1e-6 over the six decisions that can
fail by chance: the three claims below (DKWM on the difference, chi-square on the binary trick,
asymptotic; DKWM on the relaxed Bernoulli) and their three negative controls (unequal scales,
p instead of its logit, an inverted temperature), each far beyond the effect its test resolves.
"""

from __future__ import annotations

import scipy.special
import scipy.stats
import torch
from conftest import relaxed_bernoulli_cdf, seeded

from gumbel_lib import gumbel_max, gumbel_softmax, sample_gumbel
from gumbel_lib.stats import chisquare_sample_size, chisquare_test, dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 6
N = dkwm_sample_size(0.01, ALPHA)


def differences(scale_2: float, seed: int) -> torch.Tensor:
    gen = seeded(seed)
    g1 = sample_gumbel((N,), loc=1.2, scale=0.8, generator=gen, dtype=torch.float64)
    return g1 - sample_gumbel((N,), loc=-0.3, scale=scale_2, generator=gen, dtype=torch.float64)


def test_difference_is_logistic() -> None:
    law = scipy.stats.logistic(loc=1.5, scale=0.8)
    verdict = dkwm_test(differences(0.8, 1), law.cdf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_unequal_scales_are_rejected() -> None:
    law = scipy.stats.logistic(loc=1.5, scale=0.8)
    assert not dkwm_test(differences(1.0, 2), law.cdf, alpha=ALPHA).passed


def test_binary_gumbel_max_is_bernoulli_sigmoid() -> None:
    log_odds = 2.0  # p = 0.88, far from sigmoid(p) = 0.71, so the control must fail
    p = scipy.special.expit(log_odds)
    n = chisquare_sample_size(0.05, 1, ALPHA)
    draws = gumbel_max(torch.tensor([0.0, log_odds]).expand(n, 2), generator=seeded(3))
    verdict = chisquare_test(torch.bincount(draws, minlength=2), [1 - p, p], alpha=ALPHA)
    assert verdict.passed, verdict
    wrong = gumbel_max(torch.tensor([0.0, p]).expand(n, 2), generator=seeded(4))  # p, not logit
    assert not chisquare_test(torch.bincount(wrong, minlength=2), [1 - p, p], alpha=ALPHA).passed


def test_relaxed_bernoulli_law_and_control() -> None:
    log_odds, tau = -0.6, 1.7
    logits = torch.tensor([log_odds, 0.0], dtype=torch.float64).expand(N, 2)
    y = gumbel_softmax(logits, tau, generator=seeded(5))[:, 0]
    assert dkwm_test(y, relaxed_bernoulli_cdf(log_odds, tau), alpha=ALPHA).passed
    inverted = gumbel_softmax(logits, 1 / tau, generator=seeded(5))[:, 0]  # tau inverted
    assert not dkwm_test(inverted, relaxed_bernoulli_cdf(log_odds, tau), alpha=ALPHA).passed


def test_relaxed_bernoulli_rounds_to_the_exact_draw() -> None:
    logits = torch.tensor([0.3, 0.0]).expand(5000, 2)
    for tau in (0.05, 1.0, 20.0):
        y = gumbel_softmax(logits, tau, generator=seeded(6))[:, 0]
        hard = gumbel_max(logits, generator=seeded(6)) == 0
        assert torch.equal(y > 0.5, hard)
