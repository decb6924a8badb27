"""The exact expected loss and its gradient, by enumerating every joint outcome.

For ``V`` independent categorical variables with logits ``l`` of shape ``(V, K)`` and a loss
``f`` of the joint one-hot outcome ``D`` (shape ``(V, K)``),

    L(l) = E[f(D)] = sum_{k_1..k_V} prod_v softmax(l_v)_{k_v} f(e_{k_1}, ..., e_{k_V}),

a sum of ``K**V`` terms. We form all of them and differentiate the sum with autograd: the
reference every gradient estimator is measured against in :doc:`Lower-variance gradients
</book/lower-variance-gradients>`. Beyond :data:`MAX_OUTCOMES` joint outcomes we refuse.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gumbel_lib._validation import check_logits, raise_bad_logits, require, should_validate

MAX_OUTCOMES = 2**16
"""The largest number of joint outcomes ``K**V`` that :func:`exact_gradient` enumerates."""

JointLoss = Callable[[torch.Tensor], torch.Tensor]


def joint_outcomes(
    n_variables: int,
    n_categories: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Every joint one-hot outcome of ``V`` variables with ``K`` categories, ``(K**V, V, K)``.

    Row ``r`` is the base-``K`` expansion of ``r`` (first variable most significant).

    >>> joint_outcomes(2, 2).argmax(-1).tolist()
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    for value, name in ((n_variables, "n_variables"), (n_categories, "n_categories")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_categories**n_variables > MAX_OUTCOMES:
        raise ValueError(
            f"K**V = {n_categories}**{n_variables} joint outcomes is more than MAX_OUTCOMES = "
            f"{MAX_OUTCOMES}: enumeration is for small problems (use an estimator instead)"
        )
    grids = torch.meshgrid(
        *[torch.arange(n_categories, device=device)] * n_variables, indexing="ij"
    )
    index = torch.stack([g.reshape(-1) for g in grids], dim=-1)  # (K**V, V)
    return torch.nn.functional.one_hot(index, n_categories).to(dtype)


def exact_gradient(
    logits: torch.Tensor, f: JointLoss, *, validate_args: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The expected loss ``E[f(D)]`` and its gradient w.r.t. ``logits``, by enumeration.

    ``logits`` has shape ``(V, K)`` (``V`` independent variables) or ``(K,)`` (one variable);
    ``f`` maps a batch of outcomes, shape ``(N, *logits.shape)``, to ``N`` losses and must be
    deterministic. Raises ``ValueError`` when ``K**V`` exceeds :data:`MAX_OUTCOMES`.

    An outcome of probability zero (one that draws a masked, ``-inf`` category) does not
    enter the sum: we define ``0 * f = 0`` there even where ``f`` is infinite or NaN, as
    the expectation does, and it gets a zero gradient. Under validation, a loss that is not
    finite on an outcome of positive probability raises ``ValueError`` (the expectation
    would be infinite or undefined), as do NaN or ``+inf`` logits and rows masked
    everywhere. Chapter: :doc:`Lower-variance gradients </book/lower-variance-gradients>`.

    >>> f = lambda d: d[:, 0, 0] * d[:, 1, 1]  # 1 when variable 0 is 0 and variable 1 is 1
    >>> value, grad = exact_gradient(torch.zeros(2, 2), f)
    >>> round(value.item(), 4), [round(v, 4) for v in grad[0].tolist()]
    (0.25, [0.125, -0.125])
    """
    check_logits(logits)
    if logits.dim() > 2:
        raise ValueError(f"logits must have shape (V, K) or (K,), got {tuple(logits.shape)}")
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    validate = should_validate(validate_args)
    if validate and logits.numel():
        require(
            (logits < torch.inf).all(-1) & (logits > -torch.inf).any(-1),
            "logits must be free of NaN and +inf, with a finite logit in every row",
            lambda: raise_bad_logits(logits, -1),
        )
    table = logits.detach().reshape(-1, logits.shape[-1])  # (V, K)
    n_variables, n_categories = table.shape
    outcomes = joint_outcomes(n_variables, n_categories, dtype=table.dtype, device=table.device)
    leaf = table.clone().requires_grad_(True)
    log_softmax = torch.log_softmax(leaf, -1).expand_as(outcomes)
    log_p = torch.where(outcomes.bool(), log_softmax, 0.0).sum((-2, -1))  # -inf if masked
    with torch.no_grad():
        losses = f(outcomes.reshape(-1, *logits.shape))
    if not isinstance(losses, torch.Tensor) or losses.shape != outcomes.shape[:1]:
        got = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"f must map N outcomes to shape (N,), got {got}")
    possible = log_p > -torch.inf  # outcomes that draw no masked category
    losses = losses.to(log_p.dtype)
    if validate:
        require(
            torch.isfinite(losses) | ~possible,
            "f must be finite on every outcome of positive probability (it is infinite or "
            "NaN on one, so the expected loss is not finite)",
        )
    safe = torch.where(possible, losses, torch.zeros_like(losses))  # 0 * f = 0 where p = 0
    value = (log_p.exp() * safe).sum()
    (grad,) = torch.autograd.grad(value, leaf)
    return value.detach(), grad.reshape(logits.shape)
