"""Keyed (counter-based) uniforms: Philox4x32-10 bit for bit, invariance, uniformity and
independence, with negative controls that the same tests reject.

False-failure budget of this module: 1e-6, split evenly (Bonferroni) over the 18 asserts
below that can fail by chance, each at ``ALPHA = 1e-6 / 18``: 9 claims that a test passes
(1 DKWM, 6 pair tests, 1 bit test, 1 byte test) and 9 negative controls that a test
rejects, each sized to miss with probability at most ``ALPHA`` (4 near the effect its test
is sized for, 5 weak generators far beyond it). The DKWM rate is exact; the chi-square
rates (and the power of the chi-square tests) are asymptotic. Every other assert is exact
(known answers, bitwise equality, errors).

The keyed uniforms are a fixed function, so "by chance" means: over the choice of key. The
keys below are the first 16 hex digits of pi (Random123's known-answer counter) plus 0 to
4, not tuned.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch.func import vmap

from gumbel_lib.keyed import CPU_SLICE, _keyed_uniform, keyed_uniform, philox4x32
from gumbel_lib.stats import (
    Verdict,
    chisquare_sample_size,
    chisquare_test,
    dkwm_epsilon,
    dkwm_sample_size,
    dkwm_test,
)

ALPHA = 1e-6 / 18
KEY = 0x243F6A8885A308D3  # digits of pi, as in Random123's known-answer inputs
MASK32 = 0xFFFFFFFF
ROWS = 64  # statistical samples are [ROWS, columns] blocks: positions x vocabulary


# ---------------------------------------------------------------------------------------------
# Philox4x32-10: known answers and an independent scalar reference


# Random123's tests/kat_vectors, lines 24-29, identical at tag v1.14.0 and at commit
# 9545ff6413f258be2f04c1d319d99aaef7521150 of https://github.com/DEShawResearch/random123
# (columns: name, rounds, counter[4], key[2], expected[4], hexadecimal 32-bit words):
KAT_VECTORS = """
philox4x32 7 00000000 00000000 00000000 00000000 00000000 00000000   5f6fb709 0d893f64 4f121f81 4f730a48
philox4x32 7 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   5207ddc2 45165e59 4d8ee751 8c52f662
philox4x32 7 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   4dfccaba 190a87f0 c47362ba b6b5242a
philox4x32 10 00000000 00000000 00000000 00000000 00000000 00000000   6627e8d5 e169c58d bc57ac4c 9b00dbd8
philox4x32 10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff   408f276d 41c83b0e a20bc7c6 6d5451fd
philox4x32 10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0   d16cfe09 94fdcceb 5001e420 24126ea1
"""  # noqa: E501


def kat_cases() -> list[tuple[int, list[int], list[int], list[int]]]:
    cases = []
    for line in KAT_VECTORS.strip().splitlines():
        name, rounds, *words = line.split()
        assert name == "philox4x32" and len(words) == 10
        w = [int(x, 16) for x in words]
        cases.append((int(rounds), w[:4], w[4:6], w[6:]))
    return cases


def philox_reference(ctr: list[int], key: list[int], rounds: int = 10) -> list[int]:
    """Philox4x32 in Python integers, transcribed from Random123's philox.h (round, then
    bump the key before each further round); checked itself by the known answers."""
    c, k = list(ctr), list(key)
    for r in range(rounds):
        if r:
            k = [(k[0] + 0x9E3779B9) & MASK32, (k[1] + 0xBB67AE85) & MASK32]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & MASK32, (p0 >> 32) ^ c[3] ^ k[1], p0 & MASK32]
    return c


def uniform_reference(key: int, position: int, index: int) -> float:
    """The documented layout, in Python integers."""
    ctr = [index & MASK32, index >> 32, position & MASK32, position >> 32]
    out = philox_reference(ctr, [key & MASK32, key >> 32])
    return ((out[0] << 21) | (out[1] >> 11)) * 2.0**-53


@pytest.mark.parametrize("case", kat_cases(), ids=lambda c: f"R{c[0]}-{c[1][0]:08x}")
def test_philox_known_answers(case: tuple[int, list[int], list[int], list[int]]) -> None:
    """Random123's known-answer vectors for philox4x32, 7 and 10 rounds, exactly.

    Source: ``tests/kat_vectors`` of the Random123 distribution (D. E. Shaw Research,
    https://github.com/DEShawResearch/random123, tag v1.14.0, file unchanged at commit
    9545ff6413f258be2f04c1d319d99aaef7521150), lines 24-29: zero counter and key, all
    ones, and the pi-digits counter 243f6a88 85a308d3 13198a2e 03707344 with key
    a4093822 299f31d0 (expected 6627e8d5 ..., 408f276d ..., d16cfe09 ... at 10 rounds).
    """
    rounds, ctr, key, expected = case
    assert philox_reference(ctr, key, rounds) == expected
    got = philox4x32(ctr, key, rounds=rounds)
    assert [int(w) for w in got] == expected
    as_tensors = philox4x32([torch.tensor([w]) for w in ctr], key, rounds=rounds)
    assert [int(w) for w in as_tensors] == expected
    if rounds == 10:  # the default
        assert [int(w) for w in philox4x32(ctr, key)] == expected


def test_philox_matches_the_reference_on_random_words() -> None:
    """2,000 random counters and keys, broadcast as tensors, against the scalar reference."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**32, size=(6, 2000), dtype=np.int64)
    words[:, :4] = np.array([0, MASK32, 2**31, 2**31 - 1])  # edges of the 32-bit range
    ctr, key = [torch.from_numpy(w) for w in words[:4]], [torch.from_numpy(w) for w in words[4:]]
    got = torch.stack(philox4x32(ctr, key)).T.tolist()
    expected = [philox_reference(list(col[:4]), list(col[4:])) for col in words.T.tolist()]
    assert got == expected


