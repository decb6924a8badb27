"""The Gumbel-softmax (Concrete) relaxation and its straight-through variant.

A relaxed sample is ``y = softmax((l + g) / tau)`` with ``g`` i.i.d. Gumbel(0, 1) noise
(Jang et al., 2017; Maddison et al., 2017). Its Jacobian is
``dy_i / dl_j = y_i (delta_ij - y_j) / tau``. Chapters:
:doc:`The softmax relaxation </book/softmax-relaxation>` and
:doc:`The gradient </book/gradient>`; the hard variant in
:doc:`Straight-through and hard samples </book/straight-through>`.

The path from a call to its result, all in this module and :mod:`gumbel_lib.noise`:

1. ``-g`` in float64 (``gumbel_lib.noise.minus_gumbel``), rounded to the working dtype
   (float32 for half precision), and ``z = l + g``: autograd records one node, whose
   gradient is the identity.
2. ``z / tau``, and the softmax along ``dim`` (``_scaled``). The quotient must not
   overflow: a row maximum of ``z / tau`` equal to ``+inf`` makes the softmax NaN. Under
   validation the check of the logits reads one number, the largest ``|z|``; when it is
   below ``tau`` times half the largest float, every value is finite and no quotient can
   overflow, and we divide as ``torch.nn.functional.gumbel_softmax`` does. Otherwise (masked
   categories, huge logits, a tensor ``tau``, or bad values, which the full check then
   names), and always with validation off (where nothing may be read), we first subtract
   the row maximum, so the quotients are ``<= 0`` with one exact zero per row: a constant
   shift, invisible to the softmax and to the gradient. A positive ``tau`` below the dtype's
   smallest normal number (where ``0 / tau`` would be NaN) is raised to that number; the
   sample is then one-hot, as it is in exact arithmetic.
3. ``hard=True``: the one-hot vector of ``argmax((l - max l) + g)`` computed in float64,
   so the forward value is exactly the sample :func:`gumbel_lib.sampling.gumbel_max` draws
   from the same generator state, and the gradient is the soft sample's (straight-through).

A ``-inf`` logit gives ``y_i = 0`` exactly and a zero gradient. No Python branch reads a
tensor value outside validation, and validation itself runs as a tensor assertion under
``torch.compile`` (see :doc:`Validation and devices </book/api-settings>`).
"""

from __future__ import annotations

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
    tracing,
    working_dtype,
)
from gumbel_lib.noise import minus_gumbel

PYTORCH_EPS = 1e-10  # the default of F.gumbel_softmax's deprecated ``eps``
TINY = {dtype: torch.finfo(dtype).tiny for dtype in (torch.float32, torch.float64)}
HALF_MAX = {dtype: torch.finfo(dtype).max / 2 for dtype in (torch.float32, torch.float64)}


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard`` in the forward pass, the gradient of ``soft`` in the backward pass.

    Computed as ``hard + (soft - soft.detach())``: the bracket is exactly zero in floating
    point, so the forward value equals ``hard`` exactly (up to the sign of a zero:
    ``-0.0 + 0.0`` is ``+0.0``) by construction. Chapter:
    :doc:`Straight-through and hard samples </book/straight-through>`.

    >>> soft = torch.tensor([0.2, 0.8], requires_grad=True)
    >>> straight_through(torch.tensor([0.0, 1.0]), soft).tolist()
    [0.0, 1.0]
    """
    return hard + (soft - soft.detach())


def _straight_through_unit(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """:func:`straight_through` for ``hard`` in {0, 1} and ``soft`` in [0, 1], one autograd op.

    ``soft + (hard - soft)`` rounds to ``hard`` exactly: for ``hard = 0`` both steps are
    exact; for ``hard = 1`` and ``soft >= 1/2``, ``1 - soft`` is exact (Sterbenz); for
    ``soft < 1/2`` it rounds by at most half an ulp of numbers in ``[1/2, 1)``, so the sum
    lies within half an ulp below 1 (a tie rounds to the even 1.0) or strictly closer above.
    ``hard`` is overwritten.
    """
    return soft + hard.sub_(soft.detach())


def _perturbed(
    logits: torch.Tensor, generator: torch.Generator | None, dim: int, hard: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``z = l + g`` in the working dtype (one autograd node) and, when ``hard``, the
    one-hot vector of the :func:`~gumbel_lib.sampling.gumbel_max` sample of the same noise
    (the first maximum of the float64 sums ``(l - max l) + g``)."""
    minus_g = minus_gumbel(logits.shape, generator=generator, device=logits.device)
    z = torch.sub(logits, minus_g.to(working_dtype(logits.dtype)))
    if not hard:
        return z, None
    wide = logits.detach().to(torch.float64)  # exact: float32 and half fit in float64
    first = torch.sub(minus_g, wide - wide.amax(dim, keepdim=True)).argmin(dim, keepdim=True)
    zeros = torch.zeros_like(z, requires_grad=False)
    if torch._C._functorch.is_batchedtensor(zeros):  # vmap has no rule for scatter_
        return z, zeros.scatter(dim, first, 1.0)
    return z, zeros.scatter_(dim, first, 1.0)


