"""Gradient estimators for ``L(l) = E_{k ~ Categorical(softmax(l))}[f(one_hot(k))]``.

All estimators return one gradient estimate per draw, shape ``(n_samples, K)``, so that
chapters and tests can measure both their mean (bias) and their spread (variance) against
:func:`exact_gradient`, computed by enumerating the ``K`` categories. ``f`` maps a batch of
points of the simplex, shape ``(n, K)``, to losses, shape ``(n,)``, and must be written
with torch operations (the pathwise estimators differentiate through it).

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
    tau = check_tau(tau)
    c = ((b - y) * b).sum(-1, keepdim=True)
    return (2.0 / tau) * b * (b - y - c)


def _check(logits: torch.Tensor, n_samples: int) -> int:
    check_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be one-dimensional (K,), got shape {tuple(logits.shape)}")
    return check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")


def exact_gradient(logits: torch.Tensor, f: Loss) -> torch.Tensor:
    """``grad_l sum_k softmax(l)_k f(e_k)``, by enumeration of the ``K`` one-hot vectors."""
    check_logits(logits)
    leaf = logits.detach().clone().requires_grad_(True)
    corners = torch.eye(leaf.numel(), dtype=leaf.dtype)
    expected = (torch.softmax(leaf, -1) * f(corners)).sum()
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

    ``baseline`` is ``None`` (no baseline), a number, or ``"leave-one-out"``: the mean loss
    of the *other* draws, which keeps every estimate unbiased (it is independent of draw
    ``s``) and needs ``n_samples >= 2``.
    """
    n_samples = _check(logits, n_samples)
    k = gumbel_max(logits.detach().expand(n_samples, -1), generator=generator)
    draws = torch.nn.functional.one_hot(k, logits.numel()).to(logits.dtype)
    with torch.no_grad():
        losses = f(draws)
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

    ``hard=False`` is the Gumbel-softmax (Concrete) estimator; ``hard=True`` is
    straight-through Gumbel-softmax: ``f`` sees the exact one-hot sample.
    """
    n_samples = _check(logits, n_samples)
    tau = check_tau(tau)
    leaf = logits.detach().expand(n_samples, -1).clone().requires_grad_(True)
    y = gumbel_softmax(leaf, tau, hard, generator=generator)
    f(y).sum().backward()
    return leaf.grad
