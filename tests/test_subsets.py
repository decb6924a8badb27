"""m_hot (the relaxed top-m), the seed note's redraw method, and its expected redraw count.

False-failure budget of this module: 1e-6, split by Bonferroni over its 17 asserts that can
fail by chance, ALPHA = 1e-6 / 17 each:

* the hard m_hot set law (1), its gross and design-effect controls (2);
* m_hot_by_redraw's kept-set law for m = 2 and 3 (2), gross controls (2), a design control (1);
* its mean redraw count against expected_redraws (1) and a 5% error in the formula (1);
* for K = m = 2, the law of S_1 and S_2 against their exact cdfs (2 DKWM, exact level), their
  joint law (1 chi-square), an unconditioned control (1) and an atom at the design distance (1);
* for K = m = 2, the mean gradient against the closed form of the chapter's proposition (1)
  and against the relaxed objective's own gradient, which it must miss (1).

Chi-square and z-test levels are asymptotic, DKWM levels exact.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
import torch
from conftest import seeded
from torch.autograd import gradcheck
from torch.func import vmap

import gumbel_lib as gl
from gumbel_lib import (
    expected_redraws,
    gumbel_topk,
    m_hot,
    m_hot_by_redraw,
    plackett_luce_subset_log_prob,
)
from gumbel_lib.sampling import perturb
from gumbel_lib.stats import chisquare_sample_size, chisquare_test, dkwm_sample_size, dkwm_test
from gumbel_lib.subsets import MAX_ENUMERATION_STEPS, relaxed_top_m

ALPHA = 1e-6 / 17


def indicator(index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(*index.shape[:-1], size).scatter_(-1, index, 1.0)


def effect_size(wrong: torch.Tensor, right: torch.Tensor) -> float:
    return ((wrong - right) ** 2 / right).sum().sqrt().item()


def set_law(logits: torch.Tensor, subsets: list[tuple[int, ...]]) -> torch.Tensor:
    index = torch.tensor(subsets)
    return plackett_luce_subset_log_prob(logits.expand(len(subsets), -1), index).exp()


def sharpened(logits: torch.Tensor, subsets: list[tuple[int, ...]], effect: float) -> torch.Tensor:
    """(1 + c) logits, with c chosen so that the set law's effect size is ``effect``."""
    law = set_law(logits, subsets)
    c = scipy.optimize.brentq(
        lambda c: effect_size(set_law((1 + c) * logits, subsets), law) - effect, 0.0, 3.0
    )
    return (1 + c) * logits


def set_counts(kept: torch.Tensor, subsets: list[tuple[int, ...]]) -> torch.Tensor:
    """Counts of each row's kept categories (a boolean mask) over ``subsets``."""
    size = kept.shape[-1]
    cell = torch.full((2**size,), -1, dtype=torch.long)
    for i, subset in enumerate(subsets):
        cell[sum(1 << j for j in subset)] = i
    cells = cell[(kept.long() << torch.arange(size)).sum(-1)]
    assert (cells >= 0).all()  # every row keeps one of the subsets
    return torch.bincount(cells, minlength=len(subsets))


# --- m_hot: the relaxed top-m ------------------------------------------------------------


@pytest.mark.parametrize("tau", [1e-3, 0.3, 1.0, 10.0])
def test_sums_to_m_and_is_finite(tau: float) -> None:
    logits = torch.randn(300, 7, dtype=torch.float64, generator=seeded(1)) * 3
    y = m_hot(logits, 3, tau, generator=seeded(2))
    assert torch.isfinite(y).all() and (y >= 0).all()
    assert torch.allclose(y.sum(-1), torch.full((300,), 3.0, dtype=torch.float64))


def test_low_temperature_limit_is_the_topk_indicator() -> None:
    logits = torch.randn(500, 6, generator=seeded(3))
    hard = indicator(gumbel_topk(logits, 3, generator=seeded(4)), 6)
    assert torch.equal(m_hot(logits, 3, 1e-30, generator=seeded(4)), hard)
    # keys at least 1 apart: every softmax weight off the top is below exp(-1 / tau)
    keys = torch.stack([torch.randperm(6, generator=seeded(5)).double() for _ in range(50)])
    top = indicator(keys.topk(3).indices, 6).double()
    assert (relaxed_top_m(keys, 3, 0.01) - top).abs().max() < 10 * math.exp(-100)


