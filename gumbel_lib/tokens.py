"""Next-token sampling as inference engines do it, exact on the filtered law.

:func:`sample_tokens` applies, in the order of vLLM's sampler, a temperature, a min-p
filter, a top-k filter and a top-p (nucleus) filter to each row of logits, then draws one
token with the Gumbel-max trick of :func:`gumbel_lib.sampling.gumbel_max`: the draw is
``softmax`` of the filtered logits within the total-variation bound proved in
:doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`. Every step is a tensor
operation: no Python branch reads a value, so nothing waits for the device (with
``validate_args=False``, or under ``torch.compile``, where the checks are assertions in the
graph), and per-row parameters are tensors. The noise comes from a ``torch.Generator`` or
from keys (:mod:`gumbel_lib.keyed`): with a ``key`` and a ``position`` per row, the token a
row draws does not depend on the batch it is in.
"""

from __future__ import annotations

import math
import numbers

import torch

from gumbel_lib._validation import (
    check_categories,
    check_finite_max,
    check_logits,
    check_noise_source,
    require,
    should_validate,
)
from gumbel_lib.noise import keyed_minus_gumbel, minus_gumbel
from gumbel_lib.sampling import centred, minus_perturbed

Parameter = float | int | torch.Tensor | None


def _per_row(value: Parameter, name: str, batch: torch.Size, device: torch.device) -> Parameter:
    """A Python number, ``None``, or a tensor of the batch shape (or broadcastable to it),
    returned with a trailing axis so that it broadcasts against a row of logits."""
    if value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        return value
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a number, a tensor or None, got {type(value).__name__}")
    try:
        torch.broadcast_shapes(value.shape, batch)
    except RuntimeError as err:
        raise ValueError(
            f"{name} of shape {tuple(value.shape)} does not broadcast to the batch shape "
            f"{tuple(batch)} of logits"
        ) from err
    return value.to(device).unsqueeze(-1)


def _check_number(value: object, name: str, low: float, high: float, closed: str) -> None:
    """Python numbers are checked always: ``low <= value <= high`` with the ends ``closed``
    (``"both"``, ``"right"``); tensors under validation, with :func:`require`."""
    if isinstance(value, torch.Tensor):
        ok = (value >= low) if closed == "both" else (value > low)
        return require(ok & (value <= high), f"{name} must lie in the documented range")
    if value is None:
        return None
    v = float(value)  # type: ignore[arg-type]
    inside = (low <= v if closed == "both" else low < v) and v <= high
    if not inside or math.isnan(v):
        raise ValueError(f"{name}={value} is out of range")
    return None


def filtered_logits(
    logits: torch.Tensor,
    *,
    temperature: Parameter = 1.0,
    top_k: Parameter = None,
    top_p: Parameter = None,
    min_p: Parameter = None,
) -> torch.Tensor:
    """The logits that :func:`sample_tokens` samples from, in a fresh float64 tensor:
    ``(logits - max logits) / temperature`` (a zero temperature is treated as one here;
    the shift moves no probability and keeps the values that matter near zero), with
    ``-inf`` at every token a filter removes (internal, no checks).

    * min-p keeps token ``i`` when ``p_i >= min_p * max_j p_j``, i.e. when its shifted
      logit is at least ``log(min_p)``; ``min_p = 0`` keeps every token;
    * top-k keeps the tokens at least as large as the ``k``-th largest (ties at the cut
      are kept); ``top_k = 0`` keeps every token;
    * top-p keeps the smallest prefix of the tokens sorted by probability whose mass
      reaches ``top_p``, the token that crosses it included, computed on what min-p and
      top-k kept (ties at the cut are kept); ``top_p = 1`` keeps every token.
    """
    scaled = centred(logits, -1)
    if isinstance(temperature, torch.Tensor):
        scaled.div_(torch.where(temperature > 0, temperature, 1.0).to(scaled.dtype))
    elif temperature is not None and temperature > 0 and temperature != 1.0:
        scaled.div_(float(temperature))
    neg_inf = torch.tensor(-torch.inf, dtype=scaled.dtype, device=scaled.device)
    if min_p is not None and not (isinstance(min_p, float | int) and min_p <= 0):
        floor = torch.log(torch.as_tensor(min_p, device=scaled.device).to(scaled.dtype))
        scaled = torch.where(scaled >= floor, scaled, neg_inf)  # the maximum is 0
    use_k = top_k is not None and not (isinstance(top_k, int) and top_k <= 0)
    use_p = top_p is not None and not (isinstance(top_p, float | int) and top_p >= 1)
    if not (use_k or use_p):
        return scaled
    n = scaled.shape[-1]
    if use_k and isinstance(top_k, int) and not use_p:  # no sort needed
        cut = scaled.topk(min(top_k, n), -1).values[..., -1:]
        return torch.where(scaled >= cut, scaled, neg_inf)
    ranked = scaled.sort(-1, descending=True).values
    if use_k:
        k = torch.as_tensor(top_k, device=scaled.device).clamp(0, n)
        k = torch.where(k == 0, n, k).expand(*scaled.shape[:-1], 1)
        cut = ranked.gather(-1, k - 1)
        ranked = torch.where(ranked >= cut, ranked, neg_inf)
        scaled = torch.where(scaled >= cut, scaled, neg_inf)
    if use_p:
        probs = torch.softmax(ranked, -1)
        before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
        bound = torch.as_tensor(top_p, device=scaled.device).double()
        keep = (before < bound) | (bound >= 1)  # top_p = 1 keeps every token
        last = keep.sum(-1, keepdim=True).clamp_min(1) - 1  # the token that crosses top_p
        cut = ranked.gather(-1, last)
        scaled = torch.where(scaled >= cut, scaled, neg_inf)
    return scaled


