"""concrete_log_prob against the closed form, numerical integration and its own gradient."""

from __future__ import annotations

import math

import pytest
import scipy.integrate
import torch
from conftest import seeded
from torch.autograd import gradcheck

from gumbel_lib import concrete_log_prob, gumbel_softmax, relaxed_log_sample


def closed_form(y: torch.Tensor, logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Gamma(n) tau^(n-1) prod(p_i y_i^(-tau-1)) / (sum p_i y_i^(-tau))^n, computed directly."""
    n = y.shape[-1]
    p = torch.softmax(logits, -1)
    numerator = math.gamma(n) * tau ** (n - 1) * (p * y ** (-tau - 1)).prod(-1)
    return (numerator / (p * y ** (-tau)).sum(-1) ** n).log()


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.0])
def test_matches_closed_form(n: int, tau: float) -> None:
    logits = torch.randn(200, n, dtype=torch.float64, generator=seeded(n))
    y = gumbel_softmax(logits, max(tau, 1.0), generator=seeded(100 + n))  # interior points
    ours = concrete_log_prob(y, logits, tau)
    assert torch.allclose(ours, closed_form(y, logits, tau), rtol=1e-6, atol=0)


@pytest.mark.parametrize(("delta", "tau"), [(0.0, 1.0), (1.3, 0.5), (-2.0, 2.0), (0.5, 0.2)])
def test_two_categories_integrates_to_one(delta: float, tau: float) -> None:
    logits = torch.tensor([delta, 0.0], dtype=torch.float64)

    def density_in_logit_space(t: float) -> float:
        # y = (sigmoid(t), sigmoid(-t)); dy_1 = y_1 y_2 dt, and log y stays exact in the tails
        log_y = torch.nn.functional.logsigmoid(torch.tensor([t, -t], dtype=torch.float64))
        log_p = concrete_log_prob(log_y, logits, tau, log_input=True).item()
        return math.exp(log_p + log_y.sum().item())

    total, error = scipy.integrate.quad(density_in_logit_space, -math.inf, math.inf, limit=200)
    assert abs(total - 1.0) < 1e-6 + error


def test_log_input_equals_direct_input() -> None:
    logits = torch.randn(50, 4, dtype=torch.float64, generator=seeded(1))
    log_y = relaxed_log_sample(logits, 0.8, generator=seeded(2))
    direct = concrete_log_prob(log_y.exp(), logits, 0.8)
    assert torch.allclose(concrete_log_prob(log_y, logits, 0.8, log_input=True), direct)


def test_low_temperature_in_log_space_is_finite() -> None:
    logits = torch.randn(100, 6, generator=seeded(3))
    log_y = relaxed_log_sample(logits, 0.01, generator=seeded(4))
    out = concrete_log_prob(log_y, logits, 0.01, log_input=True)
    assert torch.isfinite(out).all()


def test_masked_category_reduces_to_the_smaller_simplex() -> None:
    logits = torch.tensor([0.2, -math.inf, -0.4, 1.0], dtype=torch.float64)
    y = torch.tensor([0.3, 0.0, 0.2, 0.5], dtype=torch.float64)
    reduced = concrete_log_prob(y[[0, 2, 3]], logits[[0, 2, 3]], 0.7)
    assert torch.allclose(concrete_log_prob(y, logits, 0.7), reduced, rtol=1e-12)


def test_mass_on_a_masked_category_has_density_zero() -> None:
    logits = torch.tensor([0.2, -math.inf, 1.0], dtype=torch.float64)
    y = torch.tensor([0.3, 0.2, 0.5], dtype=torch.float64)
    assert concrete_log_prob(y, logits, 0.7).item() == -math.inf


def test_zero_on_the_support_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        concrete_log_prob(torch.tensor([1.0, 0.0]), torch.zeros(2), 0.5)


def test_not_on_the_simplex_is_refused() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob(torch.tensor([0.5, 0.6]), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="y must be >= 0"):
        concrete_log_prob(torch.tensor([1.5, -0.5]), torch.zeros(2), 0.5)


def test_gradient_in_float64() -> None:
    y = gumbel_softmax(torch.zeros(3, 4, dtype=torch.float64), 1.0, generator=seeded(5))
    logits = torch.randn(3, 4, dtype=torch.float64, generator=seeded(6), requires_grad=True)
    assert gradcheck(lambda x: concrete_log_prob(y, x, 0.6), (logits,))


def test_half_precision_is_evaluated_in_float32() -> None:
    logits = torch.randn(10, 3, generator=seeded(7))
    y = gumbel_softmax(logits, 1.0, generator=seeded(8))
    out = concrete_log_prob(y.half(), logits.half(), 1.0)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_batch_of_points_against_shared_logits() -> None:
    logits = torch.tensor([0.4, 0.0, -0.2], dtype=torch.float64)
    y = gumbel_softmax(logits.expand(6, 3), 1.0, generator=seeded(9))
    batched = concrete_log_prob(y, logits, 0.5)
    one_by_one = torch.stack([concrete_log_prob(row, logits, 0.5) for row in y])
    assert batched.shape == (6,) and torch.allclose(batched, one_by_one)
    with pytest.raises(ValueError, match="do not broadcast"):
        concrete_log_prob(y, torch.zeros(4, dtype=torch.float64), 0.5)
