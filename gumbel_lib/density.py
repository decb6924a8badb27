"""The Concrete (Gumbel-softmax) log-density on the probability simplex.

For ``n`` categories with probabilities ``p = softmax(l)`` and temperature ``tau``, a
relaxed sample ``y = softmax((l + g) / tau)`` has density (Maddison et al., 2017)::

    p(y) = Gamma(n) tau^(n-1) prod_i (p_i y_i^(-tau-1)) / (sum_i p_i y_i^(-tau))^n

with respect to the Lebesgue measure on the first ``n - 1`` coordinates. Derived in
*The softmax relaxation*. We evaluate it in log space from ``x = log y``::

    log p(y) = lgamma(n) + (n-1) log tau + sum_i (log p_i - (tau+1) x_i)
               - n logsumexp_i(log p_i - tau x_i)

which stays finite where ``y`` itself underflows, if the caller passes ``x`` directly.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import check_dim, check_logits, check_tau, working_dtype


def concrete_log_prob(
    y: torch.Tensor,
    logits: torch.Tensor,
    tau: float,
    *,
    dim: int = -1,
    log_input: bool = False,
) -> torch.Tensor:
    """Log-density of the relaxed sample ``y`` under ``Concrete(softmax(logits), tau)``.

    ``y`` lies on the simplex along ``dim`` (or is ``log y`` when ``log_input=True``).
    Categories whose logit is ``-inf`` are outside the support: they must have ``y_i = 0``
    and are left out (``n`` counts the others); a positive ``y_i`` there has density zero
    (``-inf`` is returned). A zero ``y_i`` on a category in the support is a point on the
    boundary of the simplex, where the density is not defined: a ``ValueError`` says so.
    Half-precision inputs are evaluated, and returned, in float32.

    >>> y = torch.tensor([0.3, 0.7], dtype=torch.float64)
    >>> round(concrete_log_prob(y, torch.zeros(2, dtype=torch.float64), 1.0).item(), 6)
    0.0
    """
    check_logits(logits)
    check_logits(y, "y")
    tau = check_tau(tau)
    wide = working_dtype(torch.promote_types(y.dtype, logits.dtype))
    try:
        y, logits = torch.broadcast_tensors(y.to(wide), logits.to(wide))
    except RuntimeError as err:
        raise ValueError(f"y and logits do not broadcast: {err}") from err
    dim = check_dim(dim, logits.dim())  # after broadcasting: y may carry batch dimensions

    support = ~torch.isneginf(logits)
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError("logits contains NaN or +inf")
    if not support.any(dim=dim).all():
        raise ValueError(f"logits is -inf for every category along dim={dim}")
    x = y if log_input else y.log()
    if torch.isnan(x).any() or torch.isposinf(x).any():
        raise ValueError("y must be >= 0 (log y must not be NaN or +inf)")
    tol = math.sqrt(torch.finfo(wide).eps)
    mass = torch.logsumexp(x, dim=dim)
    if not (mass.abs() <= tol).all():
        raise ValueError(f"y must sum to 1 along dim={dim} (within {tol:.1e} in log space)")
    if (torch.isneginf(x) & support).any():
        raise ValueError(
            "y has an exact zero on a category with finite logit: the density is not defined "
            "on the boundary of the simplex; at low tau pass log y (relaxed_log_sample) "
            "with log_input=True"
        )

    log_p = torch.log_softmax(logits, dim=dim)
    n = support.sum(dim=dim).to(wide)
    zero = torch.zeros((), dtype=wide, device=logits.device)
    x_in = torch.where(support, x, zero)
    log_p_in = torch.where(support, log_p, zero)
    terms = torch.where(support, log_p_in - (tau + 1.0) * x_in, zero).sum(dim=dim)
    scaled = torch.where(support, log_p_in - tau * x_in, -torch.inf)
    out = (
        torch.lgamma(n) + (n - 1.0) * math.log(tau) + terms - n * torch.logsumexp(scaled, dim=dim)
    )
    outside = (~support & ~torch.isneginf(x)).any(dim=dim)
    return torch.where(outside, -torch.inf, out)
