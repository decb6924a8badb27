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
    check_count,
    check_dim,
    check_logits,
    check_tau,
    raise_bad_logits,
    working_dtype,
)
from gumbel_lib.noise import standard_gumbel
from gumbel_lib.relax import straight_through
from gumbel_lib.sampling import perturb


def conditional_gumbels(
    logits: torch.Tensor,
    index: torch.Tensor,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n_samples`` draws of ``logits + g`` conditioned on ``argmax = index`` along ``dim``.

    ``index`` has the shape of ``logits`` with ``dim`` removed. Returns a tensor of shape
    ``(n_samples, *logits.shape)`` in the working dtype; masked (``-inf``) categories stay
    ``-inf``. Use the values, not their gradient: :func:`gumbel_rao` holds the noise
    ``z - logits`` fixed and differentiates ``logits + noise``, as straight-through does.
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    if index.shape != logits.shape[:dim] + logits.shape[dim + 1 :]:
        raise ValueError(f"index must have shape {tuple(logits.shape)} without dim={dim}")
    if torch.isneginf(logits.gather(dim, index.unsqueeze(dim))).any():
        raise ValueError("index points at a category whose logit is -inf: it cannot be the argmax")
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
    is_k = torch.zeros_like(below, dtype=torch.bool).scatter_(d, at_k, True)
    return torch.where(is_k, top.expand_as(below), below)


def gumbel_rao(
    logits: torch.Tensor,
    tau: float,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
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
    z = perturb(logits.detach(), generator=generator)
    top, index = z.max(dim=dim)
    if not torch.isfinite(top).all():
        raise_bad_logits(logits, dim)
    with torch.no_grad():
        draws = conditional_gumbels(logits, index, n_samples, dim=dim, generator=generator)
        finite = torch.isfinite(draws)
        noise = torch.where(finite, draws - torch.where(finite, logits, 0.0).to(draws), 0.0)
        shift = draws.amax(dim=dim + 1, keepdim=True)  # the conditioned maximum
    # z = logits + noise with the noise held fixed: dz/dlogits = I, as in straight-through
    z = logits.to(noise.dtype) + noise
    soft = torch.softmax((z - shift) / tau, dim=dim + 1).mean(0)
    hard = torch.zeros_like(soft).scatter_(dim, index.unsqueeze(dim), 1.0)
    return straight_through(hard, soft).to(logits.dtype)
