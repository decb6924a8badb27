"""The samplers compute exactly what their formulas compute, bit for bit.

Noise: ``g = gumbel_from_uniform(torch.rand(shape, dtype=torch.float64))`` at the sampler's
generator state. Exact samplers take the argmax (or top-k) of the float64 sums ``l + g``;
relaxed samplers round ``g`` to the working dtype and compute ``softmax((l + g) / tau)``,
unshifted when validation's probe shows that no row maximum of the quotient can overflow,
and shifted by the row maxima otherwise (always with validation off). Inputs contain
masks, ties, huge logits and both dims.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seeded

import gumbel_lib as gl
from gumbel_lib import gumbel_from_uniform


def noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return gumbel_from_uniform(torch.rand(shape, generator=seeded(seed), dtype=torch.float64))


def logits_with_edges(shape: tuple[int, int], seed: int) -> torch.Tensor:
    logits = torch.randn(shape, generator=seeded(seed)) * 3
    logits[0, 0] = -math.inf  # a mask
    logits[1, :] = 1e30  # a row of huge, tied logits
    return logits


@pytest.mark.parametrize("shape", [(50, 7), (600, 128)])
@pytest.mark.parametrize("dim", [0, -1])
def test_exact_samplers_are_the_argmax_of_float64_sums(shape: tuple[int, int], dim: int) -> None:
    """The argmax of (l - max l) + g in float64: in the row of tied logits 1e30 the noise
    decides, where float32 or uncentred sums would lose it and always pick index 0."""
    logits = logits_with_edges(shape, 3)
    wide = logits.double()
    exact = (wide - wide.amax(dim, keepdim=True)) + noise(shape, 4)
    first = exact.argmax(dim, keepdim=True)
    assert torch.equal(gl.gumbel_max(logits, dim=dim, generator=seeded(4)), first.squeeze(dim))
    top = gl.gumbel_topk(logits, 3, dim=dim, generator=seeded(4))
    assert torch.equal(top, exact.topk(3, dim).indices)
    hard = gl.gumbel_softmax(logits, 0.5, True, dim=dim, generator=seeded(4))
    assert torch.equal(hard, torch.zeros(shape).scatter_(dim, first, 1.0))
    assert torch.equal(gl.perturb(logits, generator=seeded(4)), (wide + noise(shape, 4)).float())
    if dim == -1:  # the tied row follows its noise; uncentred sums all round to 1e30
        assert first[1, 0] == noise(shape, 4)[1].argmax()
        assert torch.equal(wide[1] + noise(shape, 4)[1], wide[1])  # the negative control


@pytest.mark.parametrize("shape", [(50, 7), (600, 128)])
@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("tau", [1.0, 0.5, 3.0])
@pytest.mark.parametrize("masked", [False, True])
def test_relaxed_samplers_follow_the_probe(
    shape: tuple[int, int], dim: int, tau: float, masked: bool
) -> None:
    """Validation on, all values finite and far from overflowing: the unshifted quotient;
    a masked category (the probe reads inf), or validation off: the quotient of the values
    shifted by their row maxima. Each is its formula, bit for bit."""
    logits = logits_with_edges(shape, 3)
    if not masked:
        logits[0, 0] = 0.0
    z = logits + noise(shape, 4).float()
    shifted = z if tau == 1.0 else z - z.amax(dim, keepdim=True)
    for validate, values in ((True, shifted if masked else z), (False, shifted)):
        kw = {"dim": dim, "generator": seeded(4), "validate_args": validate}
        formula = values if tau == 1.0 else values / tau
        assert torch.equal(gl.gumbel_softmax(logits, tau, **kw), torch.softmax(formula, dim))
        kw["generator"] = seeded(4)
        log_y = gl.relaxed_log_sample(logits, tau, **kw)
        assert torch.equal(log_y, torch.log_softmax(formula, dim))


def test_huge_logits_take_the_shifted_graph_and_stay_finite() -> None:
    """Where |max(l + g)| reaches tau times half the largest float32, the unshifted
    quotient would overflow to +inf and its softmax be NaN (the negative control)."""
    logits = torch.tensor([[3e38, 0.0, -1.0], [0.5, 0.0, -1.0]])
    z = logits + noise((2, 3), 5).float()
    assert torch.isnan(torch.softmax(z / 0.5, -1)[0]).all()  # the unshifted formula
    y = gl.gumbel_softmax(logits, 0.5, generator=seeded(5))
    assert torch.equal(y, torch.softmax((z - z.amax(-1, keepdim=True)) / 0.5, -1))
    assert torch.equal(y[0], torch.tensor([1.0, 0.0, 0.0]))


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("tau", [0.7, 1.0, "tensor", "per row"])
def test_gradients_equal_the_formula_gradients(validate: bool, tau: object) -> None:
    """Forward and logit gradient bit for bit; a tensor temperature's gradient equals its
    formula, masked categories adding 0."""
    shape = (600, 64)
    logits = torch.randn(shape, generator=seeded(8)) * 3
    logits[:, 3] = -math.inf
    weights = torch.randn(shape, generator=seeded(9))
    if tau == "tensor":
        t: float | torch.Tensor = torch.full((shape[0], 1), 0.7, requires_grad=True)
    elif tau == "per row":  # TensorFlow Probability's convention: the batch shape
        t = torch.full((shape[0],), 0.7, requires_grad=True)
    else:
        t = float(tau)  # type: ignore[arg-type]
    divisor = t.detach().reshape(-1, 1) if isinstance(t, torch.Tensor) else t
    leaf = logits.clone().requires_grad_(True)
    z = leaf + noise(shape, 10).float()
    unit = t == 1.0 if isinstance(t, float) else False
    unshifted = False  # a masked category: the probe reads inf and the values are shifted
    values = z if unshifted or unit else z - z.detach().amax(-1, keepdim=True)
    formula = torch.softmax(values if unit else values / divisor, -1)
    (formula * weights).sum().backward()
    expected = leaf.grad
    leaf = logits.clone().requires_grad_(True)
    soft = gl.gumbel_softmax(leaf, t, generator=seeded(10), validate_args=validate)
    assert torch.equal(soft, formula)
    (soft * weights).sum().backward()
    assert torch.equal(leaf.grad, expected)
    if isinstance(t, torch.Tensor):  # d/dtau of softmax(x / tau): sum_i g_i (-x_i / tau^2)
        y, x = formula.detach(), values.detach()
        g = y * (weights - (weights * y).sum(-1, keepdim=True))
        ref = (g * torch.where(y > 0, -x / 0.49, 0.0)).sum(-1, keepdim=True)
        assert t.grad is not None and bool(t.grad.isfinite().all())
        torch.testing.assert_close(t.grad.reshape(-1, 1), ref, rtol=1e-4, atol=1e-6)


def test_per_row_temperatures_equal_one_call_per_row() -> None:
    """One temperature per row (batch shape, or size 1 along dim) gives each row the sample
    a scalar temperature gives it: CPU draws fill a tensor in row-major order."""
    logits = torch.randn(4, 6, generator=seeded(11))
    taus = torch.tensor([0.3, 1.0, 2.0, 5.0])
    batch = gl.gumbel_softmax(logits, taus, generator=seeded(12))
    keepdim = gl.gumbel_softmax(logits, taus[:, None], generator=seeded(12))
    gen = seeded(12)
    rows = [gl.gumbel_softmax(logits[i], float(taus[i]), generator=gen) for i in range(4)]
    assert torch.equal(batch, keepdim)
    torch.testing.assert_close(batch, torch.stack(rows), rtol=1e-6, atol=1e-7)


def test_hard_sample_gradient_is_the_soft_gradient_with_masks() -> None:
    logits = torch.randn(600, 64, generator=seeded(5))
    logits[:, 3] = -math.inf
    weights = torch.randn(600, 64, generator=seeded(6))
    grads = []
    for hard in (False, True):
        leaf = logits.clone().requires_grad_(True)
        (gl.gumbel_softmax(leaf, 0.7, hard, generator=seeded(7)) * weights).sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(grads[0][:, 3], torch.zeros(600))


@pytest.mark.parametrize("cols", [5, 1200])
@pytest.mark.parametrize("tau", [0.5, 1.0, "tensor"])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("bad", ["nan", "+inf", "all -inf"])
@pytest.mark.parametrize("grad", [False, True])
def test_validation_probe_catches_every_bad_row(
    cols: int, tau: object, hard: bool, bad: str, grad: bool
) -> None:
    logits = torch.randn(3 if cols == 5 else 64, cols, generator=seeded(3))
    if bad == "all -inf":
        logits[1] = -math.inf
    else:
        logits[1, 2] = math.nan if bad == "nan" else math.inf
    t = torch.full((logits.shape[0], 1), 0.5) if tau == "tensor" else tau
    with pytest.raises(ValueError, match="logits"):
        gl.gumbel_softmax(logits.requires_grad_(grad), t, hard, generator=seeded(4))
