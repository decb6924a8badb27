"""The Gumbel-softmax (Concrete) relaxation and its straight-through variant.

A relaxed sample is ``y = softmax((l + g) / tau)`` with ``g`` i.i.d. Gumbel(0, 1) noise
(Jang et al., 2017; Maddison et al., 2017). Its Jacobian is
``dy_i / dl_j = y_i (delta_ij - y_j) / tau``. Chapters: *The softmax relaxation* and
*The gradient*; the hard variant in *Straight-through and hard samples*.

Numerics: we subtract ``max(l + g)`` before dividing by ``tau``, so the scaled values are
``<= 0`` with one exact zero and never overflow, whatever ``tau`` and however large the
finite logits (at ``tau = 1`` the softmax's own subtraction of the maximum does this, with
the same bits). A ``-inf`` logit gives ``y_i = 0`` exactly and a zero gradient. Half
precision is computed in float32 and cast at the end.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import check_dim, check_logits, check_tau, raise_bad_logits
from gumbel_lib.sampling import negated_perturb


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass.

    Computed as ``hard + (soft - soft.detach())``: the bracket is exactly zero in floating
    point, so the forward value equals ``hard`` bit for bit by construction.
    """
    return hard + (soft - soft.detach())


def _one_hot_of_min(w: torch.Tensor, low: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot (in ``w``'s dtype) of the first minimum of ``w`` along ``dim``.

    ``low`` is that minimum. The comparison ``w == low`` already is the one-hot vector
    unless a row ties; only then do we pay for ``argmin`` (the first of the tied entries).
    """
    hot = torch.eq(w, low, out=torch.empty_like(w))
    if (hot.sum(dim=dim) == 1).all():
        return hot
    return hot.zero_().scatter_(dim, w.argmin(dim, keepdim=True), 1.0)


def _scaled_perturbed(
    logits: torch.Tensor,
    tau: float,
    dim: int,
    generator: torch.Generator | None,
    *,
    want_one_hot: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Values whose softmax along ``dim`` is ``softmax((l + g) / tau)``; the argmax one-hot.

    For ``tau != 1`` the values are ``((l + g) - max(l + g)) / tau``. We work on
    ``w = -(l + g)`` (one pass cheaper, see ``negated_perturb``) and divide by ``-tau``,
    which restores the sign in the same pass. For ``tau == 1`` there is nothing to divide
    and we return ``l + g`` itself: ``softmax`` and ``log_softmax`` subtract the row
    maximum on their own, and since ``max((l + g) - m) == 0`` exactly, our subtraction would
    change no bit of their result. Either way no value that reaches them overflows. The
    one-hot vector of ``argmax(l + g)`` (first maximum) comes only when asked for.
    """
    w = negated_perturb(logits, generator)  # -(l + g), in the working dtype
    low = w.detach().amin(dim=dim, keepdim=True)  # -max(l + g)
    if not torch.isfinite(low).all():
        raise_bad_logits(logits, dim)
    hot = _one_hot_of_min(w.detach(), low, dim) if want_one_hot else None
    if tau == 1.0:
        return w.neg_(), hot  # w is a fresh tensor: in-place is safe and saves allocations
    return w.sub_(low).div_(-tau), hot


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    hard: bool = False,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A relaxed one-hot sample ``softmax((logits + g) / tau)`` along ``dim``.

    Drop-in for ``torch.nn.functional.gumbel_softmax(logits, tau, hard, dim=dim)`` with a
    ``generator`` for reproducibility. With ``hard=True`` the forward value is exactly the
    one-hot vector of ``argmax(logits + g)`` (the same noise) and the gradient is that of
    the soft sample (straight-through). ``tau`` must be finite and positive.

    >>> gen = torch.Generator().manual_seed(0)
    >>> y = gumbel_softmax(torch.zeros(2, 4), tau=0.5, generator=gen)
    >>> torch.allclose(y.sum(-1), torch.ones(2))
    True
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    z, one_hot = _scaled_perturbed(logits, tau, dim, generator, want_one_hot=hard)
    soft = torch.softmax(z, dim=dim)
    if one_hot is not None:
        soft = straight_through(one_hot, soft)
    return soft.to(logits.dtype)


def relaxed_log_sample(
    logits: torch.Tensor,
    tau: float = 1.0,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``log y`` for a relaxed sample ``y``: ``log_softmax((logits + g) / tau)``.

    At low temperature ``y`` underflows to exact zeros while ``log y`` stays finite;
    pass the result to ``concrete_log_prob(..., log_input=True)``. Chapter: *The softmax
    relaxation*.
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    z, _ = _scaled_perturbed(logits, tau, dim, generator)
    return torch.log_softmax(z, dim=dim).to(logits.dtype)
