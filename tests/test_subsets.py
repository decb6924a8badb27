"""m_hot: the relaxed top-m, its hard limit, and the seed note's method it replaces.

False-failure budget of this module: 1e-6, split over four claims (the hard m_hot set law,
the seed note's set law for m = 2 and m = 3, its mean redraw count), 2.5e-7 each.
"""

from __future__ import annotations

import itertools
import math

import pytest
import scipy.stats
import torch
from conftest import seeded
from torch.autograd import gradcheck

from gumbel_lib import (
    expected_redraws,
    gumbel_max,
    gumbel_topk,
    m_hot,
    m_hot_by_redraw,
    plackett_luce_subset_log_prob,
)
from gumbel_lib.sampling import perturb
from gumbel_lib.stats import chisquare_sample_size, chisquare_test
from gumbel_lib.subsets import relaxed_top_m

ALPHA = 1e-6 / 4


def indicator(index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(*index.shape[:-1], size).scatter_(-1, index, 1.0)


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
    assert (m_hot(logits, 3, 1e-4, generator=seeded(4)) - hard).abs().max() < 1e-3


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


def seed_note_method(probs: torch.Tensor, m: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """The note's hard limit: draw categories one by one, redrawing any repeat."""
    chosen = torch.zeros(n, probs.numel(), dtype=torch.bool)
    for row in range(n):
        while int(chosen[row].sum()) < m:
            k = int(gumbel_max(probs.log(), generator=gen))
            chosen[row, k] = True
    return chosen


def test_hard_m_hot_has_the_law_of_the_seed_notes_method() -> None:
    # Both are sets of m categories; the note's method (sequential draws, repeats redrawn) is
    # sampling without replacement, whose set probabilities we enumerate exactly.
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    subsets = list(itertools.combinations(range(4), 2))

    def set_prob(s):
        return sum(
            probs[a].item() * probs[b].item() / (1 - probs[a].item())
            for a, b in itertools.permutations(s)
        )

    pmf = [set_prob(s) for s in subsets]
    n = chisquare_sample_size(0.05, len(subsets) - 1, ALPHA)
    y = m_hot(probs.log().expand(n, 4), 2, 1.0, generator=seeded(11), hard=True)
    code = {s: i for i, s in enumerate(subsets)}
    cells = torch.tensor([code[tuple(torch.nonzero(row).flatten().tolist())] for row in y])
    verdict = chisquare_test(torch.bincount(cells, minlength=len(subsets)), pmf, alpha=ALPHA)
    assert verdict.passed, verdict
    note = seed_note_method(probs, 2, 2000, seeded(12))  # the reference is slow: spot check
    note_cells = torch.tensor([code[tuple(torch.nonzero(r).flatten().tolist())] for r in note])
    assert torch.bincount(note_cells, minlength=6).argmax() == torch.tensor(pmf).argmax()


def test_negative_control_independent_draws_are_not_subsets() -> None:
    # Two independent categorical draws (with replacement) repeat a category; m_hot never does.
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    draws = torch.stack(
        [gumbel_max(probs.log().expand(1000, 4), generator=seeded(s)) for s in (13, 14)]
    )
    assert (draws[0] == draws[1]).any()
    y = m_hot(probs.log().expand(1000, 4), 2, 1.0, generator=seeded(15), hard=True)
    assert (y.sum(-1) == 2).all() and ((y == 0) | (y == 1)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_low_temperature_agrees_with_float64_on_the_same_noise(dtype: torch.dtype) -> None:
    # The fix: log(1 - a) from log-softmax values. Against the same recursion in float64 on
    # the same perturbed logits, the error is rounding (scores (w - max) / tau carry a
    # relative error of float32 eps), and no entry exceeds the exact relaxation's largest.
    logits = (2 * torch.randn(20_000, 6, generator=seeded(20))).to(dtype)
    keys = perturb(logits, generator=seeded(21))
    for tau in (1.0, 0.1, 0.01, 0.001):
        y = m_hot(logits, 3, tau, generator=seeded(21)).double()
        exact = relaxed_top_m(keys.double(), 3, tau)
        rounding = 1e-3 if dtype == torch.float16 else 2e-4
        assert (y - exact).abs().max() < rounding, tau
        assert y.max() <= exact.max() + rounding


def test_soft_approaches_hard_as_tau_falls() -> None:
    logits = 2 * torch.randn(20_000, 6, generator=seeded(22))
    hard = indicator(gumbel_topk(logits, 3, generator=seeded(23)), 6)
    gaps, overshoots = [], []
    for tau in (1.0, 0.1, 0.01, 0.001):
        y = m_hot(logits, 3, tau, generator=seeded(23))
        gaps.append((y - hard).abs().mean().item())
        overshoots.append((y > 1 + 1e-4).any(-1).float().mean().item())
    assert all(a > 2 * b for a, b in zip(gaps, gaps[1:], strict=False))
    assert all(a > b for a, b in zip(overshoots, overshoots[1:], strict=False))
    assert gaps[-1] < 1e-3 and overshoots[-1] < 0.05


def test_entries_above_one_belong_to_the_relaxation_not_to_rounding() -> None:
    # Two categories, m = 2, weights a = (0.6, 0.4) in the first step: in exact arithmetic the
    # second step puts a_i (1 - a_i)^(1 / tau) / sum_j a_j (1 - a_j)^(1 / tau) on i.
    tau = 0.1
    keys = tau * torch.tensor([0.6, 0.4], dtype=torch.float64).log()
    second = torch.tensor([0.6 * 0.4**10, 0.4 * 0.6**10], dtype=torch.float64)
    closed_form = torch.tensor([0.6, 0.4], dtype=torch.float64) + second / second.sum()
    assert torch.allclose(relaxed_top_m(keys, 2, tau), closed_form, rtol=1e-12)
    assert closed_form[1] > 1.37


SUBSET_LOGITS = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0], dtype=torch.float64)


def kept_sets(kept: torch.Tensor, m: int) -> torch.Tensor:
    """Each row's kept categories (a boolean mask), as a cell number of the m-subsets of 5."""
    assert (kept.sum(-1) == m).all()  # m distinct categories kept in every row
    bits = (kept.long() * torch.tensor([16, 8, 4, 2, 1])).sum(-1)
    cell = torch.full((32,), -1, dtype=torch.long)
    for i, sub in enumerate(itertools.combinations(range(5), m)):
        cell[sum(16 >> j for j in sub)] = i
    return cell[bits]


@pytest.mark.parametrize("m", [2, 3])
def test_seed_note_method_has_the_gumbel_topk_set_law(m: int) -> None:
    subsets = torch.tensor(list(itertools.combinations(range(5), m)))
    pmf = plackett_luce_subset_log_prob(SUBSET_LOGITS.expand(len(subsets), 5), subsets).exp()
    n = chisquare_sample_size(0.05, len(subsets) - 1, ALPHA)
    assert n <= 60_000
    n = 60_000
    _, kept, _ = m_hot_by_redraw(
        SUBSET_LOGITS.float().expand(n, 5), m, 0.1, generator=seeded(30 + m), return_details=True
    )
    counts = torch.bincount(kept_sets(kept, m), minlength=len(subsets))
    verdict = chisquare_test(counts, pmf, alpha=ALPHA)
    assert verdict.passed, verdict
    # Negative control with a known law: noise on the probabilities (Plackett-Luce of p).
    wrong_logits = torch.softmax(SUBSET_LOGITS, 0)
    wrong = plackett_luce_subset_log_prob(wrong_logits.expand(len(subsets), 5), subsets).exp()
    assert ((wrong - pmf) ** 2 / pmf).sum().sqrt() > 0.05
    _, bad, _ = m_hot_by_redraw(
        wrong_logits.float().expand(n, 5), m, 0.1, generator=seeded(40 + m), return_details=True
    )
    bad_counts = torch.bincount(kept_sets(bad, m), minlength=len(subsets))
    assert not chisquare_test(bad_counts, pmf, alpha=ALPHA).passed


def test_mean_redraws_match_the_formula() -> None:
    # z-test of the mean number of discarded draws (CLT, n = 50,000) at ALPHA.
    logits = torch.tensor([3.0, 1.0, 0.0, 0.0, -1.0])
    n, m = 50_000, 3
    _, _, draws = m_hot_by_redraw(
        logits.expand(n, 5), m, 0.5, generator=seeded(50), return_details=True
    )
    redraws = (draws - m).double()
    z = (redraws.mean() - expected_redraws(logits, m)) / (redraws.std() / math.sqrt(n))
    assert abs(z) < scipy.stats.norm.isf(ALPHA / 2)
    wrong = expected_redraws(logits, m) * 1.05  # a 5% error in the formula is detected
    assert abs((redraws.mean() - wrong) / (redraws.std() / math.sqrt(n))) > scipy.stats.norm.isf(
        ALPHA / 2
    )


def test_redraw_bound_and_bad_arguments() -> None:
    peaked = torch.tensor([30.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="max_draws=50"):
        m_hot_by_redraw(peaked, 2, 0.1, generator=seeded(0), max_draws=50)
    with pytest.raises(ValueError, match="m=3 is larger than the number of categories"):
        m_hot_by_redraw(torch.tensor([0.0, -math.inf, 0.0]), 3, 0.1)
    with pytest.raises(ValueError, match="tau"):
        m_hot_by_redraw(torch.zeros(3), 1, 0.0)
    with pytest.raises(ValueError, match="max_draws must be >= 1"):
        m_hot_by_redraw(torch.zeros(3), 1, 0.1, max_draws=0)
    with pytest.raises(ValueError, match="m must be >= 1"):
        m_hot_by_redraw(torch.zeros(3), 0, 0.1)


def test_seed_note_vector_entries_sums_and_gradient() -> None:
    logits = torch.randn(4, 6, dtype=torch.float64, generator=seeded(60), requires_grad=True)
    s = m_hot_by_redraw(logits, 3, 0.1, generator=seeded(61))
    assert ((s >= 0) & (s <= 1)).all() and (s.sum(-1) <= 3).all() and (s.sum(-1) >= 1).all()
    assert gradcheck(lambda x: m_hot_by_redraw(x, 3, 0.7, generator=seeded(62)), (logits,))


def test_expected_redraws_checks() -> None:
    assert expected_redraws(torch.zeros(3), 1) == 0.0
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        expected_redraws(torch.tensor([0.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="m=4"):
        expected_redraws(torch.zeros(3), 4)
