"""NaN-free for every accepted input: each hole listed in issue 12, closed and pinned.

The rule: a public function either raises ``TypeError``/``ValueError`` naming the argument,
or returns finite values (``-inf`` only where a category is masked with a ``-inf`` logit,
which is the defined answer ``log 0``), for every dtype, shape and parameter it accepts.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import seeded

import gumbel_lib as gl
from gumbel_lib.noise import gumbel_from_uniform

HALF_AND_SINGLE = [torch.float32, torch.float16, torch.bfloat16]
SHAPE = (4, 64)
ZERO_AT, ONE_AT = (2, 62), (1, 5)


def test_unclamped_noise_at_u_zero_would_be_infinite() -> None:
    """The negative control: without the clamp, u = 0 gives Gumbel noise -inf."""
    u = torch.zeros(1, dtype=torch.float64)
    assert torch.isneginf(-torch.log(-torch.log(u))).all()
    assert torch.isfinite(gumbel_from_uniform(u)).all()


def test_every_sampler_draws_its_noise_through_gumbel_from_uniform() -> None:
    """Each sampler's noise is gumbel_from_uniform of torch.rand's float64 draw at the same
    generator state, and each sum is formed in float64 before any rounding."""
    u = torch.rand(SHAPE, generator=seeded(5), dtype=torch.float64)
    g = gumbel_from_uniform(u)
    assert g.dtype == torch.float64
    logits = torch.randn(SHAPE, generator=seeded(1))
    exact = logits.double() + g
    centred = exact - logits.double().amax(-1, keepdim=True)
    assert torch.equal(gl.perturb(logits, generator=seeded(5)), exact.float())
    assert torch.equal(gl.sample_gumbel(SHAPE, generator=seeded(5), dtype=torch.float64), g)
    assert torch.equal(gl.sample_gumbel(SHAPE, generator=seeded(5)), g.float())
    assert torch.equal(gl.gumbel_max(logits, generator=seeded(5)), centred.argmax(-1))
    assert torch.equal(gl.gumbel_topk(logits, 3, generator=seeded(5)), centred.topk(3).indices)


@pytest.fixture
def rand_with_zero_and_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.rand with an exact 0 at ZERO_AT and the largest float64 below 1 at ONE_AT: the
    two ends of the grid, which a seed reaches with probability 2**-53 each."""
    real_rand = torch.rand

    def rand(*args, **kwargs):  # type: ignore[no-untyped-def]
        u = real_rand(*args, **kwargs)
        if u.shape == SHAPE:
            u[ZERO_AT] = 0.0
            u[ONE_AT] = 1.0 - 2.0**-53
        return u

    monkeypatch.setattr(torch, "rand", rand)


@pytest.mark.usefixtures("rand_with_zero_and_one")
@pytest.mark.parametrize("validate", [True, False])
def test_samplers_are_finite_at_both_ends_of_the_uniform(validate: bool) -> None:
    logits = torch.randn(SHAPE, generator=seeded(1))
    kw = {"generator": seeded(6), "validate_args": validate}
    g = gl.sample_gumbel(SHAPE, **kw)
    assert torch.isfinite(g).all()
    assert (g[ZERO_AT].item(), g[ONE_AT].item()) == gl.noise_bounds(torch.float32)
    kw["generator"] = seeded(6)
    assert torch.isfinite(gl.perturb(logits, **kw)).all()
    for tau in (1.0, 0.5):
        kw["generator"] = seeded(6)
        log_y = gl.relaxed_log_sample(logits, tau, **kw)
        assert torch.isfinite(log_y).all()  # -inf noise would give log y = -inf here
        kw["generator"] = seeded(6)
        y = gl.gumbel_softmax(logits, tau, **kw)
        assert torch.isfinite(y).all() and torch.allclose(y, log_y.exp(), atol=1e-6)
    kw["generator"] = seeded(6)
    assert gl.gumbel_max(logits, **kw)[ONE_AT[0]].item() == ONE_AT[1]  # noise 36.7 wins


@pytest.mark.parametrize("dtype", HALF_AND_SINGLE)
@pytest.mark.parametrize("tau", [7e-46, 1e-46, 5e-324, 1e-40])
def test_temperature_below_the_smallest_float_gives_a_one_hot_sample(
    dtype: torch.dtype, tau: float
) -> None:
    logits = torch.randn(50, 6, generator=seeded(2)).to(dtype)
    y = gl.gumbel_softmax(logits, tau, generator=seeded(3))
    assert torch.isfinite(y).all()
    expected = gl.gumbel_softmax(logits, 0.5, True, generator=seeded(3))
    assert torch.equal(y, expected)
    log_y = gl.relaxed_log_sample(logits, tau, generator=seeded(3))
    assert torch.isfinite(log_y).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_relaxed_log_sample_saturates_instead_of_minus_inf(dtype: torch.dtype) -> None:
    logits = torch.tensor([[0.0, 1.0, -math.inf, 2.0]] * 8).to(dtype)
    for tau in (1e-3, 1e-30, 1e-45):
        log_y = gl.relaxed_log_sample(logits, tau, generator=seeded(4))
        assert log_y.dtype == dtype
        assert torch.isfinite(log_y[:, [0, 1, 3]]).all()
        assert torch.isneginf(log_y[:, 2]).all()  # the masked category: exactly log 0


