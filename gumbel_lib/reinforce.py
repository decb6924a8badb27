"""REINFORCE (score-function) surrogates, and the exact variance of the estimate.

For an exact sample ``D`` with log-probability ``log p(D)`` and a loss ``f(D)``,

    surrogate = f(D) + (f(D) - b) * (log p(D) - stop_gradient(log p(D)))

has the forward value ``f(D)`` (the bracket is exactly zero) and the gradient
``(f(D) - b) grad log p(D)`` w.r.t. the logits (Williams, 1992), plus whatever gradient
``f`` itself carries (for example to a decoder's weights). ``b`` is a baseline that does not
depend on the draw: a number, a tensor held by the caller (a moving average), or, with
several draws, the mean loss of the *other* draws (leave-one-out; Mnih and Rezende, 2016;
Kool et al., 2019).

With ``s(D) = grad log p(D) = D - softmax(l)``, ``g`` the exact gradient, ``L = E f(D)``
and ``m`` draws per estimate, the total variance ``tr Cov`` of the estimate is, exactly::

    constant b:     Q(b) / m,   Q(b) = E[(f - b)^2 |s|^2] - |g|^2 = Q(b*) + (b - b*)^2 E|s|^2,
    leave-one-out:  Q(L) / m + (Var f(D) E|s|^2 + |g|^2) / (m (m - 1)),

with the optimal constant ``b* = E[f |s|^2] / E|s|^2`` (Greensmith et al., 2004).
:func:`score_variance` and :func:`optimal_baseline` evaluate them by enumeration. Chapter:
:doc:`Lower-variance gradients </book/lower-variance-gradients>`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from gumbel_lib._validation import (
    check_count,
    check_logits,
    raise_bad_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.enumeration import joint_outcomes

Surrogate = Callable[[torch.Tensor], torch.Tensor]
JointLoss = Callable[[torch.Tensor], torch.Tensor]


def check_loss(loss: object, batch_shape: torch.Size) -> torch.Tensor:
    """A tensor whose shape is a prefix of ``batch_shape`` (the sample's shape without ``dim``).

    A loss of shape ``batch_shape`` is one loss per sampled vector; a shorter prefix (say
    ``(B,)`` for samples of shape ``(B, V, K)``) is one loss per group of variables that were
    drawn together, whose log-probabilities are then summed.
    """
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss must be a torch.Tensor, got {type(loss).__name__}")
    if loss.shape != batch_shape[: loss.dim()]:
        raise ValueError(
            f"loss must have shape {tuple(batch_shape)} (the sample without dim) or a prefix "
            f"of it, got {tuple(loss.shape)}"
        )
    return loss


def check_baseline(baseline: object) -> torch.Tensor | float | None:
    """``None``, a finite real number, or a tensor (broadcast against the loss; never
    differentiated). A number is checked always; a tensor's values (finite) are checked by
    :func:`score_surrogate` under validation."""
    if baseline is None or isinstance(baseline, torch.Tensor):
        return baseline
    if isinstance(baseline, bool) or not isinstance(baseline, numbers.Real):
        kind = type(baseline).__name__
        raise TypeError(f"baseline must be None, a number or a tensor, got {kind}")
    if not math.isfinite(baseline):
        raise ValueError(f"baseline must be finite, got {baseline}")
    return float(baseline)


def _broadcast(a: torch.Size, b: torch.Size) -> torch.Size | None:
    try:
        shape: torch.Size = torch.broadcast_shapes(a, b)
        return shape
    except RuntimeError:
        return None


def score_surrogate(
    log_prob: torch.Tensor,
    *,
    baseline: torch.Tensor | float | None = None,
    leave_one_out: bool = False,
    validate_args: bool | None = None,
) -> Surrogate:
    """The map ``loss -> loss + (loss - b) * (log_prob - stop_gradient(log_prob))``.

    ``log_prob`` has the batch shape of the sample (one entry per sampled vector). With
    ``leave_one_out`` the first axis indexes ``n >= 2`` draws and ``b`` for draw ``s`` is the
    mean loss of the other ``n - 1``; otherwise ``b`` is ``baseline`` (0 when ``None``), which
    must be finite (a number always; a tensor's values under validation). The value is
    exactly ``loss`` whenever ``loss - b`` is finite (half-precision losses are centred in
    float32, so a float16 loss and a baseline far apart do not overflow).

    >>> log_prob = torch.log(torch.tensor([0.25, 0.5])).requires_grad_(True)
    >>> surrogate = score_surrogate(log_prob, baseline=1.0)
    >>> loss = torch.tensor([3.0, 2.0])
    >>> out = surrogate(loss); out.sum().backward()
    >>> out.tolist(), log_prob.grad.tolist()
    ([3.0, 2.0], [2.0, 1.0])
    """
    baseline = check_baseline(baseline)
    if isinstance(baseline, torch.Tensor) and should_validate(validate_args):
        require(torch.isfinite(baseline.detach()), "baseline must be finite (no NaN or inf)")
    batch_shape = log_prob.shape
    score = log_prob - log_prob.detach()  # value exactly 0, gradient grad log p

    def surrogate(loss: torch.Tensor) -> torch.Tensor:
        loss = check_loss(loss, batch_shape)
        extra = tuple(range(loss.dim(), score.dim()))  # variables drawn for the same loss
        joint = score.sum(extra) if extra else score  # (sum over () would sum everything)
        dtype = working_dtype(loss.dtype)  # half-precision losses are centred in float32
        centred = loss.detach().to(dtype)
        if leave_one_out:
            if loss.dim() == 0:
                raise ValueError("loss must keep the leading sample axis for 'reinforce-loo'")
            n = loss.shape[0]
            centred = centred - (centred.sum(0, keepdim=True) - centred) / (n - 1)
        elif isinstance(baseline, torch.Tensor):
            if _broadcast(baseline.shape, loss.shape) != loss.shape:
                raise ValueError(
                    f"baseline of shape {tuple(baseline.shape)} does not broadcast to the "
                    f"loss's shape {tuple(loss.shape)}"
                )
            centred = centred - baseline.detach().to(centred.dtype)
        elif baseline is not None:
            centred = centred - baseline
        return loss + (centred * joint).to(torch.promote_types(loss.dtype, joint.dtype))

    return surrogate


def _score_table(
    logits: torch.Tensor, f: JointLoss, validate_args: bool | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probability, loss and score ``s(D) = D - softmax(l)`` (flattened) of every joint
    outcome of positive probability, in float64."""
    check_logits(logits)
    if logits.dim() > 2:
        raise ValueError(f"logits must have shape (V, K) or (K,), got {tuple(logits.shape)}")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    validate = should_validate(validate_args)
    if validate:
        require(
            torch.isfinite(logits.detach().logsumexp(-1)),
            "logits cannot be sampled from",
            explain=lambda: raise_bad_logits(logits, -1),
        )
    table = logits.detach().reshape(-1, logits.shape[-1]).double()  # (V, K)
    outcomes = joint_outcomes(*table.shape, dtype=torch.float64, device=table.device)
    log_softmax = torch.log_softmax(table, -1)
    p = torch.where(outcomes.bool(), log_softmax, 0.0).sum((-2, -1)).exp()
    with torch.no_grad():
        losses = f(outcomes.reshape(-1, *logits.shape).to(logits.dtype))
    if not isinstance(losses, torch.Tensor) or losses.shape != outcomes.shape[:1]:
        got = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"f must map N outcomes to shape (N,), got {got}")
    score = (outcomes - log_softmax.exp()).flatten(1)
    keep = p > 0  # masked outcomes never occur (and their loss may be anything)
    losses = losses.double()[keep]
    if validate:
        require(
            torch.isfinite(losses), "f must be finite on every outcome of positive probability"
        )
    return p[keep], losses, score[keep]


def optimal_baseline(
    logits: torch.Tensor, f: JointLoss, *, validate_args: bool | None = None
) -> torch.Tensor:
    """The constant baseline of least variance, ``b* = E[f(D) |s(D)|^2] / E[|s(D)|^2]``.

    ``s(D) = D - softmax(l)`` is the score of the joint outcome (all variables), so ``b*`` is
    a mean of the loss weighted by the squared length of the score; it equals ``E f(D)`` only
    when that length is uncorrelated with the loss. ``logits`` ``(V, K)`` or ``(K,)``; ``f``
    as for :func:`~gumbel_lib.enumeration.exact_gradient`. By enumeration, in float64.
    Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

    >>> f = lambda d: d[:, 0]  # loss 1 on category 0: b* = E f = 1/2 at equal logits
    >>> optimal_baseline(torch.zeros(2), f).item()
    0.5
    """
    p, losses, score = _score_table(logits, f, validate_args)
    length2 = (score**2).sum(1)
    weight = (p * length2).sum()
    mean = (p * losses).sum()
    if weight == 0:  # one drawable outcome: every estimate is zero, every baseline optimal
        return mean
    return (p * losses * length2).sum() / weight


def score_variance(
    logits: torch.Tensor,
    f: JointLoss,
    *,
    baseline: float | str | None = None,
    n_draws: int = 1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Exact total variance ``tr Cov`` of the REINFORCE estimate averaged over ``n_draws``.

    ``baseline`` is ``None`` (``b = 0``), a finite number, ``"optimal"``
    (:func:`optimal_baseline`) or ``"leave-one-out"`` (needs ``n_draws >= 2``). With
    ``m = n_draws``, ``L = E f``, ``g`` the exact gradient and ``s`` the score:
    ``Q(b) / m`` with ``Q(b) = E[(f - b)^2 |s|^2] - |g|^2`` for a constant ``b``, and
    ``Q(L) / m + (Var f E|s|^2 + |g|^2) / (m (m - 1))`` for leave-one-out, whose second
    term is the noise of the baseline itself. By enumeration, in float64. Chapter:
    :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

    >>> f = lambda d: d[:, 0]
    >>> options = (None, "optimal", "leave-one-out")
    >>> [score_variance(torch.zeros(2), f, baseline=b, n_draws=2).item() for b in options]
    [0.0625, 0.0, 0.125]
    """
    m = check_count(n_draws, "n_draws", upper=2**31 - 1, what="allowed")
    if baseline == "leave-one-out" and m < 2:
        raise ValueError(f"n_draws must be >= 2 for the leave-one-out baseline, got {m}")
    if isinstance(baseline, str) and baseline not in ("optimal", "leave-one-out"):
        raise ValueError(
            f"baseline must be None, a number, 'optimal' or 'leave-one-out', got {baseline!r}"
        )
    constant = None if isinstance(baseline, str) else check_baseline(baseline)
    if isinstance(constant, torch.Tensor):
        raise TypeError("baseline must be None, a number, 'optimal' or 'leave-one-out'")
    p, losses, score = _score_table(logits, f, validate_args)
    length2 = (score**2).sum(1)
    gradient = (p[:, None] * losses[:, None] * score).sum(0)
    mean = (p * losses).sum()

    def one_draw(centre: torch.Tensor | float) -> torch.Tensor:  # Q(b)
        return (p * (losses - centre) ** 2 * length2).sum() - gradient @ gradient

    if baseline == "leave-one-out":
        own_noise = (p * (losses - mean) ** 2).sum() * (p * length2).sum() + gradient @ gradient
        return one_draw(mean) / m + own_noise / (m * (m - 1))
    if baseline == "optimal":
        return one_draw(optimal_baseline(logits, f, validate_args=False)) / m
    return one_draw(0.0 if constant is None else constant) / m
