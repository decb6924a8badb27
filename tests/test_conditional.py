"""conditional_gumbels and gumbel_rao: exact conditioning and the Rao-Blackwell identity.

False-failure budget of this module: 1e-6, split over four claims (two DKWM, one z-test
over all coordinates, each coordinate at 1e-6 / 4 / K, and one two-sample KS test).
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import (
    conditional_gumbels,
    conditional_topk_gumbels,
    gumbel_max,
    gumbel_rao,
    gumbel_softmax,
)
from gumbel_lib.stats import dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 4
LOGITS = torch.tensor([0.5, -0.3, 1.2, 0.0], dtype=torch.float64)


def test_conditioned_argmax_is_exact() -> None:
    index = torch.tensor([0, 1, 2, 3] * 25)
    z = conditional_gumbels(LOGITS.expand(100, 4), index, 50, generator=seeded(1))
    assert z.shape == (50, 100, 4)
    assert torch.equal(z.argmax(-1), index.expand(50, 100))


def test_conditioned_max_is_gumbel_logsumexp_whatever_the_argmax() -> None:
    n = dkwm_sample_size(0.01, ALPHA)
    index = torch.full((n,), 1)  # the least likely category but one: the max does not care
    z = conditional_gumbels(LOGITS.expand(n, 4), index, 1, generator=seeded(2))[0]
    lse = torch.logsumexp(LOGITS, 0).item()
    verdict = dkwm_test(z.amax(-1), scipy.stats.gumbel_r(loc=lse).cdf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_losers_are_truncated_gumbels() -> None:
    # Given the max m, z_i is Gumbel(l_i) truncated to (-inf, m]: F(z_i - l_i) / F(m - l_i)
    # is then uniform. A negative control (the untruncated Gumbel) must be rejected.
    n = dkwm_sample_size(0.01, ALPHA)
    z = conditional_gumbels(LOGITS.expand(n, 4), torch.full((n,), 2), 1, generator=seeded(3))[0]
    cdf = scipy.stats.gumbel_r.cdf
    top = z[:, 2].numpy()
    u = cdf(z[:, 0].numpy() - 0.5) / cdf(top - 0.5)
    assert dkwm_test(u, scipy.stats.uniform.cdf, alpha=ALPHA).passed
    free = LOGITS[0] + torch.from_numpy(scipy.stats.gumbel_r.rvs(size=n, random_state=4))
    wrong = cdf(free.numpy() - 0.5) / cdf(top - 0.5)
    assert not dkwm_test(wrong, scipy.stats.uniform.cdf, alpha=ALPHA).passed


def test_forward_is_the_gumbel_max_draw() -> None:
    logits = torch.randn(200, 5, generator=seeded(5))
    y = gumbel_rao(logits, 0.5, 4, generator=seeded(6))
    expected = torch.nn.functional.one_hot(gumbel_max(logits, generator=seeded(6)), 5).float()
    assert torch.equal(y, expected)


def estimator_draws(estimator, n: int, seed: int) -> torch.Tensor:
    """Per-draw gradients of the loss ||y - t||^2 w.r.t. the logits, one row per draw."""
    target = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    logits = LOGITS.expand(n, 4).clone().requires_grad_(True)
    y = estimator(logits, seeded(seed))
    ((y - target) ** 2).sum().backward()
    return logits.grad


def z_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    se = (a.var(0) / a.shape[0] + b.var(0) / b.shape[0]).sqrt()
    return (a.mean(0) - b.mean(0)) / se


def test_same_expectation_as_straight_through_and_lower_variance() -> None:
    n, tau = 100_000, 0.5
    z_crit = scipy.stats.norm.isf(ALPHA / 4 / 2)
    st = estimator_draws(lambda x, g: gumbel_softmax(x, tau, True, generator=g), n, 7)
    rao = estimator_draws(lambda x, g: gumbel_rao(x, tau, 16, generator=g), n, 8)
    assert z_scores(rao, st).abs().max() < z_crit
    assert (rao.var(0) < 0.8 * st.var(0)).all()

    # Negative control: averaging over *unconditional* noise breaks the identity.
    def unconditional(x, g):
        hard = gumbel_softmax(x.detach(), tau, True, generator=g)
        soft = torch.stack([gumbel_softmax(x, tau, generator=g) for _ in range(4)]).mean(0)
        return hard + (soft - soft.detach())

    wrong = estimator_draws(unconditional, n, 9)
    assert z_scores(wrong, st).abs().max() >= z_crit


def test_masked_logits_are_safe() -> None:
    logits = torch.tensor([[0.2, -math.inf, 1.0]] * 10, requires_grad=True)
    y = gumbel_rao(logits, 0.5, 8, generator=seeded(10))
    assert (y[:, 1] == 0).all()
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[:, 1] == 0).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        gumbel_rao(torch.zeros(3), 1.0, 0, generator=seeded(0))
    with pytest.raises(ValueError, match="tau"):
        gumbel_rao(torch.zeros(3), -1.0, 2, generator=seeded(0))
    with pytest.raises(ValueError, match="index must have shape"):
        conditional_gumbels(torch.zeros(2, 3), torch.zeros(3).long(), 2, generator=seeded(0))
    with pytest.raises(ValueError, match="index points at a category whose logit is -inf"):
        conditional_gumbels(torch.tensor([0.0, -math.inf]), torch.tensor(1), 2)


def test_topk_conditioning_with_k_1_is_conditional_gumbels() -> None:
    # Both construct z given argmax = 2 from the truncated-losers theorem, by different code
    # paths; a loser's values must agree in law (two-sample KS at ALPHA, n per side sized for
    # a Kolmogorov distance of 0.02), and the untruncated loser must not.
    n = dkwm_sample_size(0.02, ALPHA)
    a = conditional_gumbels(LOGITS, torch.tensor(2), n, generator=seeded(11))
    b = conditional_topk_gumbels(LOGITS, torch.tensor([2]), n, generator=seeded(12))
    assert scipy.stats.ks_2samp(a[:, 0].numpy(), b[:, 0].numpy()).pvalue >= ALPHA
    free = LOGITS[0] + torch.from_numpy(scipy.stats.gumbel_r.rvs(size=n, random_state=13))
    assert scipy.stats.ks_2samp(a[:, 0].numpy(), free.numpy()).pvalue < ALPHA


def test_topk_conditioning_checks_its_generator_and_values() -> None:
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got str"):
        conditional_topk_gumbels(LOGITS, torch.tensor([0, 1]), 2, generator="seed")
    with pytest.raises(ValueError, match="index holds an index outside"):
        conditional_topk_gumbels(LOGITS, torch.tensor([0, 4]), 2)
    with pytest.raises(ValueError, match="logits contains NaN or \\+inf"):
        conditional_topk_gumbels(torch.tensor([0.0, math.nan, 1.0]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="index points at a category whose logit is -inf"):
        conditional_topk_gumbels(torch.tensor([0.0, -math.inf, 1.0]), torch.tensor([2, 1]), 2)
    off = conditional_topk_gumbels(
        torch.tensor([0.0, -math.inf, 1.0]), torch.tensor([2, 1]), 2, validate_args=False
    )
    assert off.shape == (2, 3)  # value checks only under validation
