"""Each estimator's mean against the exact gradient (enumeration) or a closed form.

False-failure budget of this module: 1e-6 (nominal: the z-tests are asymptotic), split by
Bonferroni over the TEN claims that must pass (REINFORCE without and with a baseline,
leave-one-out, ReinMax at tau = 1 on a quadratic loss, ReinMax at tau = 3 equal to its
enumerated mean, Gumbel-Rao's mean equal to straight-through's, the means of straight-through
and of Gumbel-softmax for K = 2 equal to their closed form, no variance difference
claimed between Gumbel-Rao with one conditional draw and straight-through, and the measured
variances of REINFORCE equal to the exact ones of the variance theorem). Each mean claim
is a two-sided z-test per coordinate (Bonferroni over the coordinates) with the standard
error from the draws themselves. Every negative control has a known shift (closed form,
quadrature or enumeration), and asserts that n gives the test the power to see it (miss rate
below 1e-9: the shift is at least Z_CRIT + 6 standard errors). The variance claim
(Gumbel-Rao with 10 draws has a smaller total variance than straight-through) is a
one-sided z-test at the same per-claim level.
"""

from __future__ import annotations

import math

import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import exact_gradient, sample_with
from gumbel_lib.enumeration import joint_outcomes
from gumbel_lib.reinforce import optimal_baseline, score_surrogate, score_variance
from gumbel_lib.reinmax import expected_backward

CLAIMS = 10
ALPHA = 1e-6 / CLAIMS
MISS_MARGIN = 6.0  # a shift of Z_CRIT + 6 standard errors is missed with probability < 1e-9

LOGITS = torch.tensor([[0.3, -0.8, 1.1], [0.0, 0.5, -0.2]], dtype=torch.float64)
WEIGHTS = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]], dtype=torch.float64)


def quadratic(y: torch.Tensor) -> torch.Tensor:
    """``(w . y - 0.4)^2`` over both variables: quadratic, with a cross term between them."""
    return ((y * WEIGHTS.to(y.dtype)).sum((-2, -1)) - 0.4) ** 2


def z_crit(coordinates: int) -> float:
    return float(scipy.stats.norm.isf(ALPHA / coordinates / 2))


def per_draw(name: str, f, n: int, tau: float, seed: int, logits=LOGITS, **options):
    """``n`` independent gradient estimates, one row each (flattened logits)."""
    leaf = logits.expand(n, *logits.shape).clone().requires_grad_(True)
    y, surrogate = sample_with(name, leaf, tau, generator=seeded(seed), **options)
    out = surrogate(f(y))
    (out.mean(0) if name == "reinforce-loo" else out).sum().backward()
    return leaf.grad.reshape(n, -1)