def test_philox_broadcasts_and_keeps_its_inputs() -> None:
    ctr = [torch.arange(3)[:, None], torch.tensor(1), torch.arange(4), torch.tensor([[7]])]
    before = [c.clone() for c in ctr]
    out = philox4x32(ctr, (5, torch.arange(3)[:, None]))
    assert all(w.shape == (3, 4) and w.dtype == torch.int64 for w in out)
    assert all(torch.equal(a, b) for a, b in zip(ctr, before, strict=True))
    i, j = 2, 3
    expected = philox_reference([i, 1, j, 7], [5, i])
    assert [int(w[i, j]) for w in out] == expected
    # too few rounds to mix every word into every output: still the broadcast shape
    assert all(w.shape == (3, 4) for w in philox4x32(ctr, (5, 6), rounds=1))


# ---------------------------------------------------------------------------------------------
# The layout and the invariance of keyed uniforms


EDGES = [0, 1, MASK32, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**64 - 1]


@pytest.mark.parametrize("key", [0, KEY, 2**64 - 1])
def test_layout_matches_the_documented_counter_and_key(key: int) -> None:
    for position in EDGES:
        for index in EDGES:
            got = keyed_uniform(key, position, index)
            assert got.item() == uniform_reference(key, position, index), (position, index)


def test_grid_of_torch_rand() -> None:
    u = keyed_uniform(KEY, torch.arange(8)[:, None], torch.arange(4096))
    assert u.dtype == torch.float64 and u.shape == (8, 4096)
    scaled = u * 2.0**53
    assert torch.equal(scaled, scaled.floor()) and u.min() >= 0 and u.max() < 1
    assert torch.unique(u).numel() == u.numel()  # 53 bits: a repeat would be a layout bug


