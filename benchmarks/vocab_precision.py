"""The exact error of the float32 Gumbel-max sampler on a head-and-tail vocabulary.

    python -m benchmarks.vocab_precision                    # the 24-bit grid (minutes)
    python -m benchmarks.vocab_precision --smoke --out DIR  # a 12-bit grid (seconds)

The sampler is the float32 Gumbel-max sampler that libraries ship: uniforms ``u = k
2**-24`` (the grid of ``torch.rand`` in float32), noise ``-log(-log u)`` in float32 with
``u = 0`` raised to float32's ``tiny`` (:func:`gumbel_lib.finite_precision.grid_noise`),
sums ``logit + noise`` rounded to float32, and the first index among ties. The vocabulary
has one token of logit 0 (index 0) and ``V - 1`` tokens of logit ``-spread``. Nothing here
is sampled: for every spread we compute the rounded sums of the tail once, and from them
the exact probability that the argmax falls in the tail, for every ``V`` (the formula of
:func:`gumbel_lib.finite_precision.grid_group_law`, for two groups). Against the softmax
mass of the tail it gives ``|P_grid(tail) - P(tail)|``, a lower bound on the
total-variation distance between the sampler's law and ``softmax(logits)``. Each spread is
also checked: the head's and the tail's probabilities sum to 1, and at one point the result
equals ``grid_group_law`` itself. The chapter *Gumbel-max at vocabulary scale* reads the
results file (``benchmarks/results/vocab-precision-cpu.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe_machine, results_path, write_report
from gumbel_lib.finite_precision import (
    exact_group_law,
    grid_group_law,
    grid_noise,
    total_variation_bound,
)

SCHEMA_VERSION = 1
BITS = 24
VOCABS = (1024, 16384, 32768, 131072, 262144)
EXTRA_VOCABS = (16385,)  # 1 + 16,384 tail tokens: the configuration of benchmarks.vocab_tail
SPREADS = tuple(8.0 + 0.5 * i for i in range(37))  # 8 to 26 nats
SMOKE_BITS = 12
SMOKE_VOCABS = (4, 64, 1024)
SMOKE_SPREADS = (2.0, 4.0, 6.0, 8.0, 10.0)
CHECK_POINT = (16384, 16.0)  # (V, spread) where the full run also calls grid_group_law


def log_power_difference(log_high: np.ndarray, log_low: np.ndarray, c: int) -> np.ndarray:
    """``log(F^c - G^c)`` from ``log F >= log G``, accurate however small the difference:
    ``c log G + log(expm1(c (log F - log G)))``, and ``c log F`` where ``G = 0``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        jump = c * (log_high - log_low)
        step = np.where(jump > 30.0, jump, np.log(np.expm1(jump)))
        out: np.ndarray = np.where(np.isneginf(log_low), c * log_high, c * log_low + step)
    return out


