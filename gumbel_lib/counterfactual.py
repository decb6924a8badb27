"""Counterfactuals in a Gumbel-max structural causal model (Oberst and Sontag, 2019).

The mechanism ``X = argmax_i (l_i + g_i)`` with standard Gumbel noise ``g`` turns a
categorical model into a structural causal model. Having observed ``X = k`` under logits
``l``, the counterfactual question "what would ``X`` have been under logits ``l'``?" is
answered in three steps: the posterior of the noise given ``X = k`` (abduction), the new
logits (action), and ``argmax_i (l'_i + g_i)`` (prediction).

The posterior is the top-down truncated-Gumbel law of :doc:`Sampling without replacement
</book/sampling-without-replacement>`: ``g_k = logsumexp(l) - l_k + h_k`` and
``g_i = -log(exp(l_i - M) + exp(-h_i))`` for ``i != k``, with ``M = logsumexp(l) + h_k``
and fresh standard Gumbels ``h``; a category with ``l_i = -inf`` keeps its prior noise
``h_i``. :func:`posterior_gumbels` draws it (it equals
:func:`gumbel_lib.conditional.conditional_gumbels` minus the logits),
:func:`counterfactual_gumbel_max` samples counterfactual outcomes and
:func:`counterfactual_probs` gives their law exactly (a row of the Gumbel coupling's joint
law, :func:`gumbel_lib.coupling.coupling_joint`). Chapter:
:doc:`Shared noise </book/shared-noise>`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gumbel_lib._validation import (
    check_categories,
    check_count,
    check_dim,
    check_generator,
    check_logits,
    should_validate,
)
from gumbel_lib.conditional import check_condition, check_index
from gumbel_lib.coupling import _check_finite, _race_terms
from gumbel_lib.noise import sample_gumbel
from gumbel_lib.sampling import centred

__all__ = [
    "counterfactual_gumbel_max",
    "counterfactual_probs",
    "counterfactual_sequence",
    "posterior_gumbels",
]


def posterior_gumbels(
    logits: torch.Tensor,
    observed: torch.Tensor,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``n_samples`` draws of the noise ``g`` given ``argmax(logits + g) = observed``.

    The top-down construction of the module docstring, in float64: a tensor of shape
    ``(n_samples, *logits.shape)``, finite everywhere (a masked category keeps a prior
    standard Gumbel). ``argmax(logits + g)`` equals ``observed`` in every draw, and
    ``logits + g`` has the law of :func:`gumbel_lib.conditional.conditional_gumbels`.
    Under validation, NaN or ``+inf`` logits and an ``observed`` out of range or at a
    masked category raise ``ValueError``. Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> logits = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    >>> g = posterior_gumbels(logits, torch.tensor(2), 1000,
    ...                       generator=torch.Generator().manual_seed(0))
    >>> bool(((logits + g).argmax(-1) == 2).all())
    True
    """
    check_logits(logits)
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    check_generator(generator)
    observed = check_index(observed, logits, dim, "observed")
    if should_validate(validate_args) and logits.numel():
        check_condition(logits, observed, dim, "observed")
    wide = logits.detach().to(torch.float64)
    shape = (n_samples, *logits.shape)
    h = sample_gumbel(
        shape, generator=generator, dtype=torch.float64, device=logits.device, validate_args=False
    )
    d = dim + 1  # the sample axis comes first
    at = observed.unsqueeze(dim).unsqueeze(0).expand(n_samples, *observed.unsqueeze(dim).shape)
    top = torch.logsumexp(wide, dim, keepdim=True).unsqueeze(0) + h.gather(d, at)  # the max M
    losers = -torch.logaddexp(wide - top, -h)  # h truncated above at M - l; h where l = -inf
    winner = top - wide.gather(dim, observed.unsqueeze(dim)).unsqueeze(0)
    return losers.scatter(d, at, winner)


