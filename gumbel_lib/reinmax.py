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
    check_categories,
    check_dim,
    check_generator,
    check_logits,
    check_tau,
    raise_bad_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.enumeration import joint_outcomes
from gumbel_lib.sampling import gumbel_max


def softmax_jacobian_path(probs: torch.Tensor, logits: torch.Tensor, dim: int) -> torch.Tensor:
    """A tensor of zeros whose gradient w.r.t. ``logits`` is ``J(probs)^T g``, ``probs`` fixed.

    With ``x = l - stop(l)`` (zero in value, the identity in gradient),
    ``probs * (x - sum(probs * x))`` is linear in ``logits`` with Jacobian
    ``diag(probs) - probs probs^T``: the backward pass of a softmax whose output is
    ``probs``, with no logarithm of ``probs`` (so zero probabilities are safe). Its value is
    exactly 0, so no finite logit can overflow it (``probs * (l - sum(probs * l))`` itself
    is ``0 * inf = NaN`` for logits near the float32 limit); add it to a value, or use it as
    ``t - t.detach()``. Masked (``-inf``) logits enter as 0 and get a zero gradient.

    >>> l = torch.tensor([3e38, -3e38], requires_grad=True)
    >>> p = torch.tensor([0.75, 0.25])
    >>> path = softmax_jacobian_path(p, l, -1)
    >>> path.backward(torch.tensor([1.0, 0.0])); path.tolist(), l.grad.tolist()
    ([0.0, 0.0], [0.1875, -0.1875])
    """
    probs = probs.detach()
    safe = torch.where(torch.isfinite(logits), logits, torch.zeros_like(logits))
    x = safe - safe.detach()
    return probs * (x - (probs * x).sum(dim, keepdim=True))


def tempered_softmax(logits: torch.Tensor, tau: float, dim: int) -> torch.Tensor:
    """``softmax(logits / tau)``, bit for bit where ``logits / tau`` has a finite maximum,
    and finite, never NaN, where it has not: ``logits / tau`` overflows for large logits
    and small ``tau`` (``softmax`` of ``inf`` is NaN), so those rows subtract the maximum
    *before* scaling, by ``1 / tau`` capped at the dtype's largest number. Rows must hold a
    finite maximum logit.

    >>> tempered_softmax(torch.tensor([3e38, 1.0, -3e38]), 1e-3, -1).tolist()
    [1.0, 0.0, 0.0]
    """
    scaled = logits / tau
    ok = torch.isfinite(scaled.amax(dim, keepdim=True))
    plain = torch.softmax(torch.where(ok, scaled, torch.zeros_like(scaled)), dim)
    scale = min(1.0 / tau, torch.finfo(logits.dtype).max)
    shifted = torch.softmax((logits - logits.amax(dim, keepdim=True)) * scale, dim)
    return torch.where(ok, plain, shifted)


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
    recommend ``tau >= 1``; any ``tau > 0`` is accepted, and values and gradients stay
    finite for every finite logit, however small ``tau`` (``tempered_softmax``,
    :func:`softmax_jacobian_path`). Under validation NaN or ``+inf`` logits and rows masked
    everywhere raise ``ValueError``, a check that runs in every mode (one read in eager,
    ``torch._assert_async`` under ``torch.compile``, skipped inside ``torch.func``
    transforms). Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> logits = torch.zeros(3, requires_grad=True)
    >>> d = reinmax(logits, 1.0, generator=gen)
    >>> sorted(d.tolist())  # exactly one-hot
    [0.0, 0.0, 1.0]
    >>> (d * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    >>> logits.grad.isfinite().all().item(), round(logits.grad.sum().item(), 6)
    (True, 0.0)
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    if should_validate(validate_args) and logits.numel():
        require(
            (logits < torch.inf).all(dim) & (logits > -torch.inf).any(dim),
            "logits must be free of NaN and +inf, with a finite logit in every row",
            lambda: raise_bad_logits(logits, dim),
        )
    wide = logits.to(working_dtype(logits.dtype))
    index = gumbel_max(wide.detach(), dim=dim, generator=generator, validate_args=False)
    hard = torch.zeros_like(wide.detach()).scatter(dim, index.unsqueeze(dim), 1.0)
    with torch.no_grad():
        pi_0 = torch.softmax(wide, dim)
        pi_1 = (hard + tempered_softmax(wide, tau, dim)) / 2
    path = 2 * softmax_jacobian_path(pi_1, wide, dim) - softmax_jacobian_path(pi_0, wide, dim) / 2
    return (hard + path).to(logits.dtype)


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
        pi_1 = (outcomes.detach() + tempered_softmax(logits.detach(), tau, -1)) / 2
        backward = 2 * jacobian_times_g(pi_1) - backward / 2
    p_outcome = (outcomes.detach() * pi_0).sum(-1).prod(-1)
    return (p_outcome[:, None, None] * backward).sum(0)
