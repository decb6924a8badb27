"""Small relaxed samples in eager mode: one autograd node, and the arithmetic every path shares.

:func:`gumbel_lib.relax.gumbel_softmax` computes ``softmax((l + g) / tau)`` in one of two
ways. The *recorded* path (in :mod:`gumbel_lib.relax`) is made of PyTorch operations that
autograd records, ``torch.compile`` traces and ``torch.func.vmap`` batches; it serves
large inputs, tensor temperatures, half precision, GPUs and the transforms. The *lean*
path here serves the common small case, a float32 or float64 CPU tensor with a Python
temperature in plain eager mode: it computes the same operations in the noise's storage,
recording nothing, and when a gradient is needed wraps them in one autograd node whose
backward pass is the softmax chain rule ``y * (v - sum(v * y)) / tau`` of
:doc:`The gradient </book/gradient>`. On a 64 x 10 sample that is what makes a call with its
backward pass cheaper than ``torch.nn.functional.gumbel_softmax``
(:doc:`Numerics and performance </book/numerics-performance>`).

Both paths share the steps below (the row maximum's shift and its validation probe, the
division by ``tau``, the normalisation), so a given sample has the same bits on either;
``tests/test_fast_paths.py`` checks it. At this size every Python operation costs a visible
share of the call, which is why the lean functions are flat and few.
"""

from __future__ import annotations

import functools
import math

import torch

from gumbel_lib._validation import check_finite_max
from gumbel_lib.noise import TINY, eager, eager_cpu_log_exponential
from gumbel_lib.sampling import IN_PLACE_FROM, first_hit_score

PYTORCH_EPS = 1e-10  # the default of F.gumbel_softmax's deprecated ``eps``


@functools.lru_cache(maxsize=256)
def cpu_scalar(value: float, dtype: torch.dtype) -> torch.Tensor:
    """``value`` as a 0-dim CPU tensor of ``dtype``, made once (internal).

    Dividing by it gives the same bits as dividing by the Python number (which PyTorch
    converts to ``dtype`` too), but PyTorch no longer wraps and converts the number on
    every call and again in the backward pass: about 1.5 us of a 25 us sample at 64 x 10.
    Made outside inference mode, so that autograd may save it.
    """
    with torch.inference_mode(False):
        return torch.tensor(value, dtype=dtype, device="cpu")


def shift_and_check(
    z: torch.Tensor, high: torch.Tensor, logits: torch.Tensor, dim: int, validate: bool
) -> None:
    """``z -= high`` in place (``high``: the row maxima of ``z``, or its minima when ``z``
    holds ``-(l + g)``: finiteness has no sign); under validation, first check that every
    row's extreme is finite (internal).

    :func:`~gumbel_lib._validation.check_finite_max` reads one number, the sum of ``high``,
    which is NaN or infinite when an extreme is (a huge finite sum can also overflow: then
    the exact check runs and passes). Probing the shifted ``z`` instead (a row with a
    non-finite extreme turns NaN) reduces ten times as many numbers at 10 categories; in the
    benchmark's rotation that costs a microsecond or more of a 35 us call at 64 x 10, though
    in a tight loop of one call the two are even.
    """
    if validate:
        check_finite_max(high, logits, dim)
    z.sub_(high)


EXP_SUM_BELOW = 32  # categories below which a sample is normalised as exp(z) / sum(exp(z))


def normalised(z: torch.Tensor, dim: int, *, overwrite: bool = False) -> torch.Tensor:
    """``softmax(z)`` along ``dim``, for ``z`` whose row maxima are exactly 0 (internal).

    Below :data:`EXP_SUM_BELOW` categories we compute ``e / sum(e)`` with ``e = exp(z)``
    (``overwrite``: in ``z``'s storage): PyTorch's CPU softmax along a last dimension that
    short is a scalar loop, twenty times slower than these three vectorised passes at ten
    categories (the benchmark's ``softmax`` component row against ``exp``). With ``z <= 0``
    and a zero in every row, ``e`` lies in ``[0, 1]`` and its sum in ``[1, n]``: nothing
    overflows or underflows to a zero sum, and the result is as accurate as PyTorch's
    (``tests/test_fast_paths.py`` bounds both against float64). Wider rows keep
    ``torch.softmax``. The rule depends on the shape only, so every path (eager, autograd
    node, ``vmap``, ``torch.compile``) normalises a given sample the same way.
    """
    if z.shape[dim] >= EXP_SUM_BELOW:
        return torch.softmax(z, dim)
    if overwrite:
        e = z.exp_()
        return e.div_(e.sum(dim, True))
    e = z.exp()
    return e / e.sum(dim, True)


