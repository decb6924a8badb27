"""Gradient estimators against the exact gradient computed by enumeration.

False-failure budget: 1e-6, split by Bonferroni over the three unbiasedness claims (the
score-function estimator with three baselines), each a two-sided z-test on K = 4
coordinates whose tolerance comes from the estimator's own sample variance. The same test
must reject the negative controls (a wrong sign; the loss times the sample instead of the
loss times the score), and each control asserts that n gives the test the power to do so.
"""

from __future__ import annotations

import pytest
import scipy.stats
import sympy as sp
import torch
from conftest import seeded
from torch.autograd import gradcheck, gradgradcheck

from gumbel_lib import (
    exact_expected_gradient,
    gumbel_softmax,
    relaxed_gradient,
    score_function,
    sse_gradient,
    straight_through_gradient,
)

ALPHA = 1e-6 / 3  # per unbiasedness claim
LOGITS = torch.tensor([0.3, -0.8, 1.1, 0.0], dtype=torch.float64)
TARGET = torch.tensor([0.1, 0.6, 0.2, 0.1], dtype=torch.float64)
Z_CRIT = scipy.stats.norm.isf(ALPHA / LOGITS.numel() / 2)
MISS_MARGIN = 6.0  # a true shift this many standard errors past Z_CRIT is missed w.p. < 1e-9


def sse(y: torch.Tensor) -> torch.Tensor:
    return ((y - TARGET) ** 2).sum(-1)


def max_z(draws: torch.Tensor, exact: torch.Tensor) -> float:
    se = draws.std(0) / draws.shape[0] ** 0.5
    return ((draws.mean(0) - exact) / se).abs().max().item()


def assert_power(draws: torch.Tensor, shift: torch.Tensor) -> None:
    """n is large enough: the largest true shift is >= Z_CRIT + MISS_MARGIN standard errors."""
    se = draws.std(0) / draws.shape[0] ** 0.5
    assert (shift.abs() / se).max().item() >= Z_CRIT + MISS_MARGIN


def test_sse_gradient_matches_autograd() -> None:
    logits = torch.randn(5, 6, dtype=torch.float64, generator=seeded(1), requires_grad=True)
    tau = 0.7
    b = gumbel_softmax(logits, tau, generator=seeded(2))
    y = torch.softmax(torch.randn(5, 6, dtype=torch.float64, generator=seeded(3)), -1)
    (autograd,) = torch.autograd.grad(((b - y) ** 2).sum(), logits)
    assert torch.allclose(sse_gradient(b.detach(), y, tau), autograd, rtol=1e-12, atol=1e-14)


def test_sse_gradient_symbolically_for_three_categories() -> None:
    a = sp.symbols("a0:3", real=True)
    y = sp.symbols("y0:3", real=True)
    tau = sp.symbols("tau", positive=True)
    denominator = sum(sp.exp(v / tau) for v in a)
    b = [sp.exp(v / tau) / denominator for v in a]
    loss = sum((bi - yi) ** 2 for bi, yi in zip(b, y, strict=True))
    c = sum((bi - yi) * bi for bi, yi in zip(b, y, strict=True))
    for i in range(3):
        formula = 2 / tau * b[i] * (b[i] - y[i] - c)
        assert sp.simplify(sp.diff(loss, a[i]) - formula) == 0


def test_sse_gradient_gradcheck() -> None:
    """The formula is smooth in the logits: its own derivatives pass gradcheck/gradgradcheck."""
    logits = torch.randn(3, 4, dtype=torch.float64, generator=seeded(4), requires_grad=True)
    y = torch.softmax(torch.randn(3, 4, dtype=torch.float64, generator=seeded(5)), -1)

    def grad_of(x):
        return sse_gradient(gumbel_softmax(x, 0.8, generator=seeded(6)), y, 0.8)

    assert gradcheck(grad_of, (logits,))
    assert gradgradcheck(grad_of, (logits,))


def test_sse_gradient_refuses_bad_input() -> None:
    b = torch.full((3,), 1 / 3)
    with pytest.raises(ValueError, match="tau"):
        sse_gradient(b, b, 0.0)
    with pytest.raises(ValueError, match="last dimension"):
        sse_gradient(b, torch.full((4,), 0.25), 1.0)
    with pytest.raises(TypeError, match="y"):
        sse_gradient(b, [0.2, 0.3, 0.5], 1.0)


def test_exact_expected_gradient_formula() -> None:
    p = torch.softmax(LOGITS, 0)
    f_values = sse(torch.eye(4, dtype=torch.float64))
    expected = p * (f_values - (p * f_values).sum())
    assert torch.allclose(exact_expected_gradient(LOGITS, sse), expected, rtol=1e-12)