def test_hard_forward_is_exact_and_backward_is_relaxed() -> None:
    logits = torch.randn(40, 5, dtype=torch.float64, generator=seeded(5), requires_grad=True)
    y = m_hot(logits, 2, 0.5, generator=seeded(6), hard=True)
    assert torch.equal(
        y.detach(), indicator(gumbel_topk(logits.detach(), 2, generator=seeded(6)), 5).double()
    )
    weights = torch.randn(40, 5, dtype=torch.float64, generator=seeded(7))
    (y * weights).sum().backward()
    soft_grad = torch.autograd.grad(
        (m_hot(logits, 2, 0.5, generator=seeded(6)) * weights).sum(), logits
    )[0]
    assert torch.equal(logits.grad, soft_grad)


def test_masked_categories_get_exact_zeros_and_zero_gradient() -> None:
    logits = torch.tensor([[0.3, -math.inf, 1.0, 0.2, -math.inf]] * 20, requires_grad=True)
    y = m_hot(logits, 3, 0.2, generator=seeded(8))
    assert (y[:, [1, 4]] == 0).all()
    y.pow(2).sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[:, [1, 4]] == 0).all()


def test_gradcheck_float64() -> None:
    logits = torch.randn(3, 5, dtype=torch.float64, generator=seeded(9), requires_grad=True)
    assert gradcheck(lambda x: m_hot(x, 2, 0.7, generator=seeded(10)), (logits,))


def test_bad_m() -> None:
    with pytest.raises(ValueError, match="m=4"):
        m_hot(torch.zeros(3), 4, 1.0, generator=seeded(0))
    masked = torch.tensor([0.0, -math.inf, 0.0])
    with pytest.raises(ValueError, match="m=3 is larger than the number of categories"):
        m_hot(masked, 3, 1.0, generator=seeded(0))
    with pytest.raises(ValueError, match="m must be >= 1"):
        m_hot(torch.zeros(3), 0, 1.0, generator=seeded(0))
    with pytest.raises(ValueError, match="tau"):
        m_hot(torch.zeros(3), 1, 0.0, generator=seeded(0))
    out = m_hot(masked, 3, 1.0, generator=seeded(0), validate_args=False)  # no read, no error
    assert out.shape == (3,)


def test_hard_m_hot_has_the_gumbel_topm_set_law() -> None:
    # 1 test and 2 controls: noise on the probabilities, and logits sharpened to the design.
    logits = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64).log()
    subsets = list(itertools.combinations(range(4), 2))
    law = set_law(logits, subsets)
    n = chisquare_sample_size(0.05, len(subsets) - 1, ALPHA)
    gen = seeded(11)
    draws = {
        "m_hot": logits,
        "noise on probabilities": torch.softmax(logits, 0),
        "sharpened to the design": sharpened(logits, subsets, 0.05),
    }
    verdicts = {
        name: chisquare_test(
            set_counts(m_hot(x.expand(n, 4), 2, 1.0, generator=gen, hard=True) > 0, subsets),
            law,
            alpha=ALPHA,
        )
        for name, x in draws.items()
    }
    assert verdicts["m_hot"].passed, verdicts["m_hot"]
    assert not verdicts["noise on probabilities"].passed
    assert not verdicts["sharpened to the design"].passed


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_low_temperature_agrees_with_float64_on_the_same_noise(dtype: torch.dtype) -> None:
    # log(1 - a) from log-softmax values: against the same recursion in float64 on the same
    # perturbed logits, the error is rounding (scores (w - max) / tau carry a relative error of
    # the working dtype's eps), and no entry exceeds the exact relaxation's largest.
    logits = (2 * torch.randn(20_000, 6, generator=seeded(20))).to(dtype)
    keys = perturb(logits, generator=seeded(21)).double()
    for tau in (1.0, 0.1, 0.01, 0.001):
        y = m_hot(logits, 3, tau, generator=seeded(21)).double()
        exact = relaxed_top_m(keys, 3, tau)
        rounding = 1e-3 if dtype == torch.float16 else 2e-4
        assert (y - exact).abs().max() < rounding, tau
        assert y.max() <= exact.max() + rounding