def _max_and_one_hot(
    z: torch.Tensor, dim: int, *, negated: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``max(z)`` along ``dim`` (kept) and the one-hot vector, in ``z``'s dtype, of its first
    position; with ``negated``, ``min(z)`` and its first position (``z`` holds ``-(l + g)``).

    No branch on values: small tensors (and other devices) take the extreme and its first
    index from one ``max``/``min`` (one reduction, not ``amax`` plus ``argmax``) and scatter;
    on the CPU, large ones score the hits ``z == max`` by ``n - i`` and keep the best score,
    four vectorised passes instead of PyTorch's scalar index-tracking loop.
    """
    n = z.shape[dim]
    if z.numel() < 2**15 or n > 2**24 or z.device.type != "cpu":
        high, first = z.min(dim, True) if negated else z.max(dim, True)
        if torch._C._functorch.is_batchedtensor(z):  # vmap has no rule for scatter_ in place
            return high, torch.zeros_like(z).scatter(dim, first, 1.0)
        return high, torch.zeros_like(z).scatter_(dim, first, 1.0)
    high = z.amin(dim, True) if negated else z.amax(dim, True)
    score = first_hit_score(torch.eq(z, high, out=torch.empty_like(z)), dim)
    return high, score.eq_(score.amax(dim, True))


def _lean_perturbed(
    logits: torch.Tensor, dim: int, generator: torch.Generator | None, hard: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``z = l + g`` in the noise's storage, its row maxima and (``hard``) the one-hot
    vector of the first maximum, recording nothing (internal; :func:`lean` inputs)."""
    z = eager_cpu_log_exponential(logits.shape, generator, logits.dtype)  # -g
    z = torch.sub(logits, z, out=z)  # l - (-g)
    if not hard:
        return z, z.amax(dim, True), None
    return z, *_max_and_one_hot(z, dim)


def _lean_one_hot(
    logits: torch.Tensor, dim: int, generator: torch.Generator | None, validate: bool
) -> torch.Tensor:
    """A hard sample that needs no gradient: the one-hot vector alone, with the bits of the
    recorded path's straight-through value (which rounds to it exactly) and no softmax."""
    _, high, hot = _lean_perturbed(logits, dim, generator, True)
    if validate:
        check_finite_max(high, logits, dim)
    assert hot is not None
    return hot


def _divisor(tau: float, dtype: torch.dtype) -> torch.Tensor | None:
    """``tau`` raised to the dtype's smallest normal number, as a cached 0-dim tensor;
    ``None`` at ``tau == 1``, where dividing would change no bit (internal)."""
    return None if tau == 1.0 else cpu_scalar(max(tau, TINY[dtype]), dtype)


def _lean_normalised(
    z: torch.Tensor,
    high: torch.Tensor,
    logits: torch.Tensor,
    dim: int,
    divisor: torch.Tensor | None,
    validate: bool,
) -> torch.Tensor:
    """The relaxed sample from ``z = l + g`` and its row maxima ``high``, in ``z``'s storage,
    recording nothing (internal; :func:`lean` inputs).

    The operations of ``relax._scaled_perturbed`` and :func:`normalised` for a small input,
    so the same bits: ``z -= high``, ``z /= tau`` (the :func:`_divisor`, none at
    ``tau = 1``) and the normalisation. On short rows the validation probe reads the row
    sums of ``exp(z)``, which the normalisation computes anyway: a row whose maximum was NaN
    or infinite is NaN after the shift, so its sum is NaN, while every other row sums to a
    number in ``[1, n]``. Their ``max`` is NaN exactly when a row is bad, and PyTorch's
    whole-tensor ``max`` is its cheapest reduction: about two microseconds less than
    :func:`shift_and_check`'s sum of the maxima, in the benchmark's rotation at 64 x 10.
    """
    if z.shape[dim] >= EXP_SUM_BELOW:
        shift_and_check(z, high, logits, dim, validate)
        if divisor is not None:
            z.div_(divisor)
        return torch.softmax(z, dim)
    z.sub_(high)
    if divisor is not None:
        z.div_(divisor)
    e = z.exp_()
    sums = e.sum(dim, True)
    if validate and not math.isfinite(sums.max().item()):  # _lean: never empty
        check_finite_max(high, logits, dim)  # raises
    return e.div_(sums)


class _RelaxedSample(torch.autograd.Function):
    """An eager relaxed sample as one autograd node, for :func:`lean` inputs that need a
    gradient (internal).

    The forward pass records nothing and computes the operations of the recorded path
    (:func:`_lean_perturbed`, :func:`_lean_normalised`), so the same bits. The backward pass
    is the chain rule ``y * (v - sum(v * y)) / tau`` of :doc:`The gradient </book/gradient>`
    for the incoming gradient ``v``, as PyTorch's ``_softmax_backward_data`` (itself
    differentiable, so double backward works) on the saved output ``y``. One node instead
    of the recorded three to five makes both passes of a small call cheaper (benchmarks,
    shape 64 x 10). The settings travel as one tuple, which ``apply`` inspects faster than
    four arguments, and the hard sample has a class of its own, so that this backward pass
    handles one gradient and nothing else.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        logits: torch.Tensor,
        settings: tuple[torch.Tensor | None, int, torch.Generator | None, bool],
    ) -> torch.Tensor:
        divisor, dim, generator, validate = settings
        z, high, _ = _lean_perturbed(logits, dim, generator, False)
        y = _lean_normalised(z, high, logits, dim, divisor, validate)
        ctx.save_for_backward(y)
        ctx.settings = settings  # type: ignore[attr-defined]
        return y

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        divisor, dim, _, _ = ctx.settings  # type: ignore[attr-defined]
        grad = torch._softmax_backward_data(grad, y, dim, y.dtype)
        return (grad if divisor is None else grad.div_(divisor)), None


class _RelaxedSampleHard(torch.autograd.Function):
    """:class:`_RelaxedSample` for a hard sample: it returns the one-hot vector and ``y``
    (both outputs, so that ``y`` keeps its graph); the gradient of either is ``y``'s."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        logits: torch.Tensor,
        settings: tuple[torch.Tensor | None, int, torch.Generator | None, bool],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        divisor, dim, generator, validate = settings
        z, high, hot = _lean_perturbed(logits, dim, generator, True)
        assert hot is not None
        y = _lean_normalised(z, high, logits, dim, divisor, validate)
        ctx.save_for_backward(y)
        ctx.settings = settings  # type: ignore[attr-defined]
        ctx.set_materialize_grads(False)
        return hot, y

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx,
        grad_hot: torch.Tensor | None,
        grad_y: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, None]:
        grad = grad_hot if grad_y is None else grad_y if grad_hot is None else grad_hot + grad_y
        if grad is None:
            return None, None
        return _RelaxedSample.backward(ctx, grad)