def test_exact_expected_gradient_by_finite_differences() -> None:
    def expected_loss(logits):
        return (torch.softmax(logits, 0) * sse(torch.eye(4, dtype=torch.float64))).sum()

    step = 1e-6
    fd = torch.stack(
        [
            (expected_loss(LOGITS + step * e) - expected_loss(LOGITS - step * e)) / (2 * step)
            for e in torch.eye(4, dtype=torch.float64)
        ]
    )
    assert (fd - exact_expected_gradient(LOGITS, sse)).abs().max() < 1e-9


@pytest.mark.parametrize("baseline", ["leave-one-out", None, 0.5])
def test_score_function_is_unbiased(baseline) -> None:
    draws = score_function(LOGITS, sse, 200_000, baseline=baseline, generator=seeded(7))
    assert draws.shape == (200_000, 4)
    assert max_z(draws, exact_expected_gradient(LOGITS, sse)) < Z_CRIT


def test_negative_control_wrong_sign_is_rejected() -> None:
    exact = exact_expected_gradient(LOGITS, sse)
    draws = -score_function(LOGITS, sse, 200_000, generator=seeded(8))
    assert_power(draws, 2 * exact)
    assert max_z(draws, exact) >= Z_CRIT


def test_negative_control_loss_times_sample_is_rejected() -> None:
    """Forgetting the log-derivative: f(D) * D (mean p * f) instead of f(D) * (D - p)."""
    exact = exact_expected_gradient(LOGITS, sse)
    k = torch.multinomial(torch.softmax(LOGITS, 0), 200_000, True, generator=seeded(9))
    sample = torch.nn.functional.one_hot(k, 4).double()
    draws = sse(sample)[:, None] * sample
    p = torch.softmax(LOGITS, 0)
    assert_power(draws, p * (p * sse(torch.eye(4, dtype=torch.float64))).sum())
    assert max_z(draws, exact) >= Z_CRIT


def test_baseline_reduces_variance() -> None:
    plain = score_function(LOGITS, sse, 100_000, baseline=None, generator=seeded(9))
    loo = score_function(LOGITS, sse, 100_000, generator=seeded(9))
    # the total variance drops (one coordinate may rise: the baseline trades between them)
    assert loo.var(0).sum() < 0.5 * plain.var(0).sum()


def test_straight_through_gradient_is_the_hard_relaxed_gradient() -> None:
    st_draws = straight_through_gradient(LOGITS, sse, 0.5, 1000, generator=seeded(12))
    hard = relaxed_gradient(LOGITS, sse, 0.5, 1000, hard=True, generator=seeded(12))
    assert torch.equal(st_draws, hard)
    # per draw: J_y(g)^T grad f(D), with D the one-hot argmax and y the soft sample
    leaf = LOGITS.expand(1000, 4).clone().requires_grad_(True)
    y = gumbel_softmax(leaf, 0.5, generator=seeded(12))
    hot = torch.nn.functional.one_hot(y.argmax(-1), 4).double()
    (y * (2 * (hot - TARGET))).sum().backward()
    assert torch.allclose(st_draws, leaf.grad, rtol=1e-12, atol=1e-15)


def test_straight_through_is_biased() -> None:
    st_draws = straight_through_gradient(LOGITS, sse, 1.0, 200_000, generator=seeded(10))
    assert max_z(st_draws, exact_expected_gradient(LOGITS, sse)) >= Z_CRIT  # sees the bias


def test_relaxed_bias_shrinks_and_variance_grows_as_tau_falls() -> None:
    exact = exact_expected_gradient(LOGITS, sse)
    draws = [
        relaxed_gradient(LOGITS, sse, tau, 100_000, generator=seeded(11))
        for tau in (0.5, 0.1, 0.01)
    ]
    bias = [(d.mean(0) - exact).abs().max().item() for d in draws]
    spread = [d.var(0).sum().item() for d in draws]
    assert bias[0] > bias[1] > bias[2]
    assert spread[0] < spread[1] < spread[2]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        score_function(torch.zeros(2, 3), sse, 10)
    with pytest.raises(ValueError, match="one-dimensional"):
        exact_expected_gradient(torch.zeros(2, 3), sse)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        score_function(LOGITS, sse, 1)
    with pytest.raises(ValueError, match="n_samples"):
        relaxed_gradient(LOGITS, sse, 1.0, 0)
    with pytest.raises(ValueError, match="baseline"):
        score_function(LOGITS, sse, 10, baseline="mean")
    with pytest.raises(ValueError, match="tau"):
        relaxed_gradient(LOGITS, sse, 0.0, 10)
    with pytest.raises(ValueError, match="tau"):
        straight_through_gradient(LOGITS, sse, float("nan"), 10)
    with pytest.raises(ValueError, match="f must map"):
        exact_expected_gradient(LOGITS, lambda points: points.sum())
    with pytest.raises(TypeError, match="f must be callable"):
        score_function(LOGITS, "sse", 10)
    with pytest.raises(TypeError, match="logits"):
        exact_expected_gradient(torch.tensor([1, 2, 3]), sse)
