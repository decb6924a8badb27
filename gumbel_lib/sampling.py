"""Exact discrete sampling by perturbing logits with Gumbel noise.

* Gumbel-max: ``argmax_i (l_i + g_i) ~ Categorical(softmax(l))`` (chapter
  :doc:`The max of Gumbels </book/max-of-gumbels>`). The logits need no normalisation:
  adding a constant moves no argmax.
* Gumbel-top-k: the indices of the ``k`` largest ``l_i + g_i``, in decreasing order, are an
  ordered sample without replacement, i.e. a Plackett-Luce draw (chapter
  :doc:`Sampling without replacement </book/sampling-without-replacement>`).

The exact samplers compare ``(l - max l) + g`` in float64, with the noise of
:mod:`gumbel_lib.noise` (53-bit uniforms), whatever the dtype of the logits: the law of the
sample is within a total variation of ``3 n 2**-53 + 2**-44`` of ``softmax(l)`` for ``n``
drawable categories, at any scale of the logits (below ``1e-10`` at ``n = 2**18``), where
float32 noise and float32 sums lose the tail of a large vocabulary and break near-ties by
index (:doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`, which proves the
bound). Categories with logit ``-inf`` are never drawn.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_categories,
    check_count,
    check_dim,
    check_drawable,
    check_finite_max,
    check_generator,
    check_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.noise import minus_gumbel


def negated_perturbed(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``-(logits + g)`` in float64, in the noise's storage (internal, no checks).

    ``(-g) - logits`` rounds exactly as ``-(logits + g)`` does (IEEE rounding is symmetric).
    Out of place when ``logits`` is batched by ``vmap`` (its ``randomness="same"`` shares
    unbatched noise).
    """
    minus_g = minus_gumbel(logits.shape, generator=generator, device=logits.device)
    return minus_perturbed(minus_g, logits)


def minus_perturbed(minus_g: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``(-g) - values`` in ``minus_g``'s storage when it can hold the result (internal):
    out of place when ``values`` is batched by ``vmap`` (``randomness="same"`` shares
    unbatched noise) or ``minus_g`` must broadcast."""
    if minus_g.shape != values.shape or torch._C._functorch.is_batchedtensor(values):
        return torch.sub(minus_g, values)
    return minus_g.sub_(values)


def negated_centred_perturbed(
    logits: torch.Tensor, dim: int, generator: torch.Generator | None
) -> torch.Tensor:
    """``-((logits - m) + g)`` in float64, ``m`` the row maxima along ``dim``: its argmin along
    ``dim`` is the Gumbel-max sample (internal, no checks).

    Subtracting ``m`` moves no argmax, and it keeps every category that can win near zero,
    where float64 spacing is below ``2**-46``: ``logits - m`` is exact for each of them
    (float32, float16 and bfloat16 values differ exactly in float64 when their exponents are
    close, and a category more than 44 nats below the top cannot win), so rounding can only
    reorder two values within ``2**-46`` of each other, whatever the scale of the logits.
    A row masked everywhere (``m = -inf``) or holding NaN or ``+inf`` becomes NaN.
    """
    return negated_perturbed(centred(logits, dim), generator)


def centred(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """``logits - max(logits)`` along ``dim``, in a fresh float64 tensor (internal)."""
    wide = logits.to(torch.float64, copy=True)
    return wide.sub_(wide.amax(dim, keepdim=True))


def perturb(
    logits: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``logits + g`` with fresh Gumbel(0, 1) noise ``g``, in the working dtype.

    The sum is formed in float64 and rounded once to the working dtype of ``logits``
    (float32 for half precision). A ``-inf`` logit (a masked category) gives ``-inf``; every
    other entry is finite. Under validation, NaN or ``+inf`` logits raise ``ValueError``.
    The perturbed values are the subject of :doc:`The max of Gumbels </book/max-of-gumbels>`.

    >>> z = perturb(torch.tensor([0.0, -float("inf")]), generator=torch.Generator().manual_seed(0))
    >>> z.isfinite().tolist()
    [True, False]
    """
    check_logits(logits)
    check_generator(generator)
    if should_validate(validate_args) and logits.numel():
        require(logits.detach().amax() < torch.inf, "logits contains NaN or +inf")
    w = negated_perturbed(logits.detach(), generator)
    return w.neg_().to(working_dtype(logits.dtype))


def gumbel_max(
    logits: torch.Tensor,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Category indices ``argmax_i (logits_i + g_i)``: ``Categorical(softmax(logits))`` samples.

    Returns an int64 tensor with ``dim`` removed. The comparison is made in float64 on
    ``(logits - max logits) + g``, so the law is within the total variation bound of the
    module docstring of ``softmax(logits)``, at any vocabulary size, for every dtype and
    scale of ``logits`` (:doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`).
    Logits may be unnormalised and may hold ``-inf`` for masked categories (never drawn). Under
    validation, NaN or ``+inf`` logits and rows masked everywhere raise ``ValueError``.
    Proved in :doc:`The max of Gumbels </book/max-of-gumbels>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> gumbel_max(torch.tensor([0.0, -float("inf"), 1.0]), generator=gen).item() in (0, 2)
    True
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    low, index = negated_centred_perturbed(logits.detach(), dim, generator).min(dim)
    if should_validate(validate_args) and low.numel():
        check_finite_max(low, logits, dim)
    return index


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
    renormalised rest, and so on; equivalently, the top ``k`` of ``logits + g`` (float64,
    as in :func:`gumbel_max`). Returns int64 indices with ``dim`` of size ``k``. ``k``
    larger than the size of ``dim`` always raises ``ValueError``; under validation so do
    ``k`` larger than the number of categories with finite logit, and NaN, ``+inf`` or
    all-masked logits. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> sorted(gumbel_topk(torch.zeros(5), 5, generator=gen).tolist())
    [0, 1, 2, 3, 4]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    k = check_count(k, "k", upper=logits.shape[dim], what=f"categories along dim={dim}")
    check_generator(generator)
    values, index = (
        negated_centred_perturbed(logits.detach(), dim, generator).neg_().topk(k, dim=dim)
    )
    if should_validate(validate_args) and values.numel():
        # NaN sorts first and -inf last: the first and the k-th value are finite unless a
        # logit is NaN or +inf, or a row has fewer than k finite logits
        ends = values.narrow(dim, 0, 1) + values.narrow(dim, k - 1, 1)

        def explain() -> None:
            check_finite_max(values.narrow(dim, 0, 1), logits, dim)
            check_drawable(logits, k, "k", dim)

        require(
            torch.isfinite(ends), "logits has NaN, +inf, or fewer than k finite entries", explain
        )
    return index
