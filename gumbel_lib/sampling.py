"""Exact discrete sampling by perturbing logits with Gumbel noise.

* Gumbel-max: ``argmax_i (l_i + g_i) ~ Categorical(softmax(l))`` (chapter *The max of
  Gumbels*). The logits need no normalisation: adding a constant moves no argmax.
* Gumbel-top-k: the indices of the ``k`` largest ``l_i + g_i``, in decreasing order, are an
  ordered sample without replacement, i.e. a Plackett-Luce draw (Kool et al., 2019).

Categories with logit ``-inf`` have perturbed value ``-inf`` and are never drawn.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_logits,
    raise_bad_logits,
    working_dtype,
)
from gumbel_lib.noise import log_exponential, standard_gumbel


def perturb(logits: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """``logits + g`` with fresh Gumbel(0, 1) noise ``g``, in the working dtype.

    Half-precision logits are promoted to float32 (the noise is made there too).
    """
    wide = working_dtype(logits.dtype)
    g = standard_gumbel(logits.shape, generator=generator, dtype=wide, device=logits.device)
    return g.add_(logits)


def negated_perturb(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``-(logits + g)``, bit for bit, for the same generator state (internal).

    Computed as ``log(-log u) - logits``: IEEE rounding is symmetric, so this is exactly the
    negation of :func:`perturb`'s result, and it costs one pass over memory fewer.
    """
    wide = working_dtype(logits.dtype)
    h = log_exponential(logits.shape, generator=generator, dtype=wide, device=logits.device)
    return h.sub_(logits)


def argmin_overwriting(values: torch.Tensor, low: torch.Tensor, dim: int) -> torch.Tensor:
    """``values.argmin(dim, keepdim=True)`` (the first minimum), given ``low``, the minimum.

    ``low`` is ``values.amin(dim, keepdim=True)``; ``values`` is overwritten. On the CPU,
    PyTorch's index-tracking reductions are scalar loops, slower than a comparison, a
    product and an ``amax``, which vectorise: for large tensors we score a hit at index
    ``i`` with ``n - i`` and take the largest score, in place. Internal.
    """
    n = values.shape[dim]
    if values.device.type != "cpu" or values.numel() < 2**15 or n > 2**24:
        return values.argmin(dim, keepdim=True)
    shape = [1] * values.dim()
    shape[dim] = n
    countdown = torch.arange(n, 0, -1, dtype=values.dtype).view(shape)  # n - i, exact
    return n - values.eq_(low).mul_(countdown).amax(dim=dim, keepdim=True).long()


def gumbel_max(
    logits: torch.Tensor, *, dim: int = -1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Category indices ``argmax_i (logits_i + g_i)``: exact ``Categorical(softmax(logits))``.

    Returns an int64 tensor with ``dim`` removed. Logits may be unnormalised and may hold
    ``-inf`` for masked categories (never drawn). Proved in *The max of Gumbels*.

    >>> gen = torch.Generator().manual_seed(0)
    >>> gumbel_max(torch.tensor([0.0, -float("inf"), 1.0]), generator=gen).item() in (0, 2)
    True
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    w = negated_perturb(logits.detach(), generator)  # -(l + g): our argmax is its argmin
    low = w.amin(dim=dim, keepdim=True)
    if not torch.isfinite(low).all():
        raise_bad_logits(logits, dim)
    return argmin_overwriting(w, low, dim).squeeze(dim)


def gumbel_topk(
    logits: torch.Tensor, k: int, *, dim: int = -1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ordered sample of ``k`` distinct categories without replacement (Plackett-Luce).

    The first index is drawn with probability ``softmax(logits)``, the next from the
    renormalised rest, and so on; equivalently, the top ``k`` of ``logits + g``. Returns
    int64 indices with ``dim`` of size ``k``. Raises ``ValueError`` when ``k`` exceeds the
    number of categories with finite logit. Chapter: *Sampling without replacement*.

    >>> gen = torch.Generator().manual_seed(0)
    >>> sorted(gumbel_topk(torch.zeros(5), 5, generator=gen).tolist())
    [0, 1, 2, 3, 4]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    k = check_count(k, "k", upper=logits.shape[dim], what=f"categories along dim={dim}")
    z = perturb(logits, generator=generator)
    values, index = z.topk(k, dim=dim, largest=True, sorted=True)
    if not torch.isfinite(values.narrow(dim, 0, 1)).all():
        raise_bad_logits(logits, dim)
    if torch.isneginf(values.narrow(dim, k - 1, 1)).any():
        drawable = int(torch.isfinite(logits).sum(dim).min())
        raise ValueError(
            f"k={k} is larger than the number of categories that can be drawn "
            f"(at least one row has only {drawable} finite logits)"
        )
    return index
