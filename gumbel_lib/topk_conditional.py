"""Perturbed logits conditioned on their top-k, drawn exactly, top down.

Given logits ``l`` and an ordered top-k ``(i_1, ..., i_k)``, the values ``z = l + g``
conditioned on "the k largest of ``z``, in decreasing order, are ``i_1, ..., i_k``" are
drawn with fresh standard Gumbels ``h`` (Kool et al., 2019, who use them to build gradient
estimators from samples without replacement)::

    z_{i_1} = logsumexp(l) + h_{i_1}                        (a Gumbel(logsumexp l))
    z_{i_j} = T(logsumexp_{r not in {i_1..i_{j-1}}} l_r + h_{i_j}, z_{i_{j-1}})
    z_r     = T(l_r + h_r, z_{i_k}),  r not in the top k,

where ``T(x, b) = -logaddexp(-b, -x)`` turns a Gumbel ``x`` into one truncated above at
``b``. Each line is the theorem *the losers are truncated Gumbels* applied to the categories
not yet placed. Chapter: :doc:`Sampling without replacement </book/sampling-without-replacement>`.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_generator,
    check_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.noise import standard_gumbel
from gumbel_lib.plackett_luce import _check_sample, _check_sample_values, sample_ok


def truncate_above(x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """``-logaddexp(-bound, -x)``: a Gumbel(mu) value ``x`` made one truncated to ``<= bound``.

    If ``x ~ Gumbel(mu)`` then ``P(T <= t) = F(t - mu) / F(bound - mu)`` for ``t <= bound``
    (``F`` the standard Gumbel cdf); ``bound = +inf`` leaves ``x`` unchanged.

    >>> truncate_above(torch.tensor(5.0), torch.tensor(0.0)).item() < 0.0
    True
    """
    return -torch.logaddexp(-bound, -x)


def conditional_topk_gumbels(
    logits: torch.Tensor,
    index: torch.Tensor,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``n_samples`` draws of ``logits + g`` conditioned on its ordered top-k being ``index``.

    ``index`` holds ``k`` distinct indices along ``dim`` (the shape of ``logits``
    otherwise), in decreasing order of the perturbed value. Returns a tensor of shape
    ``(n_samples, *logits.shape)`` in the working dtype whose ``topk(k)`` along ``dim`` is
    ``index``; masked (``-inf``) categories stay ``-inf``. With ``k = 1`` this is the law of
    ``conditional_gumbels``. ``generator`` must be a ``torch.Generator`` or ``None``
    (``TypeError``). Under validation an index out of range or repeated, NaN or ``+inf``
    logits, and an index at a ``-inf`` logit raise ``ValueError``; the checks run in every
    mode (one reduction and one read in eager, ``torch._assert_async`` under
    ``torch.compile``, skipped inside ``torch.func`` transforms). Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> z = conditional_topk_gumbels(torch.zeros(5), torch.tensor([3, 0]), 4, generator=gen)
    >>> z.topk(2).indices.tolist()
    [[3, 0], [3, 0], [3, 0], [3, 0]]
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    index = _check_sample(logits, index, dim, "index")
    n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    check_generator(generator)
    if should_validate(validate_args):
        _require_drawable_index(logits, index, dim)
    last = logits.detach().movedim(dim, -1).to(working_dtype(logits.dtype))
    top = index.movedim(dim, -1)
    h = standard_gumbel(
        (n_samples, *last.shape), generator=generator, dtype=last.dtype, device=last.device
    )
    at = top.unsqueeze(0).expand(n_samples, *top.shape)
    bound = torch.full((*h.shape[:-1], 1), torch.inf, dtype=h.dtype, device=h.device)
    rest = last.unsqueeze(0).expand_as(h)
    values = []
    for j in range(top.shape[-1]):
        here = at[..., j : j + 1]
        level = torch.logsumexp(rest, dim=-1, keepdim=True)  # logsumexp over the unplaced
        bound = truncate_above(level + h.gather(-1, here), bound)
        values.append(bound)
        rest = rest.scatter(-1, here, -torch.inf)
    masked = torch.isneginf(last).unsqueeze(0).expand_as(h)
    safe = torch.where(masked, torch.zeros_like(h), last + h)
    losers = torch.where(masked, torch.full_like(h, -torch.inf), truncate_above(safe, bound))
    z = losers.scatter(-1, at, torch.cat(values, dim=-1))
    return z.movedim(-1, dim + 1)


def _require_drawable_index(logits: torch.Tensor, index: torch.Tensor, dim: int) -> None:
    """The value checks of :func:`conditional_topk_gumbels`, as one ``require``."""
    size = logits.shape[dim]
    at = logits.gather(dim, index.clamp(0, size - 1))  # clamped: the range is checked apart
    ok = torch.cat(
        [
            sample_ok(index, size, dim).reshape(-1),
            (logits < torch.inf).reshape(-1),
            (at > -torch.inf).reshape(-1),
        ]
    )

    def explain() -> None:
        _check_sample_values(index, size, dim, "index")
        if torch.isnan(logits).any() or torch.isposinf(logits).any():
            raise ValueError("logits contains NaN or +inf")
        raise ValueError("index points at a category whose logit is -inf: it cannot be drawn")

    require(ok, "index must be distinct, in range and drawable; logits free of NaN, +inf", explain)
