"""Gradient estimators against the exact gradient computed by enumeration.

False-failure budget: 1e-6, split by Bonferroni over the four unbiasedness claims (the
score-function estimator with three baselines in one group of 200,000 draws, and the
leave-one-out baseline in many groups of two), each a two-sided z-test on K = 4
coordinates whose tolerance comes from the estimator's own sample variance. The same test
must reject the negative controls (a wrong sign; the loss times the sample instead of the
loss times the score; a baseline that sees its own draw), and each control asserts that n
gives the test the power to do so. The exact REINFORCE variances
(:func:`gumbel_lib.reinforce.score_variance`) are checked deterministically, against a
brute-force enumeration of every group of draws.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import sympy as sp
import torch
from conftest import seeded
from torch.autograd import gradcheck, gradgradcheck

from gumbel_lib import (
    exact_expected_gradient,
    exact_gradient,
    gumbel_max,
    gumbel_softmax,
    relaxed_gradient,
    score_function,
    sse_gradient,
    straight_through_gradient,
)
from gumbel_lib.enumeration import joint_outcomes
from gumbel_lib.reinforce import optimal_baseline, score_variance

ALPHA = 1e-6 / 4  # per unbiasedness claim
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


def test_score_function_leave_one_out_is_the_mean_of_the_others() -> None:
    """Draw by draw: row s is ``(f(D_s) - b_s) (D_s - p)``, ``b_s`` the mean loss of the
    *other* draws (replayed with the same generator). A baseline that includes draw s fails."""
    p = torch.softmax(LOGITS, 0)
    for n in (2, 3, 5):
        rows = score_function(LOGITS, sse, n, generator=seeded(30 + n))
        k = gumbel_max(LOGITS.expand(n, -1), generator=seeded(30 + n))
        draws = torch.nn.functional.one_hot(k, 4).double()
        losses = sse(draws)
        others = (losses.sum() - losses) / (n - 1)
        expected = (losses - others)[:, None] * (draws - p)
        assert torch.allclose(rows, expected, rtol=1e-12, atol=1e-15)


def test_leave_one_out_is_unbiased_in_groups_of_two() -> None:
    """Many independent groups of n = 2 (one call each; the estimate is the group's mean row).

    One call of 200,000 draws cannot tell the leave-one-out baseline from the mean of all
    draws (they differ by a 1/n share of the own loss); at n = 2 the own-draw baseline halves
    the gradient, and this test has the power to see it (negative control below)."""
    exact = exact_expected_gradient(LOGITS, sse)
    gen = seeded(40)
    groups = 5000
    draws = torch.stack([score_function(LOGITS, sse, 2, generator=gen) for _ in range(groups)])
    estimates = draws.mean(1)
    assert max_z(estimates, exact) < Z_CRIT
    # negative control: the own-draw baseline (mean of both losses) has mean exact / 2
    assert_power(estimates, exact / 2)
    k = gumbel_max(LOGITS.expand(groups, 2, -1), generator=seeded(41))
    sample = torch.nn.functional.one_hot(k, 4).double()
    losses = sse(sample)
    own = (losses - losses.mean(1, keepdim=True))[..., None] * (sample - torch.softmax(LOGITS, 0))
    assert max_z(own.mean(1), exact) >= Z_CRIT


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


def brute_force_variance(logits, f, m: int, baseline) -> float:
    """tr Cov of the m-draw REINFORCE estimate, by enumerating every m-tuple of outcomes."""
    table = logits.reshape(-1, logits.shape[-1])  # (V, K)
    outcomes = joint_outcomes(*table.shape, dtype=torch.float64)
    pi = torch.softmax(table, -1)
    p = (outcomes * pi).sum(-1).prod(-1)
    score = (outcomes - pi).flatten(1)
    losses = f(outcomes.reshape(-1, *logits.shape))
    index = torch.cartesian_prod(*[torch.arange(len(outcomes))] * m).reshape(-1, m)
    weight = p[index].prod(1)
    f_m, s_m = losses[index], score[index]  # (tuples, m), (tuples, m, d)
    if baseline == "leave-one-out":
        b = (f_m.sum(1, keepdim=True) - f_m) / (m - 1)
    else:
        b = torch.full_like(f_m, 0.0 if baseline is None else baseline)
    estimate = ((f_m - b)[..., None] * s_m).mean(1)
    mean = (weight[:, None] * estimate).sum(0)
    return (weight * ((estimate - mean) ** 2).sum(1)).sum().item()


WEIGHTS2 = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]], dtype=torch.float64)
LOGITS2 = torch.tensor([[0.3, -0.8, 1.1], [0.0, 0.5, -0.2]], dtype=torch.float64)


def joint_quadratic(y: torch.Tensor) -> torch.Tensor:
    return ((y * WEIGHTS2).sum((-2, -1)) - 0.4) ** 2


def test_score_variance_matches_brute_force_enumeration() -> None:
    """The closed forms of the variance theorem against every group of m draws (exact)."""
    one = (LOGITS, sse)
    two = (LOGITS2, joint_quadratic)  # V = 2 variables, K = 3: 9 joint outcomes
    for (logits, f), m in [(one, 2), (one, 3), (two, 2), (two, 3)]:
        for baseline in (None, 0.7, "leave-one-out"):
            formula = score_variance(logits, f, baseline=baseline, n_draws=m).item()
            assert math.isclose(
                formula, brute_force_variance(logits, f, m, baseline), rel_tol=1e-10
            )
    # the optimal constant: b* and Q(b) = Q(b*) + (b - b*)^2 E|s|^2
    b_star = optimal_baseline(LOGITS2, joint_quadratic).item()
    q_star = score_variance(LOGITS2, joint_quadratic, baseline="optimal").item()
    assert math.isclose(
        q_star, brute_force_variance(LOGITS2, joint_quadratic, 1, b_star), rel_tol=1e-10
    )
    pi = torch.softmax(LOGITS2, -1)
    outcomes = joint_outcomes(2, 3, dtype=torch.float64)
    p = (outcomes * pi).sum(-1).prod(-1)
    length2 = ((outcomes - pi) ** 2).sum((-2, -1))
    assert math.isclose(
        b_star, ((p * joint_quadratic(outcomes) * length2).sum() / (p * length2).sum()).item()
    )
    for b in (b_star - 0.3, b_star + 1.0, 0.0):
        q_b = score_variance(LOGITS2, joint_quadratic, baseline=b).item()
        assert q_b > q_star
        assert math.isclose(q_b, q_star + (b - b_star) ** 2 * (p * length2).sum().item())


def test_score_variance_with_a_masked_category_and_bad_input() -> None:
    masked = LOGITS2.clone()
    masked[0, 1] = -torch.inf

    def f(y):  # infinite on the masked category, which is never drawn
        return joint_quadratic(y) / (1 - y[..., 0, 1])

    value = score_variance(masked, f, baseline="leave-one-out", n_draws=2)
    finite = score_variance(
        masked.clamp_min(-200.0), joint_quadratic, baseline="leave-one-out", n_draws=2
    )
    assert torch.isfinite(value) and math.isclose(value.item(), finite.item(), rel_tol=1e-9)
    with pytest.raises(ValueError, match="n_draws"):
        score_variance(LOGITS, sse, baseline="leave-one-out")
    with pytest.raises(ValueError, match="baseline"):
        score_variance(LOGITS, sse, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        score_variance(LOGITS, sse, baseline=float("nan"))
    with pytest.raises(TypeError, match="baseline"):
        score_variance(LOGITS, sse, baseline=torch.tensor(0.5))
    with pytest.raises(ValueError, match="n_draws"):
        score_variance(LOGITS, sse, n_draws=0)
    with pytest.raises(ValueError, match="logits"):
        optimal_baseline(torch.zeros(2, 2, 2), sse)
    with pytest.raises(ValueError, match="NaN"):
        optimal_baseline(torch.tensor([0.0, float("nan")]), sse)
    with pytest.raises(TypeError, match="f must be callable"):
        score_variance(LOGITS, "sse")
    with pytest.raises(ValueError, match="f must map"):
        score_variance(LOGITS, lambda y: y.sum())
    with pytest.raises(ValueError, match="f must be finite"):
        score_variance(LOGITS, lambda y: 1 / y[..., 0] - 1)  # inf where category 0 is not drawn
    # one drawable outcome: every estimate is 0, so the variance is 0 for every baseline
    single = torch.tensor([0.0, -torch.inf, -torch.inf], dtype=torch.float64)
    assert score_variance(single, lambda y: y[..., 0] * 3.0, baseline="optimal").item() == 0.0
    assert optimal_baseline(single, lambda y: y[..., 0] * 3.0).item() == 3.0
    assert exact_gradient(single, lambda y: y[..., 0])[1].abs().max() == 0


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
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="baseline must be finite"):
            score_function(LOGITS, sse, 10, baseline=bad)
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
