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
normalised as ``exp(z) / sum(exp(z))``, which needs the subtraction: see ``normalised``
in :mod:`gumbel_lib.relax_small`). A positive ``tau`` too small for the working
dtype (below its smallest normal number, where ``-tau`` would round to ``-0.0`` and
``0 / -0.0`` is NaN) is raised to that number: the sample is then one-hot, as it is in
exact arithmetic. A ``-inf`` logit gives ``y_i = 0`` exactly and a zero gradient. Half
precision is computed in float32 and cast at the end. No Python branch reads a tensor
value outside the (optional) validation: see :mod:`gumbel_lib._validation`. Small eager
samples take the lean path of :mod:`gumbel_lib.relax_small`, with the same bits.
"""

from __future__ import annotations

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
from gumbel_lib.noise import TINY
from gumbel_lib.relax_small import (
    EXP_SUM_BELOW,
    PYTORCH_EPS,
    _max_and_one_hot,
    cpu_scalar,
    lean,
    lean_sample,
    normalised,
    shift_and_check,
)
from gumbel_lib.sampling import in_place, negated_perturb, perturbed


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
    maximum at ``tau == 1`` too (for ``normalised``, whose ``exp`` needs it). The one-hot
    vector of ``argmax(l + g)`` (first maximum) comes only when asked for, from the same
    reduction as the maximum.

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
        shift_and_check(shifted, high, logits, dim, validate)
    elif validate:
        check_finite_max(high, logits, dim)  # maxima or minima: finiteness has no sign
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
        return torch.div(v, cpu_scalar(divisor_, v.dtype)), hot
    return torch.div(v, divisor_), hot


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


def _check_arguments(
    logits: torch.Tensor,
    tau: float | torch.Tensor,
    hard: object,
    eps: object,
    dim: object,
    generator: object,
    validate: bool,
) -> tuple[float | torch.Tensor, int]:
    """:func:`gumbel_softmax`'s structural checks (and ``tau``'s values under validation);
    the checked ``tau`` and the non-negative ``dim`` (internal)."""
    check_logits(logits)
    tau = check_tau_like(tau, logits, validate)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    if eps != PYTORCH_EPS:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=3)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    check_generator(generator)
    return tau, dim


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
    if lean(logits, tau, hard, eps, dim):
        try:
            return lean_sample(logits, tau, hard, dim, generator, validate)  # type: ignore[arg-type]
        except (IndexError, TypeError):  # a bad dim or generator: the checks name it
            _check_arguments(logits, tau, hard, eps, dim, generator, validate)
            raise
    tau, dim = _check_arguments(logits, tau, hard, eps, dim, generator, validate)
    if lean(logits, tau, hard, PYTORCH_EPS, dim):  # e.g. an int tau, now a float
        return lean_sample(logits, tau, hard, dim, generator, validate)  # type: ignore[arg-type]
    short = logits.shape[dim] < EXP_SUM_BELOW
    z, one_hot = _scaled_perturbed(logits, tau, dim, generator, validate, hard, short)
    soft = normalised(z, dim)
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
