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
    check_generator,
    check_logits,
    raise_bad_logits,
    require,
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


def sample_ok(sample: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Bool tensor (``dim`` removed): indices in ``[0, size)`` and distinct along ``dim``."""
    ok = ((sample >= 0) & (sample < size)).all(dim)
    if sample.shape[dim] > 1:
        ok = ok & (sample.sort(dim=dim).values.diff(dim=dim) != 0).all(dim)
    return ok


def _check_sample_values(sample: torch.Tensor, size: int, dim: int, name: str) -> None:
    """Explain a failed :func:`sample_ok`: an index out of range, or a repeated category."""
    if ((sample < 0) | (sample >= size)).any():
        raise ValueError(f"{name} holds an index outside [0, {size})")
    ordered = sample.sort(dim=dim).values
    if ordered.size(dim) > 1 and (ordered.diff(dim=dim) == 0).any():
        raise ValueError(f"{name} repeats a category: a sample without replacement cannot")


def require_ranking(logits: torch.Tensor, sample: torch.Tensor, dim: int, name: str) -> None:
    """Value checks of a ranking and its logits, in every mode (``require``): indices in
    range and distinct along ``dim``, no NaN or ``+inf`` logit (``-inf`` masks are fine)."""
    ok = torch.cat(
        [sample_ok(sample, logits.shape[dim], dim).reshape(-1), (logits < torch.inf).reshape(-1)]
    )

    def explain() -> None:
        _check_sample_values(sample, logits.shape[dim], dim, name)
        raise_bad_logits(logits, dim)

    require(ok, f"{name} must hold distinct indices in range, and logits no NaN or +inf", explain)


def safe_logsumexp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``logsumexp`` along ``dim`` that is ``-inf`` with a zero gradient (not NaN) where every
    entry is ``-inf`` (internal)."""
    empty = torch.isneginf(x).all(dim, keepdim=True)
    level = torch.logsumexp(torch.where(empty, torch.zeros_like(x), x), dim=dim)
    return torch.where(empty.squeeze(dim), torch.full_like(level, -torch.inf), level)


def _ordered_log_prob(logits: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """Plackett-Luce log-probability along the last axis (no checks: internal).

    Computed in the working dtype (float32 for half precision). A step that places a masked
    category makes the whole ranking impossible: ``-inf``, with a zero gradient.
    """
    logits = logits.to(working_dtype(logits.dtype))
    taken = torch.zeros_like(logits, dtype=torch.bool)
    total = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    impossible = torch.zeros(logits.shape[:-1], dtype=torch.bool, device=logits.device)
    for j in range(sample.shape[-1]):
        index = sample[..., j : j + 1]
        rest = torch.where(taken, torch.full_like(logits, -torch.inf), logits)
        chosen = logits.gather(-1, index).squeeze(-1)
        masked = torch.isneginf(chosen)
        level = safe_logsumexp(rest)
        zero = torch.zeros_like(level)
        total = total + torch.where(masked, zero, chosen) - torch.where(masked, zero, level)
        impossible = impossible | masked
        taken = taken.scatter(-1, index, True)
    return torch.where(impossible, torch.full_like(total, -torch.inf), total)


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
    the sample gives ``-inf`` (probability 0) with a zero gradient, also when every category left
    at that step is masked. Computed and returned in float32 for half-precision logits (a
    sum of many steps can leave float16's range). Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> logits = torch.tensor([0.0, 0.0, 0.0])
    >>> round(plackett_luce_log_prob(logits, torch.tensor([2, 0])).exp().item(), 4)
    0.1667
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    sample = _check_sample(logits, sample, dim, "sample")
    if should_validate(validate_args):
        require_ranking(logits, sample, dim, "sample")
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
    ``MAX_SUBSET_SIZE`` (8) raises ``ValueError``. A subset holding a masked category has
    ``-inf`` with a zero gradient; half precision is computed in float32, as there. Chapter:
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
        require_ranking(logits, subset, dim, "subset")
    last = logits.movedim(dim, -1)
    orders = torch.tensor(list(itertools.permutations(range(k))), device=logits.device)
    reordered = subset.movedim(dim, -1)[..., orders]  # (..., k!, k)
    expanded = last.unsqueeze(-2).expand(*reordered.shape[:-1], last.shape[-1])
    return safe_logsumexp(_ordered_log_prob(expanded, reordered), dim=-1)


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
    the same law. Returns int64 indices with ``dim`` of size ``k``. Under validation, NaN or
    ``+inf`` logits and ``k`` above a row's number of finite logits raise ``ValueError``
    (checked in every mode, so that it compiles and maps with
    validation on). Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> sorted(sequential_sample(torch.zeros(4), 4, generator=gen).tolist())
    [0, 1, 2, 3]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    k = check_count(k, "k", upper=logits.shape[dim], what=f"categories along dim={dim}")
    check_generator(generator)
    if should_validate(validate_args) and logits.numel():
        require_drawable(logits, k, dim, "k")
    masked = logits.detach().movedim(dim, -1).to(working_dtype(logits.dtype))
    picks = []
    for _ in range(k):
        index = perturb(masked, generator=generator, validate_args=False).argmax(-1, keepdim=True)
        picks.append(index)
        masked = masked.scatter(-1, index, -torch.inf)
    return torch.cat(picks, dim=-1).movedim(-1, dim)


def require_drawable(logits: torch.Tensor, k: int, dim: int, name: str) -> None:
    """Under validation, in every mode: no NaN or ``+inf`` logit, and at least ``k`` finite
    logits (drawable categories) in every row along ``dim``."""
    finite = torch.isfinite(logits)
    ok = (logits < torch.inf).all(dim) & (finite.sum(dim) >= k)

    def explain() -> None:
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise_bad_logits(logits, dim)
        drawable = int(finite.sum(dim).min())
        if drawable == 0:
            raise_bad_logits(logits, dim)
        raise ValueError(
            f"{name}={k} is larger than the number of categories that can be drawn "
            f"(at least one row has only {drawable} finite logits)"
        )

    require(ok, f"logits must be free of NaN and +inf, with {name}={k} finite per row", explain)
