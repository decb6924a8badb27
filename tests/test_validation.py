"""The bad-input table of TESTING.md, one test per row, for every public function it concerns.

Each bad input must raise TypeError or ValueError with a message that names the argument.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import seeded

import gumbel_lib as gl
from gumbel_lib import (
    concrete_log_prob,
    gumbel_from_uniform,
    gumbel_max,
    gumbel_softmax,
    gumbel_topk,
    relaxed_log_sample,
)

GOOD = torch.tensor([[0.1, -0.3, 0.5], [1.0, 0.0, -1.0]])
Y = torch.softmax(GOOD, -1)


def call(name: str, logits: torch.Tensor, **kwargs):
    """Run one public function on ``logits`` with otherwise valid arguments."""
    gen = kwargs.pop("generator", seeded(0))
    if name == "gumbel_max":
        return gumbel_max(logits, generator=gen, **kwargs)
    if name == "gumbel_topk":
        return gumbel_topk(logits, kwargs.pop("k", 1), generator=gen, **kwargs)
    if name == "gumbel_softmax":
        return gumbel_softmax(logits, kwargs.pop("tau", 0.5), generator=gen, **kwargs)
    if name == "gumbel_softmax_hard":
        return gumbel_softmax(logits, kwargs.pop("tau", 0.5), True, generator=gen, **kwargs)
    if name == "relaxed_log_sample":
        return relaxed_log_sample(logits, kwargs.pop("tau", 0.5), generator=gen, **kwargs)
    if name == "concrete_log_prob":
        shape = logits.shape if isinstance(logits, torch.Tensor) else (1, 2)
        y = torch.softmax(torch.zeros(shape), -1)
        return concrete_log_prob(y, logits, kwargs.pop("tau", 0.5), **kwargs)
    raise AssertionError(name)


ALL = [
    "gumbel_max",
    "gumbel_topk",
    "gumbel_softmax",
    "gumbel_softmax_hard",
    "relaxed_log_sample",
    "concrete_log_prob",
]
WITH_TAU = ["gumbel_softmax", "gumbel_softmax_hard", "relaxed_log_sample", "concrete_log_prob"]


@pytest.mark.parametrize("name", WITH_TAU)
@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_bad_tau(name: str, tau: float) -> None:
    with pytest.raises(ValueError, match="tau"):
        call(name, GOOD, tau=tau)


@pytest.mark.parametrize("name", WITH_TAU)
def test_tau_of_the_wrong_type(name: str) -> None:
    with pytest.raises(TypeError, match="tau"):
        call(name, GOOD, tau="1")
    with pytest.raises(ValueError, match="tau"):
        call(name, GOOD, tau=torch.tensor([1.0, 2.0, 3.0, 4.0]))  # neither per row nor per entry


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("value", "word"), [(math.nan, "NaN"), (math.inf, r"\+inf")])
def test_nan_or_plus_inf_logits(name: str, value: float, word: str) -> None:
    bad = GOOD.clone()
    bad[1, 2] = value
    with pytest.raises(ValueError, match=f"logits.*{word}"):
        call(name, bad)


@pytest.mark.parametrize("name", ALL)
def test_every_logit_minus_inf(name: str) -> None:
    bad = GOOD.clone()
    bad[0] = -math.inf
    with pytest.raises(ValueError, match="logits.*-inf for every category"):
        call(name, bad)


def test_k_larger_than_categories() -> None:
    with pytest.raises(ValueError, match="k=4"):
        gumbel_topk(GOOD, 4, generator=seeded(0))


def test_k_larger_than_drawable_categories() -> None:
    masked = GOOD.clone()
    masked[1, 0] = -math.inf
    with pytest.raises(ValueError, match="k=3 is larger than the number of categories"):
        gumbel_topk(masked, 3, generator=seeded(0))


@pytest.mark.parametrize("k", [0, -2])
def test_k_not_positive(k: int) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        gumbel_topk(GOOD, k, generator=seeded(0))


@pytest.mark.parametrize("k", [1.0, True, "2"])
def test_k_not_an_int(k: object) -> None:
    with pytest.raises(TypeError, match="k must be an int"):
        gumbel_topk(GOOD, k, generator=seeded(0))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_or_bool_logits(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match="logits must have a floating-point dtype"):
        call(name, GOOD.to(dtype))


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("gumbel_softmax")])
def test_rank_zero_logits(name: str) -> None:
    with pytest.raises(ValueError, match="logits must have at least one dimension"):
        call(name, torch.tensor(1.0))


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dim", [-1, 0])
def test_rank_zero_logits_of_gumbel_softmax_are_one_category(hard: bool, dim: int) -> None:
    """As ``F.gumbel_softmax``: a 0-d tensor is one category, sampled with probability 1."""
    logits = torch.tensor(2.5, requires_grad=True)
    y = gl.gumbel_softmax(logits, 0.5, hard, dim=dim, generator=seeded(0))
    assert y.shape == () and y.item() == 1.0
    assert torch.equal(y, torch.nn.functional.gumbel_softmax(logits, 0.5, hard, dim=dim))
    y.backward()
    assert logits.grad is not None and logits.grad.item() == 0.0
    with pytest.raises(ValueError, match="dim"):
        gl.gumbel_softmax(logits, 0.5, hard, dim=1)


@pytest.mark.parametrize("name", ALL)
def test_sparse_logits(name: str) -> None:
    """Sparse logits were refused by a bare RuntimeError in some samplers, sampled in others."""
    with pytest.raises(TypeError, match="logits must be a dense"):
        call(name, torch.tensor([[0.1, 0.2, 0.0]]).to_sparse())


@pytest.mark.parametrize("name", ALL)
def test_not_a_tensor(name: str) -> None:
    with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
        call(name, [[0.1, 0.2]])


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dim", [2, -3, 10])
def test_dim_out_of_range(name: str, dim: int) -> None:
    with pytest.raises(ValueError, match=f"dim={dim} is out of range"):
        call(name, GOOD, dim=dim)


@pytest.mark.parametrize("name", ALL)
def test_dim_not_an_int(name: str) -> None:
    with pytest.raises(TypeError, match="dim must be an int"):
        call(name, GOOD, dim=1.0)


def test_hard_not_a_bool() -> None:
    with pytest.raises(TypeError, match="hard"):
        gumbel_softmax(GOOD, 1.0, 1, generator=seeded(0))


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_softmax_hard", "relaxed_log_sample"])
def test_some_masked_logits_are_fine(name: str) -> None:
    masked = GOOD.clone()
    masked[:, 1] = -math.inf
    out = call(name, masked)
    assert not torch.isnan(out).any()


def test_uniform_endpoints_cannot_produce_inf() -> None:
    assert torch.isfinite(gumbel_from_uniform(torch.tensor([0.0, 1.0]))).all()


def test_concrete_log_prob_checks_y() -> None:
    with pytest.raises(TypeError, match="y must have a floating-point dtype"):
        concrete_log_prob(torch.tensor([1, 0]), torch.zeros(2), 1.0)


# --- the switch: validation on by default, off per call or library-wide -------------------

ALL_CALLS = ALL + ["perturb", "m_hot", "gumbel_rao", "conditional_gumbels"]


def call_any(name: str, logits: torch.Tensor, **kwargs):
    gen = seeded(0)
    if name == "perturb":
        return gl.perturb(logits, generator=gen, **kwargs)
    if name == "m_hot":
        return gl.m_hot(logits, 1, 0.5, generator=gen, **kwargs)
    if name == "gumbel_rao":
        return gl.gumbel_rao(logits, 0.5, 2, generator=gen, **kwargs)
    if name == "conditional_gumbels":
        index = torch.zeros(GOOD.shape[:-1], dtype=torch.long)
        return gl.conditional_gumbels(logits, index, 2, generator=gen, **kwargs)
    return call(name, logits, **kwargs)


@pytest.fixture
def validation_off_by_default():
    gl.set_default_validate_args(False)
    yield
    gl.set_default_validate_args(True)


def test_validation_is_on_by_default() -> None:
    assert gl.get_default_validate_args() is True


@pytest.mark.parametrize("name", ALL_CALLS)
def test_value_checks_run_only_under_validation(name: str) -> None:
    bad = GOOD.clone()
    bad[1, 2] = math.nan
    with pytest.raises(ValueError, match="logits"):
        call_any(name, bad)
    call_any(name, bad, validate_args=False)  # no check reads the values: no error


@pytest.mark.parametrize("name", ALL_CALLS)
def test_library_default_off_and_per_call_override(name: str, validation_off_by_default) -> None:
    bad = GOOD.clone()
    bad[0, 0] = math.inf
    call_any(name, bad)  # the default is now off
    with pytest.raises(ValueError, match="logits"):
        call_any(name, bad, validate_args=True)


@pytest.mark.parametrize("name", ALL_CALLS)
def test_structural_checks_run_in_both_modes(name: str) -> None:
    for validate in (True, False):
        with pytest.raises(TypeError, match="logits must have a floating-point dtype"):
            call_any(name, GOOD.long(), validate_args=validate)
        with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
            call_any(name, [[0.1, 0.2]], validate_args=validate)


@pytest.mark.parametrize("name", WITH_TAU)
def test_python_tau_is_checked_in_both_modes(name: str) -> None:
    with pytest.raises(ValueError, match="tau"):
        call(name, GOOD, tau=0.0, validate_args=False)


def test_validate_args_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="validate_args"):
        gumbel_max(GOOD, generator=seeded(0), validate_args=1)
    with pytest.raises(TypeError, match="value must be a bool"):
        gl.set_default_validate_args("yes")


@pytest.mark.parametrize("validate", [True, False])
def test_both_modes_give_the_same_sample(validate: bool) -> None:
    for name in ALL:
        on = call(name, GOOD)
        assert torch.equal(call(name, GOOD, validate_args=validate), on)


def test_k_larger_than_drawable_is_a_value_check() -> None:
    masked = GOOD.clone()
    masked[1, 0] = -math.inf
    out = gumbel_topk(masked, 3, generator=seeded(0), validate_args=False)
    assert out.shape == (2, 3)  # unspecified order for the masked row, but no error


def test_generator_must_be_a_generator() -> None:
    with pytest.raises(TypeError, match="generator"):
        gumbel_max(GOOD, generator=0)


@pytest.mark.parametrize("name", ["sequential_sample", "m_hot_by_redraw"])
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([math.nan, 0.0], "NaN"),
        ([math.inf, 0.0], r"\+inf"),
        ([-math.inf, -math.inf], "-inf for every category"),
    ],
)
def test_row_by_row_samplers_refuse_bad_logits(name: str, row: list[float], message: str) -> None:
    logits = torch.tensor([row, [0.0, 1.0]])
    sampler = getattr(gl, name)
    args = (1,) if name == "sequential_sample" else (1, 0.5)
    with pytest.raises(ValueError, match=f"logits.*{message}"):
        sampler(logits, *args, generator=seeded(0))