def z_scores(draws: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    se = draws.std(0) / math.sqrt(draws.shape[0])
    return (draws.mean(0) - target.reshape(-1)) / se


def assert_unbiased(draws: torch.Tensor, target: torch.Tensor) -> None:
    assert z_scores(draws, target).abs().max().item() < z_crit(draws.shape[1])


def assert_rejected_with_power(draws: torch.Tensor, target, shift: torch.Tensor) -> None:
    se = draws.std(0) / math.sqrt(draws.shape[0])
    crit = z_crit(draws.shape[1])
    assert (shift.reshape(-1).abs() / se).max().item() >= crit + MISS_MARGIN  # power
    assert z_scores(draws, target).abs().max().item() >= crit  # rejected


def logistic_sum_density(z: float) -> float:
    """Density of ``L + L'`` (two independent standard logistics) at ``z != 0``."""
    e = math.exp(z)
    return e * ((z - 2) * e + z + 2) / (e - 1) ** 3


def st_mean_k2(delta: float, tau: float) -> float:
    """``E[d y_1 / d delta]`` for ``y_1 = sigmoid((delta + L) / tau)``, by quadrature."""

    def integrand(x: float) -> float:
        s = scipy.special.expit((delta + x) / tau)
        return s * (1 - s) / tau * scipy.stats.logistic.pdf(x)

    return scipy.integrate.quad(integrand, -60, 60, epsabs=1e-13)[0]


EXACT = exact_gradient(LOGITS, quadratic)[1]


@pytest.mark.parametrize("baseline", [None, 0.5])
def test_reinforce_is_unbiased(baseline) -> None:
    draws = per_draw("reinforce", quadratic, 200_000, 1.0, 20, baseline=baseline)
    assert_unbiased(draws, EXACT)


def test_leave_one_out_is_unbiased() -> None:
    draws = per_draw("reinforce-loo", quadratic, 100_000, 1.0, 21, n_samples=4)
    assert_unbiased(draws, EXACT)


def test_negative_control_baseline_that_sees_its_own_draw() -> None:
    """The mean of *all* draws (own one included) as baseline: mean (1 - 1/m) * exact."""
    m, n = 2, 200_000
    leaf = LOGITS.expand(n, 2, 3).clone().requires_grad_(True)
    y, _ = sample_with("reinforce", leaf, n_samples=m, generator=seeded(22))
    log_prob = (torch.log_softmax(leaf, -1) * y).sum(-1)  # (m, n, V)
    loss = quadratic(y)  # (m, n)
    score_surrogate(log_prob, baseline=loss.mean(0))(loss).mean(0).sum().backward()
    assert_rejected_with_power(leaf.grad.reshape(n, -1), EXACT, -EXACT / m)


def test_reinmax_theorem_by_enumeration() -> None:
    """Exact, no sampling: at tau = 1 ReinMax's mean is the gradient for a quadratic loss."""
    assert torch.allclose(expected_backward(LOGITS, quadratic, 1.0), EXACT, atol=1e-13)

    # not for a loss of third order, nor at tau != 1
    def cubic(y):
        return quadratic(y) * (y * WEIGHTS).sum((-2, -1))

    cubic_exact = exact_gradient(LOGITS, cubic)[1]
    assert (expected_backward(LOGITS, cubic, 1.0) - cubic_exact).abs().max() > 1e-3
    assert (expected_backward(LOGITS, quadratic, 2.0) - EXACT).abs().max() > 1e-3

    # noise-free straight-through is exact for a linear loss, not for the quadratic one
    def linear(y):
        return (y * WEIGHTS).sum((-2, -1))

    st_linear = expected_backward(LOGITS, linear, rule="straight-through")
    assert torch.allclose(st_linear, exact_gradient(LOGITS, linear)[1], atol=1e-13)
    st_quadratic = expected_backward(LOGITS, quadratic, rule="straight-through")
    assert (st_quadratic - EXACT).abs().max() > 1e-2


def test_reinmax_is_unbiased_for_a_quadratic_at_tau_one() -> None:
    draws = per_draw("reinmax", quadratic, 200_000, 1.0, 23)
    assert_unbiased(draws, EXACT)


def test_negative_control_reinmax_at_tau_three() -> None:
    draws = per_draw("reinmax", quadratic, 200_000, 3.0, 24)
    shift = expected_backward(LOGITS, quadratic, 3.0) - EXACT
    assert_rejected_with_power(draws, EXACT, shift)


def reinmax_mean_with_tempered_pi_0(logits: torch.Tensor, f, tau: float) -> torch.Tensor:
    """The exact mean of a wrong ReinMax whose ``pi_0`` is ``softmax(l / tau)``.

    Liu et al. (and microsoft/ReinMax) temper only the softmax inside ``pi_1``; ``pi_0`` is
    ``softmax(l)``, the law that ``D`` is drawn from. Enumeration over the joint outcomes.
    """
    outcomes = joint_outcomes(*logits.shape, dtype=logits.dtype).requires_grad_(True)
    (g,) = torch.autograd.grad(f(outcomes).sum(), outcomes)
    tempered = torch.softmax(logits / tau, -1)

    def jacobian_times_g(p: torch.Tensor) -> torch.Tensor:
        return p * (g - (p * g).sum(-1, keepdim=True))

    pi_1 = (outcomes.detach() + tempered) / 2
    backward = 2 * jacobian_times_g(pi_1) - jacobian_times_g(tempered) / 2
    p_outcome = (outcomes.detach() * torch.softmax(logits, -1)).sum(-1).prod(-1)
    return (p_outcome[:, None, None] * backward).sum(0)


def test_reinmax_mean_at_tau_three_is_the_enumerated_one() -> None:
    """Where ReinMax is biased (tau = 3) its sampler's mean is ``expected_backward``'s.

    The tau = 1 test cannot see an error in how the temperature enters; this one can. Its
    power is asserted against a plausible slip, ``pi_0 = softmax(l / tau)`` in the backward
    pass, whose exact mean is at least Z_CRIT + 6 standard errors away in some coordinate.
    """
    n, tau = 200_000, 3.0
    draws = per_draw("reinmax", quadratic, n, tau, 34)
    target = expected_backward(LOGITS, quadratic, tau)
    assert_unbiased(draws, target)
    mutant = reinmax_mean_with_tempered_pi_0(LOGITS, quadratic, tau)
    se = draws.std(0) / math.sqrt(n)
    shift = (mutant - target).reshape(-1).abs() / se
    assert shift.max().item() >= z_crit(draws.shape[1]) + MISS_MARGIN  # power against it


@pytest.mark.parametrize("name", ["straight-through", "gumbel-softmax"])
def test_straight_through_k2_closed_form_and_bias(name: str) -> None:
    """Linear loss ``w . D``, K = 2: the ST mean is ``(w_1 - w_2) h(delta) (1, -1)``.

    For a linear loss the relaxed (Gumbel-softmax) gradient ``J_y^T w`` is the same as
    straight-through's, so the same closed form holds for it.

    ``h`` is the density of the sum of two standard logistics (tau = 1); the exact gradient
    has ``sigmoid'(delta)`` instead. The z-test accepts the closed form and rejects the
    exact gradient (the bias), with power.
    """
    logits = torch.tensor([0.8, 0.0], dtype=torch.float64)
    w = torch.tensor([1.5, -0.5], dtype=torch.float64)
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)
    h = logistic_sum_density(0.8)
    assert math.isclose(h, st_mean_k2(0.8, 1.0), rel_tol=1e-9)
    closed = (w[0] - w[1]) * h * sign
    exact = exact_gradient(logits, lambda d: d @ w)[1]
    assert torch.allclose(exact, (w[0] - w[1]) * scipy.stats.logistic.pdf(0.8) * sign)
    draws = per_draw(name, lambda d: d @ w, 400_000, 1.0, 25, logits=logits)
    assert_unbiased(draws, closed)
    assert_rejected_with_power(draws, exact, closed - exact)


