"""``torch.compile(fullgraph=True)`` and ``torch.func.vmap`` over every sampler, default settings.

Compile tests trace with dynamo only (``backend="eager"``): a graph break is a dynamo
event, so this proves "no graph break" in about a second per sampler, without paying for
inductor's code generation (CI has two cores). One test runs ``aot_eager`` forward and
backward, so autograd through the traced graph is covered too.

What the tests pin down (and the chapter *Numerics and performance* states):

* With the default settings (validation on) every sampler compiles with ``fullgraph=True``:
  under ``torch.compile`` each value check is a tensor assertion inside the graph
  (``torch._assert_async``, no host synchronisation on a GPU), which raises PyTorch's
  ``RuntimeError`` naming the argument on bad input, where eager raises ``ValueError``.
* Dynamo cannot put a ``torch.Generator`` in a graph (PyTorch 2.13): compiled samplers take
  ``generator=None`` and draw from the global generator (``torch.manual_seed``). Traced
  with the eager backend they replay eager's bits. The relaxed samplers under tracing
  always take the shifted graph (no value may steer a Python branch), so they equal eager
  with validation off, and eager with validation on to rounding.
* ``vmap(..., randomness="different")`` with a generator draws the noise of the whole batch
  in one call, so it equals the unmapped call on the batch, bit for bit.
  ``randomness="same"`` draws one example's noise and shares it. Inside ``vmap`` value
  checks are skipped (PyTorch has no batching rule for ``_assert_async``): bad values are
  then the caller's responsibility, as with ``validate_args=False``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import seeded
from torch.func import vmap

import gumbel_lib as gl

pytestmark = [
    pytest.mark.compile,
    pytest.mark.filterwarnings("error:There is a performance drop:UserWarning"),  # vmap fallback
]

Y = torch.softmax(torch.randn(3, 5, generator=seeded(20)), -1)
INDEX = torch.tensor([0, 2, 4])
TOP2 = torch.tensor([[0, 1], [2, 3], [4, 0]])
RANKING = torch.tensor([[0, 1, 2], [4, 3, 2], [1, 0, 4]])
KEYS = torch.tensor([3, 4, 5])
OTHER = torch.randn(3, 5, generator=seeded(21))
CONTEXT = torch.tensor([[1, 2], [3, 4], [5, 6]])
# name -> (call with default settings, exact under tracing?): relaxed samplers trace the
# shifted graph, which eager takes with validation off
SAMPLERS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], bool]] = {
    "gumbel_softmax": (lambda x: gl.gumbel_softmax(x, 0.5), False),
    "gumbel_softmax_tau1": (lambda x: gl.gumbel_softmax(x, 1.0), True),
    "gumbel_softmax_hard": (lambda x: gl.gumbel_softmax(x, 0.5, True), False),
    "gumbel_softmax_tensor_tau": (lambda x: gl.gumbel_softmax(x, torch.full((3,), 0.5)), True),
    "relaxed_log_sample": (lambda x: gl.relaxed_log_sample(x, 0.5), False),
    "gumbel_max": (lambda x: gl.gumbel_max(x), True),
    "gumbel_topk": (lambda x: gl.gumbel_topk(x, 2), True),
    "perturb": (lambda x: gl.perturb(x), True),
    "sample_gumbel": (lambda x: gl.sample_gumbel(x.shape), True),
    "gumbel_rao": (lambda x: gl.gumbel_rao(x, 0.5, 3), True),
    "conditional_gumbels": (lambda x: gl.conditional_gumbels(x, INDEX, 2), True),
    "concrete_log_prob": (lambda x: gl.concrete_log_prob(Y, x, 0.5), True),
    "concrete_log_prob_tensor_tau": (
        lambda x: gl.concrete_log_prob(Y, x, torch.full((3,), 0.5)),
        True,
    ),
    "plackett_luce_sample": (lambda x: gl.PlackettLuce(x).sample((2,)), True),
    "plackett_luce_sample_k2": (lambda x: gl.PlackettLuce(x, k=2).sample(), True),
    "plackett_luce_log_prob": (lambda x: gl.PlackettLuce(x, k=3).log_prob(RANKING), True),
    "reinmax": (lambda x: gl.reinmax(x, 0.5), True),
    "conditional_topk_gumbels": (lambda x: gl.conditional_topk_gumbels(x, TOP2, 2), True),
    "sequential_sample": (lambda x: gl.sequential_sample(x, 3), True),
    "m_hot": (lambda x: gl.m_hot(x, 2, 0.5), True),
    "m_hot_hard": (lambda x: gl.m_hot(x, 2, 0.5, hard=True), True),
    "m_hot_by_redraw": (lambda x: gl.m_hot_by_redraw(x, 2, 0.5), True),
    "sample_tokens": (lambda x: gl.sample_tokens(x, temperature=0.7, top_p=0.9), True),
    "sample_tokens_keyed": (lambda x: gl.sample_tokens(x, key=KEYS, position=2), True),
    "keyed_uniform": (lambda x: gl.keyed_uniform(KEYS[:, None], 0, torch.arange(5)), True),
    "coupled_gumbel_max": (lambda x: torch.stack(gl.coupled_gumbel_max(x, OTHER)), True),
    "coupled_gumbel_max_keyed": (
        lambda x: torch.stack(gl.coupled_gumbel_max(x, OTHER, key=KEYS, position=2)),
        True,
    ),
    "coupling_agreement": (lambda x: gl.coupling_agreement(x, OTHER), True),
    "speculative_step": (
        lambda x: torch.stack(gl.speculative_step(x, OTHER, INDEX)).long(),
        True,
    ),
    "speculative_step_keyed": (
        lambda x: torch.stack(gl.speculative_step(x, OTHER, INDEX, key=KEYS, position=2)).long(),
        True,
    ),
    "drafter_invariant_step": (
        lambda x: torch.stack(gl.drafter_invariant_step(x, INDEX, key=KEYS, position=2)).long(),
        True,
    ),
    "watermark_sample": (lambda x: gl.watermark_sample(x, CONTEXT, key=KEYS), True),
    "posterior_gumbels": (lambda x: gl.posterior_gumbels(x, INDEX, 2), True),
    "counterfactual_gumbel_max": (
        lambda x: gl.counterfactual_gumbel_max(x, INDEX, OTHER, 2),
        True,
    ),
}


@pytest.fixture(autouse=True)
def fresh_dynamo() -> None:
    torch._dynamo.reset()


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_default_settings_compile_without_graph_breaks(name: str) -> None:
    fn, exact = SAMPLERS[name]
    x = torch.randn(3, 5, generator=seeded(0))
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    torch.manual_seed(1)
    got = compiled(x)
    torch.manual_seed(1)
    expected = fn(x)
    if exact:
        assert torch.equal(got, expected)  # eager backend: eager's random bits
    else:
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
        gl.set_default_validate_args(False)
        try:
            torch.manual_seed(1)
            assert torch.equal(got, fn(x))
        finally:
            gl.set_default_validate_args(True)


def test_compiled_forward_and_backward() -> None:
    weights = torch.randn(3, 5, generator=seeded(2))

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (gl.gumbel_softmax(x, 0.5, True) * weights).sum()

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
    # eager divides the unshifted values (validation's probe allows it), compiled the
    # shifted ones: the same gradient up to rounding
    assert grads[0] is not None and grads[1] is not None
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-7)
    assert not torch.equal(grads[0], torch.zeros_like(grads[0]))


BAD = {"NaN": float("nan"), "+inf": float("inf")}


@pytest.mark.parametrize(
    "name",
    [
        "gumbel_softmax",
        "gumbel_max",
        "gumbel_topk",
        "perturb",
        "plackett_luce_sample",
        "reinmax",
        "conditional_topk_gumbels",
        "sequential_sample",
        "sample_tokens",
        "m_hot",
        "m_hot_by_redraw",
        "coupled_gumbel_max",
        "speculative_step",
        "watermark_sample",
        "counterfactual_gumbel_max",
    ],
)
@pytest.mark.parametrize("bad", list(BAD))
def test_bad_logits_raise_eager_and_traced(name: str, bad: str) -> None:
    """Eager: ValueError naming the value; compiled: the graph's assertion, naming logits."""
    fn, _ = SAMPLERS[name]
    x = torch.randn(3, 5, generator=seeded(0))
    x[1, 2] = BAD[bad]
    with pytest.raises(ValueError, match=f"logits.*{bad.replace('+', '[+]')}"):
        fn(x)
    with pytest.raises(RuntimeError, match="logits"):
        torch.compile(fn, fullgraph=True, backend="eager")(x)


