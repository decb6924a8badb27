"""Speed benchmark: gumbel_lib against PyTorch's own functions, in one interleaved run.

    python -m benchmarks.run                      # full run, writes benchmarks/results/
    python -m benchmarks.run --smoke --out DIR    # tiny sizes, a few seconds (CI)

Every round times each contender once, in a fixed order, so slow drifts of the machine
(other processes, frequency scaling) hit all contenders alike; we report the median and the
interquartile range over rounds, and ratios of medians taken in the same run. Memory is the
number of bytes autograd saves for the backward pass (counted with saved-tensor hooks, exact
and deterministic on any device), plus the peak allocated memory on CUDA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch.distributions import Categorical, RelaxedOneHotCategorical

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path

SCHEMA_VERSION = 1
FULL_SHAPES = [(64, 10), (4096, 1024), (256, 50_000)]
SMOKE_SHAPES = [(8, 10), (64, 32)]
TAU = 0.5
K = 8


def contenders(logits: torch.Tensor, gen: torch.Generator) -> dict[str, dict[str, Callable]]:
    """Groups of interchangeable calls; the first entry of each group is ours."""
    w = torch.randn_like(logits)
    y = gl.gumbel_softmax(logits, TAU, generator=gen).clamp_min(1e-30)
    y = y / y.sum(-1, keepdim=True)

    def fwd_bwd(sample: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            leaf = logits.detach().requires_grad_(True)
            (sample(leaf) * w).sum().backward()

        return run

    relaxed = RelaxedOneHotCategorical  # its temperature is a tensor
    temperature = torch.tensor(TAU, device=logits.device)
    return {
        "floor": {"uniform + softmax": lambda: torch.softmax(torch.rand_like(logits), -1)},
        "softmax soft, forward": {
            "gumbel_lib": lambda: gl.gumbel_softmax(logits, TAU, generator=gen),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(logits, TAU),
            "RelaxedOneHotCategorical": lambda: relaxed(temperature, logits=logits).rsample(),
        },
        "softmax hard, forward": {
            "gumbel_lib": lambda: gl.gumbel_softmax(logits, TAU, True, generator=gen),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(logits, TAU, True),
        },
        "softmax soft, forward + backward": {
            "gumbel_lib": fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, generator=gen)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU)),
            "RelaxedOneHotCategorical": fwd_bwd(
                lambda x: relaxed(temperature, logits=x).rsample()
            ),
        },
        "softmax hard, forward + backward": {
            "gumbel_lib": fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, True, generator=gen)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU, True)),
        },
        "categorical sample": {
            "gumbel_lib": lambda: gl.gumbel_max(logits, generator=gen),
            "multinomial(softmax, 1)": lambda: torch.multinomial(torch.softmax(logits, -1), 1),
            "Categorical.sample": lambda: Categorical(logits=logits).sample(),
        },
        f"top-{K} without replacement": {
            "gumbel_lib": lambda: gl.gumbel_topk(logits, K, generator=gen),
            f"multinomial(softmax, {K})": lambda: torch.multinomial(
                torch.softmax(logits, -1), K, replacement=False
            ),
        },
        "Concrete log-density": {
            "gumbel_lib": lambda: gl.concrete_log_prob(y, logits, TAU),
            "RelaxedOneHotCategorical.log_prob": lambda: relaxed(
                temperature, logits=logits
            ).log_prob(y),
        },
    }


def saved_bytes(sample: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of ``sample`` (distinct storages only)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    leaf = logits.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sample(leaf).sum().backward()
    return sum(seen.values())


def memory(logits: torch.Tensor, gen: torch.Generator) -> dict[str, dict[str, int]]:
    calls = {
        "gumbel_lib soft": lambda x: gl.gumbel_softmax(x, TAU, generator=gen),
        "F.gumbel_softmax soft": lambda x: F.gumbel_softmax(x, TAU),
        "gumbel_lib hard": lambda x: gl.gumbel_softmax(x, TAU, True, generator=gen),
        "F.gumbel_softmax hard": lambda x: F.gumbel_softmax(x, TAU, True),
        "RelaxedOneHotCategorical": lambda x: RelaxedOneHotCategorical(
            torch.tensor(TAU, device=x.device), logits=x
        ).rsample(),
    }
    out = {}
    for name, call in calls.items():
        entry = {"saved_for_backward_bytes": saved_bytes(call, logits)}
        if logits.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            leaf = logits.detach().requires_grad_(True)
            call(leaf).sum().backward()
            torch.cuda.synchronize()
            entry["cuda_peak_bytes"] = torch.cuda.max_memory_allocated() - base
        out[name] = entry
    return out


def time_groups(logits: torch.Tensor, gen: torch.Generator, rounds: int) -> dict:
    groups = contenders(logits, gen)
    flat = [(g, name, call) for g, calls in groups.items() for name, call in calls.items()]
    sync = torch.cuda.synchronize if logits.device.type == "cuda" else (lambda: None)
    for _, _, call in flat:  # warm-up: allocator, kernels, lazy initialisation
        call()
    sync()
    samples: dict[tuple[str, str], list[float]] = {(g, n): [] for g, n, _ in flat}
    for _ in range(rounds):
        for group, name, call in flat:
            start = time.perf_counter()
            call()
            sync()
            samples[(group, name)].append((time.perf_counter() - start) * 1e3)
    result: dict[str, dict] = {}
    for (group, name), times in samples.items():
        q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
        result.setdefault(group, {})[name] = {
            "median_ms": median,
            "q1_ms": q1,
            "q3_ms": q3,
            "rounds": rounds,
        }
    return result


def ratios(timings: dict) -> dict[str, dict[str, float]]:
    """For each group: every contender's median over ours, and ours over the floor."""
    floor = timings["floor"]["uniform + softmax"]["median_ms"]
    out = {}
    for group, entries in timings.items():
        if group == "floor":
            continue
        ours = entries["gumbel_lib"]["median_ms"]
        out[group] = {
            name: e["median_ms"] / ours for name, e in entries.items() if name != "gumbel_lib"
        }
        out[group]["gumbel_lib / floor"] = ours / floor
    return out


