"""Gumbel noise, exact in both tails: one path from 53-bit uniforms to Gumbel variates.

Inverse-cdf sampling: if ``U ~ Uniform(0, 1)`` then ``G = -log(-log U) ~ Gumbel(0, 1)``,
because ``P(G <= x) = P(U <= exp(-exp(-x)))``. Derived in
:doc:`The Gumbel distribution </book/gumbel-distribution>`.

Every sampler of the library draws ``u = k 2**-53`` (``torch.rand`` in float64: 53 random
bits, ``k = 0, ..., 2**53 - 1``), raises ``u = 0`` to ``tiny`` (the smallest normal float64,
so that ``-log(-log u)`` stays finite) and computes ``-log(-log u)`` in float64. The noise
reaches ``noise_bounds()``, about ``(-6.56, 36.74)``: a Gumbel variate exceeds the top with
probability ``2**-53``, and each value the sampler makes has probability ``2**-53``. Noise
made from float32 uniforms (``k 2**-24``) lies in ``[-4.47, 16.64]``: a category more than
``16.64 + 4.47 = 21.11`` nats below the best one can then never win, and one 14 to 21 nats
below wins too rarely, which biases Gumbel-max sampling over large vocabularies
(:doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`). Outputs in float32 or
half precision are the float64 noise rounded once. :func:`gumbel_from_uniform` is the
injectable form of the same map, and ``keyed_minus_gumbel`` applies it to counter-based
uniforms (:mod:`gumbel_lib.keyed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from gumbel_lib._validation import check_generator, require, should_validate, working_dtype

UNIFORM_BITS = 53  # random bits of each uniform: torch.rand's float64 grid k * 2**-53
TINY = torch.finfo(torch.float64).tiny  # u = 0 becomes this, the smallest normal float64
U_MAX = 1.0 - 2.0**-UNIFORM_BITS  # the largest uniform torch.rand draws in float64


def uniform_bounds() -> tuple[float, float]:
    """The interval ``[tiny, 1 - 2**-53]`` to which the uniform is clamped (float64)."""
    return TINY, U_MAX


G_MIN = -math.log(-math.log(TINY))  # the noise of u = 0
G_MAX = -math.log(-math.log1p(-(2.0**-UNIFORM_BITS)))  # the noise of the largest uniform
_ROUNDED_BOUNDS = {
    dtype: tuple(torch.tensor([G_MIN, G_MAX], dtype=torch.float64).to(dtype).tolist())
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def noise_bounds(dtype: torch.dtype = torch.float64) -> tuple[float, float]:
    """Smallest and largest Gumbel(0, 1) noise the library can produce, rounded to ``dtype``.

    ``g_min = -log(-log(tiny))`` (``u = 0``, probability ``2**-53``) and
    ``g_max = -log(-log(1 - 2**-53))``, both attained: about ``[-6.5630, 36.7368]`` in float32
    and float64, ``[-6.5625, 36.75]`` in float16.

    >>> [round(b, 4) for b in noise_bounds(torch.float32)]
    [-6.563, 36.7368]
    """
    low, high = _ROUNDED_BOUNDS[dtype]
    return low, high


def truncated_tail_mass() -> tuple[float, float]:
    """Gumbel(0, 1) probability below ``g_min`` and above ``g_max``: ``(tiny, 2**-53)``.

    Since ``P(G <= -log(-log u)) = u``, the mass below ``g_min`` is the clamp's ``tiny``
    and the mass above ``g_max`` is ``1 - (1 - 2**-53)``. The sampler's own law is discrete:
    each of its ``2**53`` values has probability ``2**-53``, the lowest being the atom at
    ``g_min`` that ``u = 0`` makes.
    """
    return TINY, 2.0**-UNIFORM_BITS


def minus_gumbel_of(u: torch.Tensor) -> torch.Tensor:
    """``log(-log(clamp(u, tiny, 1 - 2**-53)))`` = ``-g``, in place: the one map (internal).

    ``u`` is a float64 tensor of uniforms, overwritten (out of place under ``vmap``).
    ``-log u`` is an Exp(1) variate; IEEE negation is exact, so callers fold the sign of
    ``-g`` into a later pass. On the CPU in eager mode the logarithms run in NumPy on the
    same memory: its SIMD float64 logarithm is several times faster than PyTorch's there
    (``benchmarks/tricks.py`` measures it); under ``torch.compile`` the same NumPy code runs
    as one opaque operation, so compiled noise has eager's bits.
    """
    batched = torch._C._functorch.is_batchedtensor(u)
    u = u.clamp(TINY, U_MAX) if batched else u.clamp_(TINY, U_MAX)
    if u.device.type != "cpu":
        return u.log_().neg_().log_()
    if torch.compiler.is_compiling():
        traced: torch.Tensor = _minus_gumbel_op(u)
        return traced
    memory = _numpy_memory(u)
    if memory is None:
        return u.log_().neg_().log_()
    _numpy_minus_gumbel(memory)
    return u


def _numpy_minus_gumbel(a: np.ndarray) -> None:
    """``a = log(-log a)`` in place, in NumPy (internal)."""
    np.log(a, out=a)
    np.negative(a, out=a)
    np.log(a, out=a)


@torch.library.custom_op("gumbel_lib::minus_gumbel_of", mutates_args=())
def _minus_gumbel_op(u: torch.Tensor) -> torch.Tensor:
    """``log(-log u)`` of a CPU tensor in NumPy, out of place, as one operation that
    ``torch.compile`` does not trace into (internal)."""
    out = u.clone()
    _numpy_minus_gumbel(out.numpy())
    return out


@_minus_gumbel_op.register_fake
def _(u: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(u)


def _numpy_memory(u: torch.Tensor) -> np.ndarray | None:
    """The memory of a CPU tensor (without vmap's wrappers) as an array, or ``None`` inside
    other ``torch.func`` transforms."""
    while torch._C._functorch.is_batchedtensor(u):
        u = torch._C._functorch.get_unwrapped(u)
    if torch._C._functorch.is_functorch_wrapped_tensor(u):
        return None
    return u.numpy()


def minus_gumbel(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> torch.Tensor:
    """Minus standard Gumbel noise, ``-g``, in float64 (internal, no checks).

    ``torch.rand`` in float64 mapped by ``minus_gumbel_of``: the bits of
    ``-gumbel_from_uniform(torch.rand(shape, dtype=torch.float64))`` at the same generator
    state.
    """
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    return minus_gumbel_of(u)


def keyed_minus_gumbel(
    key: int | torch.Tensor,
    position: int | torch.Tensor,
    index: torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``-g`` in float64 for rows of tokens, from counter-based uniforms (internal).

    ``key`` and ``position`` are ints or tensors of a batch shape (one per row), ``index``
    the 1-D token indices: the result has shape ``(*batch, len(index))`` and entry
    ``[..., j]`` is a pure function of ``(key, position, index[j])``
    (:func:`gumbel_lib.keyed.keyed_uniform`), mapped like every other draw.
    """
    from gumbel_lib.keyed import keyed_uniform

    def per_row(value: int | torch.Tensor) -> int | torch.Tensor:
        return value.to(index.device).unsqueeze(-1) if isinstance(value, torch.Tensor) else value

    u = keyed_uniform(per_row(key), per_row(position), index, device=device)
    return minus_gumbel_of(u)


def gumbel_from_uniform(u: torch.Tensor, *, validate_args: bool | None = None) -> torch.Tensor:
    """Map uniforms to Gumbel(0, 1) noise: ``g = -log(-log(clamp(u, tiny, 1 - 2**-53)))``.

    The injectable form of the library's one noise path: computed in float64 and rounded
    to ``u``'s dtype, so ``u = 0`` and ``u = 1`` give the finite :func:`noise_bounds`.
    Under validation ``u`` must lie in ``[0, 1]`` (NaN raises). Chapter:
    :doc:`The Gumbel distribution </book/gumbel-distribution>`.

    >>> gumbel_from_uniform(torch.tensor([0.0, 0.5, 1.0])).isfinite().all().item()
    True
    """
    if not isinstance(u, torch.Tensor) or not u.dtype.is_floating_point:
        raise TypeError("u must be a floating-point torch.Tensor")
    if should_validate(validate_args) and u.numel():
        require((u >= 0) & (u <= 1), "u must lie in [0, 1] (and not be NaN)")
    return minus_gumbel_of(u.to(torch.float64, copy=True)).neg_().to(u.dtype)


def standard_gumbel(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    """Gumbel(0, 1) noise rounded to the working dtype of ``dtype`` (no checks: internal)."""
    g = minus_gumbel(shape, generator=generator, device=device).neg_()
    return g.to(working_dtype(dtype))


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


def _check_param(value: object, name: str, shape: tuple[int, ...]) -> float | torch.Tensor:
    """``loc`` or ``scale``: a finite Python number, or a floating tensor that broadcasts to
    ``shape`` without enlarging it (else one row of noise would repeat along the new axes)."""
    if isinstance(value, torch.Tensor):
        if not value.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
        try:
            full = torch.broadcast_shapes(value.shape, shape)
        except RuntimeError as err:
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to shape {shape}"
            ) from err
        if full != torch.Size(shape):
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} would enlarge shape {shape} to "
                f"{tuple(full)}, repeating the same noise; pass shape={tuple(full)}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_range(loc: float, scale: float, dtype: torch.dtype) -> None:
    """Python-number ``loc``, ``scale``: every ``loc + scale * g`` is finite in ``dtype``."""
    g_min, g_max = G_MIN, G_MAX
    limit = torch.finfo(dtype).max * (1.0 - 1e-5)  # margin for the rounding of each step
    widest = max(abs(loc + scale * g_min), abs(loc + scale * g_max), scale * g_max)
    if not widest <= limit:
        raise ValueError(
            f"loc={loc} and scale={scale} put samples outside the finite range of {dtype}"
        )