def counterfactual_gumbel_max(
    logits: torch.Tensor,
    observed: torch.Tensor,
    counterfactual_logits: torch.Tensor,
    n_samples: int,
    *,
    dim: int = -1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``n_samples`` counterfactual outcomes ``argmax(counterfactual_logits + g)``, with ``g``
    the posterior noise given ``argmax(logits + g) = observed``.

    Abduction by :func:`posterior_gumbels`, action and prediction by one Gumbel-max in
    float64 (centred logits, as :func:`gumbel_lib.sampling.gumbel_max`). Returns an int64
    tensor of shape ``(n_samples, *batch)``, ``batch`` the shape of ``logits`` without
    ``dim``; its law is :func:`counterfactual_probs`. With ``counterfactual_logits`` equal
    to ``logits`` every draw is ``observed``. Under validation, bad logits (NaN, ``+inf``,
    a row masked everywhere) and a bad ``observed`` raise ``ValueError``. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> logits = torch.tensor([1.0, 0.0, -1.0])
    >>> same = counterfactual_gumbel_max(logits, torch.tensor(1), logits, 100,
    ...                                  generator=torch.Generator().manual_seed(0))
    >>> bool((same == 1).all())
    True
    """
    check_logits(counterfactual_logits, "counterfactual_logits")
    if counterfactual_logits.shape != logits.shape:
        raise ValueError(
            "counterfactual_logits must have the shape of logits, got "
            f"{tuple(counterfactual_logits.shape)} and {tuple(logits.shape)}"
        )
    g = posterior_gumbels(
        logits, observed, n_samples, dim=dim, generator=generator, validate_args=validate_args
    )
    dim = check_dim(dim, logits.dim())
    shifted = centred(counterfactual_logits.detach(), dim).unsqueeze(0)
    low, index = torch.sub(-g, shifted).min(dim + 1)
    if should_validate(validate_args) and low.numel():
        _check_finite(low, counterfactual_logits, dim, "counterfactual_logits")
    return index


def counterfactual_probs(
    logits: torch.Tensor,
    observed: torch.Tensor,
    counterfactual_logits: torch.Tensor,
    *,
    dim: int = -1,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """The exact law of the counterfactual outcome given ``argmax(logits + g) = observed``.

    ``P(X' = j | X = k) = P(X = k, X' = j) / p_k`` for the Gumbel coupling of
    ``p = softmax(logits)`` and ``p' = softmax(counterfactual_logits)``: with
    ``rho_i = p_i / p'_i``, ``S(s) = sum_m (p'_m s - p_m)^+`` and
    ``Phi(s) = integral_0^s (1 + S)^-2``, it is ``p'_j (Phi(rho_k) - Phi(rho_j))^+`` for
    ``j != k`` and ``1 / (1 + S(rho_k))`` for ``j = k`` (module docstring of
    :mod:`gumbel_lib.coupling`). Returns a float64 tensor of the shape of ``logits`` with
    ``dim`` last, each row summing to one. Under validation, bad logits and a bad
    ``observed`` raise ``ValueError``. Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> logits = torch.tensor([0.0, 0.0, 0.0])
    >>> probs = counterfactual_probs(logits, torch.tensor(0), torch.tensor([0.0, 1.0, 0.0]))
    >>> [round(v, 6) for v in probs.tolist()]
    [0.635825, 0.364175, 0.0]
    """
    check_logits(logits)
    check_logits(counterfactual_logits, "counterfactual_logits")
    if counterfactual_logits.shape != logits.shape:
        raise ValueError(
            "counterfactual_logits must have the shape of logits, got "
            f"{tuple(counterfactual_logits.shape)} and {tuple(logits.shape)}"
        )
    dim = check_dim(dim, logits.dim())
    check_categories(logits.shape, dim)
    observed = check_index(observed, logits, dim, "observed")
    if should_validate(validate_args) and logits.numel():
        check_condition(logits, observed, dim, "observed")
        top = counterfactual_logits.detach().amax(dim)
        _check_finite(top, counterfactual_logits, dim, "counterfactual_logits")
    p, q, s_at, phi, both = _race_terms(logits.detach(), counterfactual_logits.detach(), dim)
    at = observed.unsqueeze(-1)
    gap = (phi.gather(-1, at) - phi).clamp_min(0.0)
    off = q * gap
    stay = torch.where(both, 1.0 / s_at, 0.0).gather(-1, at)
    return off.scatter(-1, at, stay)


def counterfactual_sequence(
    logits: torch.Tensor,
    observed: torch.Tensor,
    counterfactual_model: Callable[[torch.Tensor], torch.Tensor],
    n_samples: int,
    *,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Counterfactual continuations of an observed sequence under another autoregressive model.

    ``logits`` (shape ``(T, K)``) are the factual model's logits at each step of the observed
    sequence ``observed`` (shape ``(T,)``). Step ``t`` draws the posterior noise ``g_t``
    given ``observed[t]`` (:func:`posterior_gumbels`; the steps' noises are independent a
    posteriori, because each step's observation involves only its own noise once the past
    is fixed), and the counterfactual token is ``argmax(counterfactual_model(prefix) + g_t)``,
    where ``prefix`` (shape ``(n_samples, t)``, int64) holds the counterfactual tokens so far
    and the model returns logits of shape ``(n_samples, K)``. Returns an int64 tensor of
    shape ``(n_samples, T)``. Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> logits = torch.zeros(3, 2)
    >>> same = counterfactual_sequence(logits, torch.tensor([0, 1, 1]),
    ...                                lambda prefix: torch.zeros(prefix.shape[0], 2), 4,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> same.tolist()[0]
    [0, 1, 1]
    """
    check_logits(logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (T, K), got {tuple(logits.shape)}")
    observed = check_index(observed, logits, 1, "observed")
    if not callable(counterfactual_model):
        raise TypeError("counterfactual_model must be a callable: prefix -> logits")
    steps, categories = logits.shape
    prefix = torch.zeros(n_samples, 0, dtype=torch.int64, device=logits.device)
    for t in range(steps):
        g = posterior_gumbels(
            logits[t], observed[t], n_samples, generator=generator, validate_args=validate_args
        )
        step_logits = counterfactual_model(prefix)
        check_logits(step_logits, "counterfactual_model(prefix)")
        if step_logits.shape != (n_samples, categories):
            raise ValueError(
                f"counterfactual_model must return logits of shape ({n_samples}, {categories}), "
                f"got {tuple(step_logits.shape)}"
            )
        token = torch.sub(-g, centred(step_logits.detach(), -1)).argmin(-1)
        prefix = torch.cat([prefix, token.unsqueeze(-1)], -1)
    return prefix
