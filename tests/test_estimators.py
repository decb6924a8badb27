"""Gradient estimators against the exact gradient computed by enumeration.

False-failure budget: 1e-6, split over the unbiasedness claims (two estimators, K = 4
coordinates each) by Bonferroni. Each claim is a z-test whose tolerance comes from the
estimator's own sample variance; each has a negative control the same test rejects.
"""

from __future__ import annotations

import pytest
import scipy.stats
import sympy as sp
import torch
from conftest import seeded
from torch.autograd import gradcheck

from gumbel_lib import gumbel_softmax
from gumbel_lib.estimators import exact_gradient, relaxed_gradient, score_function, sse_gradient

ALPHA = 1e-6 / 2
LOGITS = torch.tensor([0.3, -0.8, 1.1, 0.0], dtype=torch.float64)
TARGET = torch.tensor([0.1, 0.6, 0.2, 0.1], dtype=torch.float64)
Z_CRIT = scipy.stats.norm.isf(ALPHA / LOGITS.numel() / 2)


def sse(y: torch.Tensor) -> torch.Tensor:
    return ((y - TARGET) ** 2).sum(-1)


def max_z(draws: torch.Tensor, exact: torch.Tensor) -> float:
    se = draws.std(0) / draws.shape[0] ** 0.5
    return ((draws.mean(0) - exact) / se).abs().max().item()


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
        values = {a[0]: 0.3, a[1]: -1.2, a[2]: 0.5, y[0]: 0.2, y[1]: 0.7, y[2]: 0.1, tau: 0.6}
        assert abs(float((sp.diff(loss, a[i]) - formula).subs(values))) < 1e-12
        assert sp.simplify(sp.diff(loss, a[i]) - formula) == 0


def test_sse_gradient_gradcheck() -> None:
    logits = torch.randn(3, 4, dtype=torch.float64, generator=seeded(4), requires_grad=True)
    y = torch.softmax(torch.randn(3, 4, dtype=torch.float64, generator=seeded(5)), -1)

    def grad_of(x):
        return sse_gradient(gumbel_softmax(x, 0.8, generator=seeded(6)), y, 0.8)

    assert gradcheck(grad_of, (logits,))


def test_exact_gradient_formula() -> None:
    p = torch.softmax(LOGITS, 0)
    f_values = sse(torch.eye(4, dtype=torch.float64))
    expected = p * (f_values - (p * f_values).sum())
    assert torch.allclose(exact_gradient(LOGITS, sse), expected)


@pytest.mark.parametrize("baseline", ["leave-one-out", None, 0.5])
def test_score_function_is_unbiased(baseline) -> None:
    draws = score_function(LOGITS, sse, 200_000, baseline=baseline, generator=seeded(7))
    assert draws.shape == (200_000, 4)
    assert max_z(draws, exact_gradient(LOGITS, sse)) < Z_CRIT


def test_negative_control_wrong_sign_is_rejected() -> None:
    draws = -score_function(LOGITS, sse, 200_000, generator=seeded(8))
    assert max_z(draws, exact_gradient(LOGITS, sse)) >= Z_CRIT


def test_baseline_reduces_variance() -> None:
    plain = score_function(LOGITS, sse, 100_000, baseline=None, generator=seeded(9))
    loo = score_function(LOGITS, sse, 100_000, generator=seeded(9))
    # the total variance drops (one coordinate may rise: the baseline trades between them)
    assert loo.var(0).sum() < 0.5 * plain.var(0).sum()


def test_straight_through_is_biased() -> None:
    st = relaxed_gradient(LOGITS, sse, 1.0, 200_000, hard=True, generator=seeded(10))
    assert max_z(st, exact_gradient(LOGITS, sse)) >= Z_CRIT  # the test sees the bias


def test_relaxed_bias_shrinks_and_variance_grows_as_tau_falls() -> None:
    exact = exact_gradient(LOGITS, sse)
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
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        score_function(LOGITS, sse, 1)
    with pytest.raises(ValueError, match="baseline"):
        score_function(LOGITS, sse, 10, baseline="mean")
    with pytest.raises(ValueError, match="tau"):
        relaxed_gradient(LOGITS, sse, 0.0, 10)
