"""Plackett-Luce log-probabilities, the sequential sampler, and Gumbels given their top-k.

False-failure budget of this module: 1e-6, split over four claims (two chi-square tests of
ordered 3-tuples, two distributional tests of conditional_topk_gumbels), 2.5e-7 each. Each
chi-square test detects an effect size w = 0.05 with miss rate 2.5e-7 (n asserted), and a
negative control whose exact law is known is rejected.
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
    conditional_topk_gumbels,
    gumbel_topk,
    plackett_luce_log_prob,
    plackett_luce_subset_log_prob,
    sequential_sample,
)
from gumbel_lib.stats import chisquare_sample_size, chisquare_test, dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 4
LOGITS = torch.tensor([1.0, 0.5, 0.0, -0.5, -1.0], dtype=torch.float64)
TUPLES = torch.tensor(list(itertools.permutations(range(5), 3)))  # all 60 ordered 3-tuples


def brute_pl(probs: list[float], order: tuple[int, ...]) -> float:
    out, left = 1.0, 1.0
    for i in order:
        out *= probs[i] / left
        left -= probs[i]
    return out


def tuple_counts(samples: torch.Tensor) -> torch.Tensor:
    code = (samples * torch.tensor([25, 5, 1])).sum(-1)
    cell = torch.full((125,), -1, dtype=torch.long)
    cell[(TUPLES * torch.tensor([25, 5, 1])).sum(-1)] = torch.arange(60)
    assert (cell[code] >= 0).all()  # every sample is an ordered tuple of distinct categories
    return torch.bincount(cell[code], minlength=60)


def test_log_prob_matches_the_product_formula_and_sums_to_one() -> None:
    probs = torch.softmax(LOGITS, 0).tolist()
    pmf = plackett_luce_log_prob(LOGITS.expand(60, 5), TUPLES).exp()
    expected = torch.tensor(
        [brute_pl(probs, tuple(t.tolist())) for t in TUPLES], dtype=torch.float64
    )
    assert torch.allclose(pmf, expected, rtol=1e-10, atol=0)
    assert math.isclose(pmf.sum().item(), 1.0, rel_tol=1e-10)
    shifted = plackett_luce_log_prob((LOGITS + 7.0).expand(60, 5), TUPLES)
    assert torch.allclose(shifted.exp(), pmf, rtol=1e-10)  # unnormalised logits are fine


def test_subset_log_prob_sums_orders_and_sums_to_one() -> None:
    subsets = torch.tensor(list(itertools.combinations(range(5), 3)))
    p = plackett_luce_subset_log_prob(LOGITS.expand(10, 5), subsets).exp()
    assert math.isclose(p.sum().item(), 1.0, rel_tol=1e-10)
    probs = torch.softmax(LOGITS, 0).tolist()
    for s, ps in zip(subsets.tolist(), p.tolist(), strict=True):
        assert math.isclose(
            ps, sum(brute_pl(probs, o) for o in itertools.permutations(s)), rel_tol=1e-10
        )


def test_dim_masks_and_gradients() -> None:
    logits = LOGITS.expand(2, 5).T.contiguous()  # categories along dim 0
    sample = torch.tensor([[0, 0], [3, 3]])
    assert torch.allclose(
        plackett_luce_log_prob(logits, sample, dim=0),
        plackett_luce_log_prob(LOGITS, torch.tensor([0, 3])).expand(2),
    )
    masked = torch.tensor([0.0, -math.inf, 1.0])
    assert plackett_luce_log_prob(masked, torch.tensor([1, 0])).item() == -math.inf
    two = plackett_luce_log_prob(masked, torch.tensor([2, 0])).exp().item()
    assert math.isclose(two, 1 / (1 + math.exp(-1.0)), rel_tol=1e-6)  # then 0 is certain
    x = LOGITS.clone().requires_grad_(True)
    assert gradcheck(lambda t: plackett_luce_log_prob(t, torch.tensor([4, 1, 2])), (x,))
    assert gradcheck(lambda t: plackett_luce_subset_log_prob(t, torch.tensor([4, 1, 2])), (x,))


def test_bad_samples() -> None:
    with pytest.raises(ValueError, match="sample repeats a category"):
        plackett_luce_log_prob(LOGITS, torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="sample holds an index outside"):
        plackett_luce_log_prob(LOGITS, torch.tensor([1, 5]))
    with pytest.raises(TypeError, match="sample must be an int64"):
        plackett_luce_log_prob(LOGITS, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="subset has k=9"):
        plackett_luce_subset_log_prob(torch.zeros(10), torch.arange(9))
    with pytest.raises(ValueError, match="k=3 is larger than the number of categories"):
        sequential_sample(torch.tensor([0.0, -math.inf, 0.0]), 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        sequential_sample(LOGITS, 0)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        conditional_topk_gumbels(LOGITS, torch.tensor([0, 1]), 0)
    with pytest.raises(ValueError, match="index repeats"):
        conditional_topk_gumbels(LOGITS, torch.tensor([0, 0]), 2)


@pytest.mark.parametrize("sampler", ["gumbel_topk", "sequential_sample"])
def test_ordered_triples_follow_plackett_luce(sampler: str) -> None:
    draw = {"gumbel_topk": gumbel_topk, "sequential_sample": sequential_sample}[sampler]
    n = chisquare_sample_size(0.05, 59, ALPHA)
    assert n <= 100_000
    n = 100_000
    pmf = plackett_luce_log_prob(LOGITS.expand(60, 5), TUPLES).exp()
    counts = tuple_counts(draw(LOGITS.float().expand(n, 5), 3, generator=seeded(1)))
    verdict = chisquare_test(counts, pmf, alpha=ALPHA)
    assert verdict.passed, verdict
    # Negative control: noise on the probabilities, i.e. the Plackett-Luce law of logits p.
    wrong_logits = torch.softmax(LOGITS, 0)
    wrong = plackett_luce_log_prob(wrong_logits.expand(60, 5), TUPLES).exp()
    assert ((wrong - pmf) ** 2 / pmf).sum().sqrt() > 0.05  # the effect the n above detects
    bad = tuple_counts(draw(wrong_logits.float().expand(n, 5), 3, generator=seeded(2)))
    assert not chisquare_test(bad, pmf, alpha=ALPHA).passed


def test_conditioned_topk_is_exact() -> None:
    index = torch.tensor([[2, 0], [4, 3], [1, 2]])
    z = conditional_topk_gumbels(LOGITS.expand(3, 5), index, 200, generator=seeded(3))
    assert z.shape == (200, 3, 5)
    assert torch.equal(z.topk(2, dim=-1).indices, index.expand(200, 3, 2))
    masked = torch.tensor([0.0, -math.inf, 1.0, 0.5])
    zm = conditional_topk_gumbels(masked, torch.tensor([3, 0]), 50, generator=seeded(4))
    assert (zm[:, 1] == -math.inf).all() and torch.isfinite(zm[:, [0, 2, 3]]).all()


def test_conditioned_values_match_rejection_sampling() -> None:
    # The construction against the definition: keep unconditional draws whose top-2 is (2, 0).
    # Two-sample KS on the second value and on a loser, at ALPHA / 2 each; the control (the
    # second value without its truncation at the first) must be rejected.
    n = dkwm_sample_size(0.02, ALPHA / 2)
    index = torch.tensor([2, 0])
    z = conditional_topk_gumbels(LOGITS, index, n, generator=seeded(5))
    free = LOGITS + torch.from_numpy(scipy.stats.gumbel_r.rvs(size=(8 * n, 5), random_state=6))
    kept = free[(free.topk(2, dim=-1).indices == index).all(-1)]
    assert kept.shape[0] >= n // 2
    for column in (0, 4):
        p = scipy.stats.ks_2samp(z[:, column].numpy(), kept[:, column].numpy()).pvalue
        assert p >= ALPHA / 2, (column, p)
    rest = torch.logsumexp(LOGITS[[0, 1, 3, 4]], 0).item()
    u = scipy.stats.gumbel_r.cdf(z[:, 0].numpy() - rest) / scipy.stats.gumbel_r.cdf(
        z[:, 2].numpy() - rest
    )
    assert dkwm_test(u, scipy.stats.uniform.cdf, alpha=ALPHA).passed
    untruncated = rest + scipy.stats.gumbel_r.rvs(size=n, random_state=7)
    wrong = scipy.stats.gumbel_r.cdf(untruncated - rest) / scipy.stats.gumbel_r.cdf(
        z[:, 2].numpy() - rest
    )
    assert not dkwm_test(wrong.clip(0, 1), scipy.stats.uniform.cdf, alpha=ALPHA).passed


def test_validation_switch() -> None:
    # Value checks run only under validation; structural ones always.
    repeated = torch.tensor([1, 1])
    assert torch.isfinite(plackett_luce_log_prob(LOGITS, repeated, validate_args=False))
    with pytest.raises(ValueError, match="sample repeats"):
        plackett_luce_log_prob(LOGITS, repeated, validate_args=True)
    with pytest.raises(ValueError, match="must have the shape of logits"):
        plackett_luce_log_prob(LOGITS, torch.tensor([[1]]), validate_args=False)
    with pytest.raises(TypeError, match="validate_args must be a bool"):
        sequential_sample(LOGITS, 2, validate_args="yes")


def test_every_category_left_masked_gives_minus_inf_not_nan() -> None:
    # Step 2 of [0, 1] has only masked categories left: log P = -inf, its gradient 0, not NaN.
    x = torch.tensor([[0.0, -math.inf, -math.inf], [0.3, -math.inf, 1.0]], requires_grad=True)
    value = plackett_luce_log_prob(x, torch.tensor([[0, 1], [2, 0]]))
    assert value[0].item() == -math.inf and torch.isfinite(value[1])
    value.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[0], torch.zeros(3))
    # row 1 is log sigmoid(1.0 - 0.3): gradient (-1, 0, 1) sigmoid(0.3 - 1.0)
    assert torch.allclose(
        x.grad[1], torch.tensor([-1.0, 0.0, 1.0]) * math.exp(-0.7) / (1 + math.exp(-0.7))
    )
    y = torch.tensor([0.0, -math.inf, -math.inf, 0.5], requires_grad=True)
    subset = plackett_luce_subset_log_prob(y, torch.tensor([1, 2]))  # every order impossible
    assert subset.item() == -math.inf
    subset.backward()
    assert y.grad is not None and torch.equal(y.grad, torch.zeros(4))


def test_half_precision_is_computed_in_float32() -> None:
    # In float16, -6e4 - 6e4 overflows to -inf; the true log-probability is -1.2e5.
    logits = torch.tensor([6e4, -6e4], dtype=torch.float16)
    value = plackett_luce_log_prob(logits, torch.tensor([1, 0]))
    assert value.dtype == torch.float32 and value.item() == -1.2e5
    subset = plackett_luce_subset_log_prob(logits.bfloat16(), torch.tensor([1]))
    assert subset.dtype == torch.float32 and torch.isfinite(subset)


def test_sequential_sample_checks_its_generator() -> None:
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        sequential_sample(LOGITS, 2, generator=0)
