"""The Gumbel-softmax (Concrete) relaxation and its straight-through variant.

A relaxed sample is ``y = softmax((l + g) / tau)`` with ``g`` i.i.d. Gumbel(0, 1) noise
(Jang et al., 2017; Maddison et al., 2017). Its Jacobian is
``dy_i / dl_j = y_i (delta_ij - y_j) / tau``. Chapters:
:doc:`The softmax relaxation </book/softmax-relaxation>` and
:doc:`The gradient </book/gradient>`; the hard variant in
:doc:`Straight-through and hard samples </book/straight-through>`.

Numerics: we subtract ``max(l + g)`` before dividing by ``tau``, so the scaled values are
``<= 0`` with one exact zero and never overflow, whatever ``tau`` and however large the
finite logits (at ``tau = 1`` the softmax's own subtraction of the maximum does this, with
the same bits, in rows of at least ``EXP_SUM_BELOW`` categories; shorter rows are
normalised as ``exp(z) / sum(exp(z))``, which needs the subtraction: see
``_normalised``). A positive ``tau`` too small for the working dtype (below its smallest
normal number, where ``-tau`` would round to ``-0.0`` and ``0 / -0.0`` is NaN) is raised
to that number: the sample is then one-hot, as it is in exact arithmetic. A ``-inf``
logit gives ``y_i = 0`` exactly and a zero gradient. Half precision is computed in float32
and cast at the end. No Python branch reads a tensor value outside the (optional)
validation: see :mod:`gumbel_lib._validation`.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch

from gumbel_lib._validation import (
    check_categories,
    check_dim,
    check_finite_max,
    check_generator,
    check_logits,
    check_tau_like,
    should_validate,
)
from gumbel_lib.noise import log_exponential
from gumbel_lib.sampling import (
    IN_PLACE_FROM,
    first_hit_score,
    in_place,
    negated_perturb,
    perturbed,
)

TINY = {dtype: torch.finfo(dtype).tiny for dtype in (torch.float32, torch.float64)}
PYTORCH_EPS = 1e-10  # the default of F.gumbel_softmax's deprecated ``eps``


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass.

    Computed as ``hard + (soft - soft.detach())``: the bracket is exactly zero in floating
    point, so the forward value equals ``hard`` bit for bit by construction. Chapter:
    :doc:`Straight-through and hard samples </book/straight-through>`.

    >>> soft = torch.tensor([0.2, 0.8], requires_grad=True)
    >>> straight_through(torch.tensor([0.0, 1.0]), soft).tolist()
    [0.0, 1.0]
    """
    return hard + (soft - soft.detach())


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


