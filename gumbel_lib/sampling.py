"""Exact discrete sampling by perturbing logits with Gumbel noise.

* Gumbel-max: ``argmax_i (l_i + g_i) ~ Categorical(softmax(l))`` (chapter
  :doc:`The max of Gumbels </book/max-of-gumbels>`). The logits need no normalisation:
  adding a constant moves no argmax.
* Gumbel-top-k: the indices of the ``k`` largest ``l_i + g_i``, in decreasing order, are an
  ordered sample without replacement, i.e. a Plackett-Luce draw (Kool et al., 2019;
  chapter :doc:`Sampling without replacement </book/sampling-without-replacement>`).

Categories with logit ``-inf`` have perturbed value ``-inf`` and are never drawn. The
noise comes from the one uniform-to-Gumbel path of :mod:`gumbel_lib.noise`.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import (
    all_finite,
    check_categories,
    check_count,
    check_dim,
    check_drawable,
    check_finite_max,
    check_generator,
    check_logits,
    raise_bad_logits,
    should_validate,
)
from gumbel_lib.noise import log_exponential


def perturbed(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``logits + g`` in the working dtype (internal, no checks): see :func:`perturb`.

    Computed as ``logits - (-g)``, which IEEE arithmetic defines as ``logits + g``, bit for
    bit; one pass fewer than negating the noise first. Small and vmapped inputs get it out
    of place: ``torch.func.vmap(..., randomness="same")`` broadcasts unbatched noise, and
    autograd records one node whose gradient is the identity. For large inputs a fresh
    output costs more than a pass (the allocator returns big blocks to the system, so each
    call faults its pages in again: about 6 ms at 4096 x 1024 on our CPU), so we write into
    the noise's own storage, ``-((-g) - logits)``, which is the same number bit for bit (IEEE
    subtraction and negation are exact under a sign change).
    """
    minus_g = log_exponential(
        logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
    )
    if in_place(logits):
        return minus_g.sub_(logits).neg_()
    return torch.sub(logits, minus_g)


IN_PLACE_FROM = 2**16  # entries from which the perturbation reuses the noise's storage


def in_place(logits: torch.Tensor) -> bool:
    """Whether to perturb ``logits`` in the noise's storage: large and not under vmap."""
    return logits.numel() >= IN_PLACE_FROM and not torch._C._functorch.is_batchedtensor(logits)


def perturb(
    logits: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``logits + g`` with fresh Gumbel(0, 1) noise ``g``, in the working dtype.

    Half-precision logits are promoted to float32 (the noise is made there too). A ``-inf``
    logit (a masked category) gives ``-inf``; every other entry is finite. Under validation,
    NaN or ``+inf`` logits raise ``ValueError``. The perturbed values are the subject of
    :doc:`The max of Gumbels </book/max-of-gumbels>`.

    >>> z = perturb(torch.tensor([0.0, -float("inf")]), generator=torch.Generator().manual_seed(0))
    >>> z.isfinite().tolist()
    [True, False]
    """
    check_logits(logits)
    check_generator(generator)
    if should_validate(validate_args) and logits.numel():
        top = logits.amax().item()  # NaN if any logit is NaN, +inf if any is +inf
        if math.isnan(top) or top == math.inf:
            raise_bad_logits(logits, logits.dim() - 1)
    return perturbed(logits, generator)


def negated_perturb(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``-(logits + g)``, bit for bit, for the same generator state (internal).

    Computed as ``log(-log u) - logits``: IEEE rounding is symmetric, so this is exactly the
    negation of :func:`perturb`'s result, and it costs one pass over memory fewer. Out of
    place for small and vmapped inputs, so that ``torch.func.vmap(..., randomness="same")``
    can broadcast the noise; in the noise's own storage for large ones (see
    :func:`perturbed`).
    """
    minus_g = log_exponential(
        logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
    )
    if in_place(logits):
        return minus_g.sub_(logits)
    return torch.sub(minus_g, logits)


def argmin_overwriting(values: torch.Tensor, low: torch.Tensor, dim: int) -> torch.Tensor:
    """``values.argmin(dim, keepdim=True)`` (the first minimum), given ``low``, the minimum.

    ``low`` is ``values.amin(dim, keepdim=True)``; ``values`` is overwritten. On the CPU,
    PyTorch's index-tracking reductions are scalar loops, slower than a comparison, a
    product and an ``amax``, which vectorise: for large tensors we score a hit at index
    ``i`` with ``n - i`` and take the largest score, in place. Internal.
    """
    n = values.shape[dim]
    if values.numel() < 2**15 or n > 2**24 or values.device.type != "cpu":
        return values.argmin(dim, keepdim=True)
    return n - first_hit_score(values.eq_(low), dim).amax(dim=dim, keepdim=True).long()


def first_hit_score(hits: torch.Tensor, dim: int) -> torch.Tensor:
    """``hits * (n - i)`` in place along ``dim``: the first hit gets the largest score (internal).

    ``hits`` is a 0/1 tensor of a floating dtype with ``n <= 2**24`` entries along ``dim``,
    so every score is an exact integer.
    """
    n = hits.shape[dim]
    shape = [1] * hits.dim()
    shape[dim] = n
    countdown = torch.arange(n, 0, -1, dtype=hits.dtype, device=hits.device).view(shape)
    return hits.mul_(countdown)


def gumbel_max(
    logits: torch.Tensor,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Category indices ``argmax_i (logits_i + g_i)``: exact ``Categorical(softmax(logits))``.

    Returns an int64 tensor with ``dim`` removed. Logits may be unnormalised and may hold
    ``-inf`` for masked categories (never drawn). Under validation, NaN or ``+inf`` logits
    and rows masked everywhere raise ``ValueError``. Proved in
    :doc:`The max of Gumbels </book/max-of-gumbels>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> gumbel_max(torch.tensor([0.0, -float("inf"), 1.0]), generator=gen).item() in (0, 2)
    True
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    w = negated_perturb(logits.detach(), generator)  # -(l + g): our argmax is its argmin
    low = w.amin(dim=dim, keepdim=True)
    if should_validate(validate_args) and low.numel():
        check_finite_max(low, logits, dim)
    return argmin_overwriting(w, low, dim).squeeze(dim)


def gumbel_topk(
    logits: torch.Tensor,
    k: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Ordered sample of ``k`` distinct categories without replacement (Plackett-Luce).

    The first index is drawn with probability ``softmax(logits)``, the next from the
    renormalised rest, and so on; equivalently, the top ``k`` of ``logits + g``. Returns
    int64 indices with ``dim`` of size ``k``. ``k`` larger than the size of ``dim`` always
    raises ``ValueError``; under validation so do ``k`` larger than the number of categories
    with finite logit, and NaN, ``+inf`` or all-masked logits. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> sorted(gumbel_topk(torch.zeros(5), 5, generator=gen).tolist())
    [0, 1, 2, 3, 4]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    k = check_count(k, "k", upper=logits.shape[dim], what=f"categories along dim={dim}")
    check_generator(generator)
    values, index = perturbed(logits.detach(), generator).topk(k, dim=dim, sorted=True)
    if should_validate(validate_args) and values.numel() and not all_finite(values):
        if not bool(torch.isfinite(values.narrow(dim, 0, 1)).all()):
            raise_bad_logits(logits, dim)
        if bool(torch.isneginf(values.narrow(dim, k - 1, 1)).any()):
            check_drawable(logits, k, "k", dim)
    return index
