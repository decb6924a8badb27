"""Gradient estimators for ``L(l) = E_{k ~ Categorical(softmax(l))}[f(one_hot(k))]``.

**One interface** (:func:`sample_with`): ``y, surrogate = sample_with(name, logits, tau)``
returns a sample ``y`` and a map ``surrogate``; for any loss ``f(y)``,
``surrogate(f(y)).sum().backward()`` leaves that estimator's gradient in ``logits.grad``, so a
training loop swaps estimators by name (:data:`ESTIMATORS`). The reference is the exact
gradient by enumeration, :func:`~gumbel_lib.enumeration.exact_gradient` (several
independent variables). Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

**Per-draw estimates** (one variable, ``logits`` of shape ``(K,)``): the functions below
return one gradient estimate per draw, shape ``(n_samples, K)``, so that
chapters and tests can measure both their mean (bias) and their spread (variance) against
:func:`exact_expected_gradient`, computed by enumerating the ``K`` categories. ``f`` maps a
batch of points of the simplex, shape ``(n, K)``, to losses, shape ``(n,)``, and must be
written with torch operations (the pathwise estimators differentiate through it).

* score function (REINFORCE, Williams 1992): ``(f(D) - b) * (one_hot(k) - softmax(l))``,
  unbiased for any baseline ``b`` that does not depend on the draw;
* relaxed (Gumbel-softmax): ``d f(softmax((l + g)/tau)) / dl``, biased, low variance;
* straight-through: ``f`` evaluated at the hard sample, the relaxed Jacobian backward.

Chapters: :doc:`The gradient </book/gradient>`,
:doc:`Learning a biased die </book/biased-die>`,
:doc:`Straight-through and hard samples </book/straight-through>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gumbel_lib._validation import (
    check_count,
    check_dim,
    check_logits,
    check_tau,
    raise_bad_logits,
    require,
    should_validate,
)
from gumbel_lib.conditional import gumbel_rao
from gumbel_lib.enumeration import MAX_OUTCOMES, exact_gradient, joint_outcomes
from gumbel_lib.reinforce import Surrogate, check_baseline, check_loss, score_surrogate
from gumbel_lib.reinmax import reinmax
from gumbel_lib.relax import gumbel_softmax
from gumbel_lib.sampling import gumbel_max

__all__ = [
    "ESTIMATORS",
    "MAX_OUTCOMES",
    "exact_expected_gradient",
    "exact_gradient",
    "joint_outcomes",
    "reinmax",
    "relaxed_gradient",
    "sample_with",
    "score_function",
    "sse_gradient",
    "straight_through_gradient",
]

Loss = Callable[[torch.Tensor], torch.Tensor]

ESTIMATORS: tuple[str, ...] = (
    "reinforce",
    "reinforce-loo",
    "gumbel-softmax",
    "straight-through",
    "gumbel-rao",
    "reinmax",
)
"""The names :func:`sample_with` accepts."""

GUMBEL_RAO_DRAWS = 10
"""Conditional draws of ``"gumbel-rao"`` when ``n_samples`` is not given."""


def sample_with(
    name: str,
    logits: torch.Tensor,
    tau: float = 1.0,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    n_samples: int | None = None,
    baseline: torch.Tensor | float | None = None,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, Surrogate]:
    """A sample and a surrogate whose gradient is estimator ``name``'s gradient.

    ``y, surrogate = sample_with(name, logits, tau)``; then ``loss = f(y)`` with one loss
    per sampled vector (shape ``y.shape`` without ``dim``, or a prefix of it: one loss for
    several variables drawn together), and ``surrogate(loss).sum().backward()``. The value
    of ``surrogate(loss)`` equals ``loss``. Estimators (with ``g = df/dy``, ``D`` one-hot):

    * ``"reinforce"``: ``y = D``; gradient ``(f(D) - b) grad log p(D)``, ``b = baseline``
      (a finite number or a tensor broadcastable to the loss, e.g. a moving average;
      default 0; a tensor's values are checked under validation);
    * ``"reinforce-loo"``: ``n_samples >= 2`` draws along a new leading axis, ``b`` the
      mean loss of the other draws (leave-one-out); average the surrogate over that axis;
    * ``"gumbel-softmax"``: ``y = softmax((l + G) / tau)``, the relaxed sample, pathwise;
    * ``"straight-through"``: ``y = D = one_hot(argmax(l + G))``, the relaxed gradient;
    * ``"gumbel-rao"``: ``y = D``, the straight-through gradient averaged over
      ``n_samples`` (default 10) draws of ``G`` conditioned on ``D``
      (:func:`~gumbel_lib.conditional.gumbel_rao`);
    * ``"reinmax"``: ``y = D``, ``2 J(pi_1) g - J(pi_0) g / 2``
      (:func:`~gumbel_lib.reinmax.reinmax`).

    Every ``y`` except the relaxed one is exactly one-hot. For ``"reinforce"`` and the
    pathwise estimators other than ``"gumbel-rao"``, ``n_samples`` adds a leading axis of
    independent draws. The surrogate of the pathwise estimators is ``loss`` itself. For
    REINFORCE pass one loss per independent example, not the batch's sum: a summed loss
    weights every example's score by the whole batch's loss (still unbiased, far noisier).

    >>> logits = torch.zeros(2, 3, requires_grad=True)
    >>> gen = torch.Generator().manual_seed(0)
    >>> y, surrogate = sample_with("reinforce-loo", logits, n_samples=4, generator=gen)
    >>> loss = (y * torch.arange(3.0)).sum(-1)  # one loss per sampled vector: (4, 2)
    >>> surrogate(loss).mean(0).sum().backward()
    >>> tuple(y.shape), torch.equal(surrogate(loss), loss), tuple(logits.grad.shape)
    ((4, 2, 3), True, (2, 3))
    """
    if name not in ESTIMATORS:
        raise ValueError(f"name must be one of {ESTIMATORS}, got {name!r}")
    check_logits(logits)
    tau = check_tau(tau)
    dim = check_dim(dim, logits.dim())
    baseline = check_baseline(baseline)
    if baseline is not None and name != "reinforce":
        raise ValueError(f"baseline is used only by 'reinforce', not by {name!r}")
    if n_samples is not None:
        n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    if name == "reinforce-loo" and (n_samples is None or n_samples < 2):
        raise ValueError(f"n_samples must be >= 2 for 'reinforce-loo', got {n_samples}")
    validate = should_validate(validate_args)
    if validate:
        require(
            torch.isfinite(logits.detach().logsumexp(dim)),
            "logits cannot be sampled from",
            explain=lambda: raise_bad_logits(logits, dim),
        )
    if name == "gumbel-rao":
        draws = GUMBEL_RAO_DRAWS if n_samples is None else n_samples
        y = gumbel_rao(logits, tau, draws, dim=dim, generator=generator)
        return y, _pathwise(y, dim)
    if n_samples is not None:
        logits = logits.unsqueeze(0).expand(n_samples, *logits.shape)
        dim += 1
    if name == "gumbel-softmax":
        y = gumbel_softmax(logits, tau, dim=dim, generator=generator)
    elif name == "straight-through":
        y = gumbel_softmax(logits, tau, True, dim=dim, generator=generator)
    elif name == "reinmax":
        y = reinmax(logits, tau, dim=dim, generator=generator, validate_args=False)
    else:
        index = gumbel_max(logits.detach(), dim=dim, generator=generator).unsqueeze(dim)
        y = torch.zeros_like(logits.detach()).scatter_(dim, index, 1.0)
        log_prob = torch.log_softmax(logits, dim).gather(dim, index).squeeze(dim)
        return y, score_surrogate(
            log_prob,
            baseline=baseline,
            leave_one_out=name == "reinforce-loo",
            validate_args=validate,
        )
    return y, _pathwise(y, dim)


def _pathwise(y: torch.Tensor, dim: int) -> Surrogate:
    """The identity on losses of the right shape: the gradient already flows through ``y``."""
    batch_shape = y.shape[:dim] + y.shape[dim + 1 :]
    return lambda loss: check_loss(loss, batch_shape)


def sse_gradient(b: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """Gradient of ``sum_i (b_i - y_i)^2`` w.r.t. ``l`` through ``b = softmax((l + g) / tau)``.

    ``(2 / tau) * b * (b - y - c)`` with ``c = sum_j (b_j - y_j) b_j``, along the last axis.
    Derived in :doc:`The gradient </book/gradient>`.

    >>> b = torch.tensor([0.2, 0.8])
    >>> [round(v, 3) for v in sse_gradient(b, torch.tensor([0.0, 1.0]), 1.0).tolist()]
    [0.128, -0.128]
    """
    check_logits(b, "b")
    check_logits(y, "y")
    tau = check_tau(tau)
    if b.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"b and y must have the same last dimension, got {tuple(b.shape)} and {tuple(y.shape)}"
        )
    c = ((b - y) * b).sum(-1, keepdim=True)
    return (2.0 / tau) * b * (b - y - c)


def _check(logits: torch.Tensor, n_samples: int | None = None) -> int:
    check_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be one-dimensional (K,), got shape {tuple(logits.shape)}")
    if n_samples is None:
        return 0
    return check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")


def _losses(f: Loss, points: torch.Tensor) -> torch.Tensor:
    """``f(points)``, refusing a loss that does not return one value per point."""
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    losses = f(points)
    if not isinstance(losses, torch.Tensor) or losses.shape != points.shape[:1]:
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses)
        raise ValueError(f"f must map points of shape (n, K) to shape (n,), got {shape}")
    return losses


def exact_expected_gradient(logits: torch.Tensor, f: Loss) -> torch.Tensor:
    """``grad_l sum_k softmax(l)_k f(e_k)``, by enumeration of the ``K`` one-hot vectors.

    In closed form ``p * (f(e) - sum_k p_k f(e_k))`` with ``p = softmax(l)``; the reference
    that every estimator is measured against in :doc:`The gradient </book/gradient>`.

    >>> f = lambda points: points[:, 0]  # the loss is 1 on category 0, else 0
    >>> [round(v, 4) for v in exact_expected_gradient(torch.zeros(2), f).tolist()]
    [0.25, -0.25]
    """
    _check(logits)
    return exact_gradient(logits, lambda corners: _losses(f, corners))[1]  # V = 1


def score_function(
    logits: torch.Tensor,
    f: Loss,
    n_samples: int,
    *,
    baseline: str | float | None = "leave-one-out",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """REINFORCE estimates ``(f(D_s) - b_s) * (D_s - softmax(l))``, one row per draw ``s``.

    ``D_s - softmax(l)`` is the gradient of ``log softmax(l)_k`` at the drawn ``k``.
    ``baseline`` is ``None`` (no baseline), a finite number, or ``"leave-one-out"``: the
    mean loss of the *other* draws, which keeps every estimate unbiased (it is independent of
    draw ``s``) and needs ``n_samples >= 2``. Chapters: :doc:`The gradient </book/gradient>`,
    :doc:`Learning a biased die </book/biased-die>`.

    >>> f = lambda points: points[:, 0]
    >>> draws = score_function(torch.zeros(2), f, 4, generator=torch.Generator().manual_seed(0))
    >>> tuple(draws.shape)
    (4, 2)
    """
    n_samples = _check(logits, n_samples)
    k = gumbel_max(logits.detach().expand(n_samples, -1), generator=generator)
    draws = torch.nn.functional.one_hot(k, logits.numel()).to(logits.dtype)
    with torch.no_grad():
        losses = _losses(f, draws)
    if baseline == "leave-one-out":
        if n_samples < 2:
            raise ValueError("n_samples must be >= 2 for the leave-one-out baseline")
        b = (losses.sum() - losses) / (n_samples - 1)
    elif baseline is None:
        b = torch.zeros_like(losses)
    elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        if not math.isfinite(baseline):
            raise ValueError(f"baseline must be finite, got {baseline}")
        b = torch.full_like(losses, float(baseline))
    else:
        raise ValueError(f"baseline must be None, a number or 'leave-one-out', got {baseline!r}")
    return (losses - b)[:, None] * (draws - torch.softmax(logits.detach(), -1))


def relaxed_gradient(
    logits: torch.Tensor,
    f: Loss,
    tau: float,
    n_samples: int,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pathwise estimates ``d f(y_s) / dl`` with ``y_s = gumbel_softmax(l, tau, hard)``.

    ``hard=False`` is the Gumbel-softmax (Concrete) estimator, an unbiased gradient of the
    *relaxed* objective ``E_g f(softmax((l + g)/tau))`` and a biased one of ``L``;
    ``hard=True`` is straight-through (see :func:`straight_through_gradient`). Chapter:
    :doc:`The gradient </book/gradient>`.

    >>> f = lambda points: points[:, 0]
    >>> gen = torch.Generator().manual_seed(0)
    >>> tuple(relaxed_gradient(torch.zeros(3), f, 0.5, 8, generator=gen).shape)
    (8, 3)
    """
    n_samples = _check(logits, n_samples)
    tau = check_tau(tau)
    leaf = logits.detach().expand(n_samples, -1).clone().requires_grad_(True)
    y = gumbel_softmax(leaf, tau, hard, generator=generator)
    (grad,) = torch.autograd.grad(_losses(f, y).sum(), leaf)
    return grad


def straight_through_gradient(
    logits: torch.Tensor,
    f: Loss,
    tau: float,
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Straight-through Gumbel-softmax estimates: ``f`` at the exact one-hot sample ``D``,
    the Jacobian of the soft sample ``softmax((l + g)/tau)`` (same noise) backward.

    ``J_y(g)^T grad f(D)``, biased in general at every ``tau``, even for a linear
    ``f(x) = a . x``: its mean is then the gradient of ``l -> a . E[y]``, not of
    ``l -> a . softmax(l)``, and the two gradients differ even where the two functions agree
    (``K = 2``, ``l = 0``, ``a = e_1``: ``E[y] = softmax(l) = (1/2, 1/2)``, yet the mean
    estimate of ``dL/dl_1`` is below the exact ``1/4``). With ``a = c 1`` (``f`` constant on
    the simplex) both are ``0``, since ``J_y^T 1 = 0``. Chapter:
    :doc:`Straight-through and hard samples </book/straight-through>`.

    >>> f = lambda points: points[:, 0]
    >>> gen = torch.Generator().manual_seed(0)
    >>> tuple(straight_through_gradient(torch.zeros(3), f, 1.0, 8, generator=gen).shape)
    (8, 3)
    """
    return relaxed_gradient(logits, f, tau, n_samples, hard=True, generator=generator)
