"""ReinMax: a straight-through gradient with second-order accuracy (Liu et al., 2023).

With ``pi_0 = softmax(l)``, an exact sample ``D ~ Categorical(pi_0)`` (one-hot) and
``pi_1 = (D + softmax(l / tau)) / 2``, the ReinMax sample has the value ``D`` and, for an
upstream gradient ``g = df/dD``, the backward pass

    grad_l = 2 J(pi_1) g - J(pi_0) g / 2,        J(pi) = diag(pi) - pi pi^T,

where ``J(pi)`` is the Jacobian of a softmax whose output is ``pi``. Straight-through
(without noise) is ``J(pi_0) g``, a forward-Euler step; ReinMax is Heun's method, and at
``tau = 1`` its expectation is the exact gradient of ``E[f(D)]`` for every quadratic ``f``.
Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gumbel_lib._validation import (
    check_dim,
    check_logits,
    check_tau,
    raise_bad_logits,
    should_validate,
    working_dtype,
)
from gumbel_lib.enumeration import joint_outcomes
from gumbel_lib.sampling import gumbel_max


def softmax_jacobian_path(probs: torch.Tensor, logits: torch.Tensor, dim: int) -> torch.Tensor:
    """A tensor whose gradient w.r.t. ``logits`` is ``J(probs)^T g``, with ``probs`` fixed.

    ``probs * (logits - sum(probs * logits))`` is linear in ``logits`` with Jacobian
    ``diag(probs) - probs probs^T``: the backward pass of a softmax whose output is
    ``probs``, with no logarithm of ``probs`` (so zero probabilities are safe). Use it as
    ``t - t.detach()``. Masked (``-inf``) logits enter as 0 and get a zero gradient.
    """
    probs = probs.detach()
    safe = torch.where(torch.isfinite(logits), logits, torch.zeros_like(logits))
    return probs * (safe - (probs * safe).sum(dim, keepdim=True))


def reinmax(
    logits: torch.Tensor,
    tau: float = 1.0,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """A one-hot sample ``D ~ Categorical(softmax(logits))`` with the ReinMax gradient.

    Forward: exactly ``one_hot(gumbel_max(logits))`` (the same draw as ``gumbel_max`` with
    the same generator). Backward: ``2 J(pi_1) g - J(pi_0) g / 2`` with
    ``pi_0 = softmax(logits)`` and ``pi_1 = (D + softmax(logits / tau)) / 2``. The authors
    recommend ``tau >= 1``; any ``tau > 0`` is accepted. Chapter:
    :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> logits = torch.zeros(3, requires_grad=True)
    >>> d = reinmax(logits, 1.0, generator=gen)
    >>> d.tolist(), round(d.sum().item(), 6)
    ([0.0, 1.0, 0.0], 1.0)
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    if should_validate(validate_args) and not torch.isfinite(logits.logsumexp(dim)).all():
        raise_bad_logits(logits, dim)
    wide = logits.to(working_dtype(logits.dtype))
    index = gumbel_max(wide.detach(), dim=dim, generator=generator)
    hard = torch.zeros_like(wide).scatter_(dim, index.unsqueeze(dim), 1.0).detach()
    with torch.no_grad():
        pi_0 = torch.softmax(wide, dim)
        pi_1 = (hard + torch.softmax(wide / tau, dim)) / 2
    path = 2 * softmax_jacobian_path(pi_1, wide, dim) - softmax_jacobian_path(pi_0, wide, dim) / 2
    return (hard + (path - path.detach())).to(logits.dtype)


def expected_backward(
    logits: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor],
    tau: float = 1.0,
    *,
    rule: str = "reinmax",
) -> torch.Tensor:
    """``E[backward]`` of ReinMax (or of noise-free straight-through), exactly, by enumeration.

    Both backward passes are functions of the drawn ``D`` alone: ``rule="reinmax"`` is
    ``2 J(pi_1) g - J(pi_0) g / 2`` and ``rule="straight-through"`` is ``J(pi_0) g``, with
    ``g = df/dD`` at the outcome. ``logits`` has shape ``(V, K)``; ``f`` maps ``(N, V, K)``
    to ``(N,)`` and must be differentiable in ``D``. Averaging over the ``K**V`` joint
    outcomes gives the exact mean, to compare with :func:`~gumbel_lib.enumeration.exact_gradient`.

    >>> logits = torch.tensor([[0.2, -0.4, 1.0]], dtype=torch.float64)
    >>> f = lambda d: (d @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)).sum(-1) ** 2
    >>> from gumbel_lib import exact_gradient
    >>> torch.allclose(expected_backward(logits, f), exact_gradient(logits, f)[1])
    True
    """
    if rule not in ("reinmax", "straight-through"):
        raise ValueError(f"rule must be 'reinmax' or 'straight-through', got {rule!r}")
    tau = check_tau(tau)
    outcomes = joint_outcomes(*logits.shape, dtype=logits.dtype).requires_grad_(True)
    (g,) = torch.autograd.grad(f(outcomes).sum(), outcomes)  # df/dD at every outcome
    pi_0 = torch.softmax(logits.detach(), -1)

    def jacobian_times_g(p: torch.Tensor) -> torch.Tensor:
        return p * (g - (p * g).sum(-1, keepdim=True))

    backward = jacobian_times_g(pi_0)
    if rule == "reinmax":
        pi_1 = (outcomes.detach() + torch.softmax(logits.detach() / tau, -1)) / 2
        backward = 2 * jacobian_times_g(pi_1) - backward / 2
    p_outcome = (outcomes.detach() * pi_0).sum(-1).prod(-1)
    return (p_outcome[:, None, None] * backward).sum(0)
