"""The Gumbel coupling: two categorical laws sampled with the same Gumbel noise.

With one vector ``g`` of standard Gumbels, ``X = argmax_i (log p_i + g_i)`` has law ``p``
and ``Y = argmax_i (log q_i + g_i)`` has law ``q`` (the Gumbel-max theorem), and the two
agree with probability

    ``P(X = Y) = sum_i 1 / sum_j max(p_j / p_i, q_j / q_i)``

(over the ``i`` with ``p_i q_i > 0``), which lies between ``(1 - TV) / (1 + TV)`` and the
``1 - TV`` of a maximal coupling, ``TV`` the total variation between ``p`` and ``q``. The
whole joint law is

    ``P(X = i, Y = j) = p_i q_j (Phi(p_i / q_i) - Phi(p_j / q_j))^+``,  ``i != j``,
    ``P(X = i, Y = i) = p_i / (1 + S(p_i / q_i))``,

with ``S(s) = sum_m (q_m s - p_m)^+`` and ``Phi(s) = integral_0^s (1 + S)^-2``: piecewise
rational, exact in closed form. Derived in :doc:`Shared noise </book/shared-noise>`, which
also uses it for speculative decoding and counterfactuals.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_categories,
    check_dim,
    check_logits,
    check_noise_source,
    raise_bad_logits,
    require,
    should_validate,
)
from gumbel_lib.noise import keyed_minus_gumbel, minus_gumbel
from gumbel_lib.sampling import centred

__all__ = ["coupled_gumbel_max", "coupling_agreement", "coupling_joint"]


def _check_pair(
    logits_p: object, logits_q: object, dim: int, names: tuple[str, str]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two floating tensors of one shape with at least one category along ``dim``."""
    p = check_logits(logits_p, names[0])
    q = check_logits(logits_q, names[1])
    if p.shape != q.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got "
            f"{tuple(p.shape)} and {tuple(q.shape)}"
        )
    dim = check_dim(dim, p.dim())
    check_categories(p.shape, dim, names[0])
    return p, q, dim


def _check_finite(reduced: torch.Tensor, logits: torch.Tensor, dim: int, name: str) -> None:
    """Under validation: ``reduced`` (a maximum along ``dim``, or its negation) is finite,
    which fails for NaN or ``+inf`` logits and rows masked everywhere; the error names
    ``name``."""
    require(
        torch.isfinite(reduced),
        f"{name} contains NaN or +inf, or is -inf for every category of a row",
        lambda: raise_bad_logits(logits, dim, name),
    )


def _check_values(logits: torch.Tensor, dim: int, name: str) -> None:
    """Under validation: no NaN or ``+inf``, and a finite logit in every row."""
    if logits.numel():
        _check_finite(logits.detach().amax(dim), logits, dim, name)


def _noise(
    logits: torch.Tensor,
    dim: int,
    generator: torch.Generator | None,
    key: int | torch.Tensor | None,
    position: int | torch.Tensor | None,
) -> torch.Tensor:
    """``-g`` in float64 with the shape of ``logits``: from ``generator`` or keyed."""
    if key is None:
        return minus_gumbel(logits.shape, generator=generator, device=logits.device)
    assert position is not None  # check_noise_source requires it with a key
    index = torch.arange(logits.shape[dim], device=logits.device)
    rows = keyed_minus_gumbel(key, position, index, device=logits.device)
    if rows.dim() == 1:  # one row for every batch entry
        shape = [1] * logits.dim()
        shape[dim] = rows.shape[0]
        return rows.view(shape).expand(logits.shape)
    return rows.movedim(-1, dim).expand(logits.shape)