def test_conditional_gumbels_rejects_nan_and_plus_inf_logits() -> None:
    for value, word in ((math.nan, "NaN"), (math.inf, r"\+inf")):
        logits = torch.zeros(2, 3)
        logits[1, 2] = value
        with pytest.raises(ValueError, match=f"logits contains NaN or {word}|logits contains"):
            gl.conditional_gumbels(logits, torch.tensor([0, 0]), 2, generator=seeded(0))


@pytest.mark.parametrize(
    ("index", "error", "message"),
    [
        (torch.tensor([0.0, 1.0]), TypeError, "index must have an integer dtype"),
        ([0, 1], TypeError, "index must be a torch.Tensor"),
        (torch.tensor([0, 3]), ValueError, "index is out of range"),
        (torch.tensor([-1, 0]), ValueError, "index is out of range"),
        (torch.tensor([0]), ValueError, "index must have shape"),
    ],
)
def test_conditional_gumbels_index_errors_name_index(
    index: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        gl.conditional_gumbels(torch.zeros(2, 3), index, 2, generator=seeded(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("loc", "scale"), [(0.0, 1e38), (3.4e38, 1.0), (-3.4e38, 1.0), (0.0, 1e307), (1e308, 1.0)]
)
def test_sample_gumbel_raises_or_is_finite_for_huge_loc_and_scale(
    dtype: torch.dtype, loc: float, scale: float
) -> None:
    try:
        out = gl.sample_gumbel((1000,), loc=loc, scale=scale, generator=seeded(5), dtype=dtype)
    except ValueError as err:
        assert "loc" in str(err) and "scale" in str(err)
    else:
        assert torch.isfinite(out).all()


def test_sample_gumbel_float32_overflow_is_refused_float64_is_fine() -> None:
    with pytest.raises(ValueError, match="outside the finite range of torch.float32"):
        gl.sample_gumbel((10,), scale=1e38, generator=seeded(5))
    out = gl.sample_gumbel((10,), scale=1e38, generator=seeded(5), dtype=torch.float64)
    assert torch.isfinite(out).all()


def test_sample_gumbel_tensor_parameters_are_checked_under_validation() -> None:
    huge = torch.full((10,), 1e38)
    # 3.4e38 + 1e38 g overflows float32 whenever g > 0.003: some of 64 draws do, except
    # with probability exp(-exp(-0.003))**64 < 1e-27
    with pytest.raises(ValueError, match="outside the finite range"):
        gl.sample_gumbel(
            (64,),
            loc=torch.full((64,), 3.4e38),
            scale=torch.full((64,), 1e38),
            generator=seeded(5),
        )
    with pytest.raises(ValueError, match="scale must be > 0"):
        gl.sample_gumbel((10,), scale=-huge, generator=seeded(5))
    with pytest.raises(ValueError, match="loc must be finite"):
        gl.sample_gumbel((10,), loc=torch.full((10,), math.nan), generator=seeded(5))


def test_sample_gumbel_refuses_to_repeat_noise_along_broadcast_axes() -> None:
    with pytest.raises(ValueError, match=r"loc of shape \(3, 1\) would enlarge shape \(2,\)"):
        gl.sample_gumbel(2, loc=torch.zeros(3, 1), generator=seeded(0))
    rows = gl.sample_gumbel((3, 2), loc=torch.zeros(3, 1), generator=seeded(0))
    assert not torch.equal(rows[0], rows[1])  # independent rows


def test_perturb_validates_its_logits() -> None:
    for value in (math.nan, math.inf):
        with pytest.raises(ValueError, match="logits contains"):
            gl.perturb(torch.tensor([0.0, value]), generator=seeded(0))
    with pytest.raises(TypeError, match="logits must have a floating-point dtype"):
        gl.perturb(torch.tensor([0, 1]), generator=seeded(0))
    masked = gl.perturb(torch.tensor([0.0, -math.inf]), generator=seeded(0))
    assert masked[0].isfinite() and masked[1] == -math.inf


SAMPLERS = {
    "gumbel_softmax": lambda x: gl.gumbel_softmax(x, 0.5, generator=seeded(0)),
    "gumbel_softmax_hard": lambda x: gl.gumbel_softmax(x, 0.5, True, generator=seeded(0)),
    "relaxed_log_sample": lambda x: gl.relaxed_log_sample(x, 0.5, generator=seeded(0)),
    "gumbel_max": lambda x: gl.gumbel_max(x, generator=seeded(0)),
    "gumbel_topk": lambda x: gl.gumbel_topk(x, 1, generator=seeded(0)),
    "m_hot": lambda x: gl.m_hot(x, 1, 0.5, generator=seeded(0)),
    "gumbel_rao": lambda x: gl.gumbel_rao(x, 0.5, 2, generator=seeded(0)),
    "concrete_log_prob": lambda x: gl.concrete_log_prob(x, x, 0.5),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_no_categories_raise_clearly(name: str) -> None:
    with pytest.raises(ValueError, match="logits has no categories|k=1|m=1"):
        SAMPLERS[name](torch.zeros(5, 0))


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "concrete_log_prob"])
def test_empty_batch_behaves_like_pytorch(name: str) -> None:
    out = SAMPLERS[name](torch.zeros(0, 5))
    assert out.shape[0] == 0
    assert torch.nn.functional.gumbel_softmax(torch.zeros(0, 5)).shape == (0, 5)


def test_eps_is_accepted_and_ignored_with_pytorchs_warning() -> None:
    logits = torch.randn(4, 3, generator=seeded(6))
    plain = gl.gumbel_softmax(logits, 0.5, False, generator=seeded(7))
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated and has no effect."):
        with_eps = gl.gumbel_softmax(logits, 0.5, False, 1e-5, generator=seeded(7))
    assert torch.equal(plain, with_eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gl.gumbel_softmax(logits, 0.5, False, 1e-10, -1, generator=seeded(7))


def test_dim_is_positional_in_pytorchs_order() -> None:
    logits = torch.randn(4, 3, generator=seeded(8))
    by_position = gl.gumbel_softmax(logits, 0.5, True, 1e-10, 0, generator=seeded(9))
    by_keyword = gl.gumbel_softmax(logits, 0.5, True, dim=0, generator=seeded(9))
    assert torch.equal(by_position, by_keyword)
    assert torch.equal(by_position.sum(0), torch.ones(3))


def test_tensor_tau_keeps_its_gradient() -> None:
    logits = torch.randn(3, 4, dtype=torch.float64, generator=seeded(10), requires_grad=True)
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 4, dtype=torch.float64, generator=seeded(11))

    def loss(x: torch.Tensor, t: torch.Tensor, hard: bool = False) -> torch.Tensor:
        return gl.gumbel_softmax(x, t, bool(hard), generator=seeded(12)) * weights

    assert torch.autograd.gradcheck(loss, (logits, tau))
    per_row = torch.full((3, 1), 0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logits, per_row))
    grads = [torch.autograd.grad(loss(logits, tau, hard).sum(), tau)[0] for hard in (0, 1)]
    assert grads[0] != 0 and torch.equal(grads[0], grads[1])  # hard: the soft gradient