def sample_gumbel(
    shape: Sequence[int] | torch.Size | int,
    *,
    loc: float | torch.Tensor = 0.0,
    scale: float | torch.Tensor = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Draw ``loc + scale * G`` with ``G ~ Gumbel(0, 1)``: a ``Gumbel(loc, scale)`` sample.

    The cdf is ``F(x) = exp(-exp(-(x - loc) / scale))``. ``G`` comes from the library's one
    noise path (53-bit uniforms, float64; its range is :func:`noise_bounds`); ``loc`` and
    ``scale`` are applied in float64 and the result is rounded to ``dtype`` once. The
    output has shape ``shape``: tensor ``loc`` and ``scale`` must broadcast to it without
    enlarging it. Never inf or NaN: Python-number ``loc`` and ``scale`` that could overflow
    ``dtype`` raise ``ValueError`` always; tensor ones are checked (finite, ``scale > 0``,
    finite result) under validation. Derived in
    :doc:`Location shift and scale </book/location-shift>`.

    >>> g = sample_gumbel((2, 3), generator=torch.Generator().manual_seed(0))
    >>> g.shape, g.dtype
    (torch.Size([2, 3]), torch.float32)
    """
    validate = should_validate(validate_args)
    shape = _check_shape(shape)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    check_generator(generator)
    loc = _check_param(loc, "loc", shape)
    scale = _check_param(scale, "scale", shape)
    if isinstance(scale, float) and scale <= 0.0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if isinstance(loc, float) and isinstance(scale, float):
        _check_range(loc, scale, dtype)
    elif validate:
        for name, value in (("loc", loc), ("scale", scale)):
            if isinstance(value, torch.Tensor):
                require(torch.isfinite(value), f"{name} must be finite")
        if isinstance(scale, torch.Tensor):
            require(scale > 0, "scale must be > 0")
    g = minus_gumbel(shape, generator=generator, device=device).neg_()
    if not (isinstance(scale, float) and scale == 1.0):
        g = g * (scale.to(g) if isinstance(scale, torch.Tensor) else scale)
    if not (isinstance(loc, float) and loc == 0.0):
        g = g + (loc.to(g) if isinstance(loc, torch.Tensor) else loc)
    out = g.to(dtype)
    if validate and (isinstance(loc, torch.Tensor) or isinstance(scale, torch.Tensor)):
        require(
            torch.isfinite(out),
            f"loc and scale put samples outside the finite range of {dtype}",
        )
    return out