def _scaled(
    z: torch.Tensor,
    tau: float | torch.Tensor,
    dim: int,
    logits: torch.Tensor,
    validate: bool,
) -> torch.Tensor:
    """``z / tau``, shifted by the row maxima of ``z`` unless validation's one read shows
    that nothing can overflow (see the module's step 2)."""
    unit = isinstance(tau, float) and tau == 1.0
    if validate and isinstance(tau, float) and not tracing() and z.numel():
        # one reduction and one read: the largest |z|, NaN or inf when a logit is NaN or
        # infinite (a masked category included); below tau times half the largest float,
        # every logit is valid and no quotient can overflow
        largest = torch.linalg.vector_norm(z.detach(), math.inf).item()
        if largest < tau * HALF_MAX[z.dtype]:
            return z if unit else z / max(tau, TINY[z.dtype])
    high = z.detach().amax(dim, keepdim=True)  # masked, huge or bad values: the full check
    if validate:
        check_finite_max(high, logits, dim)
    if unit:  # the softmax's own shift suffices
        return z
    z.detach().sub_(high)  # a constant per row: invisible to the softmax's gradient
    if isinstance(tau, float):
        return z / max(tau, TINY[z.dtype])
    return _divide_keeping_tau_gradient_finite(z, tau.to(z.dtype).clamp_min(TINY[z.dtype]))


def _divide_keeping_tau_gradient_finite(v: torch.Tensor, divisor: torch.Tensor) -> torch.Tensor:
    """``v / divisor`` for a tensor temperature that may need a gradient.

    Where ``v / tau**2`` overflows (a masked category, ``v = -inf``, or a finite ``v`` so
    far below the maximum that the backward pass's ``-v / tau / tau`` does) the sample is
    exactly 0, so is its softmax gradient, and the plain quotient's ``d/d tau`` would be
    ``0 * inf = NaN``. There we divide a stand-in 0 and put the quotient back with ``where``:
    the same forward bits, and those entries add exactly 0 to the temperature's gradient,
    their true contribution (``exp(v / tau)`` underflowed to 0 long before).
    """
    if not divisor.requires_grad:
        return v / divisor
    quotient = v.detach() / divisor.detach()
    infinite = torch.isinf(quotient / divisor.detach())
    finite = torch.div(torch.where(infinite, torch.zeros_like(v), v), divisor)
    return torch.where(infinite, quotient, finite)


def _check_arguments(
    logits: torch.Tensor,
    tau: object,
    hard: object,
    eps: object,
    dim: object,
    generator: object,
    validate: bool,
) -> tuple[float | torch.Tensor, int]:
    """:func:`gumbel_softmax`'s structural checks (and ``tau``'s values under validation);
    the checked ``tau`` and the non-negative ``dim`` (internal)."""
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    tau = check_tau_like(tau, logits, dim, validate)
    if not isinstance(hard, bool):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    if eps != PYTORCH_EPS:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=3)
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
    the same positional order (``eps`` is ignored with PyTorch's deprecation warning; a 0-d
    ``logits`` is one category and gives ``tensor(1.)``), a ``generator`` for
    reproducibility and ``validate_args``. With ``hard=True`` the forward value is exactly
    the one-hot vector of the :func:`~gumbel_lib.sampling.gumbel_max` sample of the same
    noise, and the gradient is that of the soft sample (straight-through). ``tau`` is a
    finite positive number or a tensor: one temperature per sample (the batch shape of
    ``logits``, or size 1 along ``dim``) or anything that broadcasts to ``logits``; a
    learnable temperature keeps its gradient, and its values are checked under
    validation. Chapter: :doc:`The softmax relaxation </book/softmax-relaxation>`.

    >>> gen = torch.Generator().manual_seed(0)
    >>> y = gumbel_softmax(torch.zeros(2, 4), tau=0.5, generator=gen)
    >>> torch.allclose(y.sum(-1), torch.ones(2))
    True
    """
    validate = should_validate(validate_args)
    if isinstance(logits, torch.Tensor) and logits.dim() == 0:  # as F.gumbel_softmax: 1
        check_dim(dim, 1)
        one = gumbel_softmax(logits.unsqueeze(0), tau, hard, eps, 0, generator=generator)
        return one.squeeze(0)
    tau, dim = _check_arguments(logits, tau, hard, eps, dim, generator, validate)
    z, hot = _perturbed(logits, generator, dim, hard)
    y = torch.softmax(_scaled(z, tau, dim, logits, validate), dim)
    if hot is not None:
        y = _straight_through_unit(hot, y)
    return y if y.dtype == logits.dtype else y.to(logits.dtype)


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
    there. Masked categories (logit ``-inf``) get ``-inf``, exactly ``log 0``. ``tau`` is
    taken as in :func:`gumbel_softmax`. The result is the ``x`` whose density
    :func:`~gumbel_lib.density.concrete_log_prob` gives with ``log_input=True``. Chapter:
    :doc:`The softmax relaxation </book/softmax-relaxation>`.

    >>> log_y = relaxed_log_sample(torch.zeros(3), 0.1, generator=torch.Generator().manual_seed(0))
    >>> round(log_y.exp().sum().item(), 6)
    1.0
    """
    validate = should_validate(validate_args)
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    tau = check_tau_like(tau, logits, dim, validate)
    check_categories(logits.shape, dim)
    check_generator(generator)
    z, _ = _perturbed(logits, generator, dim, False)
    log_y = torch.log_softmax(_scaled(z, tau, dim, logits, validate), dim=dim)
    floor = torch.finfo(logits.dtype).min
    # -inf only where the logit is -inf (masked); underflowed finite categories saturate
    return torch.where(logits > -torch.inf, log_y.clamp_min(floor), log_y).to(logits.dtype)
