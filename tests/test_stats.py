"""The statistical helpers: formulas, pooling, and that each test can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from gumbel_lib.stats import (
    chisquare_sample_size,
    chisquare_test,
    dkwm_epsilon,
    dkwm_sample_size,
    dkwm_test,
    independence_test,
    kolmogorov_distance,
    pooled_cells,
)


def test_dkwm_epsilon_formula() -> None:
    assert dkwm_epsilon(1000, 0.05) == pytest.approx(math.sqrt(math.log(40) / 2000))


def test_dkwm_sample_size_from_testing_md() -> None:
    # TESTING.md: about 73,000 samples for d = 0.02 and about 290,000 for d = 0.01.
    assert 72_000 < dkwm_sample_size(0.02, 1e-6) < 74_000
    assert 288_000 < dkwm_sample_size(0.01, 1e-6) < 292_000
    n = dkwm_sample_size(0.01, 1e-6)
    assert dkwm_epsilon(n, 1e-6) <= 0.005


def test_kolmogorov_distance_agrees_with_scipy() -> None:
    x = np.random.default_rng(0).normal(size=500)
    assert kolmogorov_distance(x, scipy.stats.norm.cdf) == pytest.approx(
        scipy.stats.kstest(x, "norm").statistic
    )


def test_dkwm_false_failure_rate_is_respected_at_a_loose_level() -> None:
    # At alpha = 0.2 a correct sampler must pass in at least ~80% of 200 runs (binomial:
    # failing more than 70 times has probability < 1e-9 when the true rate is <= 0.2).
    rng = np.random.default_rng(1)
    failures = sum(
        not dkwm_test(rng.gumbel(size=200), scipy.stats.gumbel_r.cdf, alpha=0.2).passed
        for _ in range(200)
    )
    assert failures <= 70


def test_dkwm_rejects_a_shifted_law() -> None:
    x = np.random.default_rng(2).gumbel(size=dkwm_sample_size(0.02, 1e-6)) + 0.1
    assert not dkwm_test(x, scipy.stats.gumbel_r.cdf, alpha=1e-6).passed


def test_pooling_merges_small_cells() -> None:
    observed, expected = pooled_cells([50, 40, 3, 2, 5], [0.5, 0.4, 0.04, 0.03, 0.03])
    assert expected.min() >= 5
    assert observed.sum() == 100 and expected.sum() == pytest.approx(100)


def test_a_still_small_pool_is_merged_into_a_cell_not_kept() -> None:
    # Expected counts (50, 47, 2, 1): the pool of the two small cells expects 3, still below
    # 5, so it must join the smallest large cell (47) rather than stand as a cell of its own.
    observed, expected = pooled_cells([50, 46, 3, 1], [0.5, 0.47, 0.02, 0.01])
    assert observed.tolist() == [50, 50]
    assert expected.tolist() == pytest.approx([50, 50])
    assert expected.min() >= 5 and observed.sum() == 100
    # one small cell alone is folded the same way
    observed, expected = pooled_cells([50, 46, 4], [0.5, 0.47, 0.03])
    assert observed.tolist() == [50, 50] and expected.min() >= 5
    # every cell small: one pooled cell, nothing to test against
    observed, expected = pooled_cells([2, 1], [0.5, 0.5])
    assert observed.tolist() == [3] and expected.tolist() == pytest.approx([3])


def test_chisquare_accepts_and_rejects() -> None:
    rng = np.random.default_rng(3)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    n = chisquare_sample_size(0.05, 3, 1e-6)
    good = np.bincount(rng.choice(4, size=n, p=p), minlength=4)
    assert chisquare_test(good, p).passed
    bad = np.bincount(rng.choice(4, size=n, p=[0.13, 0.2, 0.27, 0.4]), minlength=4)
    assert not chisquare_test(bad, p).passed


def test_drawing_an_impossible_category_fails() -> None:
    assert not chisquare_test([10, 10, 1], [0.5, 0.5, 0.0]).passed
    assert chisquare_test([10, 10, 0], [0.5, 0.5, 0.0]).passed
    # the draws in the probability-0 cell must not hide in a pool of small cells
    assert not chisquare_test([37, 1, 2], [0.95, 0.05, 0.0]).passed
    assert not chisquare_test([90, 3, 1, 1], [0.95, 0.03, 0.02, 0.0]).passed
    assert chisquare_test([37, 3, 0], [0.95, 0.05, 0.0]).passed
    observed, expected = pooled_cells([37, 1, 2], [0.95, 0.05, 0.0])
    assert expected[-1] == 0 and observed[-1] == 2


def test_chisquare_sample_size_has_the_stated_power() -> None:
    n = chisquare_sample_size(0.05, 5, 1e-6, 1e-3)
    critical = scipy.stats.chi2.isf(1e-6, 5)
    assert scipy.stats.ncx2.cdf(critical, 5, n * 0.05**2) <= 1e-3
    assert scipy.stats.ncx2.cdf(critical, 5, (n - 50) * 0.05**2) > 1e-3


def test_independence() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 3, 20_000), rng.integers(0, 4, 20_000)
    table = np.zeros((3, 4))
    np.add.at(table, (a, b), 1)
    assert independence_test(table).passed
    np.add.at(table, (a, np.minimum(a, 3)), 200)  # make b depend on a
    assert not independence_test(table).passed


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: dkwm_epsilon(0, 0.1), ValueError),
        (lambda: dkwm_epsilon(10, 1.5), ValueError),
        (lambda: dkwm_sample_size(0.0, 0.1), ValueError),
        (lambda: kolmogorov_distance([np.nan], scipy.stats.norm.cdf), ValueError),
        (lambda: pooled_cells([1, 2], [0.5, 0.4]), ValueError),
        (lambda: chisquare_sample_size(0.1, 0, 0.1), ValueError),
        (lambda: independence_test([1, 2, 3]), ValueError),
    ],
)
def test_bad_arguments(call, error) -> None:
    with pytest.raises(error):
        call()


def test_verdict_reads_well() -> None:
    text = str(dkwm_test(np.random.default_rng(5).gumbel(size=100), scipy.stats.gumbel_r.cdf))
    assert text.startswith("DKWM: n=100") and text.endswith("pass")
