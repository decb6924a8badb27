"""Relaxed m-hot vectors: a differentiable stand-in for a random subset of size m.

The seed note (Wu, 2021) builds an m-hot vector from m Gumbel-softmax samples, redrawing any
sample whose category (its argmax) repeats an earlier one, and keeps their elementwise
maximum: that is :func:`m_hot_by_redraw`. Its kept categories have the Gumbel-top-m law: the
m largest of ``l + g`` for a *single* draw of noise ``g``. So :func:`m_hot` reuses one
perturbation and relaxes its top-m with m successive softmaxes, each step damping the
categories already (softly) taken (Xie and Ermon, 2019)::

    w^(1) = l + g,   a^(j) = softmax(w^(j) / tau),   w^(j+1) = w^(j) + log(1 - a^(j)),
    m_hot = a^(1) + ... + a^(m),

with ``a`` and ``log(1 - a)`` both computed in log space, exact to rounding at every ``tau``.
No rejection loop, a fixed cost of m softmaxes, entries summing to m, and as
``tau -> 0`` the exact indicator of ``gumbel_topk(l, m)`` for the same noise. Entries above
1 are the relaxation's own (the first step leaks weight onto the runner-up, which the
second step gives almost a full unit again), not rounding. Use ``hard=True`` for the exact
m-hot indicator in the forward pass with the relaxed gradient in the backward pass.
Chapter: :doc:`Sampling without replacement </book/sampling-without-replacement>`.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_drawable,
    check_generator,
    check_logits,
    check_tau,
    raise_bad_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.noise import minus_gumbel, standard_gumbel
from gumbel_lib.relax import straight_through
from gumbel_lib.sampling import gumbel_topk
from gumbel_lib.topk_conditional import truncate_above

MAX_ENUMERATION_STEPS = 120_000
"""Largest enumeration :func:`expected_redraws` runs (one step per set and next category)."""


def _require_drawable(logits: torch.Tensor, m: int, dim: int) -> None:
    """Under validation: finite row maxima (no NaN, no ``+inf``, not all masked) and at least
    ``m`` finite logits per row; one read in eager mode, none under compile or ``vmap``."""
    values = logits.detach()
    ok = torch.isfinite(values.amax(dim)) & (torch.isfinite(values).sum(dim) >= m)

    def explain() -> None:  # the failure path: say which check failed
        if not bool(torch.isfinite(values.amax(dim)).all()):
            raise_bad_logits(logits, dim)
        check_drawable(logits, m, "m", dim)

    require(ok, f"logits must be finite or -inf with at least m={m} finite entries", explain)


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
    logit ``-inf`` get exactly 0. ``m`` larger than the size of ``dim`` always raises
    ``ValueError``; under validation so do ``m`` larger than the number of finite logits of
    a row, and NaN, ``+inf`` or all-masked logits.

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
    if should_validate(validate_args) and logits.numel():
        _require_drawable(logits, m, dim)
    minus_g = minus_gumbel(logits.shape, generator=generator, device=logits.device)
    keys = torch.sub(logits, minus_g.to(working_dtype(logits.dtype)))  # w^(1) = l + g
    total = relaxed_top_m(keys, m, tau, dim=dim)
    if hard:  # the top m of the float64 sums, as gumbel_topk takes them
        chosen = (minus_g - logits.detach()).topk(m, dim=dim, largest=False).indices
        total = straight_through(torch.zeros_like(total).scatter(dim, chosen, 1.0), total)
    return total.to(logits.dtype)


def relaxed_top_m(keys: torch.Tensor, m: int, tau: float, *, dim: int = -1) -> torch.Tensor:
    """The successive-softmax relaxation of the top ``m`` of ``keys`` (no checks: internal).

    ``a^(j) = softmax(w^(j) / tau)``, ``w^(j+1) = w^(j) + log(1 - a^(j))``, returning
    ``a^(1) + ... + a^(m)``. Both ``a^(j)`` and ``log(1 - a^(j))`` come from the log-softmax
    scores (:func:`log_softmax_complement`), never from ``1 - a`` rounded in the working
    dtype: where the top weight rounds to 1, its damping ``log(1 - a)`` must stay finite.

    >>> relaxed_top_m(torch.tensor([0.0, 0.0]), 2, 1.0).tolist()
    [1.0, 1.0]
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
    is_top = torch.zeros_like(scores, dtype=torch.bool).scatter(dim, top, True)
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

    The note's procedure (Wu, 2021): draw ``C = softmax((logits + g) / tau)`` with fresh
    noise, discard a draw whose category ``argmax C`` repeats a kept one, stop at ``m`` kept
    draws, return ``S_i = max_j C_{j,i}``. We draw its result exactly without the loop: the
    kept categories ``i_1..i_m``, in order, are a Gumbel-top-m draw; kept draw ``j`` is
    ``softmax((logits + h_j) / tau)`` with ``h_j`` conditioned on ``argmax(logits + h_j) =
    i_j`` (truncated losers); the discards before it are geometric with failure probability
    ``q_{j-1} = p_{i_1} + ... + p_{i_{j-1}}``. So ``S``, its gradient and the draw count have
    the procedure's joint law, at a fixed cost, with no host synchronisation. The backward
    pass holds each ``h_j`` fixed, as the note does: since the law of ``h_j`` depends on
    ``logits``, that is the note's (biased) estimator, not the derivative of ``S`` at a fixed
    seed. Under validation a row that would need more than ``max_draws`` draws raises
    ``ValueError`` (otherwise its count reads ``max_draws + 1``), and so do NaN, ``+inf`` or
    all-masked logits and ``m`` above a row's finite logits. ``return_details=True`` adds the
    mask of kept categories and the int64 draw count per row. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> s = m_hot_by_redraw(torch.zeros(6), 2, 0.1, generator=gen)
    >>> int((s > 0.5).sum())
    2
    """
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    m = check_count(m, "m", upper=logits.shape[dim], what=f"categories along dim={dim}")
    max_draws = check_count(max_draws, "max_draws", upper=2**53, what="allowed")
    check_generator(generator)
    validate = should_validate(validate_args)
    if validate and logits.numel():
        _require_drawable(logits, m, dim)
    last = logits.movedim(dim, -1).to(torch.float64)  # (..., K), keeps the gradient
    values = last.detach()
    size = values.shape[-1]
    order = gumbel_topk(values, m, generator=generator, validate_args=False)  # (..., m)
    onehot = torch.zeros((*order.shape, size), dtype=torch.float64, device=values.device)
    onehot = onehot.scatter(-1, order.unsqueeze(-1), 1.0)  # (..., m, K): draw j's category
    noise = _noise_given_argmax(values, onehot, generator)  # (..., m, K), held fixed
    keys = last.unsqueeze(-2) + noise
    shift = keys.detach().amax(-1, keepdim=True)
    s = torch.softmax((keys - shift) / tau, dim=-1).amax(-2)  # S_i = max_j C_{j,i}
    draws = _draw_counts(values, onehot, generator, max_draws)
    if validate and draws.numel():
        message = f"max_draws={max_draws} draws were not enough for m={m} distinct categories"
        require(draws <= max_draws, message + ": the logits are too peaked for this bound")
    out = s.to(logits.dtype).movedim(-1, dim)
    if not return_details:
        return out
    kept = onehot.sum(-2).movedim(-1, dim) > 0
    return out, kept, draws


def _noise_given_argmax(
    values: torch.Tensor, onehot: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Noise ``h`` with ``argmax(values + h)`` at each row of ``onehot`` (float64, internal).

    With fresh standard Gumbels ``e``: the winner's value is ``logsumexp(values) + e_k`` and
    every other ``values_r + e_r`` is truncated above at it; masked categories get noise 0.
    """
    e = standard_gumbel(
        onehot.shape, generator=generator, dtype=torch.float64, device=values.device
    )
    masked = torch.isneginf(values).unsqueeze(-2)
    safe = torch.where(masked, 0.0, values.unsqueeze(-2))
    top = torch.logsumexp(values, dim=-1, keepdim=True).unsqueeze(-2)
    top = top + (e * onehot).sum(-1, keepdim=True)
    z = torch.where(onehot > 0, top, truncate_above(safe + e, top))
    return torch.where(masked, 0.0, z - safe)


