"""The estimator interface: shapes, forward values, backward formulas, bad input.

Deterministic checks only (no statistical claims; those are in test_estimator_bias.py).
"""

from __future__ import annotations

import pytest
import torch
from conftest import seeded
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from gumbel_lib import ESTIMATORS, exact_gradient, gumbel_max, reinmax, sample_with
from gumbel_lib.enumeration import MAX_OUTCOMES, joint_outcomes
from gumbel_lib.estimators import exact_expected_gradient
from gumbel_lib.reinforce import score_surrogate

LOGITS = torch.tensor([[0.3, -0.8, 1.1], [0.0, 0.5, -0.2]], dtype=torch.float64)
WEIGHTS = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0]], dtype=torch.float64)
HARD = [name for name in ESTIMATORS if name != "gumbel-softmax"]


def loss_of(y: torch.Tensor) -> torch.Tensor:
    """A non-linear loss of V = 2 variables: one value per joint sample (trailing (V, K))."""
    score = (y * WEIGHTS.to(y.dtype)).sum((-2, -1))
    return (score - 0.4) ** 2


def one_hot_jacobian(probs: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``J(p) g = p * (g - p . g)`` along the last axis."""
    return probs * (g - (probs * g).sum(-1, keepdim=True))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_contract_shapes_values_and_gradient(name: str) -> None:
    logits = LOGITS.clone().requires_grad_(True)
    n = 3 if name == "reinforce-loo" else None
    y, surrogate = sample_with(name, logits, 0.7, generator=seeded(0), n_samples=n)
    expected_shape = (3, *LOGITS.shape) if n else LOGITS.shape
    assert y.shape == expected_shape and y.dtype == LOGITS.dtype
    assert torch.allclose(y.sum(-1), torch.ones(()).double())
    if name != "gumbel-softmax":
        assert torch.equal(y, (y == 1).double())  # exactly one-hot
    loss = (y * WEIGHTS).sum(-1) ** 2  # one loss per sampled vector
    out = surrogate(loss)
    assert torch.equal(out, loss)  # printed losses are true losses
    out.sum().backward()
    assert logits.grad is not None and logits.grad.shape == LOGITS.shape
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["reinforce", "straight-through", "gumbel-rao", "reinmax"])
def test_hard_sample_is_the_gumbel_max_draw(name: str) -> None:
    y, _ = sample_with(name, LOGITS, 0.5, generator=seeded(1))
    index = gumbel_max(LOGITS, generator=seeded(1))
    assert torch.equal(y.argmax(-1), index)


@pytest.mark.parametrize("name", ["reinforce", "gumbel-softmax", "straight-through", "reinmax"])
def test_n_samples_adds_a_leading_axis(name: str) -> None:
    y, surrogate = sample_with(name, LOGITS, n_samples=5, generator=seeded(2))
    assert y.shape == (5, *LOGITS.shape)
    assert surrogate(loss_of(y)).shape == (5,)  # a prefix of the batch shape (5, 2)


def test_gumbel_rao_n_samples_counts_conditional_draws() -> None:
    y, _ = sample_with("gumbel-rao", LOGITS, n_samples=7, generator=seeded(3))
    assert y.shape == LOGITS.shape


def test_reinforce_gradient_is_loss_times_score() -> None:
    """Per draw: ``(f(D) - b) (D - softmax(l))`` for each variable; the loss for all of them."""
    logits = LOGITS.expand(64, 2, 3).clone().requires_grad_(True)
    y, surrogate = sample_with("reinforce", logits, generator=seeded(4), baseline=0.25)
    loss = loss_of(y)  # (64,): one loss for both variables of a draw
    surrogate(loss).sum().backward()
    expected = (loss - 0.25)[:, None, None] * (y - torch.softmax(LOGITS, -1))
    assert torch.allclose(logits.grad, expected, rtol=1e-12, atol=1e-14)


def test_leave_one_out_baseline_is_the_mean_of_the_others() -> None:
    logits = LOGITS.clone().requires_grad_(True)
    y, surrogate = sample_with("reinforce-loo", logits, n_samples=4, generator=seeded(5))
    loss = loss_of(y)  # (4,)
    surrogate(loss).sum().backward()
    others = (loss.sum() - loss) / 3
    expected = ((loss - others)[:, None, None] * (y - torch.softmax(LOGITS, -1))).sum(0)
    assert torch.allclose(logits.grad, expected, rtol=1e-12, atol=1e-14)


def test_tensor_baseline_broadcasts_and_is_not_differentiated() -> None:
    log_prob = torch.zeros(3, requires_grad=True)
    b = torch.tensor(0.5, requires_grad=True)
    surrogate = score_surrogate(log_prob, baseline=b)
    surrogate(torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert log_prob.grad.tolist() == [0.5, 1.5, 2.5] and b.grad is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_baseline_is_rejected_by_name(bad: float) -> None:
    """A NaN or infinite baseline would make the surrogate NaN (inf * 0), not the loss."""
    with pytest.raises(ValueError, match="baseline must be finite"):
        sample_with("reinforce", LOGITS, baseline=bad)
    with pytest.raises(ValueError, match="baseline must be finite"):
        score_surrogate(torch.zeros(3, requires_grad=True), baseline=bad)
    tensor = torch.tensor([0.0, bad], dtype=torch.float64)
    with pytest.raises(ValueError, match="baseline must be finite"):
        sample_with("reinforce", LOGITS, baseline=tensor)
    with pytest.raises(ValueError, match="baseline must be finite"):
        score_surrogate(torch.zeros(2, requires_grad=True), baseline=tensor)
    # with validation off a tensor's values are the caller's responsibility (no read)
    sample_with("reinforce", LOGITS, baseline=tensor, validate_args=False)


def test_surrogate_value_is_the_loss_for_half_precision_losses_far_from_the_baseline() -> None:
    """Centred in float16, ``loss - b`` would overflow to inf (and inf * 0 to NaN); the
    surrogate centres half-precision losses in float32, so the value stays the loss."""
    half = LOGITS.half().requires_grad_(True)
    _, surrogate = sample_with("reinforce", half, baseline=1e5, generator=seeded(13))
    loss = torch.tensor([60000.0, -3.0], dtype=torch.float16)
    out = surrogate(loss)
    assert out.dtype == torch.float16 and torch.equal(out, loss)
    # leave-one-out: the other draws' mean, 60000 - (-60000), overflows float16 too
    leaf = LOGITS.half().requires_grad_(True)
    _, surrogate = sample_with("reinforce-loo", leaf, n_samples=3, generator=seeded(14))
    loss = torch.tensor([[6e4, 1.0], [-6e4, 2.0], [6e4, 0.0]], dtype=torch.float16)
    assert torch.equal(surrogate(loss), loss)


def test_reinmax_backward_is_heun_combination() -> None:
    """``2 J(pi_1) g - J(pi_0) g / 2`` with ``pi_1 = (D + softmax(l / tau)) / 2``."""
    tau = 1.7
    logits = LOGITS.expand(50, 2, 3).clone().requires_grad_(True)
    d = reinmax(logits, tau, generator=seeded(6))
    g = torch.randn(50, 2, 3, dtype=torch.float64, generator=seeded(7))
    (d * g).sum().backward()
    pi_0 = torch.softmax(LOGITS, -1)
    pi_1 = (d.detach() + torch.softmax(LOGITS / tau, -1)) / 2
    expected = 2 * one_hot_jacobian(pi_1, g) - one_hot_jacobian(pi_0, g) / 2
    assert torch.allclose(logits.grad, expected, rtol=1e-12, atol=1e-14)


def test_reinmax_matches_the_papers_log_space_form() -> None:
    """Liu et al.'s Algorithm 2: ``softmax(stop(log pi_1 - l) + l)``, then ``2 pi_1 - pi_0/2``."""
    tau = 1.3
    a = LOGITS.clone().requires_grad_(True)
    d = reinmax(a, tau, generator=seeded(8))
    b = LOGITS.clone().requires_grad_(True)
    pi_0 = torch.softmax(b, -1)
    pi_1 = (d.detach() + torch.softmax(b / tau, -1)) / 2
    pi_1 = torch.softmax((pi_1.log() - b).detach() + b, -1)
    pi_2 = 2 * pi_1 - pi_0 / 2
    paper = d.detach() + pi_2 - pi_2.detach()
    (d * WEIGHTS).sum().backward()
    (paper * WEIGHTS).sum().backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-14)