def test_log_space_complement_is_exact_where_the_weight_rounds_to_one() -> None:
    # K = 2, tau = 1: the second step is exactly (1/2, 1/2) since a_i (1 - a_i) is symmetric.
    gaps = torch.tensor([0.0, 8.0, 16.0, 17.0, 30.0, 80.0])
    keys = torch.stack([gaps, torch.zeros_like(gaps)], -1)  # float32
    closed_form = torch.softmax(keys.double(), -1) + 0.5
    assert (relaxed_top_m(keys, 2, 1.0).double() - closed_form).abs().max() < 1e-6
    rounded = torch.softmax(keys, -1)  # log1p(-a) from these weights is -inf from gap 17 on
    assert (rounded[gaps >= 17, 0] == 1).all()


def test_entries_above_one_belong_to_the_relaxation_not_to_rounding() -> None:
    # Two categories, m = 2, weights a = (0.6, 0.4) in the first step: in exact arithmetic the
    # second step puts a_i (1 - a_i)^(1 / tau) / sum_j a_j (1 - a_j)^(1 / tau) on i.
    tau = 0.1
    keys = tau * torch.tensor([0.6, 0.4], dtype=torch.float64).log()
    second = torch.tensor([0.6 * 0.4**10, 0.4 * 0.6**10], dtype=torch.float64)
    closed_form = torch.tensor([0.6, 0.4], dtype=torch.float64) + second / second.sum()
    assert torch.allclose(relaxed_top_m(keys, 2, tau), closed_form, rtol=1e-12)
    assert closed_form[1] > 1.37


# --- the seed note's method -------------------------------------------------------------

SUBSET_LOGITS = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0], dtype=torch.float64)


@pytest.mark.parametrize("m", [2, 3])
def test_seed_note_method_has_the_gumbel_topk_set_law(m: int) -> None:
    # 1 test and a gross control each; for m = 3 also a control at the design effect
    subsets = list(itertools.combinations(range(5), m))
    law = set_law(SUBSET_LOGITS, subsets)
    n = chisquare_sample_size(0.05, len(subsets) - 1, ALPHA)
    draws = {"note": SUBSET_LOGITS, "noise on probabilities": torch.softmax(SUBSET_LOGITS, 0)}
    if m == 3:
        draws["sharpened to the design"] = sharpened(SUBSET_LOGITS, subsets, 0.05)
    gen = seeded(30 + m)
    for name, x in draws.items():
        _, kept, _ = m_hot_by_redraw(
            x.float().expand(n, 5), m, 0.1, generator=gen, return_details=True
        )
        assert (kept.sum(-1) == m).all()  # m distinct categories in every row
        verdict = chisquare_test(set_counts(kept, subsets), law, alpha=ALPHA)
        assert verdict.passed == (name == "note"), (name, verdict)


def test_mean_redraws_match_the_formula() -> None:
    # z-test of the mean number of discarded draws (asymptotic, n = 50,000) at ALPHA, and a
    # formula 5% off, which the same data must reject.
    logits = torch.tensor([3.0, 1.0, 0.0, 0.0, -1.0])
    n, m = 50_000, 3
    _, _, draws = m_hot_by_redraw(
        logits.expand(n, 5), m, 0.5, generator=seeded(50), return_details=True
    )
    redraws = (draws - m).double()
    se = redraws.std() / math.sqrt(n)
    critical = scipy.stats.norm.isf(ALPHA / 2)
    assert abs((redraws.mean() - expected_redraws(logits, m)) / se) < critical
    assert abs((redraws.mean() - 1.05 * expected_redraws(logits, m)) / se) > critical