def test_same_bits_in_every_shape() -> None:
    """A [B, V] block, vocabulary slices, single entries, other batches, other dtypes."""
    positions, vocab = torch.tensor([0, 5, 2**40 + 3]), 37
    block = keyed_uniform(KEY, positions[:, None], torch.arange(vocab))
    cuts = [0, 1, 8, 20, 21, vocab]  # uneven slices of the vocabulary
    sliced = [
        keyed_uniform(KEY, positions[:, None], torch.arange(a, b))
        for a, b in itertools.pairwise(cuts)
    ]
    assert torch.equal(torch.cat(sliced, dim=1), block)
    for r, p in enumerate(positions.tolist()):
        for i in range(vocab):
            assert torch.equal(keyed_uniform(KEY, p, i), block[r, i])
    # the same row inside a different batch, and a transposed layout
    other = keyed_uniform(KEY, torch.tensor([9, 5, 11])[:, None], torch.arange(vocab))
    assert torch.equal(other[1], block[1])
    assert torch.equal(keyed_uniform(KEY, positions, torch.arange(vocab)[:, None]), block.T)
    # other integer dtypes and 0-dim tensors name the same entries
    assert torch.equal(keyed_uniform(KEY, positions[:, None], torch.arange(vocab).int()), block)
    assert torch.equal(
        keyed_uniform(torch.tensor(KEY), torch.tensor(5), torch.tensor(3)), block[1, 3]
    )


def test_same_bits_above_the_cpu_slice() -> None:
    """Large CPU blocks run in slices of CPU_SLICE entries; rows below it run whole."""
    vocab = CPU_SLICE - 1  # 3 rows of it: three slices, the last one short, cut mid-row
    keys, positions = torch.tensor([[KEY], [-1], [2]]), torch.tensor([[0], [2**40], [7]])
    big = keyed_uniform(keys, positions, torch.arange(vocab))
    for r in range(3):
        assert torch.equal(big[r], keyed_uniform(keys[r], positions[r], torch.arange(vocab)))


def test_per_row_keys_and_the_bits_of_an_int64_key() -> None:
    keys = torch.tensor([KEY, 7, -1])  # -1 is the key 2**64 - 1
    block = keyed_uniform(keys[:, None], 4, torch.arange(10))
    for r, k in enumerate([KEY, 7, 2**64 - 1]):
        assert torch.equal(block[r], keyed_uniform(k, 4, torch.arange(10)))
    assert not torch.equal(block[0], block[1])


@pytest.mark.compile
@pytest.mark.parametrize("validate", [True, False])
def test_same_bits_under_compile(validate: bool) -> None:
    def draw(key: torch.Tensor, position: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return keyed_uniform(key, position, index, validate_args=validate)

    compiled = torch.compile(draw, fullgraph=True, backend="eager")
    args = (torch.tensor([[KEY], [3]]), torch.tensor([[0], [2**33]]), torch.arange(100))
    assert torch.equal(compiled(*args), draw(*args))


@pytest.mark.compile
def test_validation_under_compile_is_an_async_assert() -> None:
    compiled = torch.compile(
        lambda p: keyed_uniform(KEY, p, torch.arange(4)), fullgraph=True, backend="eager"
    )
    with pytest.raises(RuntimeError, match="position and index must be >= 0"):
        compiled(torch.tensor([[0], [-1]]))


@pytest.mark.compile
def test_same_bits_under_vmap() -> None:
    positions, index = torch.arange(6), torch.arange(50)
    block = keyed_uniform(KEY, positions[:, None], index)
    assert torch.equal(vmap(lambda p: keyed_uniform(KEY, p, index))(positions), block)
    keys = torch.tensor([KEY, 1, 2])
    per_key = vmap(lambda k: keyed_uniform(k, positions[:, None], index))(keys)
    assert torch.equal(per_key[0], block)
    assert torch.equal(per_key, keyed_uniform(keys[:, None, None], positions[:, None], index))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_bits_on_cuda() -> None:
    args = (torch.tensor([[KEY], [2**62]]), torch.tensor([[0], [2**40]]), torch.arange(5000))
    cpu = keyed_uniform(*args)
    cuda = keyed_uniform(*(a.cuda() for a in args))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)
    assert keyed_uniform(KEY, 3, 4, device="cuda").item() == uniform_reference(KEY, 3, 4)


