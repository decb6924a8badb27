"""Relaxed m-hot vectors: a differentiable stand-in for a random subset of size m.

The seed note (Wu, 2021) builds an m-hot vector from m Gumbel-softmax samples, redrawing any
sample whose category repeats an earlier one, and keeps their elementwise maximum: that is
:func:`m_hot_by_redraw`, implemented as written. Its kept categories have the Gumbel-top-m
law (Kool et al., 2019): the m largest of ``l + g`` for a *single* draw of noise ``g``. So
:func:`m_hot` reuses one perturbation and relaxes its top-m with m successive softmaxes, each
step damping the categories already (softly) taken (Xie and Ermon, 2019)::

    w^(1) = l + g,   a^(j) = softmax(w^(j) / tau),   w^(j+1) = w^(j) + log(1 - a^(j)),
    m_hot = a^(1) + ... + a^(m),

with ``a`` and ``log(1 - a)`` both computed in log space, exact to rounding at every ``tau``.
No rejection loop, a fixed cost of m softmaxes, entries summing to m, and as
``tau -> 0`` the exact indicator of ``gumbel_topk(l, m)`` for the same noise. An entry can
exceed 1 when perturbed logits are within a few ``tau`` of each other (the first step leaks
weight onto the runner-up, which the second step gives almost a full unit again); this is
the relaxation's, not rounding, and the share of rows affected falls with ``tau``. Use
``hard=True`` for the exact m-hot indicator in the forward pass with the relaxed gradient in
the backward pass. Chapter: :doc:`Sampling without replacement
</book/sampling-without-replacement>`.
"""

from __future__ import annotations

import itertools

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_drawable,
    check_finite_max,
    check_generator,
    check_logits,
    check_tau,
    raise_bad_logits,
    should_validate,
    working_dtype,
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
    if validate:
        check_drawable(logits, m, "m", dim)
    keys = perturb(logits, generator=generator, validate_args=False)  # w^(1) = l + g
    if validate and logits.numel() and not bool(keys.detach().amax(dim=dim).isfinite().all()):
        raise_bad_logits(logits, dim)
    chosen = keys.detach().topk(m, dim=dim).indices if hard else None
    total = relaxed_top_m(keys, m, tau, dim=dim)
    if chosen is not None:
        total = straight_through(torch.zeros_like(total).scatter_(dim, chosen, 1.0), total)
    return total.to(logits.dtype)


def relaxed_top_m(keys: torch.Tensor, m: int, tau: float, *, dim: int = -1) -> torch.Tensor:
    """The successive-softmax relaxation of the top ``m`` of ``keys`` (no checks: internal).

    ``a^(j) = softmax(w^(j) / tau)``, ``w^(j+1) = w^(j) + log(1 - a^(j))``, returning
    ``a^(1) + ... + a^(m)``. Both ``a^(j)`` and ``log(1 - a^(j))`` come from the log-softmax
    scores (:func:`log_softmax_complement`), never from ``1 - a`` rounded in the working dtype:
    at small ``tau`` the top weight rounds to 1 while its damping must stay near
    ``-(gap) / tau``.
    """
    total = torch.zeros_like(keys)
    for step in range(m):
        top = keys.detach().amax(dim=dim, keepdim=True)  # a shift: no overflow at tiny tau
        log_a, log_rest = log_softmax_complement((keys - top) / tau, dim=dim)
        total = total + log_a.exp()
        if step < m - 1:
            keys = keys + log_rest
    return total