DELTA = 1.0  # K = m = 2 with logits (1/2, -1/2)
PAIR = torch.tensor([0.5, -0.5], dtype=torch.float64)


def cdf_s1(s: np.ndarray, tau: float) -> np.ndarray:
    """S_1 = sigmoid(D / tau), D ~ Logistic(delta) given D > 0 (the draw of category 1)."""
    s = np.clip(s, 0.5, 1.0)
    low = scipy.special.expit(-DELTA)
    return (scipy.special.expit(tau * scipy.special.logit(s) - DELTA) - low) / (1 - low)


def cdf_s2(s: np.ndarray, tau: float) -> np.ndarray:
    """S_2 = 1 - sigmoid(D / tau), D ~ Logistic(delta) given D < 0 (the draw of category 2)."""
    s = np.clip(s, 0.5, 1.0)
    top = scipy.special.expit(-DELTA)
    return (top - scipy.special.expit(tau * scipy.special.logit(1 - s) - DELTA)) / top


def test_two_categories_values_have_the_exact_conditional_law() -> None:
    # 2 DKWM tests (exact), 1 joint chi-square of the two PIT values (independence), and two
    # controls: free Gumbel-softmax draws (no conditioning), and an atom at S_1 = 1 of mass
    # 0.012, a Kolmogorov distance of 0.012 > 0.01, the distance n is sized for.
    tau, n = 0.5, dkwm_sample_size(0.01, ALPHA)
    s = m_hot_by_redraw(PAIR.expand(n, 2), 2, tau, generator=seeded(70)).numpy()
    u1, u2 = cdf_s1(s[:, 0], tau), cdf_s2(s[:, 1], tau)
    assert dkwm_test(u1, scipy.stats.uniform.cdf, alpha=ALPHA).passed
    assert dkwm_test(u2, scipy.stats.uniform.cdf, alpha=ALPHA).passed
    cells = np.minimum((4 * u1).astype(int), 3) * 4 + np.minimum((4 * u2).astype(int), 3)
    assert chisquare_test(
        np.bincount(cells, minlength=16), np.full(16, 1 / 16), alpha=ALPHA
    ).passed
    g = gl.sample_gumbel((n, 2, 2), generator=seeded(71), dtype=torch.float64)
    free = torch.softmax((PAIR + g) / tau, -1).amax(1)[:, 0].numpy()
    assert not dkwm_test(cdf_s1(free, tau), scipy.stats.uniform.cdf, alpha=ALPHA).passed
    atom = torch.rand(n, generator=seeded(72), dtype=torch.float64).numpy() < 0.012
    with_atom = np.where(atom, 1.0, u1)
    assert not dkwm_test(with_atom, scipy.stats.uniform.cdf, alpha=ALPHA).passed


def closed_form_gradient(tau: float) -> tuple[float, float]:
    """The note's mean gradient G = dJ/d delta + (J - 1/2)(1 - sigmoid(delta)), and dJ/d delta,
    for S_1 (quadrature; the chapter's proposition)."""
    expit, pdf = scipy.special.expit, scipy.stats.logistic.pdf
    mass = expit(DELTA)

    def integral(fn) -> float:
        parts = ((0.0, 40 * tau), (40 * tau, np.inf))
        return sum(scipy.integrate.quad(fn, a, b, epsabs=1e-13, limit=400)[0] for a, b in parts)

    j = integral(lambda d: expit(d / tau) * pdf(d - DELTA)) / mass
    dj = (
        integral(lambda d: expit(d / tau) * pdf(d - DELTA) * (2 * expit(d - DELTA) - 1)) / mass
        - j * pdf(DELTA) / mass
    )
    return dj + (j - 0.5) * (1 - mass), dj