def _draw_counts(
    values: torch.Tensor,
    onehot: torch.Tensor,
    generator: torch.Generator | None,
    max_draws: int,
) -> torch.Tensor:
    """Draws the procedure makes per row: ``m`` kept plus, before the ``j``-th, a geometric
    number of repeats ``floor(log U / log q_{j-1})``, capped at ``max_draws + 1`` (internal)."""
    p = torch.softmax(values, dim=-1).unsqueeze(-2)  # (..., 1, K)
    taken = onehot.cumsum(-2) - onehot  # categories kept before draw j
    q = (p * taken).sum(-1)  # q_{j-1}, and 1 - q_{j-1} below: sums of positive terms
    log_q = torch.where(q < 0.5, torch.log(q), torch.log1p(-(p * (1.0 - taken)).sum(-1)))
    u = torch.rand(q.shape, generator=generator, dtype=torch.float64, device=values.device)
    repeats = torch.floor(torch.log1p(-u) / log_q)  # 0 where q = 0 (log_q = -inf)
    cap = max_draws + 1.0  # q = 1 (nothing left to draw) gives inf or NaN: capped too
    repeats = torch.nan_to_num(repeats, nan=cap, posinf=cap, neginf=cap).clamp(0.0, cap)
    return (repeats.sum(-1) + q.shape[-1]).clamp(max=cap).long()