# ---------------------------------------------------------------------------------------------
# Uniformity (DKWM, exact rate)

DISCREPANCY = 0.01  # the Kolmogorov distance the DKWM test must detect, miss rate ALPHA
N_DKWM = dkwm_sample_size(DISCREPANCY, ALPHA)


def uniform_cdf(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0)


def block(n: int, *, key: int = KEY, rounds: int = 10) -> torch.Tensor:
    """At least ``n`` uniforms as a [ROWS, V] block: positions 0.. by vocabulary 0.."""
    columns = math.ceil(n / ROWS)
    position, index = torch.arange(ROWS)[:, None], torch.arange(columns)
    return _keyed_uniform(key, position, index, device=None, validate=True, rounds=rounds)


def test_dkwm_sample_size_has_power() -> None:
    assert dkwm_epsilon(N_DKWM, ALPHA) <= DISCREPANCY / 2


def test_uniformity() -> None:
    verdict = dkwm_test(block(N_DKWM), uniform_cdf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_near_the_effect_distorted_cdf_is_rejected() -> None:
    # u**a has cdf x**(1/a), at Kolmogorov distance a**(1/(1-a)) - a**(a/(1-a)) from U(0, 1):
    # 0.0109 at a = 1.03, just above the DISCREPANCY the test is sized for.
    a = 1.03
    assert a ** (1 / (1 - a)) - a ** (a / (1 - a)) > DISCREPANCY
    verdict = dkwm_test(block(N_DKWM, key=KEY + 1) ** a, uniform_cdf, alpha=ALPHA)
    assert not verdict.passed, verdict


def test_negative_control_two_round_philox_is_rejected_by_dkwm() -> None:
    # With two rounds the index reaches the first output word through one product and an
    # XOR with constants of the row, and moves only its low bits: each row (position) of
    # the block crowds into a band narrower than 1e-4. A cdf made of ROWS = 64 near-jumps
    # of 1/64 lies at least 1/128 from the uniform one, far beyond the band 0.005.
    verdict = dkwm_test(block(N_DKWM, rounds=2), uniform_cdf, alpha=ALPHA)
    assert not verdict.passed, verdict


# ---------------------------------------------------------------------------------------------
# Independence of neighbours: chi-square on the 2-D histogram of disjoint pairs (asymptotic)

GRID = 16  # each uniform of a pair binned into 16 cells: 256 cells, 255 degrees of freedom
CELLS = np.full(GRID * GRID, 1.0 / GRID**2)
# Design: detect a fraction RHO of pairs whose second value copies the first. Such pairs
# move mass RHO / GRID**2 from each other cell of a row to its diagonal cell, which gives
# Cohen's w = RHO * sqrt(GRID - 1).
RHO = 0.01
N_PAIRS = chisquare_sample_size(RHO * math.sqrt(GRID - 1), GRID**2 - 1, ALPHA)
NEIGHBOURS = [
    ("index", 1),
    ("index", 2**32),
    ("position", 1),
    ("position", 2**32),
    ("key", 1),
    ("key", 2**32),
]


def neighbour_pairs(
    along: str, step: int, *, rounds: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """``N_PAIRS`` disjoint pairs of uniforms whose coordinate ``along`` differs by ``step``.

    Step 1 pairs even coordinates with the next odd one; step 2**32 pairs coordinate c with
    c + 2**32 (the same low word, the next high word). Disjoint pairs of distinct triples
    are i.i.d. under the claim, so their 256 cell counts are multinomial.
    """
    columns = math.ceil(N_PAIRS / ROWS)
    spread = 2 if step == 1 else 1
    rows, cols = spread * torch.arange(ROWS)[:, None], spread * torch.arange(columns)

    def draw(key: object, position: object, index: object) -> torch.Tensor:
        return _keyed_uniform(key, position, index, device=None, validate=True, rounds=rounds)

    if along == "index":
        return draw(KEY, torch.arange(ROWS)[:, None], cols), draw(
            KEY, torch.arange(ROWS)[:, None], cols + step
        )
    if along == "position":
        index = torch.arange(columns)
        return draw(KEY, rows, index), draw(KEY, rows + step, index)
    keys = (KEY - KEY % 2) + rows  # with step 1 even keys: key + 1 is in no other pair
    index = torch.arange(columns)
    return draw(keys, 5, index), draw(keys + step, 5, index)


def pair_verdict(first: torch.Tensor, second: torch.Tensor) -> Verdict:
    cell = (first * GRID).long() * GRID + (second * GRID).long()
    counts = torch.bincount(cell.reshape(-1), minlength=GRID * GRID)
    return chisquare_test(counts, CELLS, alpha=ALPHA)


def test_pair_sample_size() -> None:
    assert N_PAIRS / GRID**2 >= 5  # every cell's expected count, no pooling
    assert ROWS * math.ceil(N_PAIRS / ROWS) >= N_PAIRS


@pytest.mark.parametrize(("along", "step"), NEIGHBOURS, ids=[f"{a}+{s}" for a, s in NEIGHBOURS])
def test_neighbours_are_independent(along: str, step: int) -> None:
    verdict = pair_verdict(*neighbour_pairs(along, step))
    assert verdict.passed, verdict


def test_negative_control_near_the_effect_copied_pairs_are_rejected() -> None:
    # 1.1 RHO of the pairs copy their first value (chosen by a third, independent stream):
    # w = 1.1 RHO sqrt(15), above the effect the test is sized for.
    first, second = neighbour_pairs("index", 1)
    select = keyed_uniform(KEY + 1, torch.arange(ROWS)[:, None], torch.arange(first.shape[1]))
    verdict = pair_verdict(first, torch.where(select < 1.1 * RHO, first, second))
    assert not verdict.passed, verdict


@pytest.mark.parametrize(("rounds", "along", "step"), [(4, "position", 1), (6, "index", 2**32)])
def test_negative_control_philox_with_too_few_rounds_is_rejected(
    rounds: int, along: str, step: int
) -> None:
    # Random123's philox.h: "a cloud remains over Philox4x32 with 7 rounds. The authors
    # know of no statistical flaws with ROUNDS=8 or more"; the default 10 is a margin.
    # Weaker variants must fail here. The high index word (counter word 1) enters its
    # first product a round after the low one, so with 6 rounds the pairs (i, i + 2**32)
    # are the least mixed: the pair test rejects them (p-value about 1e-17 with these
    # keys); with 4 rounds it rejects neighbouring positions (p-value 0 in double). In our
    # runs the DKWM, bit and byte tests passed both (not asserted): only pairs catch them.
    # Philox-7 passed every test of this module (not asserted either).
    verdict = pair_verdict(*neighbour_pairs(along, step, rounds=rounds))
    assert not verdict.passed, verdict


def weyl_uniform(position: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """A plain multiplicative hash (Fibonacci hashing): the top 53 bits of
    ``(index + 2**32 position) * 0x9E3779B97F4A7C15 mod 2**64``."""
    golden = 0x9E3779B97F4A7C15 - 2**64  # the same 64 bits as an int64
    bits = ((index + (position << 32)) * golden) >> 11  # wraps mod 2**64
    return (bits & (2**53 - 1)).double() * 2.0**-53


def test_negative_control_multiplicative_hash_passes_dkwm_and_fails_pairs() -> None:
    # Consecutive multiples of the golden ratio are a low-discrepancy sequence: their
    # empirical cdf is far closer to the uniform one than random draws (the DKWM test
    # passes, deterministically). But each value fixes the next, u(i + 1) = u(i) + 0.618...
    # mod 1 (to 53 bits), so every pair lies on two lines and the pair test rejects.
    position, index = torch.arange(ROWS)[:, None], torch.arange(math.ceil(N_PAIRS / ROWS))
    assert dkwm_test(weyl_uniform(position, index), uniform_cdf, alpha=ALPHA).passed
    verdict = pair_verdict(
        weyl_uniform(position, 2 * index), weyl_uniform(position, 2 * index + 1)
    )
    assert not verdict.passed, verdict


# ---------------------------------------------------------------------------------------------
# The 53 bits: each a fair coin (jointly), and the bytes uniform (chi-square, asymptotic)

N_BITS = 2**20
# Design: a single bit with P(1) = 1/2 + EPS. Its count's z-score has mean 2 EPS sqrt(n),
# so the 53-bit statistic is noncentral chi-square with w = 2 EPS.
EPS = 0.0075
# Design: one byte position equal to 0 with extra probability Q. The six full bytes of
# each uniform are pooled (6 n i.i.d. uniform bytes under the claim): the pooled law puts
# Q / 6 extra mass on 0, so w = sqrt(255) Q / 6.
Q = 0.003


def mantissas(u: torch.Tensor) -> torch.Tensor:
    return (u * 2.0**53).long().reshape(-1)


def bits_verdict(bits: torch.Tensor) -> Verdict:
    """sum over the 53 bits of ((ones - zeros) / sqrt(n))**2: chi-square with 53 degrees of
    freedom when the bits are independent fair coins (asymptotically)."""
    n = bits.numel()
    ones = torch.stack([((bits >> b) & 1).sum() for b in range(53)]).double()
    statistic = float(((2 * ones - n) ** 2 / n).sum())
    p_value = float(scipy.stats.chi2.sf(statistic, 53))
    return Verdict("53 bit counts (p-value)", n, p_value, ALPHA, ALPHA, p_value >= ALPHA)


def bytes_verdict(bits: torch.Tensor) -> Verdict:
    pooled = torch.cat([(bits >> (8 * j)) & 255 for j in range(6)])
    return chisquare_test(
        torch.bincount(pooled, minlength=256), np.full(256, 1 / 256), alpha=ALPHA
    )


def test_bit_and_byte_sample_sizes() -> None:
    assert chisquare_sample_size(2 * EPS, 53, ALPHA) <= N_BITS
    assert chisquare_sample_size(math.sqrt(255) * Q / 6, 255, ALPHA) <= 6 * N_BITS
    assert 6 * N_BITS / 256 >= 5


def test_bits_are_fair_coins() -> None:
    verdict = bits_verdict(mantissas(block(N_BITS, key=KEY + 2)))
    assert verdict.passed, verdict


def test_bytes_are_uniform() -> None:
    verdict = bytes_verdict(mantissas(block(N_BITS, key=KEY + 3)))
    assert verdict.passed, verdict


def test_negative_control_near_the_effect_one_biased_bit_is_rejected() -> None:
    bits = mantissas(block(N_BITS, key=KEY + 2))
    force = mantissas(block(N_BITS, key=KEY + 4)) < 2 * 1.1 * EPS * 2**53  # P = 2.2 EPS
    verdict = bits_verdict(torch.where(force, bits | (1 << 26), bits))  # P(bit 26) = 1/2 + 1.1 EPS
    assert not verdict.passed, verdict


def test_negative_control_near_the_effect_one_biased_byte_is_rejected() -> None:
    bits = mantissas(block(N_BITS, key=KEY + 3))
    force = mantissas(block(N_BITS, key=KEY + 4)) < 1.1 * Q * 2**53
    verdict = bytes_verdict(torch.where(force, bits & ~(255 << 16), bits))  # byte 2 -> 0
    assert not verdict.passed, verdict


def test_negative_control_32_bit_uniform_is_rejected_by_the_bit_test() -> None:
    # A common mistake: one 32-bit word scaled into [0, 1). On the 53-bit grid its low 21
    # bits are always zero, which the bit test sees at once (DKWM and pairs cannot).
    ctr = [torch.arange(N_BITS), torch.tensor(0), torch.tensor(0), torch.tensor(0)]
    out0 = philox4x32(ctr, (KEY & MASK32, KEY >> 32))[0]
    verdict = bits_verdict(mantissas(out0.double() * 2.0**-32))
    assert not verdict.passed, verdict


# ---------------------------------------------------------------------------------------------
# Bad input: errors that name the argument


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"position": -1}, ValueError, r"position must be in \[0, 2\*\*64\)"),
        ({"index": -3}, ValueError, r"index must be in \[0, 2\*\*64\)"),
        ({"index": 2**64}, ValueError, r"index must be in \[0, 2\*\*64\)"),
        ({"position": 2**70}, ValueError, "position must be in"),
        ({"index": torch.tensor([0, -1])}, ValueError, "index must be >= 0"),
        ({"position": torch.tensor([[-2]])}, ValueError, "position must be >= 0"),
        ({"index": torch.arange(3.0)}, TypeError, "index must .* integer"),
        ({"position": 1.0}, TypeError, "position must be an int"),
        ({"index": True}, TypeError, "index must be an int"),
        ({"index": torch.tensor([True])}, TypeError, "index must .* integer"),
        ({"index": torch.zeros(3, dtype=torch.uint64)}, TypeError, "index must .* integer"),
        ({"key": -1}, ValueError, "key must be in"),
        ({"key": 2**64}, ValueError, "key must be in"),
        ({"key": 1.5}, TypeError, "key must be an int"),
        ({"key": torch.tensor([1], dtype=torch.int32)}, TypeError, "key must be .* int64"),
        ({"index": torch.arange(3), "position": torch.arange(4)}, ValueError, "broadcast"),
        ({"validate_args": 1}, TypeError, "validate_args"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, error: type, match: str) -> None:
    args = {"key": KEY, "position": 0, "index": torch.arange(3)} | kwargs
    with pytest.raises(error, match=match):
        keyed_uniform(**args)


def test_negative_tensors_without_validation_are_the_callers_responsibility() -> None:
    u = keyed_uniform(KEY, torch.tensor([-1]), torch.arange(3), validate_args=False)
    assert u.shape == (3,)  # no value was read; the result is unspecified


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: philox4x32((0, 0, 0), (0, 0)), ValueError, "counter must have 4 words"),
        (lambda: philox4x32((0, 0, 0, 0), (0,)), ValueError, "key must have 2 words"),
        (lambda: philox4x32(torch.zeros(4), (0, 0)), TypeError, "counter must be a sequence"),
        (lambda: philox4x32((0, 0, 0, 2**32), (0, 0)), ValueError, r"counter\[3\] must be in"),
        (lambda: philox4x32((0, 0, 0, 0), (-1, 0)), ValueError, r"key\[0\] must be in"),
        (lambda: philox4x32((0, 0, 0, 0.5), (0, 0)), TypeError, r"counter\[3\] must be an int"),
        (
            lambda: philox4x32((torch.tensor([2**32]), 0, 0, 0), (0, 0)),
            ValueError,
            "counter and key words must lie",
        ),
        (lambda: philox4x32((0, 0, 0, 0), (0, 0), rounds=0), ValueError, "rounds must be in"),
        (lambda: philox4x32((0, 0, 0, 0), (0, 0), rounds=17), ValueError, "rounds must be in"),
        (lambda: philox4x32((0, 0, 0, 0), (0, 0), rounds=7.0), TypeError, "rounds must be an int"),
    ],
)
def test_philox_bad_input_names_the_argument(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()
