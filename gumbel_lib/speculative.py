"""Speculative sampling: check a drafted token against the target law, exactly.

A cheap *draft* model proposes ``x ~ q``; the *target* law is ``p``. The speculative step
of Leviathan, Kalman and Matias (2023) and Chen et al. (2023) accepts ``x`` with probability
``min(1, p(x) / q(x))`` and otherwise draws from the residual ``(p - q)^+ / sum (p - q)^+``;
its output has law ``p`` exactly (:func:`speculative_step`). The residual draw needs
*fresh* noise: the Gumbels that chose ``x`` are, given ``x``, no longer standard (the
losers are truncated below the winner), and reusing them biases the output.

The drafter-invariant variant of Daliri, Musco and Suresh (2024) draws both tokens by
Gumbel-max from the *same* keyed noise and keeps the target's: the output is the target's
Gumbel-max token whatever the drafter, and the draft is accepted with the agreement
probability of the Gumbel coupling (:func:`drafter_invariant_step`,
:func:`gumbel_lib.coupling.coupling_agreement`). Chapter:
:doc:`Shared noise </book/shared-noise>`.
"""

from __future__ import annotations

import torch

from gumbel_lib._validation import (
    check_categories,
    check_logits,
    check_noise_source,
    require,
    should_validate,
)
from gumbel_lib.keyed import keyed_uniform
from gumbel_lib.keyed_hash import derive_key
from gumbel_lib.noise import keyed_minus_gumbel, minus_gumbel
from gumbel_lib.sampling import centred
from gumbel_lib.tokens import sample_tokens

__all__ = ["drafter_invariant_step", "residual_logits", "speculative_step"]

ACCEPT_STREAM = 1  # derive_key(key, 1): the uniform of the acceptance test
RESIDUAL_STREAM = 2  # derive_key(key, 2): the Gumbels of the residual draw


def _check_tokens(token: object, batch: torch.Size, name: str) -> torch.Tensor:
    """An integer tensor of the batch shape (structural)."""
    if not isinstance(token, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(token).__name__}")
    if token.dtype.is_floating_point or token.dtype.is_complex or token.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {token.dtype}")
    if token.shape != batch:
        raise ValueError(
            f"{name} must have the batch shape {tuple(batch)}, got {tuple(token.shape)}"
        )
    return token.long()


def residual_logits(target_logits: torch.Tensor, draft_logits: torch.Tensor) -> torch.Tensor:
    """``log (p - q)^+`` in float64 along the last axis (``-inf`` where ``p <= q``).

    ``p = softmax(target_logits)``, ``q = softmax(draft_logits)``; computed as
    ``log p + log(-expm1(log q - log p))`` where ``p > q``, accurate when ``q`` is close to
    ``p``. Unnormalised: a Gumbel-max draw needs no normaliser. Where ``p <= q`` everywhere
    (then ``p = q``) the row is ``log p``: no rejection can happen there but through
    rounding, and the draw then falls back on ``p``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> residual_logits(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])).exp().round(decimals=6)
    tensor([0.0000, 0.2311], dtype=torch.float64)
    """
    check_logits(target_logits, "target_logits")
    check_logits(draft_logits, "draft_logits")
    lp = torch.log_softmax(target_logits.detach().to(torch.float64), -1)
    lq = torch.log_softmax(draft_logits.detach().to(torch.float64), -1)
    above = lp > lq
    gap = torch.where(above, lq - lp, -1.0)  # finite where unused: no NaN enters the graph
    log_r = torch.where(above, lp + torch.log(-torch.expm1(gap)), -torch.inf)
    some = above.any(-1, keepdim=True)
    return torch.where(some, log_r, lp)