def lean(logits: torch.Tensor, tau: object, hard: object, eps: object, dim: object) -> bool:
    """Whether :func:`lean_sample` computes this sample (internal): the lean path's own
    conditions (a small, non-empty, dense float32 or float64 CPU tensor of the plain
    tensor types, of rank 1 or more, in :func:`~gumbel_lib.noise.eager` mode) and the
    structural checks that a wrong argument would otherwise pass silently (a finite
    positive Python ``tau``, a bool ``hard``, ``eps`` at its default, an int ``dim``).

    The other checks of :func:`~gumbel_lib.relax.gumbel_softmax` are left to PyTorch: a
    ``dim`` out of range or a ``generator`` of the wrong type makes the first operation that
    uses it raise, and the caller then runs its own checks, which name the argument. With
    the backward pass, a 64 x 10 sample lasts about 80 microseconds, and the checks that
    this skips cost three of them in the benchmark's rotation.
    """
    return (
        type(tau) is float
        and 0.0 < tau < math.inf
        and (hard is False or hard is True)
        and type(dim) is int
        and eps == PYTORCH_EPS
        and type(logits) in _PLAIN_TENSORS
        and logits.dtype in TINY
        and logits.is_cpu
        and 0 < logits.numel() < IN_PLACE_FROM
        and logits.dim() > 0  # PyTorch takes dim=-1 of a rank-0 tensor
        and logits.layout is torch.strided
        and eager()
    )


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)  # not subclasses with their own dispatch


def lean_sample(
    logits: torch.Tensor,
    tau: float,
    hard: bool,
    dim: int,
    generator: torch.Generator | None,
    validate: bool,
) -> torch.Tensor:
    """:func:`~gumbel_lib.relax.gumbel_softmax` for :func:`lean` arguments (internal).

    With a gradient to record: one :class:`_RelaxedSample` (or :class:`_RelaxedSampleHard`)
    node. Without: the same arithmetic directly, and for a hard sample only the one-hot
    vector (the straight-through value rounds to it exactly, so the softmax would be
    wasted). ``dim`` may be negative.
    """
    settings = (_divisor(tau, logits.dtype), dim, generator, validate)
    if logits.requires_grad and torch.is_grad_enabled():
        if hard:
            sample: torch.Tensor = _apply_hard(logits, settings)[0]
            return sample
        soft: torch.Tensor = _apply_soft(logits, settings)
        return soft
    if hard:
        return _lean_one_hot(logits, dim, generator, validate)
    z, high, _ = _lean_perturbed(logits, dim, generator, False)
    return _lean_normalised(z, high, logits, dim, settings[0], validate)


# ``Function.apply`` without its Python layer, which binds default arguments for
# ``setup_context``-style functions, routes ``torch.func`` transforms and unwraps tensors
# left over from them: none of it applies to :func:`lean` inputs, and skipping it saves a
# microsecond per call. What remains is the C++ ``apply`` that it calls itself.
_apply_soft = super(torch.autograd.Function, _RelaxedSample).apply
_apply_hard = super(torch.autograd.Function, _RelaxedSampleHard).apply