def test_relaxed_sample_passes_gradcheck() -> None:
    """With the noise replayed, ``f(softmax((l + g)/tau))`` is smooth in ``l``."""

    def relaxed_loss(x: torch.Tensor) -> torch.Tensor:
        y, surrogate = sample_with("gumbel-softmax", x, 0.6, generator=seeded(9))
        return surrogate(loss_of(y))

    assert gradcheck(relaxed_loss, (LOGITS.clone().requires_grad_(True),))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_masked_category_never_drawn_and_gets_zero_gradient(name: str) -> None:
    masked = LOGITS.clone()
    masked[:, 1] = -torch.inf
    logits = masked.expand(200, 2, 3).clone().requires_grad_(True)
    n = 2 if name == "reinforce-loo" else None
    y, surrogate = sample_with(name, logits, 0.5, n_samples=n, generator=seeded(10))
    assert (y[..., 1] == 0).all()
    surrogate(loss_of(y)).sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[..., 1] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ESTIMATORS)
def test_half_precision_is_finite(name: str, dtype: torch.dtype) -> None:
    logits = (LOGITS * 30).to(dtype).expand(100, 2, 3).clone().requires_grad_(True)
    n = 2 if name == "reinforce-loo" else None
    y, surrogate = sample_with(name, logits, 0.3, n_samples=n, generator=seeded(11))
    assert y.dtype == dtype and torch.isfinite(y).all()
    surrogate((y.float() * WEIGHTS.float()).sum((-2, -1))).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_exact_gradient_of_one_variable_matches_the_closed_form() -> None:
    def f(points: torch.Tensor) -> torch.Tensor:
        return (points * WEIGHTS[0]).sum(-1) ** 2

    value, grad = exact_gradient(LOGITS[0], f)
    p = torch.softmax(LOGITS[0], 0)
    assert torch.isclose(value, (p * WEIGHTS[0] ** 2).sum(), rtol=1e-12)
    assert torch.allclose(grad, exact_expected_gradient(LOGITS[0], f), rtol=1e-12)


