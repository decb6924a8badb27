"""The measurement helpers of the estimator study.

Statistical claims (budget 1e-6, four claims at 1e-6 / 4 each, on 2000 Gaussian replicates
of 400 estimates with known bias and covariance): the bias-corrected squared bias has mean
``||beta||^2`` (z-test, asymptotic); at ``beta = 0`` the test of zero bias at level 5% raises
no more than 5% false alarms, which is the same event as the 95% interval covering 0 (one-sided
exact binomial); at ``beta != 0`` the 95% interval covers ``||beta||^2`` at least 95% of the
time (exact binomial); a bias of norm ``r(5%) + r(5%)`` is detected at least 95% of the time
(exact binomial). Negative control: the radius ``sqrt(2 tr Sigma)`` (the noise floor with no
tail terms, a plausible mistake) under-covers, and the binomial test has the power to see it
(its true coverage computed by quadrature for the Gaussian law of the noise).
"""

from __future__ import annotations

import math

import numpy
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import ESTIMATORS, exact_gradient
from gumbel_lib.estimator_study import (
    EstimatorStats,
    bias_variance_cosine,
    expected_loss,
    expected_loss_table,
    format_table,
    gradient_draws,
    study,
    train,
)

ALPHA = 1e-6 / 4
LOGITS = torch.tensor([[0.3, -0.8, 1.1], [0.0, 0.5, -0.2]], dtype=torch.float64)
WEIGHTS = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]], dtype=torch.float64)
REPS, N = 2000, 400
SCALE = torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)  # sd of each coordinate


def quadratic(y: torch.Tensor) -> torch.Tensor:
    return ((y * WEIGHTS).sum((-2, -1)) - 0.4) ** 2


def replicates(bias: torch.Tensor, seed: int) -> list[EstimatorStats]:
    """REPS independent rows of N Gaussian estimates with mean ``bias`` (gradient 0)."""
    draws = bias + SCALE * torch.randn(REPS, N, 3, dtype=torch.float64, generator=seeded(seed))
    zero = torch.zeros(3, dtype=torch.float64)
    return [EstimatorStats("x", "y", 1.0, 1, n=N, **bias_variance_cosine(x, zero)) for x in draws]


def radius(eigenvalues: torch.Tensor, alpha: float) -> float:
    """The Laurent-Massart radius for the covariance with these eigenvalues."""
    t = math.log(1 / alpha)
    trace, trace2 = eigenvalues.sum().item(), (eigenvalues**2).sum().item()
    return math.sqrt(trace + 2 * math.sqrt(trace2 * t) + 2 * eigenvalues.max().item() * t)


def gaussian_quadratic_cdf(x: float, eigenvalues: list[float]) -> float:
    """``P(l_1 Z_1^2 + l_2 Z_2^2 + l_3 Z_3^2 <= x)``, standard normal ``Z_j``: the chi-square(1)
    cdf of the first term, averaged over the other two by Gauss-Hermite quadrature."""
    nodes, weights = numpy.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    first, second, third = eigenvalues
    rest = second * nodes[:, None] ** 2 + third * nodes[None, :] ** 2
    inner = scipy.stats.chi2.cdf(numpy.clip(x - rest, 0, None) / first, 1)
    return float(weights @ inner @ weights)


def not_below(successes: int, rate: float) -> bool:
    """One-sided exact binomial test: the success rate is not significantly below ``rate``."""
    return scipy.stats.binomtest(successes, REPS, rate, alternative="less").pvalue > ALPHA


def test_bias2_is_unbiased() -> None:
    bias = torch.tensor([0.05, 0.0, -0.02], dtype=torch.float64)
    b2 = torch.tensor([r.bias2 for r in replicates(bias, 0)])
    z = (b2.mean() - bias @ bias) / (b2.std() / math.sqrt(REPS))
    assert abs(z.item()) < scipy.stats.norm.isf(ALPHA / 2)


