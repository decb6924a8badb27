"""The Plackett-Luce law of ordered samples without replacement, and its sequential sampler.

An ordered sample ``(i_1, ..., i_k)`` of distinct categories has Plackett-Luce probability
(Plackett, 1975; Luce, 1959)::

    P(i_1, ..., i_k) = prod_j exp(l_{i_j}) / sum_{r not in {i_1, ..., i_{j-1}}} exp(l_r),

the law of drawing ``i_1`` from ``softmax(l)``, removing it, drawing ``i_2`` from the
renormalised rest, and so on. The top ``k`` of ``l + g`` (``gumbel_topk``) has exactly this
law. The probability of the *unordered* set sums this over the ``k!`` orders. Chapter:
:doc:`Sampling without replacement </book/sampling-without-replacement>`.
"""

from __future__ import annotations

import itertools

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_drawable,
    check_finite_max,
    check_logits,
    raise_bad_logits,
    should_validate,
    working_dtype,
)
from gumbel_lib.sampling import perturb

#: The largest subset whose probability :func:`plackett_luce_subset_log_prob` sums over all
#: orders (8! = 40,320 orders per subset).
MAX_SUBSET_SIZE = 8


def _check_sample(logits: torch.Tensor, sample: object, dim: int, name: str) -> torch.Tensor:
    """Structural checks on an index tensor along ``dim`` (shape and dtype only)."""
    if not isinstance(sample, torch.Tensor) or sample.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be an int64 (or int32) torch.Tensor of category indices")
    expected = logits.shape[:dim] + sample.shape[dim : dim + 1] + logits.shape[dim + 1 :]
    if sample.dim() != logits.dim() or sample.shape != expected:
        raise ValueError(
            f"{name} must have the shape of logits {tuple(logits.shape)} except along "
            f"dim={dim}, got {tuple(sample.shape)}"
        )
    check_count(
        sample.shape[dim], f"{name}.shape[dim]", upper=logits.shape[dim], what="categories"
    )
    return sample.long()


def _check_sample_values(sample: torch.Tensor, size: int, dim: int, name: str) -> None:
    """Value checks (host synchronisation): indices in range and distinct along ``dim``."""
    if ((sample < 0) | (sample >= size)).any():
        raise ValueError(f"{name} holds an index outside [0, {size})")
    ordered = sample.sort(dim=dim).values
    if ordered.size(dim) > 1 and (ordered.diff(dim=dim) == 0).any():
        raise ValueError(f"{name} repeats a category: a sample without replacement cannot")


def _ordered_log_prob(logits: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Plackett-Luce log-probability along the last axis (no checks: internal)."""
    taken = torch.zeros_like(logits, dtype=torch.bool)
    total = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    for j in range(sample.shape[-1]):
        index = sample[..., j : j + 1]
        rest = torch.where(taken, torch.full_like(logits, -torch.inf), logits)
        chosen = logits.gather(-1, index).squeeze(-1)
        total = total + chosen - torch.logsumexp(rest, dim=-1)
        taken = taken.scatter(-1, index, True)
    return total


def plackett_luce_log_prob(
    logits: torch.Tensor,
    sample: torch.Tensor,
    *,
    dim: int = -1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``log P(i_1, ..., i_k)`` of an ordered sample without replacement (Plackett-Luce).

    ``sum_j [l_{i_j} - logsumexp_{r not in {i_1..i_{j-1}}} l_r]``. ``sample`` holds ``k``
    distinct indices along ``dim`` (the shape of ``logits`` otherwise); the result has
    ``dim`` removed and is differentiable in ``logits``. A masked (``-inf``) category in
    the sample gives ``-inf``. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> logits = torch.tensor([0.0, 0.0, 0.0])
    >>> round(plackett_luce_log_prob(logits, torch.tensor([2, 0])).exp().item(), 4)
    0.1667
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    sample = _check_sample(logits, sample, dim, "sample")
    if should_validate(validate_args):
        _check_sample_values(sample, logits.shape[dim], dim, "sample")
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise_bad_logits(logits, dim)
    return _ordered_log_prob(logits.movedim(dim, -1), sample.movedim(dim, -1))


def plackett_luce_subset_log_prob(
    logits: torch.Tensor,
    subset: torch.Tensor,
    *,
    dim: int = -1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``log P({i_1, ..., i_k})``: the probability of the unordered set, over all ``k!`` orders.

    ``logsumexp`` over the permutations ``sigma`` of
    :func:`plackett_luce_log_prob` ``(i_sigma(1), ..., i_sigma(k))``: the law of the *set* of
    the top ``k`` of ``l + g``. Exact, and costly in ``k!``: ``k`` larger than
    ``MAX_SUBSET_SIZE`` (8) raises ``ValueError``. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> logits = torch.tensor([0.0, 0.0, 0.0, 0.0])
    >>> round(plackett_luce_subset_log_prob(logits, torch.tensor([3, 1])).exp().item(), 4)
    0.1667
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    subset = _check_sample(logits, subset, dim, "subset")
    k = subset.shape[dim]
    if k > MAX_SUBSET_SIZE:
        raise ValueError(
            f"subset has k={k} categories; summing over k! orders is limited to "
            f"k <= {MAX_SUBSET_SIZE}"
        )
    if should_validate(validate_args):
        _check_sample_values(subset, logits.shape[dim], dim, "subset")
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise_bad_logits(logits, dim)
    last = logits.movedim(dim, -1)
    orders = torch.tensor(list(itertools.permutations(range(k))), device=logits.device)
    reordered = subset.movedim(dim, -1)[..., orders]  # (..., k!, k)
    expanded = last.unsqueeze(-2).expand(*reordered.shape[:-1], last.shape[-1])
    return torch.logsumexp(_ordered_log_prob(expanded, reordered), dim=-1)


def sequential_sample(
    logits: torch.Tensor,
    k: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """An ordered sample without replacement drawn the slow way: one category at a time.

    Step ``j`` draws ``i_j`` from ``softmax`` of the logits with ``i_1..i_{j-1}`` masked
    (a fresh Gumbel-max draw each step), which is the Plackett-Luce law by its definition.
    It exists to be compared with ``gumbel_topk`` (one noise draw, one ``topk``), which has
    the same law. Returns int64 indices with ``dim`` of size ``k``. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> sorted(sequential_sample(torch.zeros(4), 4, generator=gen).tolist())
    [0, 1, 2, 3]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    k = check_count(k, "k", upper=logits.shape[dim], what=f"categories along dim={dim}")
    if should_validate(validate_args) and logits.numel():
        check_finite_max(logits.amax(dim, keepdim=True), logits, dim)  # NaN, +inf, all -inf
        check_drawable(logits, k, "k", dim)
    masked = logits.detach().movedim(dim, -1).to(working_dtype(logits.dtype))
    picks = []
    for _ in range(k):
        index = perturb(masked, generator=generator).argmax(dim=-1, keepdim=True)
        picks.append(index)
        masked = masked.scatter(-1, index, -torch.inf)
    return torch.cat(picks, dim=-1).movedim(-1, dim)