def test_exact_gradient_by_finite_differences() -> None:
    _, grad = exact_gradient(LOGITS, loss_of)
    step = 1e-6
    fd = torch.zeros_like(LOGITS)
    for i in range(2):
        for k in range(3):
            e = torch.zeros_like(LOGITS)
            e[i, k] = step
            plus, minus = (
                exact_gradient(LOGITS + e, loss_of)[0],
                exact_gradient(LOGITS - e, loss_of)[0],
            )
            fd[i, k] = (plus - minus) / (2 * step)
    assert (fd - grad).abs().max() < 1e-8


def test_exact_gradient_with_a_masked_category() -> None:
    masked = LOGITS.clone()
    masked[0, 2] = -torch.inf
    value, grad = exact_gradient(masked, loss_of)
    assert torch.isfinite(value) and torch.isfinite(grad).all() and grad[0, 2] == 0
    finite = exact_gradient(masked.clamp_min(-200.0), loss_of)
    assert torch.allclose(value, finite[0]) and torch.allclose(grad, finite[1], atol=1e-12)


def test_joint_outcomes_are_all_distinct() -> None:
    outcomes = joint_outcomes(3, 4)
    assert outcomes.shape == (64, 3, 4)
    assert len({tuple(row.tolist()) for row in outcomes.argmax(-1)}) == 64


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        sample_with("rebar", LOGITS)
    with pytest.raises(ValueError, match="tau"):
        sample_with("straight-through", LOGITS, 0.0)
    with pytest.raises(TypeError, match="logits"):
        sample_with("reinforce", torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="dim"):
        sample_with("reinforce", LOGITS, dim=2)
    with pytest.raises(ValueError, match="n_samples"):
        sample_with("reinforce-loo", LOGITS)
    with pytest.raises(ValueError, match="n_samples"):
        sample_with("reinforce-loo", LOGITS, n_samples=1)
    with pytest.raises(ValueError, match="n_samples"):
        sample_with("gumbel-rao", LOGITS, n_samples=0)
    with pytest.raises(ValueError, match="baseline"):
        sample_with("straight-through", LOGITS, baseline=1.0)
    with pytest.raises(TypeError, match="baseline"):
        sample_with("reinforce", LOGITS, baseline="mean")
    with pytest.raises(TypeError, match="validate_args"):
        sample_with("reinforce", LOGITS, validate_args=1)
    with pytest.raises(ValueError, match="logits contains NaN"):
        sample_with("reinmax", torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="every category"):
        sample_with("reinforce", torch.full((2, 3), -torch.inf))
    y, surrogate = sample_with("reinforce", LOGITS, baseline=torch.zeros(3))
    with pytest.raises(ValueError, match="loss must have shape"):
        surrogate(torch.zeros(3))
    with pytest.raises(ValueError, match="baseline"):
        surrogate(torch.zeros(2))
    with pytest.raises(TypeError, match="loss"):
        surrogate([0.0, 0.0])


