"""Gumbel noise that is never infinite.

Inverse-cdf sampling: if ``U ~ Uniform(0, 1)`` then ``G = -log(-log U) ~ Gumbel(0, 1)``,
because ``P(G <= x) = P(U <= exp(-exp(-x)))``. Derived in the chapter
:doc:`The Gumbel distribution </book/gumbel-distribution>`.

In floating point ``U`` can be exactly 0 (``torch.rand`` returns multiples of ``2**-24`` in
float32, zero included), which gives ``G = -inf``; an injected ``U = 1`` gives ``+inf``.
We clamp ``U`` to ``[tiny, 1 - eps/2]`` (``tiny`` the smallest normal number, ``1 - eps/2``
the largest number below one), so ``G`` lies in ``noise_bounds(dtype)``. Half-precision
noise is made in float32 and then cast.

There is one uniform-to-Gumbel path: every sampler of the library draws ``u`` with
``torch.rand`` and maps it with the same internal function that :func:`gumbel_from_uniform`
(the injectable, tested form) uses, so a test that feeds ``u = 0`` tests every sampler.
Chapter: :doc:`The Gumbel distribution </book/gumbel-distribution>`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from gumbel_lib._validation import (
    all_finite,
    check_generator,
    should_validate,
    working_dtype,
)


def uniform_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """The clamping interval ``[tiny, 1 - eps/2]`` of the uniform, in ``dtype``'s working type."""
    bounds = _UNIFORM_BOUNDS.get(dtype)
    if bounds is None:
        info = torch.finfo(working_dtype(dtype))
        bounds = _UNIFORM_BOUNDS[dtype] = (info.tiny, 1.0 - info.eps / 2)
    return bounds


_UNIFORM_BOUNDS: dict[torch.dtype, tuple[float, float]] = {}


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


def minus_gumbel_from_uniform(u: torch.Tensor) -> torch.Tensor:
    """``log(-log(clamp(u, tiny, 1 - eps/2)))`` = ``-g``: the one uniform-to-Gumbel map (internal).

    ``u`` must already be in its working dtype (float32 or float64); it is not modified
    (the clamp is out of place, the three passes after it reuse the clamped copy). ``-log u``
    is Exp(1), so the result is the log of an exponential variate: ``-g`` bit for bit (IEEE
    negation is exact). The samplers draw their ``u`` with :func:`clamped_rand` and apply
    the same passes; they consume ``-g`` directly and fold the sign into a later pass.
    """
    return _log_exponential_of(_clamped(u, overwrite=False))


def _clamped(u: torch.Tensor, *, overwrite: bool) -> torch.Tensor:
    """``u`` clamped to ``uniform_bounds``, in place if ``overwrite`` and not under vmap."""
    lo, hi = uniform_bounds(u.dtype)
    # under torch.func.vmap the in-place clamp has no batching rule (a slow fallback loop)
    in_place = overwrite and not torch._C._functorch.is_batchedtensor(u)
    return u.clamp_(lo, hi) if in_place else u.clamp(lo, hi)


def _log_exponential_of(u: torch.Tensor) -> torch.Tensor:
    """``log(-log u)`` in place, for ``u`` already in ``[tiny, 1 - eps/2]`` (internal).

    On the CPU (not under ``torch.compile``) the three passes run in NumPy on the same
    memory. On small tensors its SIMD logarithm skips the thread pool that PyTorch's
    transcendental functions (Intel's MKL) enter from a hundred-odd entries: at two threads
    a ``log`` of 640 entries costs twice as much as at one. On large tensors which of the
    two is faster depends on the processor: NumPy's was three times faster in float32 on
    the AMD EPYC of our first measurements, PyTorch's a tenth faster at one thread (and
    twice as fast at two) on an Intel Xeon with AVX-512 (:doc:`Numerics and performance
    </book/numerics-performance>` reports the machine of the current run). Its float32
    error is below 4 ulp, against PyTorch's 1 ulp (both tested in ``tests/test_noise.py``);
    for noise that feeds an ``argmax`` or a softmax, far below anything a sample can show.
    Under ``torch.func.vmap`` the rule applies to the whole batch in memory, so a mapped draw has
    the same bits as the unmapped call on the same batch; under ``torch.compile`` the
    compiler sees one opaque operation that runs the same NumPy code, so compiled noise
    (on the eager backend, or with inductor's ``fallback_random``) has eager's bits.
    """
    if torch.compiler.is_compiling() and u.device.type == "cpu":
        traced: torch.Tensor = _log_exponential_op(u)
        return traced
    a = _numpy_memory(u)
    if a is None:
        return u.log_().neg_().log_()
    _numpy_log_exponential_of(a)
    return u


