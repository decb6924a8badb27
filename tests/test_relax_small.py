"""The lean path of small relaxed samples (gumbel_lib.relax_small).

It runs only where its result equals the recorded path's, and it must leave every argument
error to the checks that name the argument: these tests pin both down, at inputs chosen to
take it (small float32 or float64 CPU tensors, a Python temperature, eager mode).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import seeded
from torch.func import grad

import gumbel_lib as gl
from gumbel_lib.relax_small import lean


def node_name(y: torch.Tensor) -> str:
    return type(y.grad_fn).__name__


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 2}, ValueError, "dim=2 is out of range"),
        ({"dim": -3}, ValueError, "dim=-3 is out of range"),
        ({"generator": "seed"}, TypeError, "generator must be a torch.Generator"),
        ({"tau": -0.5}, ValueError, "tau must be finite and > 0"),
        ({"tau": float("nan")}, ValueError, "tau must be finite and > 0"),
        ({"hard": 1}, TypeError, "hard must be a bool"),
    ],
)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_bad_arguments_of_lean_shapes_raise_the_named_error(
    kwargs: dict, error: type, match: str, requires_grad: bool
) -> None:
    """Out-of-range dims and wrong generators reach PyTorch first on the lean path (it
    skips those checks); the error the caller sees is still ours."""
    logits = torch.randn(4, 6).requires_grad_(requires_grad)
    args = {"tau": 0.5, "generator": seeded(0)} | kwargs
    with pytest.raises(error, match=match):
        gl.gumbel_softmax(logits, **args)


def test_the_guard_takes_exactly_the_lean_inputs() -> None:
    x = torch.randn(4, 6)
    assert lean(x, 0.5, False, 1e-10, -1)
    assert lean(torch.nn.Parameter(x), 0.5, True, 1e-10, 0)
    assert lean(x.double(), 2.0, False, 1e-10, 1)
    assert not lean(x.half(), 0.5, False, 1e-10, -1)  # computed in float32: recorded path
    assert not lean(x, 1, False, 1e-10, -1)  # an int tau: checked and converted first
    assert not lean(x, torch.tensor(0.5), False, 1e-10, -1)
    assert not lean(x, 0.5, np.bool_(True), 1e-10, -1)
    assert not lean(x, 0.5, False, 1e-5, -1)  # eps must warn
    assert not lean(x, 0.5, False, 1e-10, np.int64(-1))
    assert not lean(torch.randn(300, 300), 0.5, False, 1e-10, -1)  # from IN_PLACE_FROM
    assert not lean(torch.zeros(0, 6), 0.5, False, 1e-10, -1)
    assert not lean(torch.tensor(1.0), 0.5, False, 1e-10, -1)  # rank 0
    assert not lean(x.to_sparse(), 0.5, False, 1e-10, -1)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_converted_arguments_give_the_lean_bits(hard: bool, requires_grad: bool) -> None:
    """An int tau, a NumPy dim and a deprecated eps are checked (eps warns), converted and
    sent to the lean path: the same sample, bit for bit, and the same one-node graph."""
    logits = torch.randn(5, 7, dtype=torch.float64, generator=seeded(1))
    x = logits.clone().requires_grad_(requires_grad)
    reference = gl.gumbel_softmax(x, 1.0, hard, generator=seeded(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = gl.gumbel_softmax(x, 1, hard, 1e-5, np.int64(-1), generator=seeded(2))
    assert [str(w.message) for w in caught] == ["`eps` parameter is deprecated and has no effect."]
    assert torch.equal(converted, reference)
    if requires_grad:
        assert node_name(converted) == node_name(reference)
        assert "_RelaxedSample" in node_name(reference)


def test_a_parameter_takes_the_one_node_path() -> None:
    weights = torch.nn.Parameter(torch.randn(3, 4, generator=seeded(5)))
    y = gl.gumbel_softmax(weights, 0.5, generator=seeded(6))
    assert node_name(y).startswith("_RelaxedSample")
    y.sum().backward()
    assert weights.grad is not None and bool(weights.grad.abs().max() < 1e-6)  # sum is 1


def test_a_tensor_left_over_from_a_transform_is_sampled() -> None:
    """A tensor that escaped torch.func.grad (a dead wrapper) takes the lean path, which
    Function.apply would have unwrapped: it still gives the plain tensor's sample."""
    escaped: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        escaped.append(t)
        return t.sum()

    logits = torch.randn(4, 5, generator=seeded(7))
    grad(keep)(logits)
    (dead,) = escaped
    assert torch._C._functorch.is_functorch_wrapped_tensor(dead)
    y = gl.gumbel_softmax(dead, 0.5, generator=seeded(8))
    assert torch.equal(y, gl.gumbel_softmax(logits, 0.5, generator=seeded(8)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lean_and_recorded_paths_consume_the_generator_alike(dtype: torch.dtype) -> None:
    """After a lean sample and after a recorded one (taken under torch.func.grad), the
    generator is in the same state: a seed replays the same stream on either path."""
    logits = torch.randn(6, 9, dtype=dtype, generator=seeded(9))
    lean_gen, recorded_gen = seeded(10), seeded(10)
    gl.gumbel_softmax(logits, 0.7, generator=lean_gen)
    grad(lambda x: gl.gumbel_softmax(x, 0.7, generator=recorded_gen).sum())(logits)
    assert torch.equal(
        torch.rand(3, generator=lean_gen, dtype=dtype),
        torch.rand(3, generator=recorded_gen, dtype=dtype),
    )
