"""sample_tokens: the filters as the engines define them, the exact filtered law, keyed noise.

False-failure budget of this module: 1e-6, split over its chi-square claims (each at
ALPHA; asymptotic rates, Pearson's statistic with cells of expected count >= 5). Each test
is sized by ``chisquare_sample_size`` to detect Cohen's w = EFFECT with miss rate ALPHA,
and the negative controls sit near that effect.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import seeded

import gumbel_lib as gl
from gumbel_lib.stats import chisquare_sample_size, chisquare_test
from gumbel_lib.tokens import filtered_logits, sample_tokens

CONFIGS = {
    "temperature": {"temperature": 0.7},
    "min_p": {"temperature": 1.3, "min_p": 0.05},
    "top_k": {"top_k": 4},
    "top_p": {"temperature": 0.8, "top_p": 0.85},
    "all four": {"temperature": 0.9, "min_p": 0.02, "top_k": 6, "top_p": 0.9},
}
ALPHA = 1e-6 / (len(CONFIGS) + 2)
EFFECT = 0.02
LOGITS = torch.tensor([2.0, 1.5, 1.4, 0.3, 0.0, -0.2, -1.0, -2.5, -4.0, -6.0])
N = chisquare_sample_size(EFFECT, len(LOGITS) - 1, ALPHA)


def reference_filter(logits: np.ndarray, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
    """vLLM's semantics, written out in float64 with a Python loop over the sorted tokens."""
    x = logits / temperature
    keep = np.ones_like(x, dtype=bool)
    if min_p > 0:
        p = np.exp(x - x.max())
        keep &= p >= min_p * p.max()
    order = np.argsort(-x, kind="stable")
    if top_k:
        keep &= x >= x[order[min(top_k, len(x)) - 1]]
    if top_p < 1:
        kept = [i for i in order if keep[i]]
        p = np.exp(x[kept] - x[kept].max())
        p /= p.sum()
        mass, chosen = 0.0, []
        for i, q in zip(kept, p, strict=True):
            if mass >= top_p:
                break
            chosen.append(i)
            mass += q
        keep &= x >= min(x[chosen])
    return np.where(keep, x, -np.inf)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_filters_keep_what_the_engines_keep(name: str) -> None:
    got = filtered_logits(LOGITS.double(), **CONFIGS[name]).numpy()
    expected = reference_filter(LOGITS.double().numpy(), **CONFIGS[name])
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    assert got.max() == 0.0  # shifted by the maximum, which moves no probability
    kept = np.isfinite(expected)
    np.testing.assert_allclose(got[kept], expected[kept] - expected.max(), rtol=1e-12)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_samples_follow_the_filtered_softmax(name: str) -> None:
    config = CONFIGS[name]
    law = torch.softmax(filtered_logits(LOGITS.double(), **config), -1).numpy()
    tokens = sample_tokens(LOGITS.expand(N, -1), generator=seeded(1), **config)
    counts = np.bincount(tokens.numpy(), minlength=len(LOGITS))
    assert counts[law == 0].sum() == 0  # a filtered token is never drawn
    verdict = chisquare_test(counts, law, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_near_the_effect_is_rejected() -> None:
    """Temperature 0.7 where the law says 0.75: Cohen's w above EFFECT, so the sized test
    rejects it (the wrong sampler differs from the claimed law by about that effect)."""
    law = torch.softmax(LOGITS.double() / 0.75, -1).numpy()
    wrong = torch.softmax(LOGITS.double() / 0.7, -1).numpy()
    w = math.sqrt(float(((wrong - law) ** 2 / law).sum()))
    assert EFFECT < w < 3 * EFFECT
    tokens = sample_tokens(LOGITS.expand(N, -1), temperature=0.7, generator=seeded(2))
    counts = np.bincount(tokens.numpy(), minlength=len(LOGITS))
    assert not chisquare_test(counts, law, alpha=ALPHA).passed


def test_top_p_without_the_crossing_token_is_rejected() -> None:
    """The off-by-one nucleus (stop before the token that crosses top_p) is a different law."""
    config = CONFIGS["top_p"]
    law = torch.softmax(filtered_logits(LOGITS.double(), **config), -1).numpy()
    short = filtered_logits(LOGITS.double(), **config)
    short[law.nonzero()[0].max()] = -math.inf
    drawn = gl.gumbel_max(short.float().expand(N, -1), generator=seeded(3))
    counts = np.bincount(drawn.numpy(), minlength=len(LOGITS))
    assert not chisquare_test(counts, law, alpha=ALPHA).passed


def test_temperature_zero_is_greedy_per_row() -> None:
    logits = torch.randn(6, 50, generator=seeded(4))
    temperature = torch.tensor([0.0, 1.0, 0.0, 0.5, 0.0, 2.0])
    tokens = sample_tokens(logits, temperature=temperature, generator=seeded(5))
    greedy = logits.argmax(-1)
    assert torch.equal(tokens[temperature == 0], greedy[temperature == 0])
    assert torch.equal(sample_tokens(logits, temperature=0.0, generator=seeded(5)), greedy)


def test_per_row_parameters_equal_one_call_per_row() -> None:
    logits = torch.randn(4, 30, generator=seeded(6))
    top_k = torch.tensor([0, 3, 10, 1])
    top_p = torch.tensor([0.9, 1.0, 0.5, 0.7])
    batch = sample_tokens(logits, top_k=top_k, top_p=top_p, key=11, position=torch.arange(4))
    for i in range(4):
        row = sample_tokens(
            logits[i], top_k=int(top_k[i]), top_p=float(top_p[i]), key=11, position=i
        )
        assert row.item() == batch[i].item()


def test_keyed_tokens_do_not_depend_on_the_batch() -> None:
    logits = torch.randn(8, 1000, generator=seeded(7))
    keys = torch.tensor([3, 3, 5, 5, 9, 9, 1, 2])
    positions = torch.tensor([0, 1, 0, 1, 7, 8, 0, 0])
    batch = sample_tokens(logits, key=keys, position=positions, temperature=0.8)
    shuffled = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])
    again = sample_tokens(
        logits[shuffled], key=keys[shuffled], position=positions[shuffled], temperature=0.8
    )
    assert torch.equal(again, batch[shuffled])
    assert torch.equal(sample_tokens(logits[2:3], key=5, position=0, temperature=0.8), batch[2:3])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperature": -0.5}, ValueError, "temperature"),
        ({"top_p": 0.0}, ValueError, "top_p"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"min_p": -0.1}, ValueError, "min_p"),
        ({"top_k": -2}, ValueError, "top_k"),
        ({"top_k": 2.5}, TypeError, "top_k"),
        ({"temperature": "hot"}, TypeError, "temperature"),
        ({"top_p": torch.tensor([0.5, 1.5])}, ValueError, "top_p"),
        ({"temperature": torch.ones(3)}, ValueError, "temperature"),
        ({"key": 3}, ValueError, "position"),
        ({"key": 3, "position": 0, "generator": seeded(0)}, ValueError, "key"),
    ],
)
def test_bad_parameters_name_themselves(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        sample_tokens(torch.zeros(2, 5), **kwargs)


def test_bad_logits_raise() -> None:
    logits = torch.zeros(2, 5)
    logits[1, 3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_tokens(logits, generator=seeded(0))
    masked = torch.full((2, 5), -math.inf)
    masked[0, 0] = 0.0
    with pytest.raises(ValueError, match="-inf for every category"):
        sample_tokens(masked, generator=seeded(0))


@pytest.mark.compile
@pytest.mark.parametrize("validate", [True, False])
def test_compiles_without_graph_breaks(validate: bool) -> None:
    logits = torch.randn(3, 40, generator=seeded(8))
    t = torch.tensor([0.0, 0.7, 1.2])

    def fn(x: torch.Tensor) -> torch.Tensor:
        return sample_tokens(x, temperature=t, top_k=5, top_p=0.9, validate_args=validate)

    torch._dynamo.reset()
    torch.manual_seed(9)
    got = torch.compile(fn, fullgraph=True, backend="eager")(logits)
    torch.manual_seed(9)
    assert torch.equal(got, fn(logits))
