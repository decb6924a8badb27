"""m_hot: the relaxed top-m, its hard limit, and the seed note's method it replaces.

False-failure budget of this module: 1e-6, for its one chi-square claim.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import seeded
from torch.autograd import gradcheck

from gumbel_lib import gumbel_max, gumbel_topk, m_hot
from gumbel_lib.stats import chisquare_sample_size, chisquare_test

ALPHA = 1e-6


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