def test_exact_gradient_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="MAX_OUTCOMES"):
        exact_gradient(torch.zeros(17, 2), lambda d: d.sum((-2, -1)))
    assert 2**16 == MAX_OUTCOMES  # 16 binary variables are still enumerated
    with pytest.raises(ValueError, match="f must map"):
        exact_gradient(LOGITS, lambda d: d.sum())
    with pytest.raises(TypeError, match="f must be callable"):
        exact_gradient(LOGITS, "loss")
    with pytest.raises(ValueError, match="logits must have shape"):
        exact_gradient(torch.zeros(2, 2, 2), loss_of)
    with pytest.raises(ValueError, match="NaN"):
        exact_gradient(torch.tensor([0.0, float("nan")]), lambda d: d[:, 0])


@st.composite
def problems(draw):
    """float64 logits of random shape, a random dim, some masked categories, a temperature."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    dim = draw(st.integers(-ndim, ndim - 1))
    gen = seeded(draw(st.integers(0, 2**31 - 1)))
    logits = torch.randn(shape, generator=gen, dtype=torch.float64) * draw(
        st.sampled_from([1.0, 30.0])
    )
    mask = torch.rand(shape, generator=gen, dtype=torch.float64) < 0.3
    keep = torch.zeros(shape, dtype=torch.bool).index_fill_(dim, torch.tensor([0]), True)
    logits = logits.masked_fill(mask & ~keep, -torch.inf)  # category 0 stays drawable
    return logits, dim, draw(st.sampled_from([0.1, 1.0, 3.0])), draw(st.sampled_from(ESTIMATORS))


@settings(derandomize=True, deadline=None, max_examples=120)
@given(problems())
def test_contract_over_shapes_dims_and_masks(problem) -> None:
    logits, dim, tau, name = problem
    leaf = logits.clone().requires_grad_(True)
    n = 2 if name == "reinforce-loo" else None
    y, surrogate = sample_with(name, leaf, tau, dim=dim, n_samples=n, generator=seeded(0))
    d = dim % logits.dim() + (1 if n else 0)
    assert y.shape == ((2, *logits.shape) if n else logits.shape)
    assert torch.allclose(y.sum(d), torch.ones(()).double())
    assert (y[torch.isneginf(logits).expand_as(y)] == 0).all()  # masked: never drawn
    if name != "gumbel-softmax":
        assert torch.equal(y, (y == 1).double())
    weights = torch.linspace(-1, 1, y.shape[d], dtype=torch.float64)
    loss = (y.movedim(d, -1) * weights).sum(-1) ** 2  # shape: y without dim
    out = surrogate(loss)
    assert torch.equal(out, loss)
    out.sum().backward()
    assert torch.isfinite(leaf.grad).all()
    assert (leaf.grad[torch.isneginf(logits)] == 0).all()
