"""Statistical checks with a stated false-failure rate, used by the chapters and the tests.

* Continuous laws: the Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant,
  ``P(sup_x |F_n(x) - F(x)| > eps) <= 2 exp(-2 n eps^2)``, so a sampler whose Kolmogorov
  distance exceeds ``eps(n, alpha) = sqrt(ln(2/alpha) / (2n))`` is rejected with false-failure
  rate at most ``alpha``, for any sample size (no asymptotics).
* Discrete laws: Pearson's chi-square goodness of fit on counts (``scipy.stats.chisquare``),
  cells with expected count below 5 pooled; contingency tables by ``chi2_contingency``.

Chapter: :doc:`The Gumbel distribution </book/gumbel-distribution>` introduces these checks;
every later chapter uses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

ArrayLike = np.ndarray | torch.Tensor | list[float]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one statistical check: what was compared, and whether it passed."""

    test: str
    n: int
    statistic: float
    threshold: float
    alpha: float
    passed: bool

    def __str__(self) -> str:
        word = "pass" if self.passed else "REJECT"
        if self.test.endswith("(p-value)"):  # the statistic is the p-value, compared with alpha
            name = self.test.removesuffix(" (p-value)")
            return (
                f"{name}: n={self.n:,}, p-value={self.statistic:.4g}, "
                f"alpha={self.alpha:.2g} -> {word}"
            )
        return (
            f"{self.test}: n={self.n:,}, statistic={self.statistic:.4g}, "
            f"threshold={self.threshold:.4g}, alpha={self.alpha:.2g} -> {word}"
        )


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy().ravel()
    return np.asarray(x, dtype=np.float64).ravel()


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(alpha)


