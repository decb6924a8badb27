"""The Concrete (Gumbel-softmax) log-density on the probability simplex.

For ``n`` categories with probabilities ``p = softmax(l)`` and temperature ``tau``, a
relaxed sample ``y = softmax((l + g) / tau)`` has density (Maddison et al., 2017; Jang et
al., 2017)::

    p(y) = Gamma(n) tau^(n-1) prod_i (p_i y_i^(-tau-1)) / (sum_i p_i y_i^(-tau))^n

with respect to the Lebesgue measure on the first ``n - 1`` coordinates. Derived in
:doc:`The softmax relaxation </book/softmax-relaxation>`. Its logarithm ``x = log y`` (the
ExpConcrete law) has density ``p_X(x) = p(y) prod_i y_i`` with respect to the Lebesgue
measure on the log-ratios ``x_i - x_n`` (``i < n``), the density that
``torch.distributions.ExpRelaxedCategorical`` and TFP's ``ExpRelaxedOneHotCategorical``
return. We evaluate both in log space from ``s_i = log p_i - tau x_i``::

    log p_X(x) = lgamma(n) + (n-1) log tau + sum_i s_i - n logsumexp_i(s_i)
    log p(y)   = log p_X(x) - sum_i x_i

which stays finite where ``y`` itself underflows, if the caller passes ``x`` directly.

Masked categories (logit ``-inf``) need no Python branch: with ``y_i = 0`` the score
``s_i = -inf - (-inf)`` is NaN, which we map to "absent" (0 in the sum, ``-inf`` in the
log-sum-exp); with ``y_i > 0`` it is ``-inf``, so the density is 0, as it must be outside
the support. Validation adds one reduction along ``dim`` (the mass ``sum_i exp(x_i)``),
a few operations on the per-row results, and one read, all through
``gumbel_lib._validation.require``: a ``ValueError`` in eager mode, an in-graph
assertion under ``torch.compile(fullgraph=True)``, skipped inside ``torch.func.vmap``.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import (
    check_categories,
    check_dim,
    check_logits,
    check_tau,
    require,
    should_validate,
    working_dtype,
)

_MESSAGE = (
    "concrete_log_prob: invalid values (NaN or +inf logits, a row of logits masked "
    "everywhere, tau not finite and > 0, y off the simplex or zero on a category with a "
    "finite logit, or tau * log y overflowing)"
)


def _check_temperature(tau: object, shape: torch.Size, dim: int) -> float | torch.Tensor:
    """A finite Python number > 0 (checked now), or a floating tensor that broadcasts to
    ``shape`` without enlarging it and has one entry along ``dim`` (negative), or has the
    batch shape (``shape`` without ``dim``): one temperature per row, as in
    :func:`~gumbel_lib.relax.gumbel_softmax`. A tensor's values
    are checked under validation, with the other values (internal)."""
    if type(tau) is float and 0.0 < tau < math.inf:  # the common case, without ABC checks
        return tau
    if not isinstance(tau, torch.Tensor):
        return check_tau(tau)  # TypeError or ValueError naming tau
    if not tau.dtype.is_floating_point:
        raise TypeError(f"tau must be a floating-point tensor, got {tau.dtype}")
    if 0 < tau.dim() == len(shape) - 1:  # the batch shape (TensorFlow Probability's form)
        tau = tau.unsqueeze(dim)
    try:
        joint = torch.broadcast_shapes(tau.shape, shape)
    except RuntimeError as err:
        raise ValueError(
            f"tau of shape {tuple(tau.shape)} does not broadcast to {tuple(shape)} (one "
            "temperature per row has size 1 along dim, e.g. tau.unsqueeze(dim))"
        ) from err
    if joint != shape:
        raise ValueError(
            f"tau of shape {tuple(tau.shape)} would change the shape {tuple(shape)} of y "
            "and logits"
        )
    if tau.dim() >= -dim and tau.shape[dim] != 1:
        raise ValueError(
            f"tau of shape {tuple(tau.shape)} varies along dim={dim + len(shape)}: the "
            "Concrete law has one temperature per row (size 1 along dim, e.g. "
            "tau.unsqueeze(dim))"
        )
    return tau


def concrete_log_prob(
    y: torch.Tensor,
    logits: torch.Tensor,
    tau: float | torch.Tensor,
    *,
    dim: int = -1,
    log_input: bool = False,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Log-density of the relaxed sample ``y`` under ``Concrete(softmax(logits), tau)``.

    ``log p(y) = log[Gamma(n) tau^(n-1) prod_i (p_i y_i^(-tau-1)) / (sum_i p_i y_i^(-tau))^n]``
    (Maddison et al., 2017; Jang et al., 2017), derived in
    :doc:`The softmax relaxation </book/softmax-relaxation>`; ``y`` lies on the simplex
    along ``dim``. With ``log_input=True`` the first argument is ``x = log y`` and the
    result is the density *of x*, ``log p_X(x) = log p(y) + sum_i x_i`` (the change of
    variables ``y = exp(x)``, measured on the log-ratios ``x_i - x_n``), the value that
    ``torch.distributions.ExpRelaxedCategorical(tau, logits=logits).log_prob(x)`` and TFP's
    ``ExpRelaxedOneHotCategorical`` return; ``log_input=False`` gives that of
    ``RelaxedOneHotCategorical(tau, logits=logits).log_prob(y)``.

    ``tau`` is a finite positive number, or a tensor (it keeps its gradient) that broadcasts
    to the shape of ``y`` and ``logits`` without enlarging it and has size 1 along ``dim``:
    one temperature per row, e.g. shape ``(B, 1)`` for logits ``(B, K)`` along ``dim=-1``
    (the rule of :func:`~gumbel_lib.relax.gumbel_softmax`).

    Categories whose logit is ``-inf`` are outside the support: they must have ``y_i = 0``
    (``x_i = -inf``) and are left out (``n`` counts the others); a positive ``y_i`` there
    has density zero (``-inf`` is returned). Under validation, NaN or ``+inf`` logits, a row
    masked everywhere, a tensor ``tau`` not finite and positive, a ``y`` off the simplex
    (beyond the rounding of ``y``'s own dtype), a zero ``y_i`` on a category in the support
    (the boundary of the simplex, where the density is not defined) and a ``tau * log y``
    that overflows raise ``ValueError``. Half-precision inputs are evaluated, and returned,
    in float32.

    >>> y = torch.tensor([0.3, 0.7], dtype=torch.float64)
    >>> round(concrete_log_prob(y, torch.zeros(2, dtype=torch.float64), 1.0).item(), 6)
    0.0
    >>> round(concrete_log_prob(y.log(), torch.zeros(2, dtype=torch.float64), 1.0,
    ...                         log_input=True).item(), 6)  # log(0.3 * 0.7)
    -1.560648
    """
    validate = should_validate(validate_args)
    check_logits(logits)
    check_logits(y, "y")
    if not isinstance(log_input, bool):
        raise TypeError(f"log_input must be a bool, got {type(log_input).__name__}")
    shape = y.shape
    if shape != logits.shape:
        try:
            shape = torch.broadcast_shapes(y.shape, logits.shape)
        except RuntimeError as err:
            raise ValueError(f"y and logits do not broadcast: {err}") from err
    dim = check_dim(dim, len(shape)) - len(shape)  # negative: counts from the right
    check_categories(shape, dim)
    tau = _check_temperature(tau, shape, dim)
    sample_dtype = y.dtype
    wide = working_dtype(torch.promote_types(y.dtype, logits.dtype))
    y, logits = y.to(wide), logits.to(wide)
    if min(y.dim(), logits.dim()) < -dim:  # dim is a broadcast axis of one of them
        y, logits = torch.broadcast_tensors(y, logits)

    # log p_i up to a constant per row, which cancels (n copies in the sum, n in n * lse):
    # cheaper than log_softmax along a short dim, as safe for huge logits, and the
    # gradient of the (detached) maximum would cancel the same way
    log_p = logits - logits.amax(dim=dim, keepdim=True).detach()
    x = y if log_input else y.log()
    log_tau: float | torch.Tensor
    if isinstance(tau, torch.Tensor):
        tau = tau.to(wide)
        log_tau = tau.log()
        if tau.dim() >= -dim:
            log_tau = log_tau.squeeze(dim)
        tau_x = _times_keeping_tau_gradient_finite(tau, x) if tau.requires_grad else tau * x
    else:
        log_tau = math.log(tau)
        tau_x = x * tau
    score = log_p - tau_x  # NaN for a masked category with y_i = 0: absent
    total = torch.nansum(score if log_input else score - x, dim=dim)
    lse = torch.logsumexp(
        score.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf), dim=dim
    )
    n = (logits > -math.inf).sum(dim=dim, dtype=wide)
    out = torch.addcmul(total, n, lse, value=-1.0).add_(torch.lgamma(n) + (n - 1.0) * log_tau)
    if validate:
        # one reduction along dim (the mass of exp(x): NaN for a negative or NaN y) and
        # one read; out = -inf (density 0, outside the support) is fine
        mass = x.exp().sum(dim=dim)
        tol = _simplex_tolerance(wide, sample_dtype, shape[dim] if log_input else 1)
        ok = mass.sub_(1.0).abs_().le(tol).logical_and_(out < math.inf)
        if isinstance(log_tau, torch.Tensor):
            ok = ok & log_tau.isfinite()  # tau > 0 and finite
        require(ok, _MESSAGE, lambda: _explain(y, x, logits, tau, dim, log_input, tol))
    return out


