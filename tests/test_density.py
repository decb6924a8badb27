"""concrete_log_prob against the closed form, PyTorch's relaxed distributions, numerical
integration and its own gradient; tensor temperatures; validation in every mode.

No test here draws a random conclusion: every sample is seeded and every check is an
exact or a rounding-level comparison, so the module spends none of a false-failure budget.
"""

from __future__ import annotations

import math

import pytest
import scipy.integrate
import torch
from conftest import seeded
from torch.autograd import gradcheck
from torch.distributions import RelaxedOneHotCategorical
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical
from torch.func import vmap

from gumbel_lib import concrete_log_prob, gumbel_softmax, relaxed_log_sample

F64 = torch.float64


def closed_form(y: torch.Tensor, logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Gamma(n) tau^(n-1) prod(p_i y_i^(-tau-1)) / (sum p_i y_i^(-tau))^n, computed directly."""
    n = y.shape[-1]
    p = torch.softmax(logits, -1)
    numerator = math.gamma(n) * tau ** (n - 1) * (p * y ** (-tau - 1)).prod(-1)
    return (numerator / (p * y ** (-tau)).sum(-1) ** n).log()


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.0])
def test_matches_closed_form(n: int, tau: float) -> None:
    logits = torch.randn(200, n, dtype=F64, generator=seeded(n))
    y = gumbel_softmax(logits, max(tau, 1.0), generator=seeded(100 + n))  # interior points
    ours = concrete_log_prob(y, logits, tau)
    assert torch.allclose(ours, closed_form(y, logits, tau), rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [2, 6])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_matches_torch_distributions(n: int, tau: float) -> None:
    """log_input=False is RelaxedOneHotCategorical's density of y; log_input=True is
    ExpRelaxedCategorical's density of x = log y (they differ by sum(x))."""
    logits = 2.0 * torch.randn(100, n, dtype=F64, generator=seeded(10 + n))
    x = relaxed_log_sample(logits, max(tau, 0.7), generator=seeded(20 + n))
    temperature = torch.tensor(tau, dtype=F64)
    of_y = RelaxedOneHotCategorical(temperature, logits=logits).log_prob(x.exp())
    of_x = ExpRelaxedCategorical(temperature, logits=logits).log_prob(x)
    torch.testing.assert_close(concrete_log_prob(x.exp(), logits, tau), of_y, rtol=1e-6, atol=0)
    ours_x = concrete_log_prob(x, logits, tau, log_input=True)
    torch.testing.assert_close(ours_x, of_x, rtol=1e-6, atol=0)
    assert (of_x - of_y - x.sum(-1)).abs().max() < 1e-9  # the two densities do differ


def test_log_input_is_the_density_of_log_y() -> None:
    """log p_X(x) = log p(y) + sum x over the support (a masked category, x_i = -inf, is
    left out of the sum), and log y computed in log space agrees with y.log()."""
    logits = torch.randn(50, 4, dtype=F64, generator=seeded(1))
    logits[:10, 2] = -math.inf
    x = relaxed_log_sample(logits, 0.8, generator=seeded(2))
    of_y = concrete_log_prob(x.exp(), logits, 0.8)
    of_x = concrete_log_prob(x, logits, 0.8, log_input=True)
    support_sum = x.nan_to_num(neginf=0.0).sum(-1)
    assert torch.isfinite(of_x).all() and (x[:10, 2] == -math.inf).all()
    torch.testing.assert_close(of_x, of_y + support_sum, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("delta", "tau"), [(0.0, 1.0), (1.3, 0.5), (-2.0, 2.0), (0.5, 0.2)])
def test_two_categories_integrates_to_one(delta: float, tau: float) -> None:
    """With t = x_1 - x_2 the log-ratio, p_X integrates to 1 over t as it stands, and
    p(y) does with the Jacobian dy_1 = y_1 y_2 dt."""
    logits = torch.tensor([delta, 0.0], dtype=F64)

    def point(t: float) -> torch.Tensor:  # log y = (log sigmoid(t), log sigmoid(-t)), exact
        return torch.nn.functional.logsigmoid(torch.tensor([t, -t], dtype=F64))

    def density_of_x(t: float) -> float:
        return math.exp(concrete_log_prob(point(t), logits, tau, log_input=True).item())

    def density_of_y(t: float) -> float:
        log_y = point(t)
        return math.exp(concrete_log_prob(log_y.exp(), logits, tau).item() + log_y.sum().item())

    for density in (density_of_x, density_of_y):  # beyond |t| = 700 y_i underflows
        total, error = scipy.integrate.quad(density, -700.0, 700.0, limit=200)
        assert abs(total - 1.0) < 1e-6 + error


def test_low_temperature_in_log_space_is_finite() -> None:
    logits = torch.randn(100, 6, generator=seeded(3))
    log_y = relaxed_log_sample(logits, 0.01, generator=seeded(4))
    out = concrete_log_prob(log_y, logits, 0.01, log_input=True)
    assert torch.isfinite(out).all()


def test_huge_logits_at_small_tau_are_finite() -> None:
    logits = 1e30 * torch.randn(64, 10, generator=seeded(5))
    log_y = relaxed_log_sample(logits, 1e-3, generator=seeded(6))
    assert torch.isfinite(concrete_log_prob(log_y, logits, 1e-3, log_input=True)).all()


def test_masked_category_reduces_to_the_smaller_simplex() -> None:
    logits = torch.tensor([0.2, -math.inf, -0.4, 1.0], dtype=F64)
    y = torch.tensor([0.3, 0.0, 0.2, 0.5], dtype=F64)
    reduced = concrete_log_prob(y[[0, 2, 3]], logits[[0, 2, 3]], 0.7)
    assert torch.allclose(concrete_log_prob(y, logits, 0.7), reduced, rtol=1e-12)


def test_mass_on_a_masked_category_has_density_zero() -> None:
    logits = torch.tensor([0.2, -math.inf, 1.0], dtype=F64)
    y = torch.tensor([0.3, 0.2, 0.5], dtype=F64)
    assert concrete_log_prob(y, logits, 0.7).item() == -math.inf


def test_gradient_in_float64() -> None:
    y = gumbel_softmax(torch.zeros(3, 4, dtype=F64), 1.0, generator=seeded(5))
    logits = torch.randn(3, 4, dtype=F64, generator=seeded(6), requires_grad=True)
    assert gradcheck(lambda x: concrete_log_prob(y, x, 0.6), (logits,))


# --- tensor temperatures -----------------------------------------------------------------


@pytest.mark.parametrize("log_input", [False, True])
@pytest.mark.parametrize("tau_shape", [(), (1,), (1, 1)])
def test_one_element_tau_keeps_its_gradient(log_input: bool, tau_shape: tuple[int, ...]) -> None:
    x = relaxed_log_sample(
        torch.randn(3, 4, dtype=F64, generator=seeded(7)), 0.8, generator=seeded(8)
    )
    point = x if log_input else x.exp()
    logits = torch.randn(3, 4, dtype=F64, generator=seeded(9), requires_grad=True)
    tau = torch.full(tau_shape, 0.6, dtype=F64, requires_grad=True)

    def f(logits: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return concrete_log_prob(point, logits, tau, log_input=log_input)

    assert gradcheck(f, (logits, tau))
    # the same gradient as PyTorch's relaxed distributions, which keep it too
    dist = ExpRelaxedCategorical if log_input else RelaxedOneHotCategorical
    (ours,) = torch.autograd.grad(f(logits, tau).sum(), tau)
    (theirs,) = torch.autograd.grad(
        dist(tau.reshape(()), logits=logits).log_prob(point).sum(), tau
    )
    assert ours.shape == tau.shape and ours.abs().item() > 0
    torch.testing.assert_close(ours, theirs.reshape(tau.shape), rtol=1e-6, atol=0)


@pytest.mark.parametrize("log_input", [False, True])
def test_a_temperature_per_row_matches_scalar_calls(log_input: bool) -> None:
    """tau of shape (B, 1) along dim=-1, or (1, B) along dim=0: one temperature per row,
    the rule of gumbel_softmax (tau broadcasts to the logits without enlarging them)."""
    logits = torch.randn(5, 4, dtype=F64, generator=seeded(11))
    taus = [0.3, 0.6, 1.0, 1.7, 4.0]
    x = torch.stack(
        [
            relaxed_log_sample(row, t, generator=seeded(12 + i))
            for i, (row, t) in enumerate(zip(logits, taus, strict=True))
        ]
    )
    point = x if log_input else x.exp()
    tau = torch.tensor(taus, dtype=F64).unsqueeze(-1)
    one_by_one = torch.stack(
        [
            concrete_log_prob(p, row, t, log_input=log_input)
            for p, row, t in zip(point, logits, taus, strict=True)
        ]
    )
    per_row = concrete_log_prob(point, logits, tau, log_input=log_input)
    torch.testing.assert_close(per_row, one_by_one, rtol=1e-12, atol=0)
    batch_shape = concrete_log_prob(point, logits, tau.squeeze(-1), log_input=log_input)
    assert torch.equal(batch_shape, per_row)  # TensorFlow Probability's form: shape (B,)
    along_0 = concrete_log_prob(point.T, logits.T, tau.T, dim=0, log_input=log_input)
    torch.testing.assert_close(along_0, one_by_one, rtol=1e-12, atol=0)
    shared_logits = concrete_log_prob(point, logits[0], tau, log_input=log_input)  # broadcast
    assert torch.equal(shared_logits[0], per_row[0])
    leaf = tau.clone().requires_grad_(True)
    assert gradcheck(lambda t: concrete_log_prob(point, logits, t, log_input=log_input), (leaf,))


def test_temperature_shapes_that_are_not_one_per_row_are_refused() -> None:
    logits, y = torch.zeros(5, 4), torch.full((5, 4), 0.25)
    with pytest.raises(ValueError, match="tau of shape \\(4, 1\\) does not broadcast"):
        concrete_log_prob(y, logits, torch.ones(4))  # neither the batch shape nor per row
    with pytest.raises(ValueError, match="tau of shape \\(5, 4\\) varies along dim=1"):
        concrete_log_prob(y, logits, torch.ones(5, 4))
    with pytest.raises(ValueError, match="tau of shape \\(2, 5, 1\\) would change the shape"):
        concrete_log_prob(y, logits, torch.ones(2, 5, 1))
    with pytest.raises(TypeError, match="tau must be a floating-point tensor"):
        concrete_log_prob(y, logits, torch.ones(5, 1, dtype=torch.int64))
    assert concrete_log_prob(y, logits, torch.ones(5, 1)).shape == (5,)


def test_masked_category_gives_the_temperature_a_finite_gradient() -> None:
    logits = torch.randn(6, 4, dtype=F64, generator=seeded(13))
    logits[:, 1] = -math.inf
    y = relaxed_log_sample(logits, 0.7, generator=seeded(14)).exp()
    assert (y[:, 1] == 0).all()
    keep = [0, 2, 3]
    grads = []
    for point, lg in ((y, logits), (y[:, keep], logits[:, keep])):
        tau = torch.full((6, 1), 0.6, dtype=F64, requires_grad=True)
        concrete_log_prob(point, lg, tau).sum().backward()
        assert tau.grad is not None
        grads.append(tau.grad)
    assert torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=0)


@pytest.mark.parametrize("value", [0.0, -0.5, math.inf, math.nan])
def test_tensor_tau_values_are_checked_under_validation(value: float) -> None:
    y, logits = torch.full((3, 2), 0.5), torch.zeros(3, 2)
    tau = torch.tensor([[0.5], [value], [1.0]])
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        concrete_log_prob(y, logits, tau)
    concrete_log_prob(y, logits, tau, validate_args=False)  # values unread: no error


# --- validation: the simplex, the boundary, overflow, half precision ----------------------


def test_zero_on_the_support_is_refused() -> None:
    with pytest.raises(ValueError, match="boundary"):
        concrete_log_prob(torch.tensor([1.0, 0.0]), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="boundary"):
        concrete_log_prob(torch.tensor([0.0, -math.inf]), torch.zeros(2), 0.5, log_input=True)


def test_not_on_the_simplex_is_refused() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob(torch.tensor([0.5, 0.6]), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="y must be >= 0"):
        concrete_log_prob(torch.tensor([1.5, -0.5]), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="y must be >= 0"):
        concrete_log_prob(torch.tensor([math.nan, 0.5]), torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="log y must not be NaN or \\+inf"):
        concrete_log_prob(torch.tensor([0.0, math.inf]), torch.zeros(2), 0.5, log_input=True)
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob(torch.tensor([-0.5, -0.5]), torch.zeros(2), 0.5, log_input=True)


def test_bad_logits_are_named() -> None:
    y = torch.full((2, 3), 1 / 3)
    for value, word in ((math.nan, "NaN"), (math.inf, "\\+inf")):
        bad = torch.zeros(2, 3)
        bad[1, 2] = value
        with pytest.raises(ValueError, match=f"logits contains {word}"):
            concrete_log_prob(y, bad, 0.5)
    masked_row = torch.zeros(2, 3)
    masked_row[0] = -math.inf
    with pytest.raises(ValueError, match="logits is -inf for every category"):
        concrete_log_prob(y, masked_row, 0.5)


@pytest.mark.parametrize("log_input", [False, True])
def test_bfloat16_samples_of_gumbel_softmax_are_accepted(log_input: bool) -> None:
    """bfloat16 rounds each y_i by up to 2^-9 relative, so rows sum to 1 only within the
    bfloat16 rounding, beyond the float32 tolerance sqrt(2^-23) ~ 3.5e-4: the tolerance is
    the sample dtype's own. 100 seeds, every one accepted."""
    beyond_float32 = 0
    for seed in range(100):
        logits = torch.randn(64, 10, generator=seeded(seed)).bfloat16()
        sample = (relaxed_log_sample if log_input else gumbel_softmax)(
            logits, 0.5, generator=seeded(1000 + seed)
        )
        assert sample.dtype == torch.bfloat16
        mass = (sample.float().exp() if log_input else sample.float()).sum(-1)
        beyond_float32 += int((mass - 1).abs().max() > math.sqrt(torch.finfo(torch.float32).eps))
        out = concrete_log_prob(sample, logits, 0.5, log_input=log_input)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert beyond_float32 >= 50  # the case the float32 tolerance refused


def test_the_simplex_tolerance_is_no_looser_than_the_dtype_needs() -> None:
    """Negative controls next to the tolerance: a bfloat16 sample off the simplex by 2%
    (the y tolerance is about 0.8%), a float32 one off by 0.1% (tolerance 0.035%)."""
    logits = torch.randn(64, 10, generator=seeded(3))
    y = gumbel_softmax(logits, 0.5, generator=seeded(4))
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob((y * 1.02).bfloat16(), logits.bfloat16(), 0.5)
    with pytest.raises(ValueError, match="sum to 1"):
        concrete_log_prob(y * 1.001, logits, 0.5)
    assert torch.isfinite(concrete_log_prob(y * 1.0002, logits, 0.5)).all()


@pytest.mark.parametrize("tau", [3e38, 1e39, torch.tensor([[3e38]])])
def test_tau_overflow_is_named(tau: float | torch.Tensor) -> None:
    """tau * log y beyond float32's range: the message names tau, not an exact zero."""
    y = torch.tensor([[0.3, 0.7]])
    with pytest.raises(ValueError, match="tau \\* log y overflows torch.float32"):
        concrete_log_prob(y, torch.zeros(1, 2), tau)
    below = concrete_log_prob(y, torch.zeros(1, 2), 1e38)  # still in range: a value
    assert torch.isfinite(below).all()


def test_half_precision_is_evaluated_in_float32() -> None:
    logits = torch.randn(10, 3, generator=seeded(7))
    y = gumbel_softmax(logits, 1.0, generator=seeded(8))
    out = concrete_log_prob(y.half(), logits.half(), 1.0)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_batch_of_points_against_shared_logits() -> None:
    logits = torch.tensor([0.4, 0.0, -0.2], dtype=F64)
    y = gumbel_softmax(logits.expand(6, 3), 1.0, generator=seeded(9))
    batched = concrete_log_prob(y, logits, 0.5)
    one_by_one = torch.stack([concrete_log_prob(row, logits, 0.5) for row in y])
    assert batched.shape == (6,) and torch.allclose(batched, one_by_one)
    with pytest.raises(ValueError, match="do not broadcast"):
        concrete_log_prob(y, torch.zeros(4, dtype=F64), 0.5)


def test_both_modes_give_the_same_values() -> None:
    logits = torch.randn(8, 5, generator=seeded(15))
    logits[0, 3] = -math.inf
    x = relaxed_log_sample(logits, 0.4, generator=seeded(16))
    for point, log_input in ((x.exp(), False), (x, True)):
        on = concrete_log_prob(point, logits, 0.4, log_input=log_input)
        off = concrete_log_prob(point, logits, 0.4, log_input=log_input, validate_args=False)
        assert torch.equal(on, off)


# --- validation on under torch.compile and torch.func.vmap --------------------------------


@pytest.mark.compile
def test_validation_on_compiles_without_graph_breaks() -> None:
    torch._dynamo.reset()
    logits = torch.randn(3, 5, generator=seeded(17))
    y = torch.softmax(torch.randn(3, 5, generator=seeded(18)), -1)
    tau = torch.tensor([[0.5], [0.8], [1.5]])

    def f(y: torch.Tensor, logits: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return concrete_log_prob(y, logits, tau, validate_args=True)

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    assert torch.equal(compiled(y, logits, tau), f(y, logits, tau))
    bad = logits.clone()
    bad[1, 2] = math.nan  # the check runs inside the graph: torch._assert_async
    with pytest.raises(RuntimeError, match="concrete_log_prob: invalid values"):
        compiled(y, bad, tau)
    torch._dynamo.reset()


@pytest.mark.compile
def test_validation_on_maps_with_vmap() -> None:
    logits = torch.randn(4, 3, 5, generator=seeded(19))
    y = torch.softmax(torch.randn(4, 3, 5, generator=seeded(20)), -1)
    mapped = vmap(lambda a, b: concrete_log_prob(a, b, 0.5, validate_args=True))(y, logits)
    torch.testing.assert_close(mapped, concrete_log_prob(y, logits, 0.5), rtol=1e-6, atol=1e-6)
