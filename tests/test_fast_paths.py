"""The fast internal paths of the samplers compute exactly what the plain formulas compute.

The speed work (chapter *Numerics and performance*) rewrote passes, never results: every
check here is an exact equality (``torch.equal``), on inputs built to contain ties, masks,
huge logits and shapes on both sides of the size threshold of the vectorised argmin.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seeded
from hypothesis import given, settings
from hypothesis import strategies as st

import gumbel_lib as gl
from gumbel_lib.noise import log_exponential
from gumbel_lib.relax_small import EXP_SUM_BELOW, _max_and_one_hot
from gumbel_lib.relax_small import normalised as library_normalised
from gumbel_lib.sampling import IN_PLACE_FROM, argmin_overwriting, negated_perturb


def tied(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values on a coarse grid: most rows have their minimum more than once."""
    return torch.randint(0, 4, shape, generator=seeded(seed)).to(dtype)


SHAPES = [(7, 5), (3, 4, 6), (600, 64), (64, 600), (2, 40_000)]  # below and above 2**15


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_argmin_overwriting_is_argmin(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    values = tied(shape, 0, dtype)
    for dim in range(len(shape)):
        expected = values.argmin(dim, keepdim=True)
        low = values.amin(dim, keepdim=True)
        assert torch.equal(argmin_overwriting(values.clone(), low, dim), expected)


@pytest.mark.parametrize("shape", SHAPES)
def test_one_hot_of_max_marks_the_first_maximum(shape: tuple[int, ...]) -> None:
    for values in (tied(shape, 1), torch.randn(shape, generator=seeded(2))):
        for dim in range(len(shape)):
            first = values.argmax(dim, keepdim=True)
            expected = torch.zeros_like(values).scatter_(dim, first, 1.0)
            high, hot = _max_and_one_hot(values, dim)
            assert torch.equal(high, values.amax(dim, keepdim=True))
            assert torch.equal(hot, expected)


@settings(derandomize=True, deadline=None, max_examples=40)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16]),
)
def test_negated_perturb_is_exactly_minus_perturb(
    rows: int, cols: int, seed: int, dtype: torch.dtype
) -> None:
    logits = (torch.randn(rows, cols, generator=seeded(seed)) * 10).to(dtype)
    logits[:, 0] = -math.inf
    assert torch.equal(
        negated_perturb(logits, seeded(seed)), -gl.perturb(logits, generator=seeded(seed))
    )


def normalised(scaled: torch.Tensor, dim: int) -> torch.Tensor:
    """The library's softmax of ``scaled`` (row maxima 0), written out: ``exp / sum`` below
    EXP_SUM_BELOW categories, ``torch.softmax`` from there on."""
    if scaled.shape[dim] < EXP_SUM_BELOW:
        e = scaled.exp()
        return e / e.sum(dim, keepdim=True)
    return torch.softmax(scaled, dim)


@pytest.mark.parametrize("n", [1, 2, 7, EXP_SUM_BELOW - 1])
def test_exp_sum_normalisation_is_as_accurate_as_torch_softmax(n: int) -> None:
    """In float32, against the float64 softmax of the same inputs: the relative error of
    every normal entry stays within the rounding bound (exp, one division, n - 1 additions:
    (1.5 + (n - 1) / 2) eps) and within 1 eps of torch.softmax's own worst error. Rows hold
    ties, gaps of hundreds and -inf."""
    z = torch.randn(4000, n, generator=seeded(20)) * 30
    z[0] = 0.0  # a row of ties
    if n > 1:
        z[1, 0] = -math.inf  # a masked entry
    z = z - z.amax(-1, keepdim=True)
    exact = torch.softmax(z.double(), -1)
    normal = exact >= torch.finfo(torch.float32).tiny

    def worst(y: torch.Tensor) -> float:
        relative = (y.double() - exact).abs() / exact / torch.finfo(torch.float32).eps
        return float(relative[normal].max())

    ours, theirs = worst(library_normalised(z.clone(), -1)), worst(torch.softmax(z, -1))
    assert ours <= 1.5 + (n - 1) / 2 and ours <= theirs + 1
    if n > 1:  # negative control: a sum that drops a term is far outside the bound
        e = z.exp()
        assert worst(e / (e.sum(-1, keepdim=True) - e[:, -1:])) > 1.5 + (n - 1) / 2


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_one_node_equals_the_recorded_operations(hard: bool, tau: float) -> None:
    """Small eager calls with a gradient run as one autograd node (_RelaxedSample): the same
    forward bits as the recorded path (taken here under torch.func.grad, a transform) and
    the same gradient up to rounding; masked entries get an exact zero."""
    logits = torch.randn(40, 6, dtype=torch.float64, generator=seeded(21)) * 3
    logits[:, 2] = -math.inf
    weights = torch.randn(40, 6, dtype=torch.float64, generator=seeded(22))

    def loss(x: torch.Tensor) -> torch.Tensor:
        y = gl.gumbel_softmax(x, tau, hard, generator=seeded(23), validate_args=False)
        return (y * weights).sum()

    leaf = logits.clone().requires_grad_(True)
    sample = gl.gumbel_softmax(leaf, tau, hard, generator=seeded(23))
    assert sample.grad_fn is not None and "_RelaxedSample" in type(sample.grad_fn).__name__
    (sample * weights).sum().backward()
    recorded = torch.func.grad(loss)(logits)
    assert leaf.grad is not None
    assert torch.equal(loss(logits), (sample.detach() * weights).sum())
    torch.testing.assert_close(leaf.grad, recorded, rtol=1e-12, atol=1e-14)
    assert (leaf.grad[:, 2] == 0).all() and (leaf.grad != 0).any()


