"""Gumbels conditioned on their argmax, and the Gumbel-Rao gradient estimator.

Given logits ``l`` and a category ``k``, the perturbed values ``z = l + g`` conditioned on
``argmax_i z_i = k`` are drawn exactly by a top-down construction (Maddison et al., 2014;
Paulus et al., 2021): with fresh standard Gumbels ``h``::

    z_k = logsumexp(l) + h_k                      (the max is Gumbel(logsumexp l), and is
                                                   independent of the argmax)
    z_i = -logaddexp(-z_k, -(l_i + h_i)),  i != k (l_i + h_i truncated below z_k)

The straight-through Gumbel-softmax gradient, averaged over such conditional draws for the
hard sample ``D = one_hot(k)``, is its Rao-Blackwellisation: the same expectation, lower
variance (Paulus et al., 2021, "Gumbel-Rao"). Chapter: :doc:`Lower-variance gradients
</book/lower-variance-gradients>` (the identities are also checked in
``tests/test_conditional.py``).
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_categories,
    check_count,
    check_dim,
    check_finite_max,
    check_generator,
    check_logits,
    check_tau,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.noise import standard_gumbel
from gumbel_lib.relax import straight_through
from gumbel_lib.sampling import negated_centred_perturbed


def conditional_gumbels(
    logits: torch.Tensor,
    index: torch.Tensor,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``n_samples`` draws of ``logits + g`` conditioned on ``argmax = index`` along ``dim``.

    ``index`` has the shape of ``logits`` with ``dim`` removed. Returns a tensor of shape
    ``(n_samples, *logits.shape)`` in the working dtype; masked (``-inf``) categories stay
    ``-inf``. ``index`` must be an integer tensor (``TypeError``); under validation, NaN or
    ``+inf`` logits, an index out of range and an index at a masked category raise
    ``ValueError``. Use the values, not their gradient: :func:`gumbel_rao` holds the noise
    ``z - logits`` fixed and differentiates ``logits + noise``, as straight-through does.
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    check_generator(generator)
    index = check_index(index, logits, dim)
    if should_validate(validate_args) and logits.numel():
        check_condition(logits, index, dim)
    logits_w = logits.to(working_dtype(logits.dtype))
    masked = torch.isneginf(logits_w)
    safe = torch.where(masked, torch.zeros_like(logits_w), logits_w)
    h = standard_gumbel(
        (n_samples, *logits.shape), generator=generator, dtype=logits_w.dtype, device=logits.device
    )
    d = dim + 1  # the sample axis comes first
    at_k = index.unsqueeze(dim).unsqueeze(0).expand(n_samples, *index.unsqueeze(dim).shape)
    top = torch.logsumexp(logits_w, dim=dim, keepdim=True).unsqueeze(0) + h.gather(d, at_k)
    below = -torch.logaddexp(-top, -(safe + h))
    below = torch.where(masked, torch.full_like(below, -torch.inf), below)
    is_k = torch.zeros_like(below, dtype=torch.bool).scatter(d, at_k, True)
    return torch.where(is_k, top.expand_as(below), below)


def check_index(
    index: object, logits: torch.Tensor, dim: int, name: str = "index"
) -> torch.Tensor:
    """An integer tensor of the shape of ``logits`` without ``dim``, as int64 on the logits'
    device (structural, internal)."""
    if not isinstance(index, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(index).__name__}")
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {index.dtype}")
    if index.shape != logits.shape[:dim] + logits.shape[dim + 1 :]:
        raise ValueError(f"{name} must have shape {tuple(logits.shape)} without dim={dim}")
    return index.long().to(logits.device)


def check_condition(
    logits: torch.Tensor, index: torch.Tensor, dim: int, name: str = "index"
) -> None:
    """Under validation: logits without NaN or ``+inf``, and every ``index`` in range and at a
    finite logit (an outcome of probability zero cannot be the argmax); one reduction and one
    read (``gumbel_lib._validation.require``; internal)."""
    n = logits.shape[dim]
    in_range = (index >= 0) & (index < n)
    chosen = logits.detach().gather(dim, index.clamp(0, n - 1).unsqueeze(dim))
    ok = torch.stack(
        [(logits.detach() < torch.inf).all(), in_range.all(), (chosen > -torch.inf).all()]
    )

    def explain() -> None:
        if not bool(ok[0]):
            raise ValueError("logits contains NaN or +inf")
        if not bool(ok[1]):
            raise ValueError(f"{name} is out of range for {n} categories")
        raise ValueError(
            f"{name} points at a category whose logit is -inf: probability 0, never the argmax"
        )

    require(ok, f"logits contains NaN or +inf, or {name} is out of range or masked", explain)


def gumbel_rao(
    logits: torch.Tensor,
    tau: float,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """A hard one-hot sample with the Gumbel-Rao (Rao-Blackwellised straight-through) gradient.

    Forward: exactly ``one_hot(argmax(logits + g))``, the same draw as ``gumbel_max`` with the
    same generator. Backward: the gradient of ``mean_s softmax((logits + h_s) / tau)``, with
    the noise ``h_s = z_s - logits`` of ``n_samples`` conditional draws ``z_s``
    (:func:`conditional_gumbels`) held fixed: ``E[straight-through gradient | sample]``.

    >>> gen = torch.Generator().manual_seed(0)
    >>> y = gumbel_rao(torch.zeros(4, requires_grad=True), 0.5, 8, generator=gen)
    >>> y.sum().item(), sorted(set(y.tolist()))
    (1.0, [0.0, 1.0])
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    low, index = negated_centred_perturbed(logits.detach(), dim, generator).min(dim)  # gumbel_max
    if should_validate(validate_args) and low.numel():
        check_finite_max(low, logits, dim)
    with torch.no_grad():
        draws = conditional_gumbels(
            logits, index, n_samples, dim=dim, generator=generator, validate_args=False
        )
        finite = torch.isfinite(draws)
        noise = torch.where(finite, draws - torch.where(finite, logits, 0.0).to(draws), 0.0)
        shift = draws.amax(dim=dim + 1, keepdim=True)  # the conditioned maximum
    # z = logits + noise with the noise held fixed: dz/dlogits = I, as in straight-through
    z = logits.to(noise.dtype) + noise
    soft = torch.softmax((z - shift) / tau, dim=dim + 1).mean(0)
    hard = torch.zeros_like(soft).scatter(dim, index.unsqueeze(dim), 1.0)
    return straight_through(hard, soft).to(logits.dtype)
