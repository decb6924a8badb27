"""ReinMax at the edges of floating point, and the enumeration reference it is measured by.

Every check here is exact (no statistical test, no false-failure budget). ReinMax's law
and its bias are tested in ``test_sample_with.py`` and ``test_estimator_bias.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seeded

from gumbel_lib import exact_gradient, gumbel_max, reinmax, sample_with
from gumbel_lib.reinmax import expected_backward, softmax_jacobian_path, tempered_softmax

BIG = torch.finfo(torch.float32).max


def jacobian_times(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``J(p) g = p * (g - <p, g>)`` along the last axis."""
    return p * (g - (p * g).sum(-1, keepdim=True))


@pytest.mark.parametrize("tau", [1e-3, 1e-30, 1e-300])
def test_huge_logits_and_tiny_tau_give_finite_values_and_gradients(tau: float) -> None:
    # logits / tau overflows to inf (softmax of inf is NaN); l - sum(p l) overflows too
    logits = torch.tensor([[BIG, BIG, -BIG], [3e38, 1.0, -3e38], [1.0, 2.0, 0.5]])
    x = logits.clone().requires_grad_(True)
    d = reinmax(x, tau, generator=seeded(0))
    expected = torch.nn.functional.one_hot(gumbel_max(logits, generator=seeded(0)), 3).float()
    assert torch.equal(d.detach(), expected)  # exactly the one-hot of the same draw
    g = torch.tensor([[1.0, -2.0, 0.5]]).expand(3, 3)
    (d * g).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # the formula, with softmax(l / tau) at its limit: the one-hot of argmax l (ties shared)
    pi_0 = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    pi_0[2] = torch.softmax(logits[2], -1)
    cold = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pi_1 = (expected + cold) / 2
    formula = 2 * jacobian_times(pi_1, g) - jacobian_times(pi_0, g) / 2
    assert torch.allclose(x.grad, formula, rtol=1e-6, atol=1e-7)


def test_sample_with_reinmax_is_finite_where_the_logits_overflow() -> None:
    x = torch.tensor([[BIG, BIG, -BIG, 0.0]] * 4, requires_grad=True)
    y, surrogate = sample_with("reinmax", x, 1e-6, generator=seeded(1))
    assert torch.isfinite(y).all() and torch.equal(y.sum(-1), torch.ones(4))
    surrogate((y * torch.arange(4.0)).sum(-1)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_tempered_softmax_and_the_zero_valued_path() -> None:
    assert tempered_softmax(torch.tensor([BIG, 0.0, -BIG]), 1e-3, -1).tolist() == [1, 0, 0]
    z = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    assert torch.allclose(tempered_softmax(z, 0.7, -1), torch.softmax(z / 0.7, -1), rtol=1e-14)
    masked = tempered_softmax(torch.tensor([0.0, -math.inf, 1.0]), 1e-3, -1)
    assert masked.tolist() == [0.0, 0.0, 1.0]
    x = torch.tensor([BIG, -BIG, -math.inf], requires_grad=True)
    p = torch.tensor([0.6, 0.4, 0.0])
    path = softmax_jacobian_path(p, x, -1)
    assert torch.equal(path.detach(), torch.zeros(3))  # exactly zero: nothing to overflow
    g = torch.tensor([1.0, -1.0, 3.0])
    path.backward(g)
    assert x.grad is not None
    assert torch.allclose(x.grad, jacobian_times(p, g), rtol=1e-6) and x.grad[2] == 0


def test_expected_backward_at_a_tiny_temperature_is_finite() -> None:
    logits = torch.tensor([[0.2, -0.4, 1.0]], dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grad = expected_backward(logits, lambda d: (d @ w).sum(-1) ** 2, 1e-300)
    assert torch.isfinite(grad).all()


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="logits contains NaN"):
        reinmax(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match=r"logits contains \+inf"):
        reinmax(torch.tensor([0.0, math.inf]))
    with pytest.raises(ValueError, match="-inf for every category"):
        reinmax(torch.tensor([[0.0, 1.0], [-math.inf, -math.inf]]))
    with pytest.raises(ValueError, match="tau"):
        reinmax(torch.zeros(3), 0.0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        reinmax(torch.zeros(3), generator=1)
    with pytest.raises(ValueError, match="no categories"):
        reinmax(torch.zeros(2, 0))
    off = reinmax(torch.tensor([0.0, math.nan]), validate_args=False, generator=seeded(2))
    assert off.shape == (2,)  # value checks only under validation


def test_exact_gradient_ignores_an_infinite_loss_of_probability_zero() -> None:
    # Outcome (variable 0 = category 1) has probability 0; f is +inf there only. 0 * inf := 0.
    logits = torch.tensor([[0.3, -math.inf, -0.2], [0.1, 0.4, -1.0]], dtype=torch.float64)

    def loss(d: torch.Tensor, at_zero: float) -> torch.Tensor:
        base = (d * torch.arange(3.0, dtype=torch.float64)).sum((-2, -1))
        return torch.where(d[:, 0, 1] > 0, at_zero, base)

    value, grad = exact_gradient(logits, lambda d: loss(d, math.inf))
    reference = exact_gradient(logits, lambda d: loss(d, 0.0))
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    assert value == reference[0] and torch.equal(grad, reference[1])
    value_nan, grad_nan = exact_gradient(logits, lambda d: loss(d, math.nan))
    assert value_nan == reference[0] and torch.equal(grad_nan, reference[1])
    assert grad[0, 1] == 0
    # infinite on an outcome of positive probability: the expectation is infinite
    with pytest.raises(ValueError, match="f must be finite on every outcome of positive"):
        exact_gradient(logits.nan_to_num(neginf=0.0), lambda d: loss(d, math.inf))
    unchecked = exact_gradient(
        logits.nan_to_num(neginf=0.0), lambda d: loss(d, math.inf), validate_args=False
    )
    assert unchecked[0] == math.inf  # without validation: the caller's responsibility