def run(shapes: list[tuple[int, int]], rounds: int, device: torch.device) -> dict:
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "speed",
        "machine": describe_machine(device),
    }
    report["settings"] = {"tau": TAU, "k": K, "dtype": "float32", "rounds": rounds}
    report["shapes"] = []
    for shape in shapes:
        gen = torch.Generator(device=device).manual_seed(0)
        logits = torch.randn(shape, generator=gen, device=device)
        timings = time_groups(logits, gen, rounds)
        report["shapes"].append(
            {
                "shape": list(shape),
                "timings": timings,
                "ratios": ratios(timings),
                "memory": memory(logits, gen),
            }
        )
        print(f"{device.type} {shape}: done", flush=True)
    report["machine"]["load_after"] = describe_machine(device)["load_before"]
    return report


def print_table(report: dict) -> None:
    print(f"\n{report['machine']['description']}")
    for entry in report["shapes"]:
        print(f"\nshape {tuple(entry['shape'])} (median ms [q1, q3]; ratio = theirs / ours)")
        for group, calls in entry["timings"].items():
            for name, t in calls.items():
                ratio = entry["ratios"].get(group, {}).get(name)
                extra = f"  x{ratio:.2f}" if ratio is not None else ""
                print(
                    f"  {group:<34} {name:<34} {t['median_ms']:9.3f} "
                    f"[{t['q1_ms']:.3f}, {t['q3_ms']:.3f}]{extra}"
                )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: default_device())")
    args = parser.parse_args(argv)
    device = torch.device(args.device) if args.device else gl.default_device()
    shapes = SMOKE_SHAPES if args.smoke else FULL_SHAPES
    rounds = args.rounds or (3 if args.smoke else 21)
    if rounds < 3:
        parser.error("--rounds must be at least 3 (quartiles need them)")
    report = run(shapes, rounds, device)
    print_table(report)
    path = results_path(args.out, "speed", device, smoke=args.smoke)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")
    return path


if __name__ == "__main__":
    main()
