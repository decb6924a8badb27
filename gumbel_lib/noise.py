"""Gumbel noise that is never infinite.

Inverse-cdf sampling: if ``U ~ Uniform(0, 1)`` then ``G = -log(-log U) ~ Gumbel(0, 1)``,
because ``P(G <= x) = P(U <= exp(-exp(-x)))``. Derived in the chapter *The Gumbel
distribution* (``book/gumbel-distribution``).

In floating point ``U`` can be exactly 0 (``torch.rand`` returns multiples of ``2**-24`` in
float32, zero included), which gives ``G = -inf``; an injected ``U = 1`` gives ``+inf``.
We clamp ``U`` to ``[tiny, 1 - eps/2]`` (``tiny`` the smallest normal number, ``1 - eps/2``
the largest number below one), so ``G`` lies in ``noise_bounds(dtype)``. Half-precision
noise is made in float32 and then cast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gumbel_lib._validation import HALF_DTYPES, working_dtype


def uniform_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """The clamping interval ``[tiny, 1 - eps/2]`` of the uniform, in ``dtype``'s working type."""
    info = torch.finfo(working_dtype(dtype))
    return info.tiny, 1.0 - info.eps / 2


def noise_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """Smallest and largest Gumbel(0, 1) noise the library can produce for ``dtype``.

    ``g_min = -log(-log(tiny))`` and ``g_max = -log(-log(1 - eps/2))``, with ``tiny`` and
    ``eps`` those of the working dtype (float32 for float16, bfloat16 and float32; float64
    for float64). Example: ``noise_bounds(torch.float32)`` is about ``(-4.47, 16.64)``.
    """
    lo, hi = uniform_bounds(dtype)
    return -math.log(-math.log(lo)), -math.log(-math.log1p(hi - 1.0))


def truncated_tail_mass(dtype: torch.dtype) -> tuple[float, float]:
    """Gumbel(0, 1) probability below ``g_min`` and above ``g_max`` (exact, from the cdf).

    ``P(G < g_min) = exp(-exp(-g_min))`` and ``P(G > g_max) = -expm1(-exp(-g_max))``.
    """
    g_min, g_max = noise_bounds(dtype)
    return math.exp(-math.exp(-g_min)), -math.expm1(-math.exp(-g_max))


def gumbel_from_uniform(u: torch.Tensor) -> torch.Tensor:
    """Map uniforms to Gumbel(0, 1) noise: ``g = -log(-log(clamp(u, tiny, 1 - eps/2)))``.

    This is the injectable form of the sampler: tests feed it ``u = 0`` and ``u = 1``
    and get finite noise. Half-precision ``u`` is mapped in float32, then cast back.
    Chapter: *The Gumbel distribution*.

    >>> gumbel_from_uniform(torch.tensor([0.0, 0.5, 1.0])).isfinite().all().item()
    True
    """
    if not isinstance(u, torch.Tensor) or not u.dtype.is_floating_point:
        raise TypeError("u must be a floating-point torch.Tensor")
    lo, hi = uniform_bounds(u.dtype)
    wide = u.to(working_dtype(u.dtype))  # half precision cannot even hold 1 - eps/2
    return wide.clamp(lo, hi).log_().neg_().log_().neg_().to(u.dtype)


def log_exponential(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    """``log(-log(clamp(u, tiny, 1 - eps/2)))``: minus Gumbel(0, 1) noise (internal, no checks).

    ``-log u`` is Exp(1), so this is the log of an exponential variate, ``-g`` bit for bit
    (IEEE negation is exact). The samplers consume ``-g`` directly and fold the sign into
    a later pass, which saves one pass over memory. In the working dtype of ``dtype``.
    """
    wide = working_dtype(dtype)
    u = torch.rand(shape, generator=generator, dtype=wide, device=device)
    lo, hi = uniform_bounds(wide)
    return u.clamp_(lo, hi).log_().neg_().log_()


def standard_gumbel(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    """Gumbel(0, 1) noise in the working dtype of ``dtype`` (no cast, no checks: internal)."""
    return log_exponential(shape, generator=generator, dtype=dtype, device=device).neg_()


def _check_shape(shape: object) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, torch.Size)) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in shape
    ):
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}")
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not contain negative sizes, got {tuple(shape)}")
    return tuple(shape)


def _check_param(value: object, name: str, *, positive: bool) -> float | torch.Tensor:
    if isinstance(value, torch.Tensor):
        if not value.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite")
        if positive and not (value > 0).all():
            raise ValueError(f"{name} must be > 0")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name} must be finite{' and > 0' if positive else ''}, got {value}")
    return value


def sample_gumbel(
    shape: Sequence[int] | torch.Size | int,
    *,
    loc: float | torch.Tensor = 0.0,
    scale: float | torch.Tensor = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``loc + scale * G`` with ``G ~ Gumbel(0, 1)``: a ``Gumbel(loc, scale)`` sample.

    The cdf is ``F(x) = exp(-exp(-(x - loc) / scale))``. The standard noise comes from
    :func:`gumbel_from_uniform` in float32 (float64 when ``dtype`` is float64) and is cast
    to ``dtype`` last, so it is never inf or NaN; its range is :func:`noise_bounds`.
    The location-scale property is derived in *Location shift and scale*.

    >>> g = sample_gumbel((2, 3), generator=torch.Generator().manual_seed(0))
    >>> g.shape, g.dtype
    (torch.Size([2, 3]), torch.float32)
    """
    shape = _check_shape(shape)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    loc = _check_param(loc, "loc", positive=False)
    scale = _check_param(scale, "scale", positive=True)
    g = standard_gumbel(shape, generator=generator, dtype=dtype, device=device)
    if not (isinstance(scale, float) and scale == 1.0):
        g = g * (scale.to(g) if isinstance(scale, torch.Tensor) else scale)
    if not (isinstance(loc, float) and loc == 0.0):
        g = g + (loc.to(g) if isinstance(loc, torch.Tensor) else loc)
    out = g.to(dtype)
    if dtype in HALF_DTYPES and not torch.isfinite(out).all():
        raise ValueError(f"loc and scale put the samples outside the finite range of {dtype}")
    return out
