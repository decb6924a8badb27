"""Keyed (counter-based) uniforms: noise that is a pure function of (key, position, index).

A counter-based generator maps a *counter* and a *key* to random bits through a fixed
bijection, with no state carried from one draw to the next (Salmon, Moraes, Dror and Shaw,
"Parallel random numbers: as easy as 1, 2, 3", SC 2011). We use their Philox4x32-10, the
generator behind PyTorch's CUDA RNG (:func:`philox4x32`), in int64 tensor ops, so that it
runs on any device, under ``torch.compile(fullgraph=True)`` and under ``torch.func.vmap``:
a 32 x 32-bit product fits the bits of an int64 (it may wrap negative), and its high word
is an arithmetic shift by 32 and a mask.

**Layout.** :func:`keyed_uniform` reads the uniform at ``(key, position, index)``, each in
``[0, 2**64)``, from Philox4x32-10 with

* counter ``(index mod 2**32, index // 2**32, position mod 2**32, position // 2**32)``,
* key words ``(key mod 2**32, key // 2**32)``,
* ``u = (out0 * 2**21 + out1 // 2**11) * 2**-53``: the 32 bits of the first output word
  and the top 21 of the second (the last two words are unused), a multiple of ``2**-53`` in
  ``[0, 1)``, the grid of ``torch.rand(dtype=torch.float64)``.

The value depends on nothing else: a ``[B, V]`` block, a single entry and the vocabulary
split into slices (or over devices) give the same bits, so a token sampled with this noise
does not depend on the batch it was computed in. The price: *the triple is the
randomness*. Two samples meant to be independent must never share a ``(key, position)``
pair: take a fresh key per request (or per sequence), one position per step of that
sequence, and the category as the index; never reuse a key for two sequences whose noise
must differ. Distinct triples are distinct Philox inputs (for each key, Philox is a
bijection of the counter), so their uniforms behave as independent draws.

Chapter: :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from gumbel_lib._validation import require, should_validate, tracing

__all__ = ["keyed_uniform", "philox4x32"]

MASK32 = 0xFFFFFFFF
# Random123, include/Random123/philox.h: PHILOX_M4x32_0/1 and PHILOX_W32_0/1
PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
PHILOX_WEYL = (0x9E3779B9, 0xBB67AE85)  # the golden ratio and sqrt(3) - 1, times 2**32
PHILOX_ROUNDS = 10
MAX_ROUNDS = 16  # Random123's philox4x32_R accepts at most 16 rounds
CPU_SLICE = 2**16  # entries per slice of a large block on the CPU (see _keyed_uniform)

_SIGNED = {torch.int8, torch.int16, torch.int32, torch.int64}
_INTEGER_DTYPES = _SIGNED | {torch.uint8, torch.uint16, torch.uint32}  # held by an int64

Word = torch.Tensor | int


def _high_xor(
    product: torch.Tensor, word: torch.Tensor, key: Word, shape: torch.Size, in_place: bool
) -> torch.Tensor:
    """``(hi(product) ^ word ^ key) mod 2**32``: one new word of a Philox round (internal).

    The arithmetic shift leaves copies of the sign bit above the high word, and ``word`` may
    carry the upper half of an unmasked product: the final mask clears both.
    """
    high = product >> 32
    if in_place and high.shape == shape:
        return high.bitwise_xor_(word).bitwise_xor_(key).bitwise_and_(MASK32)
    return (high ^ word ^ key) & MASK32


def _philox_words(
    counter: Sequence[torch.Tensor],
    key: Sequence[Word],
    rounds: int,
    *,
    mask_low: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32 with ``rounds`` rounds on int64 words in ``[0, 2**32)`` (internal, no checks).

    The outputs are fresh tensors of the broadcast shape of all six words. Between rounds
    the low words ``lo(M c)`` stay unmasked (they only enter an XOR that is masked next
    round); ``mask_low=False`` returns them so, with garbage above bit 31 of words 1 and 3.
    In eager mode the rounds after the first reuse their own buffers (in place).
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    shape = torch.broadcast_shapes(
        *(w.shape for w in (c0, c1, c2, c3, k0, k1) if isinstance(w, torch.Tensor))
    )
    eager = not tracing()
    m0, m1 = PHILOX_MULTIPLIERS
    w0, w1 = PHILOX_WEYL
    for r in range(rounds):
        # round r uses the key bumped r times: (k + r W) mod 2**32
        r0 = (k0 + r * w0) & MASK32 if r else k0
        r1 = (k1 + r * w1) & MASK32 if r else k1
        # from the second round on, c0 and c2 are buffers of the previous round: reuse them
        own = eager and r > 0
        p0 = c0.mul_(m0) if own and c0.shape == shape else c0 * m0  # wraps mod 2**64
        p1 = c2.mul_(m1) if own and c2.shape == shape else c2 * m1
        c0, c1, c2, c3 = (
            _high_xor(p1, c1, r0, shape, own),
            p1,
            _high_xor(p0, c3, r1, shape, own),
            p0,
        )
    if mask_low:
        c1, c3 = c1 & MASK32, c3 & MASK32
    # fewer than four rounds do not mix every word into every output
    full = [w if w.shape == shape else w.expand(shape).clone() for w in (c0, c1, c2, c3)]
    return full[0], full[1], full[2], full[3]


def _as_int64(value: object, name: str, device: torch.device | None, below: int) -> torch.Tensor:
    """An int in ``[0, below)`` or an integer tensor, as int64 (structural checks only; a
    Python int of ``2**63`` or more is held as its two's-complement bits)."""
    if isinstance(value, torch.Tensor):
        if value.dtype not in _INTEGER_DTYPES:
            raise TypeError(f"{name} must be an int or an integer tensor, got {value.dtype}")
        return value.to(dtype=torch.int64, device=device)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or an integer tensor, got {type(value).__name__}")
    if not 0 <= int(value) < below:
        raise ValueError(f"{name} must be in [0, 2**{below.bit_length() - 1}), got {int(value)}")
    bits = int(value) - 2**64 if int(value) >= 2**63 else int(value)
    return torch.tensor(bits, dtype=torch.int64, device=device)


def _common_device(values: Sequence[object], names: str) -> torch.device | None:
    """The one device of the tensors among ``values`` (``None`` when there is none)."""
    devices = {v.device for v in values if isinstance(v, torch.Tensor)}
    if len(devices) > 1:
        found = ", ".join(sorted(str(d) for d in devices))
        raise ValueError(f"{names} must be on one device, got {found}")
    return devices.pop() if devices else None


def philox4x32(
    counter: Sequence[Word],
    key: Sequence[Word],
    *,
    rounds: int = PHILOX_ROUNDS,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Philox4x32 bijection of Salmon et al. (SC 2011), ten rounds by default.

    ``counter`` is four words and ``key`` two, each a Python int or an integer tensor
    holding values in ``[0, 2**32)``, broadcastable together; the result is four int64
    tensors of the broadcast shape, holding the four 32-bit output words. One round is

    ``(c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0))``

    with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` and ``(k0, k1)`` increased by
    ``(0x9E3779B9, 0xBB67AE85)`` mod ``2**32`` before each round after the first, as
    Random123's ``philox4x32_R``; ``rounds`` (1 to 16) exists for its known-answer
    vectors of 7 rounds and for weakened variants in tests. Python-int words are checked
    always; tensor words lie in ``[0, 2**32)`` (checked under validation). Chapter:
    :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.

    >>> [f"{int(w):08x}" for w in philox4x32((0, 0, 0, 0), (0, 0))]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    validate = should_validate(validate_args)
    if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral):
        raise TypeError(f"rounds must be an int, got {type(rounds).__name__}")
    if not 1 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds must be in [1, {MAX_ROUNDS}], got {rounds}")
    for name, words, size in (("counter", counter, 4), ("key", key, 2)):
        if isinstance(words, (torch.Tensor, str, bytes)) or not isinstance(words, Sequence):
            raise TypeError(f"{name} must be a sequence of {size} words (ints or tensors)")
        if len(words) != size:
            raise ValueError(f"{name} must have {size} words, got {len(words)}")
    device = _common_device([*counter, *key], "counter and key")
    c = [_as_int64(w, f"counter[{i}]", device, 2**32) for i, w in enumerate(counter)]
    k = [_as_int64(w, f"key[{i}]", device, 2**32) for i, w in enumerate(key)]
    try:
        torch.broadcast_shapes(*(w.shape for w in (*c, *k)))
    except RuntimeError as err:
        raise ValueError(f"counter and key words do not broadcast together: {err}") from err
    if validate:
        given = (*counter, *key)
        words = [w for w, v in zip((*c, *k), given, strict=True) if isinstance(v, torch.Tensor)]
        if words:
            ok = torch.stack([((w >= 0) & (w <= MASK32)).all() for w in words]).all()
            require(ok, "counter and key words must lie in [0, 2**32)")
    return _philox_words(c, k, rounds)


def _check_key(key: object, device: torch.device | None) -> tuple[Word, Word]:
    """The two 32-bit halves of a 64-bit key: a Python int, or an int64 tensor's bits."""
    if isinstance(key, torch.Tensor):
        if key.dtype != torch.int64:
            raise TypeError(f"key must be an int or an int64 tensor, got {key.dtype}")
        key = key.to(device=device)
        return key & MASK32, (key >> 32) & MASK32  # the two's-complement bits
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise TypeError(f"key must be an int or an int64 tensor, got {type(key).__name__}")
    if not 0 <= int(key) < 2**64:
        raise ValueError(f"key must be in [0, 2**64), got {int(key)}")
    return int(key) & MASK32, int(key) >> 32


def _keyed_uniform(
    key: object,
    position: object,
    index: object,
    *,
    device: torch.device | str | None,
    validate: bool,
    rounds: int,
) -> torch.Tensor:
    """:func:`keyed_uniform` with a chosen number of Philox rounds (internal)."""
    if device is None:
        device = _common_device([key, position, index], "key, position and index")
    else:
        device = torch.device(device)
    k0, k1 = _check_key(key, device)
    pos = _as_int64(position, "position", device, 2**64)
    idx = _as_int64(index, "index", device, 2**64)
    shapes = [pos.shape, idx.shape] + ([k0.shape] if isinstance(k0, torch.Tensor) else [])
    try:
        shape = torch.broadcast_shapes(*shapes)
    except RuntimeError as err:
        raise ValueError(f"key, position and index do not broadcast together: {err}") from err
    if validate:
        given = (("position", position, pos), ("index", index, idx))
        checked = [(name, t) for name, v, t in given if isinstance(v, torch.Tensor)]
        if checked:

            def explain() -> None:
                for name, t in checked:
                    if not bool((t >= 0).all()):
                        raise ValueError(f"{name} must be >= 0 (got a negative entry)")

            ok = torch.stack([(t >= 0).all() for _, t in checked]).all()
            require(ok, "position and index must be >= 0", explain)
    if pos.device.type != "cpu" or shape.numel() <= CPU_SLICE or tracing():
        return _uniform53(k0, k1, pos, idx, rounds)
    # On the CPU, a large block runs in slices, so that the words of a round stay in cache
    # (1.7 times faster at 2**21 entries, one thread); every entry is computed alone: same bits.
    words = [w.expand(shape).reshape(-1) if isinstance(w, torch.Tensor) else w for w in (k0, k1)]
    pos, idx = pos.expand(shape).reshape(-1), idx.expand(shape).reshape(-1)
    out = torch.empty(shape.numel(), dtype=torch.float64)
    for start in range(0, out.numel(), CPU_SLICE):
        part = slice(start, start + CPU_SLICE)
        key_part = [w[part] if isinstance(w, torch.Tensor) else w for w in words]
        out[part] = _uniform53(key_part[0], key_part[1], pos[part], idx[part], rounds)
    return out.view(shape)


def _uniform53(
    k0: Word, k1: Word, position: torch.Tensor, index: torch.Tensor, rounds: int
) -> torch.Tensor:
    """The uniform of the layout from the key words and int64 counters (internal, no checks)."""
    counter = (
        index & MASK32,
        (index >> 32) & MASK32,
        position & MASK32,
        (position >> 32) & MASK32,
    )
    out0, out1, _, _ = _philox_words(counter, (k0, k1), rounds, mask_low=False)
    # 53 bits: all 32 of out0, then bits 31..11 of out1 (out1 may carry bits above 31)
    low = (out1 >> 11) & (2**21 - 1)
    if tracing():
        bits = (out0 << 21) | low
        return bits.to(torch.float64) * 2.0**-53
    bits = out0.bitwise_left_shift_(21).bitwise_or_(low)
    return bits.to(torch.float64).mul_(2.0**-53)


def keyed_uniform(
    key: int | torch.Tensor,
    position: int | torch.Tensor,
    index: int | torch.Tensor,
    *,
    device: torch.device | str | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Uniforms on the grid ``{0, 2**-53, ..., 1 - 2**-53}`` that are a pure function of
    ``(key, position, index)``, made by Philox4x32-10 (:func:`philox4x32`).

    ``u = (out0 * 2**21 + out1 // 2**11) * 2**-53`` with ``(out0, out1, _, _) =
    philox4x32((i mod 2**32, i // 2**32, p mod 2**32, p // 2**32), (k mod 2**32,
    k // 2**32))``, the same grid as ``torch.rand(dtype=torch.float64)``, so the library's
    uniform-to-Gumbel map treats both sources alike. ``position`` and ``index`` are Python
    ints in ``[0, 2**64)`` or integer tensors (non-negative, checked under validation);
    ``key`` is a Python int in ``[0, 2**64)`` or an int64 tensor, read as its 64 bits, so
    each row of a batch may carry its own key. The result is a float64 tensor of the
    broadcast shape of the three, on ``device`` (default: the device of the tensor
    arguments). It does not depend on that shape: any block, slice or single entry holding
    ``(key, position, index)`` gets the same value. Never use one ``(key, position)`` pair
    for two samples meant to be independent (the module docstring gives the layout).
    Chapter: :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.

    >>> u = keyed_uniform(7, torch.arange(2)[:, None], torch.arange(5))
    >>> u.shape, u.dtype
    (torch.Size([2, 5]), torch.float64)
    >>> torch.equal(u[1, 3:], keyed_uniform(7, 1, torch.arange(3, 5)))
    True
    """
    return _keyed_uniform(
        key,
        position,
        index,
        device=device,
        validate=should_validate(validate_args),
        rounds=PHILOX_ROUNDS,
    )