@pytest.mark.parametrize("cols", [4, 300])  # below and above the in-place size (200 rows)
def test_tensor_tau_gradient_is_finite_with_masks_and_huge_logits(cols: int) -> None:
    """The temperature's gradient was 0 * inf = NaN at masked categories (and wherever
    x / tau**2 overflows): those entries contribute exactly 0, the rest stay exact."""
    logits = torch.randn(200, cols, dtype=torch.float64, generator=seeded(13))
    logits[:, 1] = -math.inf
    logits[0, 0], logits[0, 2] = 1e300, -1e300  # (l + g - max) / tau**2 overflows float64
    weights = torch.randn(200, cols, dtype=torch.float64, generator=seeded(14))
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(logits, t, generator=seeded(15)) * weights

    (grad,) = torch.autograd.grad(loss(tau).sum(), tau)
    assert bool(grad.isfinite()) and grad != 0
    assert torch.autograd.gradcheck(loss, (tau,), fast_mode=True)
    log_y = gl.relaxed_log_sample(logits, tau, generator=seeded(15))
    assert bool(torch.isneginf(log_y[:, 1]).all())  # masked: exactly log 0, still


def test_tensor_tau_matches_the_number() -> None:
    logits = torch.randn(5, 4, generator=seeded(13))
    as_number = gl.gumbel_softmax(logits, 0.5, generator=seeded(14))
    as_tensor = gl.gumbel_softmax(logits, torch.tensor(0.5), generator=seeded(14))
    assert torch.allclose(as_number, as_tensor, rtol=1e-6, atol=0)


@pytest.mark.parametrize("tau", [torch.tensor(0.0), torch.tensor(-1.0), torch.tensor(math.nan)])
def test_tensor_tau_values_are_checked_under_validation(tau: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        gl.gumbel_softmax(torch.zeros(2, 3), tau, generator=seeded(0))


def test_tensor_tau_that_would_change_the_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="tau of shape"):
        gl.gumbel_softmax(torch.zeros(2, 3), torch.ones(4, 2, 3), generator=seeded(0))
