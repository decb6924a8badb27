"""The measurement helpers of the estimator study.

Statistical claims (budget 1e-6, three claims at 1e-6 / 3 each, on 4000 Gaussian
replicates with known bias and covariance): the bias-corrected squared bias has mean
``||b||^2`` (z-test); its stated variance matches the empirical one (chi-square interval on
the variance ratio; negative control: the formula without its ``tr C^2`` term is rejected);
the 95% intervals from the plug-in standard error do not under-cover (one-sided binomial).
"""

from __future__ import annotations

import math

import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import ESTIMATORS, exact_gradient
from gumbel_lib.estimator_study import (
    bias_variance_cosine,
    expected_loss,
    expected_loss_table,
    format_table,
    gradient_draws,
    study,
    train,
)

LOGITS = torch.tensor([[0.3, -0.8, 1.1], [0.0, 0.5, -0.2]], dtype=torch.float64)
WEIGHTS = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]], dtype=torch.float64)


def quadratic(y: torch.Tensor) -> torch.Tensor:
    return ((y * WEIGHTS).sum((-2, -1)) - 0.4) ** 2


def test_bias2_is_unbiased_and_its_standard_error_is_right() -> None:
    """Gaussian estimates with known bias ``b`` and covariance ``C``, 4000 replicates."""
    reps, n, d = 4000, 400, 3
    bias = torch.tensor([0.05, 0.0, -0.02], dtype=torch.float64)
    scale = torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)
    g = torch.zeros(d, dtype=torch.float64)
    draws = bias + scale * torch.randn(reps, n, d, dtype=torch.float64, generator=seeded(0))
    stats = [bias_variance_cosine(x, g) for x in draws]
    b2 = torch.tensor([s["bias2"] for s in stats])
    cov = torch.diag(scale**2)
    bcb = bias @ cov @ bias
    true_var = (4 * (n - 2) * bcb + 2 * ((cov @ cov).trace() + 2 * bcb)) / (n * (n - 1))
    z = (b2.mean() - bias @ bias) / (b2.std() / math.sqrt(reps))
    assert abs(z.item()) < scipy.stats.norm.isf(1e-6 / 3 / 2)
    # variance: (reps - 1) s^2 / sigma^2 ~ chi2(reps - 1) (approximately: B is not normal)
    ratio = (reps - 1) * b2.var().item() / true_var.item()
    low, high = scipy.stats.chi2.ppf([1e-6 / 6, 1 - 1e-6 / 6], reps - 1)  # two-sided 1e-6/3
    assert low < ratio < high
    # negative control: dropping tr C^2 understates the variance by a factor the test sees
    wrong = (4 * (n - 2) * bcb + 4 * bcb) / (n * (n - 1))
    assert (reps - 1) * b2.var().item() / wrong.item() > high
    # the plug-in standard error gives 95% intervals that do not under-cover (one-sided
    # binomial test at 1e-6 / 3: conservative intervals pass)
    se = torch.tensor([s["bias2_se"] for s in stats])
    z95 = scipy.stats.norm.isf(0.025)
    covered = int(((b2 - bias @ bias).abs() <= z95 * se).sum())
    assert scipy.stats.binomtest(covered, reps, 0.95, alternative="less").pvalue > 1e-6 / 3


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
