"""PlackettLuce(logits) as a torch.distributions.Distribution over (partial) rankings.

False-failure budget of this module: 1e-6, split over the four asserts that can fail by
chance, 2.5e-7 each: two chi-square tests of sampled rankings against exp(log_prob) (full
rankings of K = 4, 24 cells; top-2 prefixes of K = 5, 20 cells) and their two negative
controls. The chi-square rates are asymptotic (Pearson's statistic, and its noncentral law
under the alternative). Each test is sized by ``chisquare_sample_size`` to detect Cohen's
effect w = 0.05 with miss rate 2.5e-7, and each negative control is a law near that effect
(one logit moved, w between 0.05 and 0.06; asserted), which must be rejected. Everything
else here is exact.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import seeded
from torch.autograd import gradcheck

from gumbel_lib import gumbel_topk, plackett_luce_log_prob
from gumbel_lib.plackett_luce_distribution import (
    MAX_ENTROPY_SETS,
    PlackettLuce,
    Ranking,
    masked_real_vector,
)
from gumbel_lib.stats import chisquare_sample_size, chisquare_test

ALPHA = 1e-6 / 4
EFFECT = 0.05
L4 = torch.tensor([0.8, 0.2, -0.3, -0.7], dtype=torch.float64)
L5 = torch.tensor([0.6, 0.3, 0.0, -0.4, -0.8], dtype=torch.float64)
MASKED = torch.tensor([[0.5, -math.inf, 0.0, 1.0, -0.3], [-math.inf, 0.2, -math.inf, 0.0, 0.7]])


def product_formula(logits: list[float], ranking: tuple[int, ...]) -> float:
    """prod_j w_{i_j} / (sum of the weights not yet placed), with w = exp(logits)."""
    weights = [math.exp(v) for v in logits]
    left, out = sum(weights), 1.0
    for i in ranking:
        out *= weights[i] / left
        left -= weights[i]
    return out


def cell_counts(samples: torch.Tensor, rankings: torch.Tensor, n_categories: int) -> torch.Tensor:
    """Counts of each row of ``rankings`` among ``samples`` (every sample must be one)."""
    base = n_categories ** torch.arange(rankings.shape[-1] - 1, -1, -1)
    table = torch.full((n_categories ** rankings.shape[-1],), -1, dtype=torch.long)
    table[(rankings * base).sum(-1)] = torch.arange(rankings.shape[0])
    cells = table[(samples * base).sum(-1)]
    assert (cells >= 0).all()  # every sample is a ranking of distinct categories
    return torch.bincount(cells, minlength=rankings.shape[0])


def cohen_w(p: torch.Tensor, q: torch.Tensor) -> float:
    return ((q - p) ** 2 / p).sum().sqrt().item()


@pytest.mark.parametrize(
    ("logits", "k", "shift", "seeds"),
    [(L4, None, 0.085, (1, 2)), (L5, 2, 0.12, (3, 4))],
    ids=["full-K4", "top2-of-K5"],
)
def test_samples_follow_log_prob(logits: torch.Tensor, k: int | None, shift: float, seeds) -> None:
    law = PlackettLuce(logits, k=k)
    rankings = law.enumerate_support()  # every ranking of k places
    pmf = law.log_prob(rankings).exp()
    n = chisquare_sample_size(EFFECT, rankings.shape[0] - 1, ALPHA, ALPHA)
    assert n <= 70_000  # the draws below: about 0.1 s
    draws = PlackettLuce(logits.float(), k=k).sample((n,), generator=seeded(seeds[0]))
    assert draws.shape == (n, law.k) and draws.dtype == torch.int64
    verdict = chisquare_test(cell_counts(draws, rankings, logits.shape[0]), pmf, alpha=ALPHA)
    assert verdict.passed, verdict
    # Negative control near the effect the test is sized for: the last logit moved up.
    near = logits + shift * torch.nn.functional.one_hot(torch.tensor(logits.shape[0] - 1))
    assert EFFECT <= cohen_w(pmf, PlackettLuce(near, k=k).log_prob(rankings).exp()) <= 0.06
    wrong = PlackettLuce(near.float(), k=k).sample((n,), generator=seeded(seeds[1]))
    rejected = chisquare_test(cell_counts(wrong, rankings, logits.shape[0]), pmf, alpha=ALPHA)
    assert not rejected.passed, rejected


@pytest.mark.parametrize(("n_categories", "k"), [(4, 4), (5, 2), (5, 3), (5, 5)])
def test_log_prob_is_the_product_formula_and_sums_to_one(n_categories: int, k: int) -> None:
    logits = torch.linspace(1.0, -1.2, n_categories, dtype=torch.float64) ** 3
    law = PlackettLuce(logits, k=k)
    rankings = law.enumerate_support()
    assert rankings.shape == (math.perm(n_categories, k), k)
    p = law.log_prob(rankings).exp()
    assert math.isclose(p.sum().item(), 1.0, rel_tol=1e-12)
    for ranking, pr in zip(rankings.tolist(), p.tolist(), strict=True):
        assert math.isclose(pr, product_formula(logits.tolist(), tuple(ranking)), rel_tol=1e-12)
    # a prefix has the marginal law of the full ranking: sum over the completions
    full = PlackettLuce(logits).log_prob(PlackettLuce(logits).enumerate_support()).exp()
    completions = PlackettLuce(logits).enumerate_support()[:, :k]
    for ranking, pr in zip(rankings, p, strict=True):
        marginal = full[(completions == ranking).all(-1)].sum()
        assert math.isclose(marginal.item(), pr.item(), rel_tol=1e-12)


def test_masked_categories_are_never_placed_and_rows_sum_to_one() -> None:
    law = PlackettLuce(MASKED.double(), k=3)
    rankings = law.enumerate_support()  # (60, 2, 3)
    p = law.log_prob(rankings).exp()
    assert torch.allclose(p.sum(0), torch.ones(2, dtype=torch.float64), rtol=1e-12, atol=0)
    places_a_mask = torch.isneginf(MASKED.double().expand(60, 2, 5).gather(-1, rankings)).any(-1)
    assert (p[places_a_mask] == 0).all() and (p[~places_a_mask] > 0).all()
    draws = PlackettLuce(MASKED, k=3).sample((2000,), generator=seeded(5))
    assert not torch.isneginf(MASKED.expand(2000, 2, 5).gather(-1, draws)).any()


def test_sample_is_gumbel_topk_with_the_same_generator() -> None:
    logits = torch.randn(3, 6, generator=seeded(6))
    law = PlackettLuce(logits, k=4)
    draws = law.sample((5,), generator=seeded(7))
    assert torch.equal(draws, gumbel_topk(logits.expand(5, 3, 6), 4, generator=seeded(7)))
    assert torch.equal(draws, law.sample((5,), generator=seeded(7)))  # seeded: reproducible
    assert not torch.equal(draws, law.sample((5,), generator=seeded(8)))


def test_gradcheck_of_log_prob_and_entropy() -> None:
    ranking = torch.tensor([[2, 0, 3], [3, 4, 0]])
    x = torch.tensor([[0.3, -0.2, 1.1, 0.0, -0.7], [0.5, -math.inf, 0.1, 0.9, -0.4]])
    x = x.double().requires_grad_(True)
    assert gradcheck(lambda t: PlackettLuce(t, k=3).log_prob(ranking), (x,))
    assert gradcheck(lambda t: PlackettLuce(t, k=3).entropy(), (x,))
    assert gradcheck(lambda t: PlackettLuce(t).entropy(), (L4.clone().requires_grad_(True),))


def test_impossible_rankings_have_log_prob_minus_inf_and_zero_gradient() -> None:
    x = torch.tensor([0.2, -math.inf, 1.0, -math.inf], requires_grad=True)
    law = PlackettLuce(x, k=2)
    value = law.log_prob(torch.tensor([[1, 0], [2, 3], [0, 2]]))
    assert value[:2].tolist() == [-math.inf, -math.inf] and torch.isfinite(value[2])
    value[:2].sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros(4))


@pytest.mark.parametrize(("n_categories", "k"), [(4, 4), (5, 2), (5, 3), (6, 6)])
def test_entropy_equals_enumeration(n_categories: int, k: int) -> None:
    logits = torch.randn(3, n_categories, dtype=torch.float64, generator=seeded(9))
    logits[1, 0] = -math.inf  # a masked category (k <= 5 finite logits remain)
    if k == n_categories:
        logits[1, 0] = -30.0
    law = PlackettLuce(logits, k=k)
    log_p = law.log_prob(law.enumerate_support())
    p_log_p = torch.where(log_p > -math.inf, log_p.exp() * log_p, 0.0)
    assert torch.allclose(law.entropy(), -p_log_p.sum(0), rtol=1e-12, atol=1e-13)


def test_entropy_special_cases() -> None:
    # uniform logits: every ranking of k places equally likely, H = log(K! / (K - k)!)
    for n, k in [(7, 3), (10, 4), (16, 16)]:
        got = PlackettLuce(torch.zeros(n, dtype=torch.float64), k=k).entropy().item()
        assert math.isclose(got, math.log(math.perm(n, k)), rel_tol=1e-12)
    # the first place alone is torch's Categorical
    logits = torch.randn(4, 6, generator=seeded(10))
    assert torch.allclose(
        PlackettLuce(logits, k=1).entropy(),
        torch.distributions.Categorical(logits=logits).entropy(),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="more than MAX_ENTROPY_SETS"):
        PlackettLuce(torch.zeros(17)).entropy()  # 2^17 - 1 sets
    assert 2**16 - 1 <= MAX_ENTROPY_SETS


def test_shapes_expand_support_and_mode() -> None:
    logits = torch.randn(2, 3, 5, generator=seeded(11))
    law = PlackettLuce(logits, k=2)
    assert law.batch_shape == (2, 3) and law.event_shape == (2,)
    assert law.sample(generator=seeded(12)).shape == (2, 3, 2)
    assert law.sample((4, 1), generator=seeded(12)).shape == (4, 1, 2, 3, 2)
    wide = PlackettLuce(logits[0, 0]).expand((4, 2))
    assert wide.batch_shape == (4, 2) and wide.event_shape == (5,) and wide.k == 5
    ranking = wide.sample(generator=seeded(13))
    assert ranking.shape == (4, 2, 5)
    assert torch.equal(wide.log_prob(ranking), PlackettLuce(logits[0, 0]).log_prob(ranking))
    assert law.log_prob(law.sample((7,), generator=seeded(14))).shape == (7, 2, 3)
    assert law.log_prob(torch.tensor([0, 4])).shape == (2, 3)  # broadcast over the batch
    assert law.enumerate_support().shape == (20, 2, 3, 2)
    assert law.enumerate_support(expand=False).shape == (20, 1, 1, 2)
    assert isinstance(law.support, Ranking) and law.support.event_dim == 1
    assert law.support.check(torch.tensor([[0, 4], [4, 4], [5, 0]])).tolist() == [
        True,
        False,
        False,
    ]
    assert masked_real_vector.check(MASKED).all()
    assert not masked_real_vector.check(torch.tensor([[0.0, math.nan], [0.0, math.inf]])).any()
    mode = PlackettLuce(torch.tensor([0.1, 2.0, -math.inf, 0.5, 0.5]), k=3).mode
    assert mode.tolist() == [1, 3, 4]
    # the mode is the most probable ranking
    small = PlackettLuce(L5)
    probs = small.log_prob(small.enumerate_support())
    assert torch.equal(small.enumerate_support()[probs.argmax()], small.mode)
    with pytest.raises(NotImplementedError, match="no mean"):
        _ = law.mean
    assert "k=2" in repr(law)


def test_half_precision_log_prob_is_float32_and_finite() -> None:
    law = PlackettLuce(torch.tensor([6e4, -6e4], dtype=torch.float16))
    value = law.log_prob(torch.tensor([1, 0]))
    assert value.dtype == torch.float32 and value.item() == -1.2e5
    bf16 = PlackettLuce(torch.zeros(5, dtype=torch.bfloat16))
    assert sorted(bf16.sample(generator=seeded(0)).tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: PlackettLuce(torch.tensor([0.0, math.nan])), ValueError, "logits contains NaN"),
        (lambda: PlackettLuce(torch.tensor([0.0, math.inf])), ValueError, r"contains \+inf"),
        (lambda: PlackettLuce(MASKED), ValueError, "k=5 is larger than the number of categories"),
        (lambda: PlackettLuce(MASKED, k=4), ValueError, "k=4 is larger than the number"),
        (lambda: PlackettLuce(torch.zeros(3), k=4), ValueError, "k=4 is larger than the 3"),
        (lambda: PlackettLuce(torch.zeros(3), k=0), ValueError, "k must be >= 1"),
        (lambda: PlackettLuce(torch.zeros(3), k=2.0), TypeError, "k must be an int"),
        (lambda: PlackettLuce(torch.zeros(3, dtype=torch.long)), TypeError, "logits must have"),
        (lambda: PlackettLuce(torch.tensor(1.0)), ValueError, "logits must have at least one"),
        (lambda: PlackettLuce(torch.zeros(2, 0)), ValueError, "logits has no categories"),
        (lambda: PlackettLuce(torch.zeros(3), validate_args=1), TypeError, "validate_args"),
        (lambda: PlackettLuce(torch.zeros(3)).sample(generator=0), TypeError, "generator must"),
    ],
)
def test_bad_arguments_name_themselves(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "value must be an integer"),
        (torch.tensor([0, 1]), ValueError, "last dimension of size k=3"),
        (torch.zeros(3, 3, dtype=torch.long), ValueError, "does not broadcast with batch_shape"),
        (torch.tensor([0, 1, 1]), ValueError, "value repeats a category"),
        (torch.tensor([0, 1, 3]), ValueError, "value holds an index outside"),
    ],
)
def test_bad_values_name_themselves(value: torch.Tensor, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        PlackettLuce(torch.zeros(2, 3)).log_prob(value)


def test_validation_switch() -> None:
    # value checks only under validation; structural ones always
    off = PlackettLuce(torch.tensor([0.0, math.nan, 1.0]), validate_args=False)
    assert off.sample(generator=seeded(15)).shape == (3,)
    lenient = PlackettLuce(torch.zeros(3), validate_args=False)
    assert lenient.log_prob(torch.tensor([0, 1, 1])).shape == ()
    with pytest.raises(ValueError, match="size k=3"):
        lenient.log_prob(torch.tensor([0, 1]))
    assert PlackettLuce(torch.zeros(3)).expand((2,))._validate_args is True
    assert lenient.expand((2,))._validate_args is False


def test_log_prob_matches_the_functional_form() -> None:
    logits = torch.randn(4, 7, generator=seeded(16), dtype=torch.float64)
    ranking = torch.stack([torch.randperm(7, generator=seeded(17 + i))[:4] for i in range(4)])
    assert torch.equal(
        PlackettLuce(logits, k=4).log_prob(ranking), plackett_luce_log_prob(logits, ranking)
    )
    rankings = PlackettLuce(logits, k=4).enumerate_support(expand=False)
    assert rankings.shape == (math.perm(7, 4), 1, 4)
    assert rankings.squeeze(1).tolist() == [list(r) for r in itertools.permutations(range(7), 4)]