def log_softmax_complement(
    scores: torch.Tensor, *, dim: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """``log a`` and ``log(1 - a)`` for ``a = softmax(scores)``, both in log space.

    ``log(1 - a_i) = log sum_{j != i} a_j``. For every entry but the largest, ``a_i <= 1/2``
    and ``log1p(-exp(log a_i))`` is accurate; for the largest we compute
    ``logsumexp_{j != i} scores_j - logsumexp_j scores_j`` directly, which stays finite and
    exact where ``a_i`` rounds to 1. Masked scores (``-inf``) give ``log a = -inf`` and
    ``log(1 - a) = 0`` with zero gradient. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> log_a, log_rest = log_softmax_complement(torch.tensor([0.0, -40.0]))
    >>> round(log_rest[0].item(), 3)
    -40.0
    """
    log_a = torch.log_softmax(scores, dim=dim)
    top = scores.detach().argmax(dim=dim, keepdim=True)
    is_top = torch.zeros_like(scores, dtype=torch.bool).scatter_(dim, top, True)
    others = torch.where(is_top, torch.full_like(scores, -torch.inf), scores)
    log_rest_top = torch.logsumexp(others, dim=dim, keepdim=True) - torch.logsumexp(
        scores, dim=dim, keepdim=True
    )
    small = torch.where(is_top, torch.full_like(log_a, -torch.inf), log_a)
    return log_a, torch.where(is_top, log_rest_top.expand_as(log_a), torch.log1p(-small.exp()))


def m_hot_by_redraw(
    logits: torch.Tensor,
    m: int,
    tau: float,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    max_draws: int = 10_000,
    return_details: bool = False,
    validate_args: bool | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed note's m-hot vector: m Gumbel-softmax draws with distinct categories, max-ed.

    Draw ``C = softmax((logits + g) / tau)`` with fresh noise; a draw whose category
    ``argmax C`` repeats one already kept is discarded and drawn again, until ``m`` draws
    with distinct categories are kept; return ``S_i = max_j C_{j,i}``, the element-wise
    maximum of the kept draws (Wu, 2021). Each row uses at most ``max_draws`` draws
    (``ValueError`` when a row has not finished: its logits are too peaked for the bound).
    With ``return_details=True`` returns ``(S, kept, draws)``: also the boolean mask of the
    kept categories (``dim`` as in ``S``) and the number of draws per row. The rejection loop
    synchronises with the device once per round. Its kept categories have the Gumbel-top-m
    set law; see :doc:`Sampling without replacement </book/sampling-without-replacement>`
    for what its relaxed vector is.

    >>> gen = torch.Generator().manual_seed(0)
    >>> s = m_hot_by_redraw(torch.zeros(6), 2, 0.1, generator=gen)
    >>> int((s > 0.5).sum())
    2
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    m = check_count(m, "m", upper=logits.shape[dim], what=f"categories along dim={dim}")
    max_draws = check_count(max_draws, "max_draws", upper=2**31 - 1, what="allowed")
    if should_validate(validate_args) and logits.numel():
        check_finite_max(logits.amax(dim, keepdim=True), logits, dim)  # NaN, +inf, all -inf
        check_drawable(logits, m, "m", dim)
    last = logits.movedim(dim, -1)
    rows = last.reshape(-1, last.shape[-1])
    chosen = torch.zeros(rows.shape, dtype=torch.bool, device=rows.device)
    kept = torch.zeros(rows.shape[0], dtype=torch.long, device=rows.device)
    draws = torch.zeros_like(kept)
    total = torch.zeros(rows.shape, dtype=working_dtype(rows.dtype), device=rows.device)
    active = torch.arange(rows.shape[0], device=rows.device)  # rows still drawing
    for _ in range(max_draws):
        if active.numel() == 0:  # the rejection loop's host synchronisation, once per round
            break
        keys = perturb(rows[active], generator=generator)
        top = keys.detach().amax(dim=-1, keepdim=True)
        soft = torch.softmax((keys - top) / tau, dim=-1)
        category = keys.detach().argmax(dim=-1, keepdim=True)
        fresh = ~chosen[active].gather(-1, category)  # (rows, 1): not a repeat
        here = total[active]
        total = total.index_copy(0, active, torch.where(fresh, torch.maximum(here, soft), here))
        chosen[active] = chosen[active].scatter(-1, category, True)
        kept[active] += fresh.squeeze(-1).long()
        draws[active] += 1
        active = active[kept[active] < m]
    else:
        if active.numel() > 0:
            raise ValueError(
                f"max_draws={max_draws} Gumbel-softmax draws did not give m={m} distinct "
                "categories in every row: the logits are too peaked for this bound"
            )
    total = total.reshape(last.shape)
    chosen, draws = chosen.reshape(last.shape), draws.reshape(last.shape[:-1])
    out = total.to(logits.dtype).movedim(-1, dim)
    return (out, chosen.movedim(-1, dim), draws) if return_details else out


def expected_redraws(logits: torch.Tensor, m: int, *, validate_args: bool | None = None) -> float:
    """Expected number of discarded draws of :func:`m_hot_by_redraw` for 1-D ``logits``.

    After ``j`` distinct categories with total probability ``q_j`` are kept, the next kept
    draw takes a geometric number of tries with success probability ``1 - q_j``, so
    ``q_j / (1 - q_j)`` discards on average; the kept prefixes follow Plackett-Luce::

        E[redraws] = sum_{ordered (i_1..i_{m-1})} PL(i_1..i_{m-1}) sum_j q_j / (1 - q_j).

    Exact by enumeration (``K! / (K - m + 1)!`` prefixes): for small ``K`` only. With
    validation on, NaN or ``+inf`` logits raise ``ValueError``.

    >>> round(expected_redraws(torch.zeros(4), 2), 4)
    0.3333
    """
    check_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be one-dimensional, got shape {tuple(logits.shape)}")
    m = check_count(m, "m", upper=logits.numel(), what="categories")
    if should_validate(validate_args) and not bool((logits < torch.inf).all()):
        raise ValueError("logits contains NaN or +inf")
    probs = torch.softmax(logits.detach().double(), dim=0).tolist()
    total = 0.0
    for prefix in itertools.permutations(range(len(probs)), m - 1):
        weight, q, discards = 1.0, 0.0, 0.0
        for i in prefix:
            weight *= probs[i] / (1.0 - q)
            q += probs[i]
            discards += q / (1.0 - q)
        total += weight * discards
    return total
