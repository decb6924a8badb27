"""gumbel_max and gumbel_topk: exact Categorical and Plackett-Luce laws.

False-failure budget of this module: 1e-6, split evenly over its five chi-square claims.
Each test draws enough samples to detect, with miss rate 1e-6, a law at Cohen's effect size
w = 0.05 from the claimed one (chisquare_sample_size); each has a negative control.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import seeded

from gumbel_lib import gumbel_max, gumbel_topk, sample_gumbel
from gumbel_lib.stats import chisquare_sample_size, chisquare_test

ALPHA = 1e-6 / 5
EFFECT = 0.05
PROBS = torch.tensor([0.05, 0.05, 0.1, 0.13, 0.27, 0.4], dtype=torch.float64)
LOGITS = PROBS.log()
K = PROBS.numel()


def sample_size(cells: int) -> int:
    return chisquare_sample_size(EFFECT, cells - 1, ALPHA)


def counts_of(index: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(index.reshape(-1), minlength=k)


def test_gumbel_max_is_categorical_softmax() -> None:
    n = sample_size(K)
    index = gumbel_max(LOGITS.expand(n, K), generator=seeded(10))
    assert index.shape == (n,) and index.dtype == torch.int64
    verdict = chisquare_test(counts_of(index, K), PROBS, alpha=ALPHA)
    assert verdict.passed, verdict


def test_unnormalised_logits_give_the_same_law() -> None:
    n = sample_size(K)
    shifted = (LOGITS + 123.0).float()  # softmax is unchanged by a constant shift
    index = gumbel_max(shifted.expand(n, K), generator=seeded(11))
    verdict = chisquare_test(counts_of(index, K), PROBS, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_noise_on_probabilities_is_rejected() -> None:
    n = sample_size(K)
    wrong = (PROBS + sample_gumbel((n, K), generator=seeded(12), dtype=torch.float64)).argmax(-1)
    assert not chisquare_test(counts_of(wrong, K), PROBS, alpha=ALPHA).passed


def test_negative_control_exponential_noise_is_rejected() -> None:
    n = sample_size(K)
    u = torch.rand(n, K, generator=seeded(13), dtype=torch.float64)
    wrong = (LOGITS - torch.log(u)).argmax(-1)  # -log(u) instead of -log(-log(u))
    assert not chisquare_test(counts_of(wrong, K), PROBS, alpha=ALPHA).passed


def test_sampling_along_another_dim() -> None:
    n = sample_size(K)
    index = gumbel_max(LOGITS[:, None].expand(K, n), dim=0, generator=seeded(14))
    assert index.shape == (n,)
    verdict = chisquare_test(counts_of(index, K), PROBS, alpha=ALPHA)
    assert verdict.passed, verdict


def test_masked_category_is_never_drawn() -> None:
    logits = torch.tensor([0.0, -math.inf, 2.0, -math.inf])
    index = gumbel_max(logits.expand(200_000, 4), generator=seeded(15))
    counts = counts_of(index, 4)
    assert counts[1] == 0 and counts[3] == 0
    assert counts[0] > 0 and counts[2] > 0


def test_single_category_is_always_drawn() -> None:
    assert torch.equal(gumbel_max(torch.zeros(7, 1), generator=seeded(0)), torch.zeros(7).long())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits(dtype: torch.dtype) -> None:
    logits = LOGITS.to(dtype)
    index = gumbel_max(logits.expand(1000, K), generator=seeded(16))
    assert ((index >= 0) & (index < K)).all()


def plackett_luce_pmf(probs: torch.Tensor, order: tuple[int, ...]) -> float:
    """P(first = order[0], second = order[1], ...) drawing without replacement."""
    mass, left = 1.0, 1.0
    for i in order:
        mass *= probs[i].item() / left
        left -= probs[i].item()
    return mass


def ordered_tuple_counts(index: torch.Tensor, n_cat: int) -> tuple[torch.Tensor, list]:
    """Counts of every ordered tuple of distinct categories, plus one cell for repeats."""
    k = index.shape[-1]
    tuples = list(itertools.permutations(range(n_cat), k))
    code = torch.zeros(index.shape[0], dtype=torch.int64)
    for j in range(k):
        code = code * n_cat + index[:, j]
    lookup = {sum(t[j] * n_cat ** (k - 1 - j) for j in range(k)): c for c, t in enumerate(tuples)}
    table = torch.full((n_cat**k,), len(tuples), dtype=torch.int64)  # default: repeat cell
    for key, cell in lookup.items():
        table[key] = cell
    return torch.bincount(table[code], minlength=len(tuples) + 1), tuples


@pytest.mark.parametrize("k", [2, 3])
def test_topk_is_plackett_luce(k: int) -> None:
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    tuples = list(itertools.permutations(range(4), k))
    n = sample_size(len(tuples))
    index = gumbel_topk(probs.log().expand(n, 4), k, generator=seeded(20 + k))
    assert index.shape == (n, k)
    assert (index.sort(-1).values.diff(dim=-1) > 0).all()  # distinct
    counts, tuples = ordered_tuple_counts(index, 4)
    pmf = [plackett_luce_pmf(probs, t) for t in tuples] + [0.0]
    assert math.isclose(sum(pmf), 1.0)
    verdict = chisquare_test(counts, pmf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_topk_with_replacement_is_rejected() -> None:
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    n = sample_size(12)
    draws = torch.stack(
        [gumbel_max(probs.log().expand(n, 4), generator=seeded(30 + j)) for j in range(2)], -1
    )
    counts, tuples = ordered_tuple_counts(draws, 4)
    pmf = [plackett_luce_pmf(probs, t) for t in tuples] + [0.0]
    assert not chisquare_test(counts, pmf, alpha=ALPHA).passed


def test_first_of_topk_is_gumbel_max_for_the_same_noise() -> None:
    logits = torch.randn(50, 9, generator=seeded(40))
    top = gumbel_topk(logits, 4, generator=seeded(41))
    assert torch.equal(top[:, 0], gumbel_max(logits, generator=seeded(41)))


def test_topk_along_dim_zero_and_all_categories() -> None:
    logits = torch.randn(5, 3, generator=seeded(42))
    index = gumbel_topk(logits, 5, dim=0, generator=seeded(43))
    assert index.shape == (5, 3)
    assert torch.equal(index.sort(0).values, torch.arange(5)[:, None].expand(5, 3))


def test_topk_never_draws_masked_categories() -> None:
    logits = torch.tensor([0.0, -math.inf, 1.0, 2.0]).expand(10_000, 4)
    index = gumbel_topk(logits, 3, generator=seeded(44))
    assert not (index == 1).any()
