"""gumbel_softmax and relaxed_log_sample: law, argmax, straight-through, gradients, numerics.

False-failure budget of this module: 1e-6, for its one DKWM claim (the binary Concrete law).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import relaxed_bernoulli_cdf, seeded
from torch.autograd import gradcheck, gradgradcheck

from gumbel_lib import gumbel_max, gumbel_softmax, relaxed_log_sample, straight_through
from gumbel_lib.stats import dkwm_sample_size, dkwm_test

ALPHA = 1e-6
TAUS = [1e-3, 0.1, 0.5, 1.0, 3.0, 100.0]


def test_binary_relaxed_sample_follows_the_concrete_law() -> None:
    # For two categories y_1 = sigmoid((l_1 - l_2 + L) / tau) with L ~ Logistic(0, 1), so
    # P(y_1 <= s) = sigmoid(tau * logit(s) - (l_1 - l_2)).
    tau, delta = 0.7, 0.8
    n = dkwm_sample_size(0.01, ALPHA)
    logits = torch.tensor([delta, 0.0], dtype=torch.float64).expand(n, 2)
    y1 = gumbel_softmax(logits, tau, generator=seeded(1))[:, 0]

    verdict = dkwm_test(y1, relaxed_bernoulli_cdf(delta, tau), alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_missing_temperature_is_rejected() -> None:
    tau, delta = 0.7, 0.8
    n = dkwm_sample_size(0.01, ALPHA)
    logits = torch.tensor([delta, 0.0], dtype=torch.float64).expand(n, 2)
    wrong = gumbel_softmax(logits, 1.0, generator=seeded(1))[:, 0]  # tau forgotten

    assert not dkwm_test(wrong, relaxed_bernoulli_cdf(delta, tau), alpha=ALPHA).passed


@pytest.mark.parametrize("tau", TAUS)
def test_argmax_of_relaxed_sample_is_the_gumbel_max_sample(tau: float) -> None:
    logits = torch.randn(2000, 7, generator=seeded(2))
    y = gumbel_softmax(logits, tau, generator=seeded(3))
    index = gumbel_max(logits, generator=seeded(3))
    assert torch.equal(y.gather(-1, index[:, None]).squeeze(-1), y.amax(-1))


@pytest.mark.parametrize("tau", TAUS)
def test_hard_is_exactly_one_hot_at_the_gumbel_max(tau: float) -> None:
    logits = torch.randn(500, 6, generator=seeded(4))
    y = gumbel_softmax(logits, tau, hard=True, generator=seeded(5))
    index = gumbel_max(logits, generator=seeded(5))
    expected = torch.nn.functional.one_hot(index, 6).to(y.dtype)
    assert torch.equal(y, expected)  # ==, not allclose


def test_hard_backward_equals_soft_backward() -> None:
    logits = torch.randn(20, 5, dtype=torch.float64, generator=seeded(6))
    weights = torch.randn(20, 5, dtype=torch.float64, generator=seeded(7))
    grads = []
    for hard in (False, True):
        leaf = logits.clone().requires_grad_(True)
        (gumbel_softmax(leaf, 0.5, hard, generator=seeded(8)) * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


def test_straight_through_forward_is_bitwise_hard() -> None:
    soft = torch.tensor([0.3, 0.7], requires_grad=True)
    hard = torch.tensor([0.0, 1.0])
    assert torch.equal(straight_through(hard, soft), hard)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("dim", [0, -1])
def test_gradcheck_float64(tau: float, dim: int) -> None:
    logits = torch.randn(4, 5, dtype=torch.float64, generator=seeded(9), requires_grad=True)

    def relaxed(x):  # the same noise on every call: a deterministic function of the logits
        return gumbel_softmax(x, tau, dim=dim, generator=seeded(10))

    assert gradcheck(relaxed, (logits,))
    assert gradgradcheck(relaxed, (logits,))


def test_analytic_jacobian() -> None:
    tau = 0.4
    logits = torch.randn(6, dtype=torch.float64, generator=seeded(11))

    def relaxed(x):
        return gumbel_softmax(x, tau, generator=seeded(12))

    y = relaxed(logits)
    jacobian = torch.autograd.functional.jacobian(relaxed, logits)
    analytic = (torch.diag(y) - torch.outer(y, y)) / tau  # dy_i/dl_j = y_i (delta_ij - y_j)/tau
    assert torch.allclose(jacobian, analytic, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hard", [False, True])
def test_masked_logits_give_exact_zeros_and_zero_gradient(hard: bool) -> None:
    logits = torch.tensor([[0.5, -math.inf, 1.0, -math.inf]] * 64, requires_grad=True)
    y = gumbel_softmax(logits, 0.3, hard, generator=seeded(13))
    assert (y[:, 1] == 0).all() and (y[:, 3] == 0).all()
    (y * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[:, 1] == 0).all() and (logits.grad[:, 3] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_huge_logits_small_tau_stay_finite(dtype: torch.dtype) -> None:
    big = torch.finfo(dtype).max / 4 if dtype in (torch.float16,) else 1e30
    logits = torch.tensor([[big, -big, 0.0, big / 2]], dtype=dtype).expand(100, 4)
    for tau in (1e-3, 1e-30):
        y = gumbel_softmax(logits, tau, generator=seeded(14))
        assert torch.isfinite(y).all()
        assert torch.allclose(y.float().sum(-1), torch.ones(100), atol=1e-2)


def test_single_category_is_exactly_one() -> None:
    for hard in (False, True):
        y = gumbel_softmax(torch.randn(3, 1), 0.1, hard, generator=seeded(15))
        assert torch.equal(y, torch.ones(3, 1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_returns_its_dtype(dtype: torch.dtype) -> None:
    logits = torch.randn(256, 10, generator=seeded(16)).to(dtype) * 50
    y = gumbel_softmax(logits, 1e-3, generator=seeded(17))
    assert y.dtype == dtype and torch.isfinite(y).all()


def test_drop_in_signature_matches_torch() -> None:
    logits = torch.randn(3, 4)
    y = gumbel_softmax(logits, 0.5, True)  # positional tau and hard, as in torch
    reference = torch.nn.functional.gumbel_softmax(logits, 0.5, True)
    assert y.shape == reference.shape and y.dtype == reference.dtype


def test_relaxed_log_sample_is_log_of_the_sample() -> None:
    logits = torch.randn(30, 5, dtype=torch.float64, generator=seeded(18))
    log_y = relaxed_log_sample(logits, 0.6, generator=seeded(19))
    y = gumbel_softmax(logits, 0.6, generator=seeded(19))
    assert torch.allclose(log_y.exp(), y, rtol=1e-12, atol=0)


def test_relaxed_log_sample_stays_finite_where_the_sample_underflows() -> None:
    logits = torch.randn(100, 5, generator=seeded(20))
    y = gumbel_softmax(logits, 1e-3, generator=seeded(21))
    log_y = relaxed_log_sample(logits, 1e-3, generator=seeded(21))
    assert (y == 0).any()
    assert torch.isfinite(log_y).all()
