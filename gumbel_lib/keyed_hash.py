"""Philox as a keyed hash: positions from token contexts, and keys derived for a purpose.

Keyed noise (:mod:`gumbel_lib.keyed`) is a pure function of ``(key, position, index)``.
Two uses in :doc:`Shared noise </book/shared-noise>` need more than one counter per step:

* a watermark keys the noise of a step by the ``h`` tokens before it, so the *position* is
  a hash of those tokens: :func:`hash_tokens` folds them through Philox4x32-10, each round
  keyed by the output of the previous one;
* a step that needs fresh noise at a position whose own noise was already spent (the
  speculative step resamples after the draft used ``(key, position)``) draws from a key
  *derived* from the caller's key and a stream number: :func:`derive_key`.

Both are Philox4x32-10 (:func:`gumbel_lib.keyed.philox4x32`) on int64 tensors, so they run
on any device and under ``torch.compile(fullgraph=True)``; their outputs are 63-bit
non-negative int64 values, valid positions and keys. Distinct inputs give independent-looking
outputs; two inputs collide with probability about ``2**-63`` per pair.
"""

from __future__ import annotations

import numbers

import torch

from gumbel_lib._validation import require, should_validate
from gumbel_lib.keyed import philox4x32

__all__ = ["derive_key", "hash_tokens"]

MASK32 = 0xFFFFFFFF
MASK31 = 0x7FFFFFFF
HASH_SEED = (0x243F6A88, 0x85A308D3)  # the first 64 bits of the fraction of pi
DERIVE_TAG = 0x6B657973  # "keys": the third counter word of a derived key


def _join63(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``(high mod 2**31) * 2**32 + low``: a non-negative int64 from two 32-bit words."""
    return ((high & MASK31) << 32) | low


def hash_tokens(tokens: torch.Tensor, *, validate_args: bool | None = None) -> torch.Tensor:
    """A 63-bit hash of the last axis of ``tokens``: one position per context of ``h`` tokens.

    With ``(s0, s1)`` set to a fixed seed, each token ``t_j`` (``j = 0, ..., h - 1``) updates
    ``(s0, s1) = philox4x32((t_j mod 2**32, t_j // 2**32, j, h), (s0, s1))[:2]``; the hash
    is ``(s1 mod 2**31) * 2**32 + s0``. Contexts of different lengths or orders differ.
    ``tokens`` is an integer tensor of shape ``(..., h)`` with ``h >= 1``; the result is an
    int64 tensor of shape ``(...)``. Under validation the tokens must be non-negative.
    Chapter: :doc:`Shared noise </book/shared-noise>`.

    >>> h = hash_tokens(torch.tensor([[3, 1, 4], [3, 1, 5]]))
    >>> h.dtype, bool(h[0] != h[1]), bool((h >= 0).all())
    (torch.int64, True, True)
    """
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TypeError(f"tokens must have an integer dtype, got {tokens.dtype}")
    if tokens.dim() == 0 or tokens.shape[-1] == 0:
        raise ValueError("tokens must have a last axis of at least one token (the context)")
    if should_validate(validate_args) and tokens.numel():
        require(tokens >= 0, "tokens must be >= 0")
    words = tokens.to(torch.int64)
    width = words.shape[-1]
    s0: int | torch.Tensor = HASH_SEED[0]
    s1: int | torch.Tensor = HASH_SEED[1]
    for j in range(width):
        t = words[..., j]
        out = philox4x32((t & MASK32, (t >> 32) & MASK32, j, width), (s0, s1), validate_args=False)
        s0, s1 = out[0], out[1]
    assert isinstance(s0, torch.Tensor) and isinstance(s1, torch.Tensor)
    return _join63(s0, s1)


def derive_key(key: int | torch.Tensor, stream: int) -> torch.Tensor:
    """A key for the purpose numbered ``stream``, derived from ``key``: an int64 tensor.

    ``philox4x32((stream mod 2**32, stream // 2**32, 0x6B657973, 0), (k mod 2**32,
    k // 2**32))`` joined to 63 bits as in :func:`hash_tokens`. ``key`` is a Python int in
    ``[0, 2**64)`` or an int64 tensor (its 64 bits, one key per entry); the result has the
    shape of ``key``. Noise drawn with a derived key never coincides with noise drawn with
    ``key`` itself except by a 63-bit collision. Chapter:
    :doc:`Shared noise </book/shared-noise>`.

    >>> a, b = derive_key(7, 1), derive_key(7, 2)
    >>> a.dtype, bool(a != b), bool(a != 7)
    (torch.int64, True, True)
    """
    if isinstance(stream, bool) or not isinstance(stream, numbers.Integral):
        raise TypeError(f"stream must be an int, got {type(stream).__name__}")
    if not 0 <= int(stream) < 2**64:
        raise ValueError(f"stream must be in [0, 2**64), got {int(stream)}")
    stream = int(stream)
    k0: int | torch.Tensor
    k1: int | torch.Tensor
    if isinstance(key, torch.Tensor):
        if key.dtype != torch.int64:
            raise TypeError(f"key must be an int or an int64 tensor, got {key.dtype}")
        k0, k1 = key & MASK32, (key >> 32) & MASK32
    else:
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"key must be an int or an int64 tensor, got {type(key).__name__}")
        if not 0 <= int(key) < 2**64:
            raise ValueError(f"key must be in [0, 2**64), got {int(key)}")
        k0, k1 = int(key) & MASK32, int(key) >> 32
    counter = (stream & MASK32, stream >> 32, DERIVE_TAG, 0)
    out = philox4x32(counter, (k0, k1), validate_args=False)
    return _join63(out[0], out[1])