def dkwm_epsilon(n: int, alpha: float) -> float:
    """Half-width ``sqrt(ln(2/alpha) / (2n))`` of the DKWM band at level ``1 - alpha``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return math.sqrt(math.log(2.0 / _check_alpha(alpha)) / (2.0 * n))


def dkwm_sample_size(discrepancy: float, alpha: float, beta: float | None = None) -> int:
    """Samples needed to reject, with miss rate ``beta``, a cdf that is off by ``discrepancy``.

    ``n >= 2 ln(2 / min(alpha, beta)) / d^2`` (TESTING.md): the band ``eps`` is then at most
    ``d / 2``, and the empirical cdf of the wrong sampler lies within ``d / 2`` of its own cdf
    with probability ``1 - beta``, so its distance to the claimed cdf exceeds ``eps``.
    """
    if not discrepancy > 0:
        raise ValueError(f"discrepancy must be > 0, got {discrepancy}")
    rate = min(_check_alpha(alpha), _check_alpha(beta if beta is not None else alpha))
    return math.ceil(2.0 * math.log(2.0 / rate) / discrepancy**2)


def chisquare_sample_size(effect: float, df: int, alpha: float, beta: float | None = None) -> int:
    """Draws a chi-square test at level ``alpha`` needs to detect Cohen's effect size ``w``.

    ``w = sqrt(sum_i (q_i - p_i)^2 / p_i)`` for a wrong law ``q``; the statistic is then
    approximately noncentral chi-square with ``df`` degrees of freedom and noncentrality
    ``n w^2``. We return the smallest ``n`` whose power is at least ``1 - beta``.
    """
    if not effect > 0:
        raise ValueError(f"effect must be > 0, got {effect}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    alpha = _check_alpha(alpha)
    beta = _check_alpha(beta if beta is not None else alpha)
    critical = scipy.stats.chi2.isf(alpha, df)

    def missed(lam: float) -> float:
        return float(scipy.stats.ncx2.cdf(critical, df, lam))

    hi = 1.0
    while missed(hi) > beta:
        hi *= 2.0
    lo = hi / 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if missed(mid) > beta else (lo, mid)
    return math.ceil(hi / effect**2)


def kolmogorov_distance(samples: ArrayLike, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """``sup_x |F_n(x) - F(x)|`` for the empirical cdf ``F_n`` of ``samples``."""
    x = _as_numpy(samples)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("samples must be non-empty and finite")
    return float(scipy.stats.kstest(x, cdf).statistic)


def dkwm_test(
    samples: ArrayLike, cdf: Callable[[np.ndarray], np.ndarray], *, alpha: float = 1e-6
) -> Verdict:
    """Reject when the Kolmogorov distance to ``cdf`` exceeds the DKWM band ``eps(n, alpha)``.

    >>> rng = np.random.default_rng(0)
    >>> dkwm_test(rng.gumbel(size=10_000), scipy.stats.gumbel_r.cdf).passed
    True
    """
    n = _as_numpy(samples).size
    distance = kolmogorov_distance(samples, cdf)
    eps = dkwm_epsilon(n, alpha)
    return Verdict("DKWM", n, distance, eps, alpha, distance <= eps)


def pooled_cells(
    counts: ArrayLike, probs: ArrayLike, min_expected: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Merge cells whose expected count is below ``min_expected`` into one pooled cell.

    Cells of probability zero are never pooled: a draw in one comes back as a cell of
    expected count 0 (which :func:`chisquare_test` rejects), and they are dropped when
    empty. The other small cells form one pool; a pool still below ``min_expected`` is
    merged into the smallest cell that is not small (kept as its own cell, its large
    relative error would dominate the statistic), or is the only cell when every cell is
    small.

    >>> observed, expected = pooled_cells([50, 46, 4], [0.5, 0.47, 0.03])
    >>> observed.tolist(), expected.round(6).tolist()
    ([50.0, 50.0], [50.0, 50.0])
    """
    observed, p = _as_numpy(counts), _as_numpy(probs)
    if observed.shape != p.shape:
        raise ValueError(f"counts and probs differ in size: {observed.size} vs {p.size}")
    if (p < 0).any() or not math.isclose(p.sum(), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError("probs must be non-negative and sum to 1")
    impossible = observed[p == 0].sum()  # draws in cells of probability zero
    observed, p = observed[p > 0], p[p > 0]
    expected = observed.sum() * p
    small = expected < min_expected
    keep_obs, keep_exp = observed[~small], expected[~small]
    if small.any():
        pooled_obs, pooled_exp = observed[small].sum(), expected[small].sum()
        if pooled_exp < min_expected and keep_exp.size:  # fold a still-small pool
            j = int(np.argmin(keep_exp))
            keep_obs[j] += pooled_obs
            keep_exp[j] += pooled_exp
        else:
            keep_obs, keep_exp = np.append(keep_obs, pooled_obs), np.append(keep_exp, pooled_exp)
    if impossible > 0:  # a category of probability zero was drawn
        return np.append(keep_obs, impossible), np.append(keep_exp, 0.0)
    return keep_obs, keep_exp


def chisquare_test(counts: ArrayLike, probs: ArrayLike, *, alpha: float = 1e-6) -> Verdict:
    """Pearson chi-square goodness of fit of ``counts`` to ``probs``; reject when ``p < alpha``.

    The rate ``alpha`` is asymptotic (Pearson's statistic is chi-square only in the limit;
    cells with expected count below 5 are pooled by :func:`pooled_cells`). A draw from a
    category of probability zero is an automatic rejection (p-value 0), whatever the
    pooling of the other cells.

    >>> chisquare_test([37, 1, 2], [0.95, 0.05, 0.0]).passed
    False
    """
    alpha = _check_alpha(alpha)
    observed, expected = pooled_cells(counts, probs)
    n = int(observed.sum())
    if (expected == 0).any():
        return Verdict("chi-square", n, math.inf, alpha, alpha, False)
    if observed.size < 2:
        return Verdict("chi-square", n, 0.0, 1.0, alpha, True)
    p_value = float(scipy.stats.chisquare(observed, expected).pvalue)
    return Verdict("chi-square (p-value)", n, p_value, alpha, alpha, p_value >= alpha)


def independence_test(table: ArrayLike, *, alpha: float = 1e-6) -> Verdict:
    """Chi-square test of independence on a two-way contingency table of counts."""
    alpha = _check_alpha(alpha)
    t = np.asarray(table.cpu() if isinstance(table, torch.Tensor) else table, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"table must be two-dimensional, got shape {t.shape}")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    p_value = float(scipy.stats.chi2_contingency(t).pvalue)
    return Verdict("independence (p-value)", int(t.sum()), p_value, alpha, alpha, p_value >= alpha)