def speculative_step(
    target_logits: torch.Tensor,
    draft_logits: torch.Tensor,
    draft_token: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    key: int | torch.Tensor | None = None,
    position: int | torch.Tensor | None = None,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One verification step of speculative sampling: a token with law ``softmax(target)``.

    For each row (logits of shape ``(..., vocabulary)``, ``draft_token`` of the batch shape,
    drawn from ``q = softmax(draft_logits)``): accept the draft when ``u < p(x) / q(x)``
    (compared as ``log u < log p(x) - log q(x)`` in float64), else return the Gumbel-max
    draw of :func:`residual_logits` with fresh noise. Returns ``(token, accepted)``: int64
    and bool tensors of the batch shape. The noise is ``u`` then the residual Gumbels from
    ``generator`` or, with ``key`` and ``position``, keyed at ``(derive_key(key, 1),
    position, 0)`` and ``(derive_key(key, 2), position, token)``
    (:func:`gumbel_lib.keyed_hash.derive_key`), never the noise
    :func:`gumbel_lib.tokens.sample_tokens` drew the draft with at ``(key, position)``.
    Under validation, NaN or ``+inf`` logits, rows masked everywhere, and a draft token out
    of range or of draft probability zero raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> token, accepted = speculative_step(torch.zeros(3, 4), torch.zeros(3, 4),
    ...                                    torch.tensor([0, 1, 2]), generator=gen)
    >>> token.tolist(), accepted.tolist()  # p = q: every draft is accepted
    ([0, 1, 2], [True, True, True])
    """
    check_logits(target_logits, "target_logits")
    check_logits(draft_logits, "draft_logits")
    if target_logits.shape != draft_logits.shape:
        raise ValueError(
            "target_logits and draft_logits must have the same shape, got "
            f"{tuple(target_logits.shape)} and {tuple(draft_logits.shape)}"
        )
    check_categories(target_logits.shape, target_logits.dim() - 1, "target_logits")
    check_noise_source(generator, key, position)
    batch, device = target_logits.shape[:-1], target_logits.device
    token = _check_tokens(draft_token, batch, "draft_token").to(device)
    vocabulary = target_logits.shape[-1]
    lp = torch.log_softmax(target_logits.detach().to(torch.float64), -1)
    lq = torch.log_softmax(draft_logits.detach().to(torch.float64), -1)
    at = token.clamp(0, vocabulary - 1).unsqueeze(-1)
    log_ratio = (lp.gather(-1, at) - lq.gather(-1, at)).squeeze(-1)
    if should_validate(validate_args) and lp.numel():
        _check_step(target_logits, draft_logits, token, lq.gather(-1, at).squeeze(-1))
    if key is None:
        u = torch.rand(batch, generator=generator, dtype=torch.float64, device=device)
        minus_g = minus_gumbel(target_logits.shape, generator=generator, device=device)
    else:
        assert position is not None
        u = keyed_uniform(derive_key(key, ACCEPT_STREAM), position, 0, device=device)
        index = torch.arange(vocabulary, device=device)
        rows = keyed_minus_gumbel(derive_key(key, RESIDUAL_STREAM), position, index, device=device)
        u, minus_g = u.expand(batch), rows.expand(target_logits.shape)
    accepted = torch.log(u) < log_ratio
    residual = residual_logits(target_logits, draft_logits)
    resampled = torch.sub(minus_g, centred(residual, -1)).argmin(-1)
    return torch.where(accepted, token, resampled), accepted


def _check_step(
    target_logits: torch.Tensor,
    draft_logits: torch.Tensor,
    token: torch.Tensor,
    log_q_at: torch.Tensor,
) -> None:
    """Under validation: finite logits maxima, and each draft token in range and drawable
    under the draft law; one reduction and one read."""
    vocabulary = target_logits.shape[-1]
    ok = torch.stack(
        [
            torch.isfinite(target_logits.detach().amax(-1)).all(),
            torch.isfinite(draft_logits.detach().amax(-1)).all(),
            ((token >= 0) & (token < vocabulary)).all(),
            (log_q_at > -torch.inf).all(),
        ]
    )

    def explain() -> None:
        for name, good in zip(("target_logits", "draft_logits"), ok[:2], strict=True):
            if not bool(good):
                raise ValueError(f"{name} contains NaN or +inf, or is -inf for every category")
        if not bool(ok[2]):
            raise ValueError(f"draft_token is out of range for a vocabulary of {vocabulary}")
        raise ValueError("draft_token has probability zero under draft_logits: it was not drawn")

    require(ok, "logits are not finite, or draft_token is out of range or not drawable", explain)


def drafter_invariant_step(
    target_logits: torch.Tensor,
    draft_token: torch.Tensor,
    *,
    key: int | torch.Tensor,
    position: int | torch.Tensor,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The drafter-invariant step: the target's Gumbel-max token at ``(key, position)``.

    The draft must have been drawn as ``sample_tokens(draft_logits, key=key,
    position=position)`` (:func:`gumbel_lib.tokens.sample_tokens`): both tokens are then a
    Gumbel coupling, the output ``sample_tokens(target_logits, key=key, position=position)``
    has law ``softmax(target_logits)`` and does not depend on the drafter, and the draft is
    accepted (``accepted = token == draft_token``) with probability
    :func:`gumbel_lib.coupling.coupling_agreement`. Returns ``(token, accepted)`` of the
    batch shape. Under validation, bad logits raise ``ValueError`` (as in ``sample_tokens``).
    Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> target = torch.tensor([[2.0, 0.0, -1.0]])
    >>> draft = sample_tokens(target + 0.3 * torch.randn(1, 3), key=5, position=0)
    >>> token, accepted = drafter_invariant_step(target, draft, key=5, position=0)
    >>> torch.equal(token, sample_tokens(target, key=5, position=0))
    True
    """
    check_logits(target_logits, "target_logits")
    draft = _check_tokens(draft_token, target_logits.shape[:-1], "draft_token")
    token = sample_tokens(target_logits, key=key, position=position, validate_args=validate_args)
    return token, token == draft.to(token.device)
