"""A large tail at full size: who samples it at its softmax rate, counted and tested exactly.

    python -m benchmarks.vocab_tail                      # 200,000 rows per run (tens of minutes)
    python -m benchmarks.vocab_tail --smoke --out DIR    # a few hundred rows (seconds)

Each row has one token of logit 0 (index 0) and 16,384 tokens of logit -18, a spread at
which float32 noise draws the tail far too rarely. Softmax gives the tail the
probability ``q = 16384 e^-18 / (1 + 16384 e^-18)``, so 200,000 rows should draw it about
50 times. We count the rows whose token lies in the tail, for logits in float32, float16
and bfloat16, and for each count give the exact two-sided binomial p-value of
``Binomial(rows, q)`` (``scipy.stats.binomtest``). The samplers:

* ``float32 noise``: the Gumbel-max sampler libraries ship, written out in
  :func:`float32_gumbel_max` (``torch.rand`` in float32, ``-log(-log u)`` in float32, the
  argmax of float32 sums);
* ``gumbel_max``: :func:`gumbel_lib.gumbel_max` with its default settings;
* ``multinomial``: ``torch.multinomial(torch.softmax(logits.float(), -1), 1)``, and, for
  the half-precision dtypes, the same with the softmax computed in the logits' own dtype;
* ``exponential race``: ``argmax(p / E)`` with ``p`` the float32 softmax and ``E`` from
  ``exponential_()`` in float32, as inference engines sample (float32 logits only).

Rows are drawn in chunks, so memory stays near ``chunk x vocabulary`` float64 numbers.
Each run has its own ``torch.Generator`` seed. Results go to
``benchmarks/results/vocab-tail-cpu.json``, read by the chapter *Gumbel-max at vocabulary
scale*.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import scipy.stats
import torch

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report

SCHEMA_VERSION = 1
ROWS, TAIL, SPREAD, CHUNK = 200_000, 16_384, 18.0, 512
SMOKE_ROWS, SMOKE_TAIL, SMOKE_SPREAD, SMOKE_CHUNK = 400, 1024, 6.0, 128
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SEED = 2100
Sampler = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def float32_gumbel_max(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gumbel-max with float32 noise: ``argmax(logits + g)`` in float32, ``g = -log(-log u)``,
    ``u = torch.rand(..., dtype=float32)`` raised to float32's ``tiny`` when it is 0."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    g = -torch.log(-torch.log(u.clamp_(min=torch.finfo(torch.float32).tiny)))
    return (logits.float() + g).argmax(-1)


def ours(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return gl.gumbel_max(logits, generator=generator)


def multinomial_float32(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits.float(), -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def multinomial_own_dtype(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def exponential_race(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    probs = torch.softmax(logits.float(), -1)
    e = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / e).argmax(-1)


CONTENDERS: dict[str, tuple[Sampler, tuple[str, ...]]] = {
    "float32 noise": (float32_gumbel_max, tuple(DTYPES)),
    "gumbel_max": (ours, tuple(DTYPES)),
    "multinomial, float32 softmax": (multinomial_float32, tuple(DTYPES)),
    "multinomial, softmax in the logits' dtype": (multinomial_own_dtype, ("float16", "bfloat16")),
    "exponential race (float32)": (exponential_race, ("float32",)),
}


def tail_probability(tail: int, spread: float) -> float:
    """Softmax mass of ``tail`` tokens at ``-spread`` against one token at 0."""
    weight = tail * math.exp(-spread)
    return weight / (1.0 + weight)


def count_tail(
    sampler: Sampler, logits_row: torch.Tensor, rows: int, chunk: int, seed: int
) -> tuple[int, int]:
    """Rows (of ``rows``, drawn ``chunk`` at a time) whose token is not index 0, and the
    largest index drawn (a sanity check: it must lie in the vocabulary)."""
    gen = torch.Generator().manual_seed(seed)
    tail_wins, largest = 0, 0
    for start in range(0, rows, chunk):
        tokens = sampler(logits_row.expand(min(chunk, rows - start), -1), gen)
        tail_wins += int((tokens != 0).sum())
        largest = max(largest, int(tokens.max()))
    return tail_wins, largest


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few hundred rows")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    args = parser.parse_args(argv)
    rows, tail, spread, chunk = (
        (SMOKE_ROWS, SMOKE_TAIL, SMOKE_SPREAD, SMOKE_CHUNK)
        if args.smoke
        else (ROWS, TAIL, SPREAD, CHUNK)
    )
    q = tail_probability(tail, spread)
    device = torch.device("cpu")
    report: dict = {
        "schema_version": SCHEMA_VERSION,
        "kind": "vocab-tail",
        "machine": describe_machine(device),
        "settings": {
            "rows": rows,
            "tail_tokens": tail,
            "spread": spread,
            "head_logit": 0.0,
            "chunk_rows": chunk,
            "seed": SEED,
        },
        "tail_probability": q,
        "expected_tail_wins": rows * q,
        "results": {},
    }
    print(
        f"{rows:,} rows, 1 token at 0 and {tail:,} at -{spread:g}: expected tail wins "
        f"{rows * q:.1f}"
    )
    for d, (dtype_name, dtype) in enumerate(DTYPES.items()):
        logits_row = torch.full((tail + 1,), -spread, dtype=dtype)
        logits_row[0] = 0.0
        report["results"][dtype_name] = {}
        for c, (name, (sampler, dtypes)) in enumerate(CONTENDERS.items()):
            if dtype_name not in dtypes:
                continue
            seed = SEED + 10 * d + c
            start = time.perf_counter()
            wins, largest = count_tail(sampler, logits_row, rows, chunk, seed)
            seconds = time.perf_counter() - start
            p_value = float(scipy.stats.binomtest(wins, rows, q).pvalue)
            report["results"][dtype_name][name] = {
                "tail_wins": wins,
                "largest_index": largest,
                "p_value": p_value,
                "seed": seed,
                "seconds": seconds,
            }
            print(
                f"{dtype_name:>9} {name:<42} tail wins {wins:>6} (p = {p_value:.2g}) "
                f"{seconds:.0f} s",
                flush=True,
            )
    return write_report(results_path(args.out, "vocab-tail", device, smoke=args.smoke), report)


if __name__ == "__main__":
    main()