def sample_tokens(
    logits: torch.Tensor,
    *,
    temperature: Parameter = 1.0,
    top_k: Parameter = None,
    top_p: Parameter = None,
    min_p: Parameter = None,
    generator: torch.Generator | None = None,
    key: int | torch.Tensor | None = None,
    position: int | torch.Tensor | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """One token per row of ``logits`` (shape ``(..., vocabulary)``): int64, batch shape.

    The filters of :func:`filtered_logits` run in vLLM's order (temperature, min-p, top-k,
    top-p), then the token is the Gumbel-max sample of the filtered logits, so its law is
    ``softmax`` of the filtered logits, within ``3 n 2**-53 + 2**-43`` in total variation
    (``n`` kept tokens; ``2**-44`` for the last term at temperature 1, as for
    :func:`~gumbel_lib.sampling.gumbel_max`, where no division rounds). Unlike vLLM, whose
    top-p cut splits tokens tied at the cut by their position in its sort, every filter here
    keeps all the tokens tied at its cut, so the filtered law does not depend on the order of
    equal logits. Conventions of the engines users know: ``temperature``
    is ``>= 0`` and ``0`` means greedy (the first largest logit); ``top_k = 0``,
    ``top_p = 1`` and ``min_p = 0`` (or ``None``) switch a filter off. Each parameter is a
    Python number or a tensor of the batch shape, one value per row. The noise comes from
    ``generator`` (a ``torch.Generator``, or the global generator when ``None``) or, when
    ``key`` is given, from :func:`gumbel_lib.keyed.keyed_uniform` at ``(key, position,
    token index)`` (``key`` and ``position``: ints or tensors of the batch shape). Under
    validation, NaN or ``+inf`` logits, rows masked everywhere and parameters out of range
    raise ``ValueError``. Chapter:
    :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.

    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 5.0]])
    >>> sample_tokens(logits, top_k=1, generator=torch.Generator().manual_seed(0)).tolist()
    [0, 3]
    >>> sample_tokens(logits, temperature=0.7, top_p=0.9, key=7, position=0).shape
    torch.Size([2])
    """
    check_logits(logits)
    check_categories(logits.shape, logits.dim() - 1)
    check_noise_source(generator, key, position)
    batch, device = logits.shape[:-1], logits.device
    temperature = _per_row(temperature, "temperature", batch, device)
    top_k = _per_row(top_k, "top_k", batch, device)
    top_p = _per_row(top_p, "top_p", batch, device)
    min_p = _per_row(min_p, "min_p", batch, device)
    if isinstance(top_k, float) or (
        isinstance(top_k, torch.Tensor) and top_k.dtype.is_floating_point
    ):
        raise TypeError("top_k must be an int or an integer tensor")
    validate = should_validate(validate_args)
    for value, name, lowest, highest, closed in (
        (temperature, "temperature", 0.0, math.inf, "both"),
        (top_k, "top_k", 0, 2**62, "both"),
        (top_p, "top_p", 0.0, 1.0, "right"),
        (min_p, "min_p", 0.0, 1.0, "both"),
    ):
        if validate or not isinstance(value, torch.Tensor):
            _check_number(value, name, lowest, highest, closed)
    scaled = filtered_logits(
        logits.detach(), temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p
    )
    if key is None:
        minus_g = minus_gumbel(logits.shape, generator=generator, device=device)
    else:
        assert position is not None
        index = torch.arange(logits.shape[-1], device=device)
        minus_g = keyed_minus_gumbel(key, position, index, device=device)
    # -(scaled + g) in float64: its first minimum is the Gumbel-max token
    low, token = minus_perturbed(minus_g, scaled).min(-1)
    if validate and low.numel():
        check_finite_max(low, logits, logits.dim() - 1)
    if temperature is None or isinstance(temperature, float | int) and temperature > 0:
        return token
    greedy = logits.detach().argmax(-1)
    if isinstance(temperature, torch.Tensor):
        return torch.where(temperature.squeeze(-1) == 0, greedy, token)
    return greedy