def test_gumbel_rao_has_the_straight_through_mean() -> None:
    n = 100_000
    st = per_draw("straight-through", quadratic, n, 0.5, 26)
    rao = per_draw("gumbel-rao", quadratic, n, 0.5, 27, n_samples=10)
    z = (st.mean(0) - rao.mean(0)) / (st.var(0) / n + rao.var(0) / n).sqrt()
    assert z.abs().max().item() < z_crit(st.shape[1])


def test_negative_control_gumbel_rao_at_another_temperature() -> None:
    """The same two-sample test rejects Gumbel-Rao at tau = 1 against ST at tau = 0.5."""
    logits = torch.tensor([0.8, 0.0], dtype=torch.float64)
    w = torch.tensor([1.5, -0.5], dtype=torch.float64)
    n = 100_000
    st = per_draw("straight-through", lambda d: d @ w, n, 0.5, 28, logits=logits)
    rao = per_draw("gumbel-rao", lambda d: d @ w, n, 1.0, 29, logits=logits, n_samples=10)
    se = (st.var(0) / n + rao.var(0) / n).sqrt()
    shift = (w[0] - w[1]) * (st_mean_k2(0.8, 0.5) - st_mean_k2(0.8, 1.0))
    crit = z_crit(2)
    assert (shift.abs() / se).max().item() >= crit + MISS_MARGIN
    assert ((st.mean(0) - rao.mean(0)) / se).abs().max().item() >= crit