@pytest.mark.parametrize("shape", [(50, 7), (600, 64), (600, 128)])  # (600, 128): v = -(l + g)
@pytest.mark.parametrize("dim", [0, -1])
def test_samplers_equal_their_formulas(shape: tuple[int, int], dim: int) -> None:
    logits = torch.randn(shape, generator=seeded(3)) * 3
    logits[0, 0] = -math.inf  # a mask
    logits[1, :] = 1e30  # a row of huge, tied logits
    z = gl.perturb(logits, generator=seeded(4))
    top = z.amax(dim, keepdim=True)
    first = z.argmax(dim, keepdim=True)
    assert torch.equal(gl.gumbel_max(logits, dim=dim, generator=seeded(4)), first.squeeze(dim))
    for tau in (1.0, 0.5, 3.0):
        scaled = (z - top) / tau
        soft = gl.gumbel_softmax(logits, tau, dim=dim, generator=seeded(4))
        assert torch.equal(soft, normalised(scaled, dim))
        log_y = gl.relaxed_log_sample(logits, tau, dim=dim, generator=seeded(4))
        assert torch.equal(log_y, torch.log_softmax(scaled, dim))
        hard = gl.gumbel_softmax(logits, tau, True, dim=dim, generator=seeded(4))
        assert torch.equal(hard, torch.zeros_like(soft).scatter_(dim, first, 1.0))


@pytest.mark.parametrize("shape", [(50, 7), (600, 128)])  # below and above IN_PLACE_FROM
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_perturb_in_place_equals_the_out_of_place_formula(
    shape: tuple[int, int], dtype: torch.dtype
) -> None:
    logits = (torch.randn(shape, generator=seeded(6)) * 3).to(dtype)
    logits[0, 0] = -math.inf
    logits[1, :] = 1e4
    minus_g = log_exponential(shape, generator=seeded(7), dtype=dtype, device=None)
    expected = torch.sub(logits, minus_g)  # l - (-g), out of place
    leaf = logits.clone().requires_grad_(True)
    z = gl.perturb(leaf, generator=seeded(7))
    assert (logits.numel() >= IN_PLACE_FROM) == (shape == (600, 128))
    assert torch.equal(z.detach(), expected)
    z.sum().backward()  # the gradient of l + g with respect to l is the identity
    assert leaf.grad is not None and torch.equal(leaf.grad, torch.ones_like(logits))


@pytest.mark.parametrize("shape", [(600, 64), (600, 128)])  # below and above IN_PLACE_FROM
@pytest.mark.parametrize("tau", [0.7, 1.0, "tensor"])
def test_gradients_equal_the_formula_gradients(shape: tuple[int, int], tau: object) -> None:
    """Forward and logit gradient bit for bit, whichever sign the sampler works with inside;
    a tensor temperature's gradient equals its formula, masked categories adding 0."""
    logits = torch.randn(shape, generator=seeded(8)) * 3
    logits[:, 3] = -math.inf
    weights = torch.randn(shape, generator=seeded(9))
    t = torch.full((shape[0], 1), 0.7, requires_grad=True) if tau == "tensor" else tau
    leaf = logits.clone().requires_grad_(True)
    z = gl.perturb(leaf, generator=seeded(10))
    shifted = z - z.detach().amax(-1, keepdim=True)
    formula = torch.softmax(shifted / (t.detach() if isinstance(t, torch.Tensor) else t), -1)
    (formula * weights).sum().backward()
    expected = leaf.grad
    leaf = logits.clone().requires_grad_(True)
    soft = gl.gumbel_softmax(leaf, t, generator=seeded(10))
    assert torch.equal(soft, formula)
    (soft * weights).sum().backward()
    assert torch.equal(leaf.grad, expected)
    if isinstance(t, torch.Tensor):  # d/dtau of softmax(x / tau): sum_i g_i (-x_i / tau^2)
        y, x = formula.detach(), shifted.detach()
        g = y * (weights - (weights * y).sum(-1, keepdim=True))
        ref = (g * torch.where(y > 0, -x / 0.49, 0.0)).sum(-1, keepdim=True)
        assert t.grad is not None and bool(t.grad.isfinite().all())
        torch.testing.assert_close(t.grad, ref, rtol=1e-4, atol=1e-6)


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


# The probe each case reads: 3 x 5, a lean sample, the row sums of exp(z) (a hard one
# without a gradient, the row maxima); 64 x 100, lean with wide rows, the row maxima;
# 64 x 1200, the recorded path, the maxima of -(l + g); a tensor tau, the recorded path.
@pytest.mark.parametrize("cols", [5, 100, 1200])
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
