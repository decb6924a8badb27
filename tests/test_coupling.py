"""The Gumbel coupling: joint law in closed form, agreement bounds, the sampler, validation.

False-failure budget of this module: 1e-6, split over its four chance asserts (ALPHA each):
one chi-square test of the sampler against the joint law (asymptotic rate), one exact
binomial test of its agreement count, and the rejections of the near control by both (each
sized to detect that control with miss rate ALPHA). Everything else is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import gumbel_max, sample_tokens
from gumbel_lib.coupling import coupled_gumbel_max, coupling_agreement, coupling_joint
from gumbel_lib.stats import chisquare_sample_size, chisquare_test

ALPHA = 1e-6 / 4
P_LOGITS = torch.tensor([1.2, 0.4, 0.0, -0.3, -1.0, -1.5], dtype=torch.float64)
Q_LOGITS = torch.tensor([0.6, 0.9, -0.2, -0.3, -0.4, -2.0], dtype=torch.float64)
K = 6


def brute_agreement(p: np.ndarray, q: np.ndarray) -> float:
    """sum_i 1 / sum_m max(p_m / p_i, q_m / q_i) over p_i q_i > 0, by loops."""
    total = 0.0
    for i in range(len(p)):
        if p[i] > 0 and q[i] > 0:
            total += 1 / sum(max(p[m] / p[i], q[m] / q[i]) for m in range(len(p)))
    return total


NODES, WEIGHTS = np.polynomial.legendre.leggauss(24)


def gumbel_cdf(x):
    with np.errstate(over="ignore"):
        return np.exp(-np.exp(-x))


def gumbel_pdf(x):
    with np.errstate(over="ignore"):
        return np.exp(-x - np.exp(-x))


def joint_by_integration(lp: np.ndarray, lq: np.ndarray, i: int, j: int) -> float:
    """P(X = i, Y = j) by integrating the Gumbel densities of g_i = t and g_j = s directly:
    i wins the race of p, j the race of q, every other g_m lies below both thresholds."""
    others = [m for m in range(len(lp)) if m not in (i, j)]
    if i == j:
        c = np.minimum(lp[i] - lp, lq[i] - lq)[others]

        def same(t: float) -> float:
            return gumbel_pdf(t) * np.prod(gumbel_cdf(t + c))

        return scipy.integrate.quad(same, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    a, b = lp[i] - lp[others], lq[j] - lq[others]

    def given_t(t: float) -> float:  # Gauss-Legendre in s, split at the kinks of the minimum
        low, high = lq[i] - lq[j] + t, lp[i] - lp[j] + t
        if low >= high:
            return 0.0
        edges = np.concatenate([[low], np.clip(np.sort(t + a - b), low, high), [high]])
        mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
        s = (mid[:, None] + half[:, None] * NODES).ravel()
        below = gumbel_cdf(np.minimum(t + a[:, None], s + b[:, None])).prod(0)
        return float(((half[:, None] * WEIGHTS).ravel() * gumbel_pdf(s) * below).sum())

    def outer(t: float) -> float:
        return gumbel_pdf(t) * given_t(t)

    return scipy.integrate.quad(outer, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11, limit=200)[0]


def test_joint_law_equals_direct_integration() -> None:
    lp = torch.log_softmax(P_LOGITS, 0).numpy()
    lq = torch.log_softmax(Q_LOGITS, 0).numpy()
    joint = coupling_joint(P_LOGITS, Q_LOGITS).numpy()
    direct = np.array([[joint_by_integration(lp, lq, i, j) for j in range(K)] for i in range(K)])
    np.testing.assert_allclose(joint, direct, atol=1e-12)


def test_agreement_is_the_sum_of_maxima_and_the_trace_of_the_joint() -> None:
    rng = np.random.default_rng(0)
    for size in (2, 3, 7, 30):
        p, q = rng.dirichlet(np.ones(size), 20), rng.dirichlet(np.full(size, 0.3), 20)
        with np.errstate(divide="ignore"):
            lp, lq = torch.tensor(np.log(p)), torch.tensor(np.log(q))
        agreement = coupling_agreement(lp, lq).numpy()
        expected = [brute_agreement(a, b) for a, b in zip(p, q, strict=True)]
        np.testing.assert_allclose(agreement, expected, rtol=1e-12)
        trace = coupling_joint(lp, lq).diagonal(dim1=-2, dim2=-1).sum(-1).numpy()
        np.testing.assert_allclose(trace, expected, rtol=1e-12)


def test_margins_forbidden_cells_and_masks() -> None:
    logits_p = torch.randn(50, 6, generator=seeded(1), dtype=torch.float64)
    logits_q = torch.randn(50, 6, generator=seeded(2), dtype=torch.float64)
    logits_p[:10, 0] = -torch.inf  # masked in p only
    logits_q[5:15, 1] = -torch.inf  # masked in q (overlapping rows: masked in both too)
    logits_q[5:15, 0] = -torch.inf
    joint = coupling_joint(logits_p, logits_q)
    p, q = torch.softmax(logits_p, -1), torch.softmax(logits_q, -1)
    torch.testing.assert_close(joint.sum(-1), p, rtol=0, atol=1e-14)
    torch.testing.assert_close(joint.sum(-2), q, rtol=0, atol=1e-14)
    rho = p / q  # inf where only q vanishes, nan where both do
    forbidden = (rho.unsqueeze(-2) >= rho.unsqueeze(-1)) & ~torch.eye(6, dtype=torch.bool)
    assert (joint[forbidden] == 0).all()
    assert joint.isfinite().all() and (joint >= 0).all()


def test_bounds_by_total_variation_and_the_cases_of_equality() -> None:
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.full(8, 0.5), 500), rng.dirichlet(np.full(8, 0.5), 500)
    agreement = coupling_agreement(torch.tensor(np.log(p)), torch.tensor(np.log(q))).numpy()
    one_minus_tv = np.minimum(p, q).sum(1)
    assert (agreement <= one_minus_tv + 1e-12).all()
    assert (agreement >= one_minus_tv / (2 - one_minus_tv) - 1e-12).all()
    two = rng.dirichlet(np.ones(2), (100, 2))
    both = coupling_agreement(torch.tensor(np.log(two[:, 0])), torch.tensor(np.log(two[:, 1])))
    np.testing.assert_allclose(both.numpy(), np.minimum(two[:, 0], two[:, 1]).sum(1), atol=1e-15)
    eps = 0.2
    with np.errstate(divide="ignore"):
        tight = coupling_agreement(
            torch.tensor(np.log([1 - eps, eps, 0.0])), torch.tensor(np.log([1 - eps, 0.0, eps]))
        )
    assert abs(tight.item() - (1 - eps) / (1 + eps)) < 1e-15


def test_each_draw_is_the_gumbel_max_draw_of_its_logits() -> None:
    logits_p = torch.randn(40, 7, generator=seeded(4))
    logits_q = torch.randn(40, 7, generator=seeded(5))
    x, y = coupled_gumbel_max(logits_p, logits_q, generator=seeded(6))
    assert torch.equal(x, gumbel_max(logits_p, generator=seeded(6)))
    assert torch.equal(y, gumbel_max(logits_q, generator=seeded(6)))
    xt, yt = coupled_gumbel_max(logits_p.T, logits_q.T, dim=0, generator=seeded(6))
    assert xt.shape == (40,) and yt.shape == (40,)


def test_keyed_pair_is_what_sample_tokens_draws_with_the_key() -> None:
    logits_p = torch.randn(30, 9, generator=seeded(7))
    logits_q = torch.randn(30, 9, generator=seeded(8))
    keys = torch.arange(30) + 11
    x, y = coupled_gumbel_max(logits_p, logits_q, key=keys, position=4)
    assert torch.equal(x, sample_tokens(logits_p, key=keys, position=4))
    assert torch.equal(y, sample_tokens(logits_q, key=keys, position=4))
    xt, yt = coupled_gumbel_max(logits_p.T, logits_q.T, dim=0, key=keys, position=4)
    assert torch.equal(xt, x) and torch.equal(yt, y)
    one, _ = coupled_gumbel_max(logits_p, logits_q, key=11, position=4)
    assert one[0] == x[0]


def maximal_pairs(p: np.ndarray, q: np.ndarray, n: int, gen: torch.Generator):
    """Pairs of the maximal coupling (same margins, support inside the Gumbel coupling's)."""
    with np.errstate(divide="ignore"):
        parts = (np.minimum(p, q), np.maximum(p - q, 0), np.maximum(q - p, 0))
        laws = [torch.tensor(np.log(v)).expand(n, -1) for v in parts]
    same = torch.rand(n, generator=gen, dtype=torch.float64) < np.minimum(p, q).sum()
    z = gumbel_max(laws[0], generator=gen)
    return (
        torch.where(same, z, gumbel_max(laws[1], generator=gen)),
        torch.where(same, z, gumbel_max(laws[2], generator=gen)),
    )


def test_sampler_follows_the_joint_law_and_rejects_another_coupling() -> None:
    """Chi-square on the K^2 cells and an exact binomial test of the agreements. The near
    control mixes in a fraction OMEGA of maximal-coupling pairs: same margins, no forbidden
    cell, so only the dependence differs; both tests are sized to detect it."""
    joint = coupling_joint(P_LOGITS, Q_LOGITS).numpy()
    p, q = joint.sum(1), joint.sum(0)
    tv = 0.5 * np.abs(p - q).sum()
    maximal = np.diag(np.minimum(p, q)) + np.outer(np.maximum(p - q, 0), np.maximum(q - p, 0)) / tv
    assert (maximal[joint == 0] == 0).all()
    omega, agree = 0.5, float(np.trace(joint))
    mixed = (1 - omega) * joint + omega * maximal
    keep = joint > 0
    w = float(np.sqrt(((mixed - joint)[keep] ** 2 / joint[keep]).sum()))
    shift = float(np.trace(mixed)) - agree
    z = scipy.stats.norm.isf(ALPHA / 2) + scipy.stats.norm.isf(ALPHA)
    n = max(
        chisquare_sample_size(w, int(keep.sum()) - 1, ALPHA),
        int(np.ceil((z * 0.5 / shift) ** 2)),  # binomial size, normal approximation
    )
    assert n <= 200_000  # stays fast
    gen = seeded(9)
    x, y = coupled_gumbel_max(P_LOGITS.expand(n, K), Q_LOGITS.expand(n, K), generator=gen)
    cells = torch.bincount(x * K + y, minlength=K * K)
    assert chisquare_test(cells, joint.ravel(), alpha=ALPHA).passed
    assert scipy.stats.binomtest(int((x == y).sum()), n, agree).pvalue >= ALPHA
    use = torch.rand(n, generator=gen) < omega
    xm, ym = maximal_pairs(p, q, n, gen)
    xc, yc = torch.where(use, xm, x), torch.where(use, ym, y)
    cells = torch.bincount(xc * K + yc, minlength=K * K)
    assert not chisquare_test(cells, joint.ravel(), alpha=ALPHA).passed
    assert scipy.stats.binomtest(int((xc == yc).sum()), n, agree).pvalue < ALPHA


def test_structural_and_value_errors() -> None:
    a, b = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        coupled_gumbel_max(a, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="logits_q"):
        coupling_agreement(a, torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="either generator or key"):
        coupled_gumbel_max(a, b, generator=seeded(0), key=1, position=0)
    with pytest.raises(ValueError, match="position is required"):
        coupled_gumbel_max(a, b, key=1)
    bad = a.clone()
    bad[1, 2] = float("nan")
    for fn in (coupled_gumbel_max, coupling_agreement, coupling_joint):
        with pytest.raises(ValueError, match="NaN"):
            fn(a, bad)
    masked = torch.full((2, 3), -torch.inf)
    with pytest.raises(ValueError, match="logits_p"):
        coupling_agreement(masked, b)
    x, _ = coupled_gumbel_max(a, bad, generator=seeded(0), validate_args=False)
    assert x.shape == (2,)