def test_bad_temperature_raises_eager_and_traced() -> None:
    x = torch.randn(3, 5, generator=seeded(0))
    tau = torch.tensor([0.5, -1.0, 0.5])

    def fn(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(x, t)

    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        fn(tau)
    with pytest.raises(RuntimeError, match="tau must be finite and > 0"):
        torch.compile(fn, fullgraph=True, backend="eager")(tau)


def test_validation_off_compiles_too() -> None:
    x = torch.randn(3, 5, generator=seeded(0))

    def fn(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(t, 0.5, validate_args=False)

    torch.manual_seed(1)
    got = torch.compile(fn, fullgraph=True, backend="eager")(x)
    torch.manual_seed(1)
    assert torch.equal(got, fn(x))


def test_a_generator_cannot_enter_a_graph() -> None:
    x = torch.randn(3, 5, generator=seeded(0))
    gen = seeded(5)

    def with_generator(t: torch.Tensor) -> torch.Tensor:
        return gl.gumbel_softmax(t, 0.5, generator=gen)

    with pytest.raises(Exception):  # noqa: B017 - dynamo's Unsupported, by name varies
        torch.compile(with_generator, fullgraph=True, backend="eager")(x)


BATCH = torch.randn(4, 3, 5, generator=seeded(6))
MAPPED: dict[str, Callable[..., torch.Tensor]] = {
    "gumbel_softmax": lambda x, g: gl.gumbel_softmax(x, 0.5, generator=g),
    "gumbel_softmax_hard": lambda x, g: gl.gumbel_softmax(x, 0.5, True, generator=g),
    "relaxed_log_sample": lambda x, g: gl.relaxed_log_sample(x, 0.5, generator=g),
    "gumbel_max": lambda x, g: gl.gumbel_max(x, generator=g),
    "gumbel_topk": lambda x, g: gl.gumbel_topk(x, 2, generator=g),
    "perturb": lambda x, g: gl.perturb(x, generator=g),
    "gumbel_rao": lambda x, g: gl.gumbel_rao(x, 0.5, 3, generator=g),
    "plackett_luce_sample": lambda x, g: gl.PlackettLuce(x).sample(generator=g),
    "reinmax": lambda x, g: gl.reinmax(x, 0.5, generator=g),
    "sequential_sample": lambda x, g: gl.sequential_sample(x, 3, generator=g),
    "sample_tokens": lambda x, g: gl.sample_tokens(x, temperature=0.7, top_k=3, generator=g),
    "m_hot": lambda x, g: gl.m_hot(x, 2, 0.5, generator=g),
    "m_hot_hard": lambda x, g: gl.m_hot(x, 2, 0.5, hard=True, generator=g),
    "m_hot_by_redraw": lambda x, g: gl.m_hot_by_redraw(x, 2, 0.5, generator=g),
    "coupled_gumbel_max": lambda x, g: torch.stack(
        gl.coupled_gumbel_max(x, OTHER.expand_as(x), generator=g), -1
    ),
    "speculative_step": lambda x, g: torch.stack(
        gl.speculative_step(x, OTHER.expand_as(x), INDEX.expand(x.shape[:-1]), generator=g), -1
    ).long(),
}
# the relaxed samplers take the shifted graph inside vmap: eager's, with validation off
SHIFTED = {"gumbel_softmax", "gumbel_softmax_hard", "relaxed_log_sample"}


def unmapped(name: str, x: torch.Tensor, seed: int) -> torch.Tensor:
    return MAPPED[name](x, seeded(seed)) if name not in SHIFTED else _off(name, x, seed)


def _off(name: str, x: torch.Tensor, seed: int) -> torch.Tensor:
    gl.set_default_validate_args(False)
    try:
        return MAPPED[name](x, seeded(seed))
    finally:
        gl.set_default_validate_args(True)


@pytest.mark.parametrize("name", list(MAPPED))
def test_vmap_different_equals_the_batched_call(name: str) -> None:
    gen = seeded(7)
    mapped = vmap(lambda x: MAPPED[name](x, gen), randomness="different")(BATCH)
    assert torch.equal(mapped, unmapped(name, BATCH, 7))


@pytest.mark.parametrize("name", list(MAPPED))
def test_vmap_same_shares_one_draw(name: str) -> None:
    gen = seeded(8)
    mapped = vmap(lambda x: MAPPED[name](x, gen), randomness="same")(BATCH)
    for i in range(BATCH.shape[0]):
        assert torch.equal(mapped[i], unmapped(name, BATCH[i], 8))


def test_vmap_default_randomness_refuses_and_skips_value_checks() -> None:
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(lambda x: gl.gumbel_max(x))(BATCH)
    bad = BATCH.clone()
    bad[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gl.gumbel_max(bad, generator=seeded(9))
    index = vmap(lambda x: gl.gumbel_max(x), randomness="different")(bad)  # no check inside
    assert index.shape == (4, 3)


def test_vmap_concrete_log_prob_equals_the_batched_call() -> None:
    y = torch.softmax(torch.randn(4, 3, 5, generator=seeded(9)), -1)
    mapped = vmap(lambda a, b: gl.concrete_log_prob(a, b, 0.5))(y, BATCH)
    assert torch.allclose(mapped, gl.concrete_log_prob(y, BATCH, 0.5), rtol=1e-6, atol=1e-6)
    shared = vmap(lambda a: gl.concrete_log_prob(a, BATCH[0], 0.5))(y)
    assert torch.allclose(shared, gl.concrete_log_prob(y, BATCH[0], 0.5), rtol=1e-6, atol=1e-6)


def test_vmap_conditional_topk_gumbels() -> None:
    """randomness="same" equals each slice; "different" draws another noise layout than the
    batched call, so only its structure is checked: the conditioned top-2 stays on top."""

    def fn(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return gl.conditional_topk_gumbels(x, TOP2, 2, generator=g)

    same = vmap(lambda x: fn(x, seeded(8)), randomness="same")(BATCH)
    for i in range(BATCH.shape[0]):
        assert torch.equal(same[i], fn(BATCH[i], seeded(8)))
    different = vmap(lambda x: fn(x, seeded(7)), randomness="different")(BATCH)
    assert different.shape == (4, 2, 3, 5)
    assert torch.equal(different.topk(2, -1).indices, TOP2.expand(4, 2, 3, 2))
