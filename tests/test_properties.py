"""Property-based tests (Hypothesis, derandomized): shapes, dims, dtypes, masks, wide logits.

For every draw: relaxed samples lie on the simplex, masked categories get exactly zero,
hard samples are exactly one-hot, nothing is NaN, and the same seed gives the same result.
"""

from __future__ import annotations

import torch
from conftest import seeded
from hypothesis import given, settings
from hypothesis import strategies as st

from gumbel_lib import gumbel_max, gumbel_softmax, gumbel_topk, relaxed_log_sample

SETTINGS = settings(derandomize=True, deadline=None, max_examples=150)
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


@st.composite
def problems(draw):
    """Logits with a random shape, dim, dtype and mask (at least one category left)."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    dim = draw(st.integers(-ndim, ndim - 1))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([1.0, 1e2, 1e4, 1e30]))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = seeded(seed)
    if dtype in (torch.float16,):
        scale = min(scale, 1e4)
    logits = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    mask = torch.rand(shape, generator=gen) < draw(st.sampled_from([0.0, 0.3, 0.7]))
    keep = torch.zeros(shape, dtype=torch.bool).index_fill_(dim, torch.tensor([0]), True)
    mask &= ~keep  # category 0 of every slice stays drawable
    logits = logits.masked_fill(mask, -torch.inf)
    tau = draw(st.sampled_from([1e-3, 0.1, 1.0, 10.0]))
    return logits, dim, tau, mask, seed


@SETTINGS
@given(problems(), st.booleans())
def test_relaxed_samples_are_on_the_simplex(problem, hard: bool) -> None:
    logits, dim, tau, mask, seed = problem
    y = gumbel_softmax(logits, tau, hard, dim=dim, generator=seeded(seed))
    assert y.shape == logits.shape and y.dtype == logits.dtype
    assert not torch.isnan(y).any() and torch.isfinite(y).all()
    assert (y >= 0).all() and (y[mask] == 0).all()
    atol = 1e-2 if logits.dtype in (torch.float16, torch.bfloat16) else 1e-5
    assert torch.allclose(y.double().sum(dim), torch.ones(()).double(), atol=atol)
    if hard:
        assert ((y == 0) | (y == 1)).all() and (y.sum(dim) == 1).all()
    again = gumbel_softmax(logits, tau, hard, dim=dim, generator=seeded(seed))
    assert torch.equal(y, again)


@SETTINGS
@given(problems())
def test_gumbel_max_draws_only_unmasked_categories(problem) -> None:
    logits, dim, _, mask, seed = problem
    index = gumbel_max(logits, dim=dim, generator=seeded(seed))
    size = logits.shape[dim]
    assert ((index >= 0) & (index < size)).all()
    assert not mask.gather(dim, index.unsqueeze(dim)).any()
    assert torch.equal(index, gumbel_max(logits, dim=dim, generator=seeded(seed)))


@SETTINGS
@given(problems())
def test_topk_draws_distinct_unmasked_categories(problem) -> None:
    logits, dim, _, mask, seed = problem
    k = int((~mask).sum(dim).min())
    index = gumbel_topk(logits, k, dim=dim, generator=seeded(seed))
    assert index.shape[dim] == k
    assert not mask.gather(dim, index).any()
    ordered = index.movedim(dim, -1).sort(-1).values
    assert (ordered.diff(dim=-1) > 0).all()


@SETTINGS
@given(problems())
def test_relaxed_log_sample_has_no_nan(problem) -> None:
    logits, dim, tau, mask, seed = problem
    log_y = relaxed_log_sample(logits, tau, dim=dim, generator=seeded(seed))
    assert not torch.isnan(log_y).any()
    assert torch.isneginf(log_y[mask]).all()
    if logits.dtype != torch.float16:  # float16 cannot hold log y below -65504
        assert torch.isfinite(log_y[~mask]).all()
