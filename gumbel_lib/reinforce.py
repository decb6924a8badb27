"""REINFORCE (score-function) surrogates: the loss, plus a term whose gradient is the score.

For an exact sample ``D`` with log-probability ``log p(D)`` and a loss ``f(D)``,

    surrogate = f(D) + (f(D) - b) * (log p(D) - stop_gradient(log p(D)))

has the forward value ``f(D)`` (the bracket is exactly zero) and the gradient
``(f(D) - b) grad log p(D)`` w.r.t. the logits (Williams, 1992), plus whatever gradient
``f`` itself carries (for example to a decoder's weights). ``b`` is a baseline that does not
depend on the draw: a number, a tensor held by the caller (a moving average), or, with
several draws, the mean loss of the *other* draws (leave-one-out; Mnih and Rezende, 2016;
Kool et al., 2019). Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

Surrogate = Callable[[torch.Tensor], torch.Tensor]


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
    """``None``, a real number, or a tensor (broadcast against the loss; never differentiated)."""
    if baseline is None or isinstance(baseline, torch.Tensor):
        return baseline
    if isinstance(baseline, bool) or not isinstance(baseline, numbers.Real):
        kind = type(baseline).__name__
        raise TypeError(f"baseline must be None, a number or a tensor, got {kind}")
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
) -> Surrogate:
    """The map ``loss -> loss + (loss - b) * (log_prob - stop_gradient(log_prob))``.

    ``log_prob`` has the batch shape of the sample (one entry per sampled vector). With
    ``leave_one_out`` the first axis indexes ``n >= 2`` draws and ``b`` for draw ``s`` is the
    mean loss of the other ``n - 1``; otherwise ``b`` is ``baseline`` (0 when ``None``).

    >>> log_prob = torch.log(torch.tensor([0.25, 0.5])).requires_grad_(True)
    >>> surrogate = score_surrogate(log_prob, baseline=1.0)
    >>> loss = torch.tensor([3.0, 2.0])
    >>> out = surrogate(loss); out.sum().backward()
    >>> out.tolist(), log_prob.grad.tolist()
    ([3.0, 2.0], [2.0, 1.0])
    """
    batch_shape = log_prob.shape
    score = log_prob - log_prob.detach()  # value exactly 0, gradient grad log p

    def surrogate(loss: torch.Tensor) -> torch.Tensor:
        loss = check_loss(loss, batch_shape)
        extra = tuple(range(loss.dim(), score.dim()))  # variables drawn for the same loss
        joint = score.sum(extra) if extra else score  # (sum over () would sum everything)
        centred = loss.detach()
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
        return loss + centred * joint

    return surrogate
