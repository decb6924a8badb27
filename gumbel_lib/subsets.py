"""Relaxed m-hot vectors: a differentiable stand-in for a random subset of size m.

The seed note builds an m-hot vector from m independent Gumbel-softmax samples, keeps the
elementwise maximum, and redraws any sample whose category repeats an earlier one. In the
hard limit that is sequential sampling without replacement, whose law is the Gumbel-top-m
law (Kool et al., 2019): the m largest of ``l + g`` for a *single* draw of noise ``g``. So we
reuse one perturbation and relax its top-m with m successive softmaxes, each step damping
the categories already (softly) taken (Xie and Ermon, 2019)::

    w^(1) = l + g,   a^(j) = softmax(w^(j) / tau),   w^(j+1) = w^(j) + log(1 - a^(j)),
    m_hot = a^(1) + ... + a^(m).

No rejection loop, a fixed cost of m softmaxes, entries summing to m, and as
``tau -> 0`` the exact indicator of ``gumbel_topk(l, m)`` for the same noise. At moderate
temperatures a relaxed entry can exceed 1 (at ``tau = 1`` the top category keeps weight in
the second step): use a small ``tau``, or ``hard=True`` for the exact m-hot indicator in the
forward pass with the relaxed gradient in the backward pass.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_generator,
    check_logits,
    check_tau,
    raise_bad_logits,
    should_validate,
)
from gumbel_lib.relax import straight_through
from gumbel_lib.sampling import perturb


def m_hot(
    logits: torch.Tensor,
    m: int,
    tau: float,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    hard: bool = False,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """A relaxed m-hot sample along ``dim``: the relaxed top-m of ``logits + g``.

    Entries are non-negative and sum to ``m``; with ``hard=True`` the forward value is
    exactly the indicator of the top ``m`` of ``logits + g`` (the ``gumbel_topk`` set for the
    same noise) and the gradient is the relaxed one (straight-through). Categories with
    logit ``-inf`` get exactly 0.
    ``m`` may not exceed the number of categories with a finite logit (``ValueError``; the
    count of finite logits, and NaN or ``+inf`` logits, are checked under validation).

    >>> gen = torch.Generator().manual_seed(0)
    >>> y = m_hot(torch.zeros(5), 2, 0.5, generator=gen)
    >>> round(y.sum().item(), 4)
    2.0
    """
    check_logits(logits)
    tau = check_tau(tau)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    dim = check_dim(dim, logits.dim())
    m = check_count(m, "m", upper=logits.shape[dim], what=f"categories along dim={dim}")
    check_generator(generator)
    validate = should_validate(validate_args)
    if validate and logits.numel():
        drawable = int(torch.isfinite(logits).sum(dim).min())
        if m > drawable:
            raise ValueError(
                f"m={m} is larger than the number of categories that can be drawn "
                f"(at least one row has only {drawable} finite logits)"
            )
    keys = perturb(logits, generator=generator, validate_args=False)  # w^(1) = l + g
    if validate and logits.numel() and not bool(keys.detach().amax(dim=dim).isfinite().all()):
        raise_bad_logits(logits, dim)
    total = torch.zeros_like(keys)
    chosen = keys.detach().topk(m, dim=dim).indices if hard else None
    for step in range(m):
        top = keys.detach().amax(dim=dim, keepdim=True)
        weights = torch.softmax((keys - top) / tau, dim=dim)
        total = total + weights
        if step < m - 1:
            keys = keys + log1m(weights)
    if chosen is not None:
        total = straight_through(torch.zeros_like(total).scatter_(dim, chosen, 1.0), total)
    return total.to(logits.dtype)


def log1m(a: torch.Tensor) -> torch.Tensor:
    """``log(1 - a)``, exactly ``-inf`` at ``a = 1`` and with a finite gradient everywhere else.

    The ``where`` on the input keeps ``log1p`` away from ``-1``, so the backward pass never
    multiplies a zero by an infinity.
    """
    inside = a < 1.0
    safe = torch.where(inside, a, torch.zeros_like(a))
    return torch.where(inside, torch.log1p(-safe), torch.full_like(a, -torch.inf))