def coupled_gumbel_max(
    logits_p: torch.Tensor,
    logits_q: torch.Tensor,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    key: int | torch.Tensor | None = None,
    position: int | torch.Tensor | None = None,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gumbel-max draws with one noise: ``(argmax(logits_p + g), argmax(logits_q + g))``.

    Each index has its own law exactly (``softmax(logits_p)``, ``softmax(logits_q)``, as
    :func:`gumbel_lib.sampling.gumbel_max` draws it: centred logits plus float64 noise), and
    they agree with the probability :func:`coupling_agreement` computes. The noise comes
    from ``generator`` or, with ``key`` and ``position`` (ints, or tensors of the batch
    shape), from :func:`gumbel_lib.keyed.keyed_uniform` at ``(key, position, category)``,
    the noise :func:`gumbel_lib.tokens.sample_tokens` uses: two parties that share the key
    need not communicate. Returns two int64 tensors with ``dim`` removed. Under validation,
    NaN or ``+inf`` logits and rows masked everywhere raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> x, y = coupled_gumbel_max(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]), key=3,
    ...                           position=0)
    >>> bool(x == y)
    True
    """
    p, q, dim = _check_pair(logits_p, logits_q, dim, ("logits_p", "logits_q"))
    check_noise_source(generator, key, position)
    minus_g = _noise(p, dim, generator, key, position)
    low_p, x = torch.sub(minus_g, centred(p.detach(), dim)).min(dim)
    low_q, y = torch.sub(minus_g, centred(q.detach(), dim)).min(dim)
    if should_validate(validate_args) and low_p.numel():
        _check_finite(low_p, p, dim, "logits_p")
        _check_finite(low_q, q, dim, "logits_q")
    return x, y


def _race_terms(
    logits_p: torch.Tensor, logits_q: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``p``, ``q``, ``1 + S(rho)`` and ``Phi(rho)`` at every category, and the mask of the
    categories where both laws are positive (internal; the category axis is last).

    Sorting by ``rho = p / q`` (``+inf`` where only ``q`` vanishes) makes ``S`` linear
    between consecutive breakpoints: ``1 + S(s) = 1 - A + B s`` with ``A``, ``B`` the ``p``-
    and ``q``-mass of the categories at or below ``s``, so that ``Phi`` grows by
    ``(b - a) / ((1 + S(a)) (1 + S(b)))`` on each piece ``[a, b]``.
    """
    lp = torch.log_softmax(logits_p.to(torch.float64).movedim(dim, -1), -1)
    lq = torch.log_softmax(logits_q.to(torch.float64).movedim(dim, -1), -1)
    p, q = lp.exp(), lq.exp()
    both = (p > 0) & (q > 0)
    log_rho = torch.nan_to_num(lp - lq, nan=0.0)  # NaN only where p = q = 0: mass 0 there
    order = log_rho.argsort(dim=-1, stable=True)
    rho = log_rho.gather(-1, order).exp()
    ps, qs = p.gather(-1, order), q.gather(-1, order)
    finite = torch.isfinite(rho)
    # mass at or below each breakpoint; 1 + S at it (its own term vanishes there)
    one_plus_s = (1.0 - ps.cumsum(-1)) + torch.where(finite, qs.cumsum(-1) * rho, 0.0)
    one_plus_s = one_plus_s.clamp_min(torch.finfo(torch.float64).tiny)
    previous_rho = torch.cat([torch.zeros_like(rho[..., :1]), rho[..., :-1]], -1)
    previous_s = torch.cat([torch.ones_like(rho[..., :1]), one_plus_s[..., :-1]], -1)
    width = torch.where(finite, rho - previous_rho, 0.0)
    piece = width / (previous_s * one_plus_s)
    # past the last finite breakpoint all of q is below s: 1 + S(s) = c + s with c = 1 - A
    tail = torch.where(finite, 0.0, 1.0 / previous_s)
    first_infinite = ~finite & torch.cat([torch.ones_like(finite[..., :1]), finite[..., :-1]], -1)
    phi_sorted = (piece + torch.where(first_infinite, tail, 0.0)).cumsum(-1)
    phi = torch.empty_like(phi_sorted).scatter_(-1, order, phi_sorted)
    s_at = torch.empty_like(one_plus_s).scatter_(-1, order, one_plus_s)
    return p, q, s_at, phi, both


def coupling_agreement(
    logits_p: torch.Tensor,
    logits_q: torch.Tensor,
    *,
    dim: int = -1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``P(X = Y)`` for the Gumbel coupling of ``softmax(logits_p)`` and ``softmax(logits_q)``.

    ``sum_i 1 / sum_j max(p_j / p_i, q_j / q_i)`` over the categories where both laws are
    positive, computed in ``O(K log K)`` per row as ``sum_i p_i / (1 + S(p_i / q_i))``
    (module docstring): a float64 tensor with ``dim`` removed, between
    ``(1 - TV) / (1 + TV)`` and ``1 - TV``. Under validation, NaN or ``+inf`` logits and
    rows masked everywhere raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> round(coupling_agreement(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0])).item(), 6)
    0.768941
    """
    p, q, dim = _check_pair(logits_p, logits_q, dim, ("logits_p", "logits_q"))
    if should_validate(validate_args):
        _check_values(p, dim, "logits_p")
        _check_values(q, dim, "logits_q")
    probs_p, _, s_at, _, both = _race_terms(p.detach(), q.detach(), dim)
    return torch.where(both, probs_p / s_at, 0.0).sum(-1)


def coupling_joint(
    logits_p: torch.Tensor,
    logits_q: torch.Tensor,
    *,
    dim: int = -1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """The joint law ``P(X = i, Y = j)`` of the Gumbel coupling, exactly.

    Closed form of the module docstring, in float64: a tensor of shape
    ``(*batch, K, K)`` (``dim`` moved to the last two axes, rows ``i`` for ``X``, columns
    ``j`` for ``Y``) whose rows sum to ``softmax(logits_p)`` and columns to
    ``softmax(logits_q)``. ``P(X = i, Y = j) = 0`` whenever ``p_j / q_j >= p_i / q_i``,
    ``j != i``. Memory ``O(K^2)`` per row: for small ``K``. Under validation, NaN or
    ``+inf`` logits and rows masked everywhere raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> joint = coupling_joint(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0]))
    >>> [round(v, 6) for v in joint.flatten().tolist()]
    [0.268941, 0.231059, 0.0, 0.5]
    """
    p, q, dim = _check_pair(logits_p, logits_q, dim, ("logits_p", "logits_q"))
    if should_validate(validate_args):
        _check_values(p, dim, "logits_p")
        _check_values(q, dim, "logits_q")
    probs_p, probs_q, s_at, phi, both = _race_terms(p.detach(), q.detach(), dim)
    gap = (phi.unsqueeze(-1) - phi.unsqueeze(-2)).clamp_min(0.0)
    joint = probs_p.unsqueeze(-1) * probs_q.unsqueeze(-2) * gap
    diagonal = torch.where(both, probs_p / s_at, 0.0)
    return joint.diagonal_scatter(diagonal, dim1=-2, dim2=-1)