def one_sided_variance_z(a: torch.Tensor, b: torch.Tensor) -> float:
    """z for ``tr Var(a) > tr Var(b)`` from squared distances to the pooled mean."""
    centre = torch.cat([a, b]).mean(0)
    qa, qb = ((a - centre) ** 2).sum(1), ((b - centre) ** 2).sum(1)
    return ((qa.mean() - qb.mean()) / (qa.var() / len(qa) + qb.var() / len(qb)).sqrt()).item()


def test_gumbel_rao_has_lower_variance_than_straight_through() -> None:
    n = 50_000
    st = per_draw("straight-through", quadratic, n, 0.5, 30)
    rao = per_draw("gumbel-rao", quadratic, n, 0.5, 31, n_samples=10)
    assert one_sided_variance_z(st, rao) > scipy.stats.norm.isf(ALPHA)


def test_no_variance_difference_with_one_conditional_draw() -> None:
    """Gumbel-Rao with one draw has the law of straight-through: no difference is claimed."""
    n = 50_000
    st = per_draw("straight-through", quadratic, n, 0.5, 32)
    rao = per_draw("gumbel-rao", quadratic, n, 0.5, 33, n_samples=1)
    assert abs(one_sided_variance_z(st, rao)) < scipy.stats.norm.isf(ALPHA / 2)


def total_variance_z(draws: torch.Tensor, exact: float) -> tuple[float, float]:
    """z of the measured tr Var against ``exact`` (squared distances to the mean), and its se."""
    q = ((draws - draws.mean(0)) ** 2).sum(1) * len(draws) / (len(draws) - 1)
    se = q.std().item() / math.sqrt(len(q))
    return (q.mean().item() - exact) / se, se


def test_reinforce_variance_matches_the_theorem() -> None:
    """tr Var of m-draw REINFORCE (b = 0, b = b*) and leave-one-out against score_variance.

    Six two-sided z-tests (Bonferroni). Negative control: leave-one-out against the formula
    without the baseline's own noise, ``Q(L) / m``, with the power to reject it."""
    n, crit = 40_000, z_crit(6)
    b_star = optimal_baseline(LOGITS, quadratic).item()
    mean_loss = exact_gradient(LOGITS, quadratic)[0].item()
    for i, (m, baseline) in enumerate(
        [
            (2, None),
            (2, b_star),
            (2, "leave-one-out"),
            (4, None),
            (4, b_star),
            (4, "leave-one-out"),
        ]
    ):
        leaf = LOGITS.expand(n, *LOGITS.shape).clone().requires_grad_(True)
        if baseline == "leave-one-out":
            y, surrogate = sample_with(
                "reinforce-loo", leaf, n_samples=m, generator=seeded(40 + i)
            )
        else:
            draws_shape = leaf.unsqueeze(0).expand(m, *leaf.shape)
            y, surrogate = sample_with(
                "reinforce", draws_shape, baseline=baseline, generator=seeded(40 + i)
            )
        surrogate(quadratic(y)).mean(0).sum().backward()
        draws = leaf.grad.reshape(n, -1)
        exact = score_variance(LOGITS, quadratic, baseline=baseline, n_draws=m).item()
        z, se = total_variance_z(draws, exact)
        assert abs(z) < crit
        if baseline == "leave-one-out" and m == 4:  # negative control, with power
            without = score_variance(LOGITS, quadratic, baseline=mean_loss, n_draws=m).item()
            assert (exact - without) / se >= crit + MISS_MARGIN
            assert abs(total_variance_z(draws, without)[0]) >= crit