def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a non-decreasing array: its distinct values, and for each, how many entries lie
    below it and how many lie at or below it."""
    last = np.ones(values.size, dtype=bool)
    last[:-1] = values[1:] != values[:-1]
    first = np.ones(values.size, dtype=bool)
    first[1:] = values[1:] != values[:-1]
    return values[last], np.flatnonzero(first), np.flatnonzero(last) + 1


def head_and_tail_law(
    noise: np.ndarray, spread: float, tails: list[int]
) -> tuple[list[float], list[float]]:
    """Exact ``P(tail wins)`` and ``P(head wins)`` of the grid sampler for each tail size.

    ``noise`` is :func:`grid_noise` (non-decreasing). The head (index 0, logit 0) has sums
    ``H = fl(0 + g) = g``; each tail token sums to ``T = fl(g - spread)`` in float32. With
    ``n = 2**bits`` grid points and ``c`` tail tokens (after the head, so a tie goes to the
    head):

        P(tail) = sum_{x in T} [F_T(x)^c - F_T^-(x)^c] F_H^-(x),
        P(head) = sum_{x in H} [F_H(x) - F_H^-(x)] F_T(x)^c.
    """
    n = float(noise.size)
    head = noise
    tail = (
        (torch.from_numpy(noise).to(torch.float32) + torch.tensor(-spread, dtype=torch.float32))
        .double()
        .numpy()
    )
    with np.errstate(divide="ignore"):
        t_points, t_below, t_upto = runs(tail)
        log_t_upto, log_t_below = np.log(t_upto / n), np.log(t_below / n)
        log_h_below_t = np.log(np.searchsorted(head, t_points, side="left") / n)
        h_points, h_below, h_upto = runs(head)
        log_h_mass = np.log((h_upto - h_below) / n)
        log_t_upto_h = np.log(np.searchsorted(tail, h_points, side="right") / n)
    tail_law, head_law = [], []
    for c in tails:
        terms = log_power_difference(log_t_upto, log_t_below, c) + log_h_below_t
        tail_law.append(float(np.sum(np.exp(terms))))
        head_law.append(float(np.sum(np.exp(log_h_mass + c * log_t_upto_h))))
    return tail_law, head_law


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 12-bit grid, a few sizes")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    args = parser.parse_args(argv)
    bits = SMOKE_BITS if args.smoke else BITS
    vocabs = SMOKE_VOCABS if args.smoke else VOCABS
    extra = () if args.smoke else EXTRA_VOCABS
    spreads = SMOKE_SPREADS if args.smoke else SPREADS
    device = torch.device("cpu")
    report: dict = {
        "schema_version": SCHEMA_VERSION,
        "kind": "vocab-precision",
        "machine": describe_machine(device),
        "settings": {
            "bits": bits,
            "dtype": "float32",
            "vocabs": list(vocabs),
            "extra_vocabs": list(extra),
            "spreads": list(spreads),
            "head_logit": 0.0,
        },
    }
    start = time.perf_counter()
    noise = grid_noise(bits, torch.float32)
    report["noise"] = {"g_min": float(noise[0]), "g_max": float(noise[-1])}
    sizes = list(vocabs) + list(extra)
    rows, worst_sum = [], 0.0
    for spread in spreads:
        tail, head = head_and_tail_law(noise, spread, [v - 1 for v in sizes])
        for v, q_grid, h_grid in zip(sizes, tail, head, strict=True):
            q = float(exact_group_law([0.0, -spread], [1, v - 1])[1])
            worst_sum = max(worst_sum, abs(q_grid + h_grid - 1.0))
            rows.append(
                {
                    "spread": spread,
                    "vocab": v,
                    "tail_exact": q,
                    "tail_grid": q_grid,
                    "tv_lower_bound": abs(q_grid - q),
                    "ratio": q_grid / q,
                    "bound_53bit": total_variation_bound(v),
                }
            )
        shown = [r for r in rows[-len(sizes) :] if r["vocab"] in vocabs]
        cells = "  ".join(f"{r['tv_lower_bound']:.2e}" for r in shown)
        print(f"spread {spread:5.1f}: TV >= {cells}", flush=True)
    report["rows"] = rows
    report["max_abs_head_plus_tail_minus_one"] = worst_sum
    # one point through the library's own (slower, general) implementation
    v, spread = (vocabs[1], spreads[1]) if args.smoke else CHECK_POINT
    library = float(grid_group_law([0.0, -spread], [1, v - 1], bits, torch.float32)[1])
    ours = next(r for r in rows if r["vocab"] == v and r["spread"] == spread)["tail_grid"]
    report["check"] = {
        "vocab": v,
        "spread": spread,
        "grid_group_law": library,
        "this_script": ours,
        "relative_difference": abs(library - ours) / library,
    }
    report["seconds"] = time.perf_counter() - start
    print(f"sum check: max |P(head) + P(tail) - 1| = {worst_sum:.1e}")
    print(
        f"grid_group_law at V={v}, spread={spread}: relative difference "
        f"{report['check']['relative_difference']:.1e}"
    )
    return write_report(
        results_path(args.out, "vocab-precision", device, smoke=args.smoke), report
    )


if __name__ == "__main__":
    main()