def _times_keeping_tau_gradient_finite(tau: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``tau * x`` for a ``tau`` that needs a gradient (internal).

    Where ``x = -inf`` (a masked category with ``y_i = 0``) the product's gradient reaching
    ``tau`` would be ``0 * (-inf) = NaN``; there we multiply a finite stand-in and put
    ``-inf`` back with ``where``: the same forward values, and those entries add exactly 0
    to the temperature's gradient, their true contribution (the category is absent).
    """
    absent = torch.isneginf(x)
    return torch.where(absent, x, tau * x.clamp_min(torch.finfo(x.dtype).min))


def _simplex_tolerance(wide: torch.dtype, sample_dtype: torch.dtype, n: int) -> float:
    """How far ``sum_i y_i`` may lie from 1 (internal); ``n = 1`` for a sample ``y``.

    The working precision's ``sqrt(eps)``, plus twice the rounding of the sample to its own
    dtype: rounding each ``y_i`` moves the sum by at most ``eps/2 * sum_i y_i = eps/2``;
    rounding each ``x_i = log y_i`` (``log_input``) moves ``y_i`` by a factor of about
    ``1 + eps/2 |x_i|``, the sum by at most ``eps/2 * sum_i y_i |log y_i| <= eps/2 * log n``
    (the entropy). So we allow ``eps * max(1, log n)``. For bfloat16 that is what lets
    :func:`~gumbel_lib.relax.gumbel_softmax`'s own samples pass; for float32 and float64 it
    changes nothing visible.
    """
    return math.sqrt(torch.finfo(wide).eps) + torch.finfo(sample_dtype).eps * max(1.0, math.log(n))


def _explain(
    y: torch.Tensor,
    x: torch.Tensor,
    logits: torch.Tensor,
    tau: float | torch.Tensor,
    dim: int,
    log_input: bool,
    tol: float,
) -> None:
    """Say what is wrong; called only when the value check failed (eager, internal)."""
    if torch.isnan(logits).any():
        raise ValueError("logits contains NaN")
    if torch.isposinf(logits).any():
        raise ValueError("logits contains +inf")
    if torch.isneginf(logits).all(dim=dim).any():
        raise ValueError(
            f"logits is -inf for every category along dim={dim}: the row has no support"
        )
    if isinstance(tau, torch.Tensor) and not bool(((tau > 0) & (tau < math.inf)).all()):
        raise ValueError("tau must be finite and > 0 everywhere")
    if log_input and (torch.isnan(x).any() or torch.isposinf(x).any()):
        raise ValueError("log y must not be NaN or +inf (y must be >= 0)")
    if not log_input and not bool((y >= 0).all()):
        raise ValueError("y must be >= 0 (and not NaN)")
    deviation = ((x.exp() if log_input else y).sum(dim=dim) - 1.0).abs()
    if not bool((deviation <= tol).all()):
        raise ValueError(
            f"y must sum to 1 along dim={dim} (within {tol:.1e}; off by up to "
            f"{deviation.max().item():.1e})"
        )
    if (torch.isneginf(x) & (logits > -math.inf)).any():
        raise ValueError(
            "y has an exact zero on a category with finite logit: the density is not defined "
            "on the boundary of the simplex; at low tau pass log y (relaxed_log_sample) "
            "with log_input=True"
        )
    overflow = torch.isinf(tau * x) & torch.isfinite(x)
    if overflow.any():
        top = tau.max().item() if isinstance(tau, torch.Tensor) else tau
        raise ValueError(
            f"tau * log y overflows {x.dtype}: tau = {top:.3g} is too large for log y as low "
            f"as {x[overflow].min().item():.3g}; lower tau, or evaluate in a wider dtype"
        )
