"""The Gumbel-softmax (Concrete) relaxation and its straight-through variant.

A relaxed sample is ``y = softmax((l + g) / tau)`` with ``g`` i.i.d. Gumbel(0, 1) noise
(Jang et al., 2017; Maddison et al., 2017). Its Jacobian is
``dy_i / dl_j = y_i (delta_ij - y_j) / tau``. Chapters: *The softmax relaxation* and
*The gradient*; the hard variant in *Straight-through and hard samples*.

Numerics: we subtract ``max(l + g)`` before dividing by ``tau``, so the scaled values are
``<= 0`` with one exact zero and never overflow, whatever ``tau`` and however large the
finite logits. A ``-inf`` logit gives ``y_i = 0`` exactly and a zero gradient. Half
precision is computed in float32 and cast at the end.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import check_dim, check_logits, check_tau, raise_bad_logits
from gumbel_lib.sampling import perturb


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass.

    Computed as ``hard + (soft - soft.detach())``: the bracket is exactly zero in floating
    point, so the forward value equals ``hard`` bit for bit by construction.
    """
    return hard + (soft - soft.detach())


def _scaled_perturbed(
    logits: torch.Tensor,
    tau: float,
    dim: int,
    generator: torch.Generator | None,
    *,
    want_index: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``((l + g) - max(l + g)) / tau`` in the working dtype, and the argmax if asked for.

    The index costs a second reduction (``max`` with indices is about ten times slower than
    ``amax`` on the CPU), so only the hard sample asks for it.
    """
    z = perturb(logits, generator=generator)
    if want_index:
        top, index = z.detach().max(dim=dim, keepdim=True)
    else:
        top, index = z.detach().amax(dim=dim, keepdim=True), None
    if not torch.isfinite(top).all():
        raise_bad_logits(logits, dim)
    z.sub_(top)  # z is a fresh tensor: in-place is safe and saves two allocations
    if tau != 1.0:
        z.div_(tau)
    return z, index


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
    z, index = _scaled_perturbed(logits, tau, dim, generator, want_index=hard)
    soft = torch.softmax(z, dim=dim)
    if index is not None:
        one_hot = torch.zeros_like(soft).scatter_(dim, index, 1.0)
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