def _scaled_perturbed(
    logits: torch.Tensor,
    tau: float | torch.Tensor,
    dim: int,
    generator: torch.Generator | None,
    validate: bool,
    want_one_hot: bool = False,
    shift_always: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Values whose softmax along ``dim`` is ``softmax((l + g) / tau)``; the argmax one-hot.

    For ``tau != 1`` the values are ``((l + g) - max(l + g)) / tau``. For ``tau == 1`` (a
    Python number) there is nothing to divide and we return ``l + g`` itself: ``softmax``
    and ``log_softmax`` subtract the row maximum on their own, and since
    ``max((l + g) - m) == 0`` exactly, our subtraction would change no bit of their result.
    Either way no value that reaches them overflows. With ``shift_always`` we subtract the
    maximum at ``tau == 1`` too (for :func:`_normalised`, whose ``exp`` needs it). The
    one-hot vector of ``argmax(l + g)`` (first maximum) comes only when asked for, from the
    same reduction as the maximum.

    Autograd sees two nodes, as in ``F.gumbel_softmax``: ``l - (-g)`` (gradient identity)
    and the division. Subtracting the (constant) maximum also has gradient identity, so we
    do it in place on the detached alias of the same storage; the subtraction's node saved
    no tensor that this could make stale.
    """
    # Large inputs work on v = -(l + g), made in the noise's storage with no extra pass;
    # every step below is exact under the sign change, so the result is the same bits.
    negated = in_place(logits)
    v = negated_perturb(logits, generator) if negated else perturbed(logits, generator)
    shifted = v.detach()  # same storage: in-place work on it is invisible to autograd
    if want_one_hot:  # max(l + g) (or min of v) and its one-hot
        high, hot = _max_and_one_hot(shifted, dim, negated=negated)
    else:
        high, hot = (shifted.amin(dim, True) if negated else shifted.amax(dim, True)), None
    scaled = isinstance(tau, torch.Tensor) or tau != 1.0
    shift = scaled or shift_always
    if shift:
        _shift_and_check(shifted, high, logits, dim, validate, negated)
    elif validate and not math.isfinite(high.sum().item()):
        check_finite_max(high.neg() if negated else high, logits, dim)  # only on failure
    if not scaled:
        return (v.neg_() if negated else v), hot
    if isinstance(tau, torch.Tensor):
        divisor = tau.to(v.dtype).clamp_min(TINY[v.dtype])
        divisor = divisor.neg() if negated else divisor
        if divisor.requires_grad:
            return _divide_keeping_tau_gradient_finite(v, divisor), hot
        return v.div_(divisor), hot
    divisor_ = max(tau, TINY[v.dtype])
    if negated:  # large: in the noise's storage
        return v.div_(-divisor_), hot
    if v.device.type == "cpu" and not torch.compiler.is_compiling():
        return torch.div(v, _cpu_scalar(divisor_, v.dtype)), hot
    return torch.div(v, divisor_), hot


@functools.lru_cache(maxsize=256)
def _cpu_scalar(value: float, dtype: torch.dtype) -> torch.Tensor:
    """``value`` as a 0-dim CPU tensor of ``dtype``, made once (internal).

    Dividing by it gives the same bits as dividing by the Python number (which PyTorch
    converts to ``dtype`` too), but PyTorch no longer wraps and converts the number on
    every call and again in the backward pass: about 1.5 us of a 25 us sample at 64 x 10.
    Made outside inference mode, so that autograd may save it.
    """
    with torch.inference_mode(False):
        return torch.tensor(value, dtype=dtype, device="cpu")


def _shift_and_check(
    z: torch.Tensor,
    high: torch.Tensor,
    logits: torch.Tensor,
    dim: int,
    validate: bool,
    negated: bool = False,
) -> None:
    """``z -= high`` in place (``high``: the row maxima of ``z``, or minima if ``negated``);
    under validation, check that every row's extreme was finite (internal).

    A row whose extreme is NaN or infinite becomes NaN, so one read suffices: for a small
    ``z`` its overall ``max`` (cheaper than a sum there), else the sum of ``high`` (a huge
    finite sum can overflow: then the exact check runs and passes).
    """
    z.sub_(high)
    if validate and not math.isfinite((z.max() if 0 < z.numel() < 2**12 else high.sum()).item()):
        check_finite_max(high.neg() if negated else high, logits, dim)  # only on failure


def _divide_keeping_tau_gradient_finite(v: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """``v / divisor`` for a ``divisor`` that needs a gradient.

    Where ``v / tau**2`` overflows (a masked category, ``v = -inf``, or a finite ``v`` so
    far below the maximum that the backward pass's ``-v / tau / tau`` does) the sample is
    exactly 0, so is its softmax gradient, and the plain quotient's ``d/d tau`` would be
    ``0 * inf = NaN``. There we divide a stand-in 0 and put the quotient back with ``where``:
    the same forward bits, and those entries add exactly 0 to the temperature's gradient,
    their true contribution (``exp(v / tau)`` underflowed to 0 long before).
    """
    quotient = v.detach() / divisor.detach()
    infinite = torch.isinf(quotient / divisor.detach())
    finite = torch.div(torch.where(infinite, torch.zeros_like(v), v), divisor)
    return torch.where(infinite, quotient, finite)


def _straight_through_unit(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """:func:`straight_through` for ``hard`` in {0, 1} and ``soft`` in [0, 1], one autograd op.

    ``soft + (hard - soft)`` rounds to ``hard`` exactly: for ``hard = 0`` both steps are
    exact; for ``hard = 1`` and ``soft >= 1/2``, ``1 - soft`` is exact (Sterbenz); for
    ``soft < 1/2`` it rounds by at most half an ulp of numbers in ``[1/2, 1)``, so the sum
    lies within half an ulp below 1 (a tie rounds to the even 1.0) or strictly closer above.
    ``hard`` is overwritten.
    """
    return soft + hard.sub_(soft.detach())


EXP_SUM_BELOW = 32  # categories below which a sample is normalised as exp(z) / sum(exp(z))


def _normalised(z: torch.Tensor, dim: int, *, overwrite: bool = False) -> torch.Tensor:
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


class _RelaxedSample(torch.autograd.Function):
    """An eager relaxed sample as one autograd node, for small CPU inputs (internal).

    The forward pass computes the operations of :func:`_scaled_perturbed` (for a small
    input) and :func:`_normalised` without recording anything (the same operations, so the
    same bits, as the recorded path); the
    backward pass is the chain rule ``y * (v - sum(v * y)) / tau`` of
    :doc:`The gradient </book/gradient>` (PyTorch's ``_softmax_backward_data``, which is
    itself differentiable, so double backward works) on the saved output ``y``. One node
    instead of the recorded three to five makes both passes of a small call cheaper
    (benchmarks, shape 64 x 10). A hard sample returns the one-hot
    vector and ``y`` (both outputs, so ``y`` keeps its graph); its gradient is ``y``'s.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        logits: torch.Tensor,
        tau: float,
        dim: int,
        generator: torch.Generator | None,
        validate: bool,
        hard: bool,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        low = TINY[logits.dtype]
        z = log_exponential(
            logits.shape, generator=generator, dtype=logits.dtype, device=logits.device
        )
        z = torch.sub(logits, z, out=z)  # l + g, in the noise's storage
        high, hot = _max_and_one_hot(z, dim) if hard else (z.amax(dim, True), None)
        _shift_and_check(z, high, logits, dim, validate)
        divisor = _cpu_scalar(max(tau, low), z.dtype)
        soft = _normalised(z.div_(divisor), dim, overwrite=True)
        ctx.save_for_backward(soft)
        ctx.dim, ctx.divisor = dim, divisor  # type: ignore[attr-defined]
        if hot is None:
            return soft
        ctx.set_materialize_grads(False)
        return hot, soft

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, *grads: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, None, None, None, None]:
        grad = grads[0]
        if len(grads) == 2 and grads[1] is not None:  # hard: the one-hot output, then y
            grad = grads[1] if grad is None else grad + grads[1]
        if grad is None:
            return None, None, None, None, None, None
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        dim, divisor = ctx.dim, ctx.divisor  # type: ignore[attr-defined]
        grad_logits = torch._softmax_backward_data(grad, y, dim, y.dtype).div_(divisor)
        return grad_logits, None, None, None, None, None


def _one_node(logits: torch.Tensor, tau: float | torch.Tensor) -> bool:
    """Whether :class:`_RelaxedSample` computes this sample: a small float32 or float64 CPU
    input that needs a gradient, a Python-number ``tau``, eager mode (not under
    ``torch.compile`` or a ``torch.func`` transform, which need the recorded path)."""
    return (
        logits.requires_grad
        and type(tau) is float
        and logits.is_cpu
        and logits.numel() < IN_PLACE_FROM
        and logits.dtype in TINY
        and torch.is_grad_enabled()
        and torch._C._functorch.maybe_current_level() is None
        and not torch.compiler.is_compiling()
    )


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    hard: bool = False,
    eps: float = PYTORCH_EPS,
    dim: int = -1,
    *,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """A relaxed one-hot sample ``softmax((logits + g) / tau)`` along ``dim``.

    Drop-in for ``torch.nn.functional.gumbel_softmax(logits, tau, hard, eps, dim)``, with
    the same positional order (``eps`` is ignored with PyTorch's deprecation warning), a
    ``generator`` for reproducibility and ``validate_args``. With ``hard=True`` the forward
    value is exactly the one-hot vector of ``argmax(logits + g)`` (the same noise) and the
    gradient is that of the soft sample (straight-through). ``tau`` is a finite positive
    number, or a tensor that broadcasts to ``logits`` (a learnable temperature: it keeps its
    gradient; its values are checked under validation). Chapter:
    :doc:`The softmax relaxation </book/softmax-relaxation>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> y = gumbel_softmax(torch.zeros(2, 4), tau=0.5, generator=gen)
    >>> torch.allclose(y.sum(-1), torch.ones(2))
    True
    """
    validate = should_validate(validate_args)
    check_logits(logits)
    tau = check_tau_like(tau, logits, validate)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    if eps != PYTORCH_EPS:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    if _one_node(logits, tau):
        out = _RelaxedSample.apply(logits, tau, dim, generator, validate, hard)
        sample: torch.Tensor = out[0] if hard else out
        return sample
    short = logits.shape[dim] < EXP_SUM_BELOW
    z, one_hot = _scaled_perturbed(logits, tau, dim, generator, validate, hard, short)
    soft = _normalised(z, dim)
    if one_hot is not None:
        soft = _straight_through_unit(one_hot, soft)
    return soft if soft.dtype == logits.dtype else soft.to(logits.dtype)


def relaxed_log_sample(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``log y`` for a relaxed sample ``y``: ``log_softmax((logits + g) / tau)``.

    At low temperature ``y`` underflows to exact zeros while ``log y`` stays finite: where
    the true value lies below the most negative finite number of the output dtype (float16
    at small ``tau``, or any dtype at ``tau`` near its smallest normal number) it saturates
    there. Masked categories (logit ``-inf``) get ``-inf``, exactly ``log 0``. Pass the
    result to ``concrete_log_prob(..., log_input=True)``. Chapter:
    :doc:`The softmax relaxation </book/softmax-relaxation>`.

    >>> log_y = relaxed_log_sample(torch.zeros(3), 0.1, generator=torch.Generator().manual_seed(0))
    >>> round(log_y.exp().sum().item(), 6)
    1.0
    """
    validate = should_validate(validate_args)
    check_logits(logits)
    tau = check_tau_like(tau, logits, validate)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    z, _ = _scaled_perturbed(logits, tau, dim, generator, validate)
    floor = torch.finfo(logits.dtype).min
    # -inf only where the logit is -inf (masked); overflowed finite categories saturate
    saturated = torch.where(logits > -torch.inf, z.clamp_min(floor), z)
    return torch.log_softmax(saturated, dim=dim).to(logits.dtype)
