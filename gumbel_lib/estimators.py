"""Gradient estimators for ``L(l) = E_{k ~ Categorical(softmax(l))}[f(one_hot(k))]``.

All estimators return one gradient estimate per draw, shape ``(n_samples, K)``, so that
chapters and tests can measure both their mean (bias) and their spread (variance) against
:func:`exact_expected_gradient`, computed by enumerating the ``K`` categories. ``f`` maps a
batch of points of the simplex, shape ``(n, K)``, to losses, shape ``(n,)``, and must be
written with torch operations (the pathwise estimators differentiate through it).

* score function (REINFORCE, Williams 1992): ``(f(D) - b) * (one_hot(k) - softmax(l))``,
  unbiased for any baseline ``b`` that does not depend on the draw;
* relaxed (Gumbel-softmax): ``d f(softmax((l + g)/tau)) / dl``, biased, low variance;
* straight-through: ``f`` evaluated at the hard sample, the relaxed Jacobian backward.

Chapters: *The gradient*, *Learning a biased die*, *Straight-through and hard samples*.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gumbel_lib._validation import check_count, check_logits, check_tau
from gumbel_lib.relax import gumbel_softmax
from gumbel_lib.sampling import gumbel_max

Loss = Callable[[torch.Tensor], torch.Tensor]


def sse_gradient(b: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """Gradient of ``sum_i (b_i - y_i)^2`` w.r.t. ``l`` through ``b = softmax((l + g) / tau)``.

    ``(2 / tau) * b * (b - y - c)`` with ``c = sum_j (b_j - y_j) b_j``, along the last axis.
    Derived in *The gradient*.

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
    that every estimator is measured against in *The gradient*.

    >>> f = lambda points: points[:, 0]  # the loss is 1 on category 0, else 0
    >>> [round(v, 4) for v in exact_expected_gradient(torch.zeros(2), f).tolist()]
    [0.25, -0.25]
    """
    _check(logits)
    leaf = logits.detach().clone().requires_grad_(True)
    corners = torch.eye(leaf.numel(), dtype=leaf.dtype, device=leaf.device)
    expected = (torch.softmax(leaf, -1) * _losses(f, corners)).sum()
    return torch.autograd.grad(expected, leaf)[0]


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
    ``baseline`` is ``None`` (no baseline), a number, or ``"leave-one-out"``: the mean loss
    of the *other* draws, which keeps every estimate unbiased (it is independent of draw
    ``s``) and needs ``n_samples >= 2``. Chapters: *The gradient*, *Learning a biased die*.

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
    *The gradient*.

    >>> f = lambda points: points[:, 0]
    >>> gen = torch.Generator().manual_seed(0)
    >>> tuple(relaxed_gradient(torch.zeros(3), f, 0.5, 8, generator=gen).shape)
    (8, 3)
    """
    n_samples = _check(logits, n_samples)
    tau = check_tau(tau)
    leaf = logits.detach().expand(n_samples, -1).clone().requires_grad_(True)
    y = gumbel_softmax(leaf, tau, hard, generator=generator)
    _losses(f, y).sum().backward()
    assert leaf.grad is not None  # backward() just filled it
    return leaf.grad


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

    ``J_y(g)^T grad f(D)``, biased for every ``tau`` unless ``f`` is linear *and*
    ``E[y] = softmax(l)``. Chapter: *Straight-through and hard samples*.

    >>> f = lambda points: points[:, 0]
    >>> gen = torch.Generator().manual_seed(0)
    >>> tuple(straight_through_gradient(torch.zeros(3), f, 1.0, 8, generator=gen).shape)
    (8, 3)
    """
    return relaxed_gradient(logits, f, tau, n_samples, hard=True, generator=generator)