def test_two_categories_gradient_is_the_notes_biased_estimator() -> None:
    tau, n = 0.1, 20_000
    g_note, dj = closed_form_gradient(tau)
    leaf = PAIR.expand(n, 2).clone().requires_grad_(True)
    m_hot_by_redraw(leaf, 2, tau, generator=seeded(80))[:, 0].sum().backward()
    grad = leaf.grad[:, 0]
    assert torch.allclose(leaf.grad[:, 1], -grad)  # a function of l_1 - l_2
    se = grad.std().item() / math.sqrt(n)
    critical = scipy.stats.norm.isf(ALPHA / 2)
    assert abs(grad.mean().item() - g_note) / se < critical
    assert abs(grad.mean().item() - dj) / se > critical  # not the relaxed objective's gradient


def test_seed_note_vector_entries_and_sums() -> None:
    logits = torch.randn(400, 6, dtype=torch.float64, generator=seeded(60))
    s, kept, draws = m_hot_by_redraw(logits, 3, 0.1, generator=seeded(61), return_details=True)
    assert ((s >= 0) & (s <= 1)).all() and (s.sum(-1) <= 3).all() and (s.sum(-1) >= 1).all()
    assert (kept.sum(-1) == 3).all() and (draws >= 3).all()
    # the largest entry of S at each kept category is that category's kept draw's winner
    assert (s[kept] > 1 / 6).all()


def test_seed_note_method_along_another_dim_and_in_half_precision() -> None:
    logits = torch.randn(5, 4, generator=seeded(62))
    s, kept, draws = m_hot_by_redraw(
        logits, 2, 0.5, dim=0, generator=seeded(63), return_details=True
    )
    assert s.shape == kept.shape == (5, 4) and draws.shape == (4,)
    assert (kept.sum(0) == 2).all()
    half = m_hot_by_redraw(logits.half(), 2, 0.5, generator=seeded(64))
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    masked = torch.tensor([0.0, -math.inf, 1.0, 0.5])
    s, kept, _ = m_hot_by_redraw(masked, 3, 0.5, generator=seeded(65), return_details=True)
    assert s[1] == 0 and not kept[1]