def expected_redraws(logits: torch.Tensor, m: int, *, validate_args: bool | None = None) -> float:
    """Expected number of discarded draws of :func:`m_hot_by_redraw` for 1-D ``logits``.

    After ``j`` distinct categories with total probability ``q_j`` are kept, the next kept
    draw takes a geometric number of tries with success probability ``1 - q_j``, so
    ``q_j / (1 - q_j)`` discards on average; the kept prefixes follow Plackett-Luce, so::

        E[redraws] = sum_{j=1}^{m-1} sum_{|T| = j} P(first j kept = T) q_T / (1 - q_T),

    with ``P(first j kept = T)`` summed over orders by dynamic programming over the sets
    ``T``, and ``q_T``, ``1 - q_T`` and the products in log space (masked categories have
    probability 0). Exact to rounding. The enumeration visits every set of fewer than ``m``
    categories: above ``MAX_ENUMERATION_STEPS`` steps it raises ``ValueError`` instead of
    running for minutes. ``ValueError`` also for NaN or ``+inf`` logits, ``m`` above the
    number of finite logits, and logits so peaked that the expectation overflows float64.
    It reads every value anyway, so these checks run whatever ``validate_args`` says.

    >>> round(expected_redraws(torch.zeros(4), 2), 4)
    0.3333
    """
    check_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be one-dimensional, got shape {tuple(logits.shape)}")
    size = logits.numel()
    m = check_count(m, "m", upper=size, what="categories")
    should_validate(validate_args)  # the argument's type; the checks below always run
    steps = sum(math.comb(size, j) * (size - j) for j in range(m - 1))
    if steps > MAX_ENUMERATION_STEPS:
        raise ValueError(
            f"expected_redraws enumerates {steps:,} steps for {size} logits and m={m}, "
            f"above the limit of {MAX_ENUMERATION_STEPS:,}: use fewer categories or a smaller m"
        )
    values = logits.detach().double().cpu()
    if bool(torch.isnan(values).any() | torch.isposinf(values).any()):
        raise ValueError("logits contains NaN or +inf")
    finite = int(torch.isfinite(values).sum())
    if m > finite:
        raise ValueError(
            f"m={m} is larger than the number of categories that can be drawn "
            f"({finite} finite logits)"
        )
    log_p = torch.log_softmax(values, dim=0).tolist()
    return _redraws_by_sets(log_p, m)


def _logsumexp(terms: list[float]) -> float:
    top = max(terms, default=-math.inf)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(t - top) for t in terms))


def _redraws_by_sets(log_p: list[float], m: int) -> float:
    """``sum_T P(first |T| kept = T) q_T / (1 - q_T)`` over sets of 1..m-1 (internal)."""
    drawable = [i for i, v in enumerate(log_p) if v > -math.inf]
    largest = math.log(torch.finfo(torch.float64).max)
    level = {0: (0.0, 0.0)}  # bit mask of the set kept so far -> log P(set), log(1 - q_set)
    total = 0.0
    for _ in range(m - 1):
        grown: dict[int, float] = {}
        for mask, (log_prob, log_rest) in level.items():
            for i in drawable:
                if not mask >> i & 1:
                    child, term = mask | 1 << i, log_prob + log_p[i] - log_rest
                    grown[child] = _logsumexp([grown.get(child, -math.inf), term])
        level = {}
        for mask, log_prob in grown.items():
            log_q = _logsumexp([log_p[i] for i in drawable if mask >> i & 1])
            log_rest = _logsumexp([log_p[i] for i in drawable if not mask >> i & 1])
            level[mask] = (log_prob, log_rest)
            exponent = log_prob + log_q - log_rest
            if exponent > largest:
                raise ValueError(
                    "logits are too peaked: the expected number of redraws exceeds the "
                    f"float64 range (one term is exp({exponent:.1f}))"
                )
            total += math.exp(exponent)
    if not math.isfinite(total):  # finite terms whose sum overflows
        raise ValueError("logits are too peaked: the expected number of redraws overflows")
    return total