def test_zero_bias_test_has_its_level_and_the_interval_covers() -> None:
    eigenvalues = SCALE**2 / N  # of Sigma = Cov / N
    # at beta = 0: no alarm <=> the interval's lower end is 0 <=> it covers ||beta||^2 = 0
    null = replicates(torch.zeros(3, dtype=torch.float64), 1)
    quiet = sum(not r.bias_detected(0.05) for r in null)
    assert quiet == sum(r.interval(0.95)[0] == 0.0 for r in null)
    assert not_below(quiet, 0.95)
    # a bias of exactly the detectable norm (true Sigma): detected, and covered, >= 95%
    norm = radius(eigenvalues, 0.05) * 2
    bias = norm * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64) / math.sqrt(3)
    rows = replicates(bias, 2)
    assert not_below(sum(r.bias_detected(0.05) for r in rows), 0.95)
    low_high = [r.interval(0.95) for r in rows]
    assert not_below(sum(low <= norm**2 <= high for low, high in low_high), 0.95)
    # negative control: radius sqrt(2 tr Sigma) at beta = 0; its true coverage, and power
    coverage = gaussian_quadratic_cdf(2 * eigenvalues.sum().item(), eigenvalues.tolist())
    critical = int(scipy.stats.binom.ppf(ALPHA, REPS, 0.95)) - 1  # rejected at or below
    assert scipy.stats.binom.cdf(critical, REPS, 0.95) <= ALPHA
    assert scipy.stats.binom.cdf(critical, REPS, coverage) >= 1 - 1e-9  # power
    covered = sum(r.distance <= math.sqrt(2 * r.noise_trace) for r in null)
    assert not not_below(covered, 0.95)


def test_stats_formulas() -> None:
    """The radius, interval and detectable bias follow their formulas (deterministic)."""
    draws = torch.randn(500, 4, dtype=torch.float64, generator=seeded(3)) * 0.3 + 0.1
    exact = torch.zeros(4, dtype=torch.float64)
    row = EstimatorStats("x", "y", 1.0, 1, n=500, **bias_variance_cosine(draws, exact))
    sigma = torch.cov(draws.T) / 500
    eigenvalues = torch.linalg.eigvalsh(sigma)
    assert math.isclose(row.noise_radius(1e-3), radius(eigenvalues, 1e-3), rel_tol=1e-9)
    d = (draws.mean(0) - exact).norm().item()
    assert math.isclose(row.distance, d, rel_tol=1e-12)
    assert math.isclose(row.bias2, d**2 - sigma.trace().item(), rel_tol=1e-9, abs_tol=1e-15)
    r = row.noise_radius(0.05)
    assert row.interval(0.95) == (max(d - r, 0.0) ** 2, (d + r) ** 2)
    assert row.detectable_bias(1e-3, 1e-9) == row.noise_radius(1e-3) + row.noise_radius(1e-9)
    assert row.bias_detected(0.05) == (d > r)
    assert math.isclose(row.variance, torch.cov(draws.T).trace().item(), rel_tol=1e-12)
    assert all(math.isclose(m, v) for m, v in zip(row.mean, draws.mean(0).tolist(), strict=True))


def test_gradient_draws_shapes_and_mean() -> None:
    gen = seeded(1)
    for name in ESTIMATORS:
        draws = gradient_draws(
            name, LOGITS, quadratic, 0.5, n_estimates=7, n_draws=3, generator=gen
        )
        assert draws.shape == (7, 6) and torch.isfinite(draws).all()


def test_leave_one_out_draws_are_the_average_of_the_group() -> None:
    """With n_draws = m the estimate is the mean of m leave-one-out terms (unbiased)."""
    exact = exact_gradient(LOGITS, quadratic)[1].reshape(-1)
    draws = gradient_draws(
        "reinforce-loo", LOGITS, quadratic, 1.0, n_estimates=50_000, n_draws=4, generator=seeded(2)
    )
    z = (draws.mean(0) - exact) / (draws.std(0) / math.sqrt(len(draws)))
    assert z.abs().max().item() < scipy.stats.norm.isf(1e-6 / 6 / 2)


def test_study_rows_and_table() -> None:
    rows = study(
        LOGITS,
        {"quadratic": quadratic},
        taus=(0.5, 1.0),
        n_draws=(1, 2),
        n_estimates=20,
        seeds=(0, 1),
    )
    # reinforce: 2 draw counts, loo: 1, four tau-dependent estimators x 2 taus x 2 counts
    assert len(rows) == 2 + 1 + 4 * 2 * 2
    assert all(r.n == 40 for r in rows)
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "reinmax" in table


def test_expected_loss_matches_exact_gradient_value() -> None:
    table = expected_loss_table(LOGITS.shape, quadratic)
    batch = torch.stack([LOGITS, 2 * LOGITS])
    values = expected_loss(batch, table)
    assert torch.allclose(values[0], exact_gradient(LOGITS, quadratic)[0], rtol=1e-12)
    assert torch.allclose(values[1], exact_gradient(2 * LOGITS, quadratic)[0], rtol=1e-12)


def test_training_lowers_the_expected_loss() -> None:
    curve = train("reinmax", quadratic, (2, 3), tau=1.0, steps=100, runs=3, lr=0.1)
    assert curve.shape == (101, 3)
    assert (curve[-1] < 0.5 * curve[0]).all()