def test_redraw_bound_and_bad_arguments() -> None:
    # [30, 0, 0] with m = 2 needs about exp(30) draws: 50 suffice with probability < 1e-11
    peaked = torch.tensor([30.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="max_draws=50"):
        m_hot_by_redraw(peaked, 2, 0.1, generator=seeded(0), max_draws=50)
    _, _, draws = m_hot_by_redraw(
        peaked, 2, 0.1, generator=seeded(0), max_draws=50, validate_args=False, return_details=True
    )
    assert draws.item() == 51  # reported as max_draws + 1
    with pytest.raises(ValueError, match="m=3 is larger than the number of categories"):
        m_hot_by_redraw(torch.tensor([0.0, -math.inf, 0.0]), 3, 0.1)
    with pytest.raises(ValueError, match="tau"):
        m_hot_by_redraw(torch.zeros(3), 1, 0.0)
    with pytest.raises(ValueError, match="max_draws must be >= 1"):
        m_hot_by_redraw(torch.zeros(3), 1, 0.1, max_draws=0)
    with pytest.raises(ValueError, match="m must be >= 1"):
        m_hot_by_redraw(torch.zeros(3), 0, 0.1)
    with pytest.raises(ValueError, match="logits contains NaN"):
        m_hot_by_redraw(torch.tensor([0.0, math.nan]), 1, 0.1)
    out = m_hot_by_redraw(torch.tensor([0.0, -math.inf, 0.0]), 3, 0.1, validate_args=False)
    assert torch.isfinite(out).all()  # unspecified, but finite


# --- compile and vmap with default validation ----------------------------------------------


@pytest.mark.compile
@pytest.mark.parametrize("name", ["m_hot", "m_hot_hard", "m_hot_by_redraw"])
def test_default_validation_compiles_and_maps(name: str) -> None:
    calls = {
        "m_hot": lambda x, g=None: m_hot(x, 2, 0.5, generator=g),
        "m_hot_hard": lambda x, g=None: m_hot(x, 2, 0.5, hard=True, generator=g),
        "m_hot_by_redraw": lambda x, g=None: m_hot_by_redraw(x, 2, 0.5, generator=g),
    }
    fn = calls[name]
    x = torch.randn(3, 5, generator=seeded(90))
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.manual_seed(1)
    got = compiled(x)
    torch.manual_seed(1)
    assert torch.equal(got, fn(x))
    batch = torch.randn(4, 3, 5, generator=seeded(91))
    gen = seeded(92)
    mapped = vmap(lambda t: fn(t, gen), randomness="different")(batch)
    assert torch.equal(mapped, fn(batch, seeded(92)))  # the batch's noise in one call


# --- expected_redraws ---------------------------------------------------------------------


def redraws_by_orders(logits: torch.Tensor, m: int) -> float:
    """The formula summed over ordered prefixes, as the chapter writes it (small K only)."""
    p = torch.softmax(logits.double(), 0).tolist()
    total = 0.0
    for prefix in itertools.permutations(range(len(p)), m - 1):
        weight, q, discards = 1.0, 0.0, 0.0
        for i in prefix:
            weight *= p[i] / (1.0 - q)
            q += p[i]
            discards += q / (1.0 - q)
        total += weight * discards
    return total


def test_expected_redraws_by_sets_matches_the_orders() -> None:
    for seed, (size, m) in enumerate([(5, 2), (5, 3), (6, 4), (7, 7)]):
        logits = 2 * torch.randn(size, generator=seeded(seed), dtype=torch.float64)
        assert math.isclose(
            expected_redraws(logits, m), redraws_by_orders(logits, m), rel_tol=1e-12
        )


def test_expected_redraws_for_equal_probabilities() -> None:
    # Exercise 2 of the chapter: 1 / (K - 1) for m = 2; the coupon collector minus K for m = K
    for size in (2, 5, 9):
        assert math.isclose(expected_redraws(torch.zeros(size), 2), 1 / (size - 1), rel_tol=1e-12)
        coupon = size * sum(1 / j for j in range(1, size + 1)) - size
        assert math.isclose(expected_redraws(torch.zeros(size), size), coupon, rel_tol=1e-12)
    assert expected_redraws(torch.zeros(3), 1) == 0.0


def test_expected_redraws_masked_and_peaked() -> None:
    # a masked category has probability 0: the same as leaving it out
    masked = torch.tensor([0.5, -math.inf, 0.0, -1.0])
    assert math.isclose(
        expected_redraws(masked, 3),
        expected_redraws(torch.tensor([0.5, 0.0, -1.0]), 3),
        rel_tol=1e-12,
    )
    # softmax rounds to exactly (1, 0) in float64, yet the answer is finite: exp(40)
    assert math.isclose(
        expected_redraws(torch.tensor([0.0, -40.0]), 2), math.exp(40), rel_tol=1e-9
    )
    with pytest.raises(ValueError, match="too peaked"):
        expected_redraws(torch.tensor([0.0, -800.0]), 2)


def test_expected_redraws_checks() -> None:
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        expected_redraws(torch.tensor([0.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        expected_redraws(torch.tensor([0.0, math.inf]), 2)
    with pytest.raises(ValueError, match="m=4"):
        expected_redraws(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="m=2 is larger than the number of categories"):
        expected_redraws(torch.tensor([-math.inf, -math.inf, 0.0]), 2)
    with pytest.raises(ValueError, match="m=1 is larger than the number of categories"):
        expected_redraws(torch.full((3,), -math.inf), 1)
    with pytest.raises(ValueError, match="one-dimensional"):
        expected_redraws(torch.zeros(2, 3), 2)
    with pytest.raises(TypeError, match="floating-point"):
        expected_redraws(torch.zeros(3, dtype=torch.long), 2)


def test_expected_redraws_refuses_large_enumerations_at_once() -> None:
    # 13 categories with m = 13 run in well under a second; 16 with m = 16 are refused
    assert math.isclose(
        expected_redraws(torch.zeros(13), 13),
        13 * sum(1 / j for j in range(1, 14)) - 13,
        rel_tol=1e-12,
    )
    with pytest.raises(ValueError, match=f"m=16, above the limit of {MAX_ENUMERATION_STEPS:,}"):
        expected_redraws(torch.zeros(16), 16)
