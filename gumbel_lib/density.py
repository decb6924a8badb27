"""The Concrete (Gumbel-softmax) log-density on the probability simplex.

For ``n`` categories with probabilities ``p = softmax(l)`` and temperature ``tau``, a
relaxed sample ``y = softmax((l + g) / tau)`` has density (Maddison et al., 2017)::

    p(y) = Gamma(n) tau^(n-1) prod_i (p_i y_i^(-tau-1)) / (sum_i p_i y_i^(-tau))^n

with respect to the Lebesgue measure on the first ``n - 1`` coordinates. Derived in
:doc:`The softmax relaxation </book/softmax-relaxation>`. We evaluate it in log space from
``x = log y``::

    log p(y) = lgamma(n) + (n-1) log tau + sum_i (log p_i - (tau+1) x_i)
               - n logsumexp_i(log p_i - tau x_i)

which stays finite where ``y`` itself underflows, if the caller passes ``x`` directly.

Masked categories (logit ``-inf``) need no Python branch: with ``y_i = 0`` both terms of
category ``i`` are ``-inf - (-inf) = NaN``, which we map to "absent" (0 in the sum,
``-inf`` in the log-sum-exp) in one pass each; with ``y_i > 0`` they are ``-inf``, so the
density is 0, as it must be outside the support. The value checks (validation) cost three
reductions and one read.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import (
    all_finite,
    check_categories,
    check_dim,
    check_logits,
    check_tau,
    should_validate,
    working_dtype,
)


def concrete_log_prob(
    y: torch.Tensor,
    logits: torch.Tensor,
    tau: float,
    *,
    dim: int = -1,
    log_input: bool = False,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Log-density of the relaxed sample ``y`` under ``Concrete(softmax(logits), tau)``.

    ``y`` lies on the simplex along ``dim`` (or is ``log y`` when ``log_input=True``).
    Categories whose logit is ``-inf`` are outside the support: they must have ``y_i = 0``
    and are left out (``n`` counts the others); a positive ``y_i`` there has density zero
    (``-inf`` is returned). Under validation, NaN or ``+inf`` logits, a row masked
    everywhere, a ``y`` off the simplex and a zero ``y_i`` on a category in the support (the
    boundary of the simplex, where the density is not defined) raise ``ValueError``.
    Half-precision inputs are evaluated, and returned, in float32. Derived in
    :doc:`The softmax relaxation </book/softmax-relaxation>`.

    >>> y = torch.tensor([0.3, 0.7], dtype=torch.float64)
    >>> round(concrete_log_prob(y, torch.zeros(2, dtype=torch.float64), 1.0).item(), 6)
    0.0
    """
    validate = should_validate(validate_args)
    check_logits(logits)
    check_logits(y, "y")
    tau = check_tau(tau)
    if not isinstance(log_input, bool):
        raise TypeError(f"log_input must be a bool, got {type(log_input).__name__}")
    wide = working_dtype(torch.promote_types(y.dtype, logits.dtype))
    try:
        shape = torch.broadcast_shapes(y.shape, logits.shape)
    except RuntimeError as err:
        raise ValueError(f"y and logits do not broadcast: {err}") from err
    dim = check_dim(dim, len(shape)) - len(shape)  # negative: counts from the right
    check_categories(shape, dim)
    y, logits = y.to(wide), logits.to(wide)
    if min(y.dim(), logits.dim()) < -dim:  # dim is a broadcast axis of one of them
        y, logits = torch.broadcast_tensors(y, logits)
    if validate:
        _check_values(y, logits, dim, log_input, wide)

    log_p = torch.log_softmax(logits, dim=dim)
    x = y if log_input else y.log()
    # masked category with y_i = 0: NaN here, absent from the sum and the log-sum-exp
    terms = (log_p - (tau + 1.0) * x).nan_to_num_(nan=0.0, posinf=torch.inf, neginf=-torch.inf)
    scaled = (log_p - tau * x).nan_to_num_(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    lse = torch.logsumexp(scaled, dim=dim)
    n = torch.isneginf(logits).logical_not_().sum(dim=dim, dtype=wide)
    out = torch.lgamma(n) + (n - 1.0) * math.log(tau) + terms.sum(dim=dim) - n * lse
    if validate and not all_finite(out.clamp_min(0.0)):  # -inf (outside the support) is fine
        raise ValueError(
            "y has an exact zero on a category with finite logit: the density is not defined "
            "on the boundary of the simplex; at low tau pass log y (relaxed_log_sample) "
            "with log_input=True"
        )
    return out


def _check_values(
    y: torch.Tensor, logits: torch.Tensor, dim: int, log_input: bool, wide: torch.dtype
) -> None:
    """The value checks of :func:`concrete_log_prob`: a few reductions, one read."""
    tol = math.sqrt(torch.finfo(wide).eps)
    top = logits.amax(dim=dim)  # NaN, +inf, or -inf for a row masked everywhere
    mass = torch.logsumexp(y, dim=dim) if log_input else y.sum(dim=dim).log()
    bad = ~torch.isfinite(top) | ~(mass.abs() <= tol)  # NaN mass is bad too
    if not log_input:
        bad |= ~(y.amin(dim=dim) >= 0)
    if not bool(bad.any()):
        return
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError("logits contains NaN or +inf")
    if torch.isneginf(logits).all(dim=dim).any():
        raise ValueError(f"logits is -inf for every category along dim={dim}")
    if torch.isnan(y).any() or (torch.isposinf(y).any() if log_input else (y < 0).any()):
        raise ValueError("y must be >= 0 (log y must not be NaN or +inf)")
    raise ValueError(f"y must sum to 1 along dim={dim} (within {tol:.1e} in log space)")
