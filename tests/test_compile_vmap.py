"""``torch.compile(fullgraph=True)`` and ``torch.func.vmap`` over every sampler.

Compile tests trace with dynamo only (``backend="eager"``): a graph break is a dynamo
event, so this proves "no graph break" in about a second per sampler, without paying for
inductor's code generation (CI has two cores). One test runs ``aot_eager`` forward and
backward, so autograd through the traced graph is covered too.

What the tests pin down (and the Numerics and performance chapter states):

* With ``validate_args=False`` every sampler compiles with ``fullgraph=True``. With
  validation on, the value check reads one number (``.item()``), so ``fullgraph=True``
  raises and plain ``torch.compile`` splits the graph there.
* Dynamo cannot put a ``torch.Generator`` in a graph (PyTorch 2.13): compiled samplers take
  ``generator=None`` and draw from the global generator (``torch.manual_seed``). Traced
  with the eager backend they replay eager's bits; inductor's own RNG does not (set
  ``torch._inductor.config.fallback_random = True`` for that).
* ``vmap(..., randomness="different")`` with a generator draws the noise of the whole batch
  in one call, so it equals the unmapped call on the batch, bit for bit.
  ``randomness="same"`` draws one example's noise and shares it: each slice equals the
  unmapped call on that slice with the same seed. The default ``randomness="error"``
  refuses, and validation's ``.item()`` cannot run under vmap: pass ``validate_args=False``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import seeded
from torch.func import vmap

import gumbel_lib as gl

# in-place clamp and scatter are the fastest forms outside vmap, but PyTorch 2.13 has no
# batching rule for them (it warns and loops over the batch): the samplers switch to the
# out-of-place forms under vmap, and this filter turns a regression into a failure
pytestmark = [
    pytest.mark.compile,
    pytest.mark.filterwarnings("error:There is a performance drop:UserWarning"),  # vmap fallback
]

OFF = {"validate_args": False}
SAMPLERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gumbel_softmax": lambda x: gl.gumbel_softmax(x, 0.5, **OFF),
    "gumbel_softmax_tau1": lambda x: gl.gumbel_softmax(x, 1.0, **OFF),
    "gumbel_softmax_hard": lambda x: gl.gumbel_softmax(x, 0.5, True, **OFF),
    "relaxed_log_sample": lambda x: gl.relaxed_log_sample(x, 0.5, **OFF),
    "gumbel_max": lambda x: gl.gumbel_max(x, **OFF),
    "gumbel_topk": lambda x: gl.gumbel_topk(x, 2, **OFF),
    "perturb": lambda x: gl.perturb(x, **OFF),
    "sample_gumbel": lambda x: gl.sample_gumbel(x.shape, **OFF),
    "m_hot": lambda x: gl.m_hot(x, 2, 0.5, **OFF),
    "gumbel_rao": lambda x: gl.gumbel_rao(x, 0.5, 3, **OFF),
    "concrete_log_prob": lambda x: gl.concrete_log_prob(torch.softmax(x, -1), x, 0.5, **OFF),
}


@pytest.fixture(autouse=True)
def fresh_dynamo() -> None:
    torch._dynamo.reset()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_compiles_without_graph_breaks(name: str) -> None:
    x = torch.randn(3, 5, generator=seeded(0))
    compiled = torch.compile(SAMPLERS[name], fullgraph=True, backend="eager")
    torch.manual_seed(1)
    got = compiled(x)
    torch.manual_seed(1)
    assert torch.equal(got, SAMPLERS[name](x))  # eager backend: eager's random bits


def test_compiled_forward_and_backward() -> None:
    weights = torch.randn(3, 5, generator=seeded(2))

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (gl.gumbel_softmax(x, 0.5, True, validate_args=False) * weights).sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    grads, values = [], []
    for fn in (compiled, loss):
        leaf = torch.randn(3, 5, generator=seeded(3)).requires_grad_(True)
        torch.manual_seed(4)
        value = fn(leaf)
        value.backward()
        grads.append(leaf.grad)
        values.append(value.detach())
    assert torch.equal(values[0], values[1])  # the same sample
    # eager runs one autograd node (y * (g - <g, y>) / tau); compiled differentiates the
    # recorded operations: the same gradient up to rounding, not bit for bit
    assert grads[0] is not None and grads[1] is not None
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-7)
    assert not torch.equal(grads[0], torch.zeros_like(grads[0]))


def test_validation_on_is_a_graph_break() -> None:
    x = torch.randn(3, 5, generator=seeded(0))

    def validated(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(t, 0.5, validate_args=True)

    with pytest.raises(Exception, match="data-dependent|item"):
        torch.compile(validated, fullgraph=True, backend="eager")(x)
    torch._dynamo.reset()
    assert torch.compile(validated, backend="eager")(x).shape == (3, 5)  # split, still runs


def test_a_generator_cannot_enter_a_graph() -> None:
    x = torch.randn(3, 5, generator=seeded(0))
    gen = seeded(5)

    def with_generator(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(t, 0.5, generator=gen, validate_args=False)

    with pytest.raises(Exception):  # noqa: B017 - dynamo's Unsupported, by name varies
        torch.compile(with_generator, fullgraph=True, backend="eager")(x)


BATCH = torch.randn(4, 3, 5, generator=seeded(6))
MAPPED: dict[str, Callable[..., torch.Tensor]] = {
    "gumbel_softmax": lambda x, g: gl.gumbel_softmax(x, 0.5, generator=g, **OFF),
    "gumbel_softmax_hard": lambda x, g: gl.gumbel_softmax(x, 0.5, True, generator=g, **OFF),
    "relaxed_log_sample": lambda x, g: gl.relaxed_log_sample(x, 0.5, generator=g, **OFF),
    "gumbel_max": lambda x, g: gl.gumbel_max(x, generator=g, **OFF),
    "gumbel_topk": lambda x, g: gl.gumbel_topk(x, 2, generator=g, **OFF),
    "perturb": lambda x, g: gl.perturb(x, generator=g, **OFF),
}


@pytest.mark.parametrize("name", list(MAPPED))
def test_vmap_different_equals_the_batched_call(name: str) -> None:
    fn = MAPPED[name]
    gen = seeded(7)
    mapped = vmap(lambda x: fn(x, gen), randomness="different")(BATCH)
    assert torch.equal(mapped, fn(BATCH, seeded(7)))


@pytest.mark.parametrize("name", list(MAPPED))
def test_vmap_same_shares_one_draw(name: str) -> None:
    fn = MAPPED[name]
    gen = seeded(8)
    mapped = vmap(lambda x: fn(x, gen), randomness="same")(BATCH)
    for i in range(BATCH.shape[0]):
        assert torch.equal(mapped[i], fn(BATCH[i], seeded(8)))


def test_vmap_same_above_the_in_place_size() -> None:
    """Large examples take perturbed()'s in-place path, except under vmap (shared noise)."""
    from gumbel_lib.sampling import IN_PLACE_FROM

    big = torch.randn(2, 300, 256, generator=seeded(9))
    assert big[0].numel() >= IN_PLACE_FROM

    def soft(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return gl.gumbel_softmax(x, 0.5, generator=gen, **OFF)

    mapped = vmap(lambda x: soft(x, seeded(10)), randomness="same")(big)
    for i in range(big.shape[0]):
        assert torch.equal(mapped[i], soft(big[i], seeded(10)))
    different = vmap(lambda x: soft(x, seeded(11)), randomness="different")(big)
    assert torch.equal(different, soft(big, seeded(11)))


def test_vmap_default_randomness_refuses_and_validation_needs_to_be_off() -> None:
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(lambda x: gl.gumbel_max(x, **OFF))(BATCH)
    with pytest.raises(RuntimeError, match="item"):
        vmap(lambda x: gl.gumbel_max(x, validate_args=True), randomness="different")(BATCH)


def test_vmap_concrete_log_prob_equals_the_batched_call() -> None:
    y = torch.softmax(torch.randn(4, 3, 5, generator=seeded(9)), -1)
    mapped = vmap(lambda a, b: gl.concrete_log_prob(a, b, 0.5, **OFF))(y, BATCH)
    assert torch.allclose(mapped, gl.concrete_log_prob(y, BATCH, 0.5), rtol=1e-6, atol=1e-6)
    shared = vmap(lambda a: gl.concrete_log_prob(a, BATCH[0], 0.5, **OFF))(y)
    assert torch.allclose(shared, gl.concrete_log_prob(y, BATCH[0], 0.5), rtol=1e-6, atol=1e-6)
