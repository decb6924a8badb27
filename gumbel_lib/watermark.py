"""Gumbel-max watermarking of generated text, and its detection score with a p-value.

Aaronson's scheme, as Fernandez et al. (2023) describe it: at each step the uniforms ``r_i``
of the vocabulary are keyed by a secret key and the ``h`` tokens before the step, and the
token is ``argmax_i r_i^(1 / p_i)``, which is the Gumbel-max draw ``argmax_i (log p_i + g_i)``
with ``g_i = -log(-log r_i)``. (Kuditipudi et al. (2023) use the same decoder, "exponential
minimum sampling", with noise keyed by the position in a secret key sequence instead.) So a
step whose context has not occurred before with this key has law ``p`` exactly when the keyed
uniforms are modelled as a random function (they are Philox outputs on a ``2**-53`` grid;
:func:`gumbel_lib.tokens.sample_tokens` bounds the grid's effect), and a repeated context
repeats its token. :func:`watermark_sample` is :func:`gumbel_lib.tokens.sample_tokens` with
the position set to :func:`gumbel_lib.keyed_hash.hash_tokens` of the context.

A detector that knows the key recomputes ``r_t`` of each emitted token and sums
``-log(1 - r_t)``. For a text that does not depend on the key, the uniforms at distinct
``(context, token)`` pairs are independent, so the sum over ``m`` distinct pairs is
``Gamma(m, 1)``; a watermarked token has ``r_t = U^(p_t)`` and raises the mean per token
from ``1`` to ``psi(1 + 1 / p_t) + gamma``. Repeated pairs repeat their uniform: the score
counts each pair once (:func:`watermark_score`). Chapter:
:doc:`Shared noise </book/shared-noise>`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.stats
import torch

from gumbel_lib._validation import require, should_validate
from gumbel_lib.keyed import keyed_uniform
from gumbel_lib.keyed_hash import hash_tokens
from gumbel_lib.tokens import Parameter, sample_tokens

__all__ = ["WatermarkScore", "watermark_sample", "watermark_score"]


def _check_token_tensor(tokens: object, name: str) -> torch.Tensor:
    """An integer tensor of rank at least 1 (structural)."""
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tokens).__name__}")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {tokens.dtype}")
    if tokens.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the tokens)")
    return tokens


def watermark_sample(
    logits: torch.Tensor,
    context: torch.Tensor,
    *,
    key: int | torch.Tensor,
    temperature: Parameter = 1.0,
    top_k: Parameter = None,
    top_p: Parameter = None,
    min_p: Parameter = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """One watermarked token per row: Gumbel-max with noise keyed by the secret and context.

    ``sample_tokens(logits, key=key, position=hash_tokens(context), ...)``: the uniform of
    token ``i`` is ``keyed_uniform(key, hash_tokens(context), i)`` and the token is
    ``argmax_i r_i^(1 / p_i)`` for the filtered law ``p``, so a step with a new context has
    law ``p`` (the Gumbel-max theorem, keyed uniforms modelled as independent). ``context``
    holds the ``h`` tokens before the step, shape ``(*batch, h)``; ``key`` is the secret (an
    int, or an int64 tensor of the batch shape).
    The filters are those of :func:`gumbel_lib.tokens.sample_tokens`; a zero temperature
    is greedy and carries no watermark. Never reuse a key across texts meant to be
    independent of each other. Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]])
    >>> a = watermark_sample(logits, torch.tensor([[2, 3]]), key=11)
    >>> torch.equal(a, watermark_sample(logits, torch.tensor([[2, 3]]), key=11))
    True
    """
    context = _check_token_tensor(context, "context")
    if context.shape[:-1] != logits.shape[:-1]:
        raise ValueError(
            f"context must have shape (*batch, h) with the batch shape {tuple(logits.shape[:-1])} "
            f"of logits, got {tuple(context.shape)}"
        )
    position = hash_tokens(context, validate_args=validate_args)
    return sample_tokens(
        logits,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        key=key,
        position=position,
        validate_args=validate_args,
    )


class WatermarkScore(NamedTuple):
    """The detection score of :func:`watermark_score`, per text."""

    score: torch.Tensor  # sum of -log(1 - r) over the scored pairs (float64)
    pairs: torch.Tensor  # the number of scored (context, token) pairs (int64)
    p_value: torch.Tensor  # P(Gamma(pairs, 1) >= score) (float64; 1 when pairs = 0)


def watermark_score(
    tokens: torch.Tensor,
    *,
    key: int | torch.Tensor,
    context_width: int,
    deduplicate: bool = True,
    validate_args: bool | None = None,
) -> WatermarkScore:
    """The watermark score of each text in ``tokens`` (shape ``(*batch, n)``) and its p-value.

    Token ``t`` (for ``t >= context_width``) is scored with ``r_t = keyed_uniform(key,
    hash_tokens(tokens[t - h : t]), tokens[t])`` as ``-log(1 - r_t)``, an ``Exp(1)``
    variate when the text does not depend on the key. With ``deduplicate`` (the default)
    each distinct ``(context, token)`` pair counts once, so that the score of ``m`` pairs is
    ``Gamma(m, 1)`` under that null; without it, repeated pairs add the same term again and
    the null law is lost. Returns a :class:`WatermarkScore` ``(score, pairs, p_value)`` of
    the batch shape; the p-value is ``scipy.stats.gamma.sf(score, pairs)``. Under
    validation, negative tokens raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> text = torch.tensor([[5, 1, 2, 5, 1, 2, 5, 1]])
    >>> result = watermark_score(text, key=3, context_width=2)
    >>> result.pairs.tolist(), watermark_score(text, key=3, context_width=2,
    ...                                         deduplicate=False).pairs.tolist()
    ([3], [6])
    """
    tokens = _check_token_tensor(tokens, "tokens")
    if isinstance(context_width, bool) or not isinstance(context_width, int):
        raise TypeError(f"context_width must be an int, got {type(context_width).__name__}")
    if context_width < 1:
        raise ValueError(f"context_width must be >= 1, got {context_width}")
    if not isinstance(deduplicate, bool):
        raise TypeError(f"deduplicate must be a bool, got {type(deduplicate).__name__}")
    if should_validate(validate_args) and tokens.numel():
        require(tokens >= 0, "tokens must be >= 0")
    words = tokens.to(torch.int64)
    batch, n = words.shape[:-1], words.shape[-1]
    scored = max(n - context_width, 0)
    if scored == 0:
        zero = torch.zeros(batch, dtype=torch.float64, device=words.device)
        return WatermarkScore(zero, zero.long(), torch.ones_like(zero))
    windows = words.unfold(-1, context_width, 1)[..., :scored, :]
    positions = hash_tokens(windows, validate_args=False)
    emitted = words[..., context_width:]
    row_key = key.unsqueeze(-1) if isinstance(key, torch.Tensor) else key
    r = keyed_uniform(row_key, positions, emitted, validate_args=False)
    terms = -torch.log1p(-r)
    if deduplicate:
        first = _first_occurrences(positions, emitted)
        terms = torch.where(first, terms, 0.0)
        count = first.sum(-1)
    else:
        count = torch.full(batch, scored, dtype=torch.int64, device=words.device)
    score = terms.sum(-1)
    return WatermarkScore(score, count, _gamma_sf(score, count))


def _first_occurrences(positions: torch.Tensor, emitted: torch.Tensor) -> torch.Tensor:
    """True at the first occurrence of each ``(position, token)`` pair along the last axis.

    Two stable sorts (by token, then by position) put equal pairs next to each other, in
    their order of appearance; the first of each run is marked and the marks are scattered
    back to the original order.
    """
    by_token = emitted.argsort(dim=-1, stable=True)
    order = by_token.gather(-1, positions.gather(-1, by_token).argsort(dim=-1, stable=True))
    pos, tok = positions.gather(-1, order), emitted.gather(-1, order)
    same = (pos[..., 1:] == pos[..., :-1]) & (tok[..., 1:] == tok[..., :-1])
    leading = torch.ones((*pos.shape[:-1], 1), dtype=torch.bool, device=pos.device)
    first_sorted = torch.cat([leading, ~same], -1)
    return torch.empty_like(first_sorted).scatter_(-1, order, first_sorted)


def _gamma_sf(score: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``P(Gamma(count, 1) >= score)`` by ``scipy.stats.gamma.sf``; 1 where ``count = 0``."""
    s = score.detach().cpu().numpy()
    m = count.detach().cpu().numpy()
    p = np.where(m > 0, scipy.stats.gamma.sf(s, np.maximum(m, 1)), 1.0)
    return torch.from_numpy(np.asarray(p, dtype=np.float64)).to(score.device)