def _numpy_log_exponential_of(a: np.ndarray) -> None:
    """``a = log(-log a)``, in place, in NumPy's SIMD arithmetic (internal)."""
    np.log(a, out=a)
    np.negative(a, out=a)
    np.log(a, out=a)


@torch.library.custom_op("gumbel_lib::log_exponential_of", mutates_args=())
def _log_exponential_op(u: torch.Tensor) -> torch.Tensor:
    """``log(-log u)`` of a CPU tensor in NumPy, out of place, as one operation that
    ``torch.compile`` does not trace into (internal)."""
    out = u.clone()
    _numpy_log_exponential_of(out.numpy())
    return out


@_log_exponential_op.register_fake
def _(u: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(u)


def _numpy_memory(u: torch.Tensor) -> np.ndarray | None:
    """The memory of ``u`` (without vmap's wrappers) as an array, where NumPy's log applies
    (the caller has already sent ``torch.compile`` elsewhere)."""
    if u.device.type != "cpu":
        return None
    while torch._C._functorch.is_batchedtensor(u):
        u = torch._C._functorch.get_unwrapped(u)
    if torch._C._functorch.is_functorch_wrapped_tensor(u):
        return None
    return u.numpy()


def clamped_rand(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    """``torch.rand(shape).clamp_(tiny, 1 - eps/2)`` bit for bit, in ``dtype`` (internal).

    On the CPU (outside ``torch.compile`` and ``torch.func`` transforms) we draw with
    ``uniform_(tiny, 1)`` instead, one pass fewer: PyTorch's CPU generator makes the same
    ``u`` as ``torch.rand`` (a multiple of ``2**-24``, or ``2**-53`` in float64, below 1,
    from the same random bits) and returns ``u * (1 - tiny) + tiny``, where ``1 - tiny``
    rounds to 1 and ``u + tiny`` rounds to ``u`` unless ``u = 0``, which becomes ``tiny``:
    the clamp's lower bound. Its upper bound ``1 - eps/2`` is ``torch.rand``'s largest
    value, so it never binds. ``tests/test_noise.py`` checks the equality, at a seed
    where ``torch.rand`` returns an exact zero among others.
    """
    if len(shape):  # unpacked sizes parse faster than a torch.Size
        u = torch.empty(*shape, dtype=dtype, device=device)
    else:
        u = torch.empty((), dtype=dtype, device=device)
    if u.device.type == "cpu" and eager():
        return u.uniform_(uniform_bounds(dtype)[0], 1.0, generator=generator)
    return _clamped(
        torch.rand(u.shape, generator=generator, dtype=dtype, device=device), overwrite=True
    )


def gumbel_from_uniform(u: torch.Tensor, *, validate_args: bool | None = None) -> torch.Tensor:
    """Map uniforms to Gumbel(0, 1) noise: ``g = -log(-log(clamp(u, tiny, 1 - eps/2)))``.

    This is the injectable form of the one noise path of the library: tests feed it
    ``u = 0`` and ``u = 1`` and get finite noise. Half-precision ``u`` is mapped in
    float32, then cast back. Under validation ``u`` must lie in ``[0, 1]`` (NaN raises).
    Chapter: :doc:`The Gumbel distribution </book/gumbel-distribution>`.

    >>> gumbel_from_uniform(torch.tensor([0.0, 0.5, 1.0])).isfinite().all().item()
    True
    """
    if not isinstance(u, torch.Tensor) or not u.dtype.is_floating_point:
        raise TypeError("u must be a floating-point torch.Tensor")
    if should_validate(validate_args) and u.numel():
        if not bool(((u >= 0) & (u <= 1)).all()):
            raise ValueError("u must lie in [0, 1] (and not be NaN)")
    wide = u.to(working_dtype(u.dtype))  # half precision cannot even hold 1 - eps/2
    return minus_gumbel_from_uniform(wide).neg_().to(u.dtype)


def log_exponential(
    shape: Sequence[int] | torch.Size,
    *,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    """Minus Gumbel(0, 1) noise, ``-g``, in the working dtype of ``dtype`` (internal, no checks).

    A :func:`clamped_rand` draw mapped in place by the second half of
    :func:`minus_gumbel_from_uniform`: the same bits as that function (the path that
    :func:`gumbel_from_uniform` exposes) applied to ``torch.rand`` at the same generator
    state.
    """
    dtype = working_dtype(dtype)
    # device None means the default device, which can be set to a GPU: the general path
    if device is not None and torch.device(device).type == "cpu" and eager():
        return eager_cpu_log_exponential(shape, generator, dtype)
    return _log_exponential_of(
        clamped_rand(shape, generator=generator, dtype=dtype, device=device)
    )


CPU = torch.device("cpu")


def eager() -> bool:
    """Whether we run in plain eager mode: not traced by ``torch.compile``, not inside a
    ``torch.func`` transform such as ``vmap`` (internal)."""
    return torch._C._functorch.maybe_current_level() is None and not torch.compiler.is_compiling()


def eager_cpu_log_exponential(
    shape: Sequence[int] | torch.Size, generator: torch.Generator | None, dtype: torch.dtype
) -> torch.Tensor:
    """:func:`log_exponential` on the CPU in :func:`eager` mode, for a float32 or float64
    ``dtype``, without its dispatch (internal; the caller has checked all three).

    The same operations, so the same bits: the ``uniform_(tiny, 1)`` draw of
    :func:`clamped_rand` into a fresh contiguous tensor and NumPy's three passes over its
    memory. Small samplers call it directly: each check it skips costs a sizeable share of a
    call on a few hundred entries.
    """
    # unpacked sizes parse faster than a torch.Size
    u = (
        torch.empty(*shape, dtype=dtype, device=CPU)
        if shape
        else torch.empty((), dtype=dtype, device=CPU)
    )
    u.uniform_(TINY[dtype], 1.0, generator=generator)
    _numpy_log_exponential_of(u.numpy())
    return u


# the smallest normal number of each working dtype: uniform_bounds' lower end, as a dict
TINY = {dtype: torch.finfo(dtype).tiny for dtype in (torch.float32, torch.float64)}


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
    g_min, g_max = noise_bounds(dtype)
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

    The cdf is ``F(x) = exp(-exp(-(x - loc) / scale))``. The standard noise comes from
    the path of :func:`gumbel_from_uniform`, in float32 (float64 when ``dtype`` is float64),
    and is cast to ``dtype`` last; its range is :func:`noise_bounds`. The output has shape
    ``shape``: tensor ``loc`` and ``scale`` must broadcast to it without enlarging it.
    Never inf or NaN: Python-number ``loc`` and ``scale`` that could overflow ``dtype``
    raise ``ValueError`` always; tensor ones are checked (finite, ``scale > 0``, finite
    result) under validation. Derived in
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
            if isinstance(value, torch.Tensor) and not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name} must be finite")
        if isinstance(scale, torch.Tensor) and not bool((scale > 0).all()):
            raise ValueError("scale must be > 0")
    g = standard_gumbel(shape, generator=generator, dtype=dtype, device=device)
    if not (isinstance(scale, float) and scale == 1.0):
        g = g * (scale.to(g) if isinstance(scale, torch.Tensor) else scale)
    if not (isinstance(loc, float) and loc == 0.0):
        g = g + (loc.to(g) if isinstance(loc, torch.Tensor) else loc)
    out = g.to(dtype)
    if validate and (isinstance(loc, torch.Tensor) or isinstance(scale, torch.Tensor)):
        if out.numel() and not all_finite(out) and not bool(torch.isfinite(out).all()):
            raise ValueError(f"loc and scale put samples outside the finite range of {dtype}")
    return out
