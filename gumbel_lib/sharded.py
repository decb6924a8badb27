"""Gumbel-max over a vocabulary split across processes (``torch.distributed``).

Each rank holds the logits of a slice of the vocabulary, ``[offset, offset + V_local)``, for
the same rows. With keyed noise (:mod:`gumbel_lib.keyed`) the noise of token ``i`` is a
function of ``(key, position, i)`` alone, so every rank computes exactly the perturbed
values the whole vocabulary would have on one process, ``(l_i - max l) + g_i`` in float64,
and the winner is the best of the ranks' winners: the maximum over a union is the maximum
of the maxima, and the first index among ties is the smallest of the ranks' first indices.
Two small collectives per call: an ``all_reduce`` of the row maxima of the logits (``B``
numbers) and an ``all_gather`` of each rank's best value and index (``2 B`` numbers). The
token equals :func:`gumbel_lib.tokens.sample_tokens` on the whole vocabulary with the same
key and position, bit for bit, however the vocabulary is split. Chapter:
:doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from gumbel_lib._validation import check_finite_max, check_logits, should_validate
from gumbel_lib.noise import keyed_minus_gumbel
from gumbel_lib.sampling import minus_perturbed


def sharded_gumbel_max(
    local_logits: torch.Tensor,
    offset: int,
    *,
    key: int | torch.Tensor,
    position: int | torch.Tensor,
    group: dist.ProcessGroup | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """The Gumbel-max token of rows whose vocabulary is split across the ranks of ``group``.

    ``local_logits`` (shape ``(..., V_local)``) holds tokens ``offset`` to
    ``offset + V_local - 1`` of every row; the ranks' slices must tile the vocabulary and
    every rank must pass the same ``key`` and ``position`` (ints, or tensors of the batch
    shape). Returns the global token index (int64, batch shape) on every rank: the
    :func:`~gumbel_lib.tokens.sample_tokens` draw of the whole row with that key and
    position, at temperature 1 without filters (scale the logits by ``1 / temperature``
    first). Under validation, NaN or ``+inf`` logits and rows masked on every rank raise
    ``ValueError`` on every rank.
    """
    check_logits(local_logits, "local_logits")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative int, got {offset!r}")
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sharded_gumbel_max needs an initialised torch.distributed group")
    wide = local_logits.detach().to(torch.float64, copy=True)
    high = wide.amax(-1, keepdim=True)
    dist.all_reduce(high, op=dist.ReduceOp.MAX, group=group)
    device = local_logits.device
    index = torch.arange(offset, offset + local_logits.shape[-1], device=device)
    minus_g = keyed_minus_gumbel(key, position, index, device=device)
    low, local_index = minus_perturbed(minus_g, wide.sub_(high)).min(-1)  # -(centred + g)
    mine = torch.stack([low, (local_index + offset).to(torch.float64)], -1)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    dist.all_gather(everyone, mine, group=group)
    values, indices = torch.stack(everyone).unbind(-1)  # (ranks, *batch) each
    best = values.amin(0)
    token = torch.where(values == best, indices, torch.inf).amin(0)
    if should_validate(validate_args) and best.numel():
        check_finite_max(best, local_logits, local_logits.dim() - 1)
    return token.to(torch.int64)
