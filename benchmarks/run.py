"""Speed benchmark: gumbel_lib against PyTorch's own functions, in one interleaved run.

    python -m benchmarks.run                      # full run, writes benchmarks/results/
    python -m benchmarks.run --smoke --out DIR    # tiny sizes, a few seconds (CI)
    python -m benchmarks.run --show FILE          # print the tables of a results file
    python -m benchmarks.run --label busy         # write speed-cpu-busy.json instead
    python -m benchmarks.run --device cuda        # on a GPU: speed-cuda.json

For every shape and every thread count (1 and 2 by default), each round times each
contender once, so slow drifts of the machine (other processes, frequency scaling) hit all
contenders alike. Within a group the order changes from round to round, along the rows
of a Williams design (``williams_order``): each contender runs on caches that the one
before it filled with its own code and data, and on small tensors that costs several
microseconds, so a fixed order would charge the same contender every time (it was ours:
3 to 5 us of a 40 us call at 64 x 10), and so would a plain rotation, which always puts a
contender after the same neighbour. With ``rounds`` a multiple of the design's length (24
by default: the groups have 3 or 4 contenders, designs of 6 and 4 rows) every contender is
first, and follows every other, equally often. Our functions run twice per round,
with the default settings (validation on) and with ``validate_args=False``. For each
contender we report the median and the interquartile range of its times over the rounds; for each
comparison, the median and quartiles of the per-round ratio (theirs / ours, or ours /
floor), a paired statistic that cancels most of the drift. Small shapes repeat each call
in a loop inside its timing so that one timing lasts about a millisecond. The relaxed
samplers get logits with ``requires_grad`` (as in training). The last thing printed is the
ratio table: every rival and shape, at each thread count, validation on and off. Memory:
see ``benchmarks/memory.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch.distributions import Categorical, RelaxedOneHotCategorical

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report
from benchmarks.memory import peak_rss_bytes, samplers, saved_bytes

SCHEMA_VERSION = 3
FULL_SHAPES = [(64, 10), (128, 30, 10), (1024, 100), (4096, 1024), (256, 50_000)]
SMOKE_SHAPES = [(8, 10), (4, 6, 8)]
MEMORY_SHAPES = [(4096, 1024), (256, 50_000)]  # fresh processes per sampler: large shapes
THREADS = [1, 2]
TAU = 0.5
K = 8
OURS = "gumbel_lib"
OURS_OFF = "gumbel_lib, validate_args=False"
VALIDATION = {"on": OURS, "off": OURS_OFF}
FLOOR = "floor"
COMPONENTS = "components"  # pieces of the cost, not contenders: no ratios
FLOOR_RATIO = "gumbel_lib / floor"


def forward_backward(
    sample: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor, w: torch.Tensor
) -> Callable[[], None]:
    """A call that samples from a fresh leaf copy of ``logits`` (as in training) and runs
    the backward pass of the linear loss ``(y * w).sum()``."""

    def run() -> None:
        x = logits.detach().requires_grad_(True)
        (sample(x) * w).sum().backward()

    return run


def contenders(logits: torch.Tensor, gen: torch.Generator) -> dict[str, dict[str, Callable]]:
    """Groups of interchangeable calls; the first two entries of each group are ours."""
    w = torch.randn_like(logits)
    leaf = logits.detach().requires_grad_(True)  # forward passes record the graph
    y = gl.gumbel_softmax(logits, TAU, generator=gen).clamp_min(1e-30)
    y = y / y.sum(-1, keepdim=True)
    u = torch.rand(logits.shape, generator=gen, device=logits.device, dtype=torch.float64)
    u.clamp_(*gl.noise.uniform_bounds())
    scratch = torch.empty_like(u)
    numpy_log = {}  # the logarithm that CPU noise uses (gumbel_lib.noise)
    if u.is_cpu:
        u_np, scratch_np = u.numpy(), scratch.numpy()
        numpy_log["log, float64 (NumPy, one pass)"] = lambda: np.log(u_np, out=scratch_np)
    off = {"validate_args": False}

    def fwd_bwd(sample: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        return forward_backward(sample, logits, w)

    relaxed = RelaxedOneHotCategorical  # its temperature is a tensor
    temperature = torch.tensor(TAU, device=logits.device)
    return {
        FLOOR: {"uniform + softmax": lambda: torch.softmax(torch.rand_like(logits), -1)},
        COMPONENTS: {
            "uniform draw, float32 (rand)": lambda: torch.rand(
                logits.shape, generator=gen, device=logits.device
            ),
            "uniform draw, float64 (rand)": lambda: torch.rand(
                logits.shape, generator=gen, device=logits.device, dtype=torch.float64
            ),
            "exponential draw (exponential_)": lambda: torch.empty_like(logits).exponential_(
                generator=gen
            ),
            "log, float64 (one pass)": lambda: torch.log(u, out=scratch),
            **numpy_log,
            "negation, float64 (one pass)": lambda: torch.neg(u, out=scratch),
            "softmax": lambda: torch.softmax(logits, -1),
            "amax": lambda: logits.amax(-1),
            "argmax": lambda: logits.argmax(-1),
            f"topk({K})": lambda: logits.topk(K, -1),
        },
        "softmax soft, forward": {
            OURS: lambda: gl.gumbel_softmax(leaf, TAU, generator=gen),
            OURS_OFF: lambda: gl.gumbel_softmax(leaf, TAU, generator=gen, **off),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(leaf, TAU),
            "RelaxedOneHotCategorical": lambda: relaxed(temperature, logits=leaf).rsample(),
        },
        "softmax hard, forward": {
            OURS: lambda: gl.gumbel_softmax(leaf, TAU, True, generator=gen),
            OURS_OFF: lambda: gl.gumbel_softmax(leaf, TAU, True, generator=gen, **off),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(leaf, TAU, True),
        },
        "softmax soft, forward + backward": {
            OURS: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, generator=gen)),
            OURS_OFF: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, generator=gen, **off)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU)),
            "RelaxedOneHotCategorical": fwd_bwd(
                lambda x: relaxed(temperature, logits=x).rsample()
            ),
        },
        "softmax hard, forward + backward": {
            OURS: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, True, generator=gen)),
            OURS_OFF: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, True, generator=gen, **off)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU, True)),
        },
        "categorical sample": {
            OURS: lambda: gl.gumbel_max(logits, generator=gen),
            OURS_OFF: lambda: gl.gumbel_max(logits, generator=gen, **off),
            "multinomial(softmax, 1)": lambda: torch.multinomial(
                torch.softmax(logits, -1).reshape(-1, logits.shape[-1]), 1
            ),
            "Categorical.sample": lambda: Categorical(logits=logits).sample(),
        },
        f"top-{K} without replacement": {
            OURS: lambda: gl.gumbel_topk(logits, K, generator=gen),
            OURS_OFF: lambda: gl.gumbel_topk(logits, K, generator=gen, **off),
            f"multinomial(softmax, {K})": lambda: torch.multinomial(
                torch.softmax(logits, -1).reshape(-1, logits.shape[-1]), K, replacement=False
            ),
        },
        "Concrete log-density": {
            OURS: lambda: gl.concrete_log_prob(y, logits, TAU),
            OURS_OFF: lambda: gl.concrete_log_prob(y, logits, TAU, **off),
            "RelaxedOneHotCategorical.log_prob": lambda: relaxed(
                temperature, logits=logits
            ).log_prob(y),
        },
    }


def memory(
    logits: torch.Tensor, gen: torch.Generator, *, rss: bool
) -> dict[str, dict[str, int | None]]:
    """Saved-for-backward bytes for every sampler; peak RSS (CPU) or peak allocated (CUDA)."""
    shape = tuple(logits.shape)
    out: dict[str, dict[str, int | None]] = {}
    for name, call in samplers(TAU, gen).items():
        entry: dict[str, int | None] = {"saved_for_backward_bytes": saved_bytes(call, logits)}
        if logits.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            leaf = logits.detach().requires_grad_(True)
            call(leaf).sum().backward()
            torch.cuda.synchronize()
            entry["cuda_peak_bytes"] = torch.cuda.max_memory_allocated() - base
        elif rss and len(shape) == 2:
            entry["peak_rss_bytes"] = peak_rss_bytes(name, (shape[0], shape[1]), TAU)
        out[name] = entry
    return out


def quartiles(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3}


def repeats(logits: torch.Tensor, smoke: bool) -> int:
    """Calls per timing: small tensors loop so that one timing lasts about a millisecond."""
    if smoke:
        return 1
    if logits.device.type == "cuda":
        return 20
    return max(1, min(200, 40_000 // max(1, logits.numel())))


def williams_order(n: int, r: int) -> list[int]:
    """Round ``r``'s order of ``n`` contenders: row ``r`` of a Williams design (cyclically).

    Its rows are the orders ``(c + s_j) mod n`` for ``c = 0, ..., n - 1``, with
    ``s = 0, 1, n - 1, 2, n - 2, ...``, and for odd ``n`` the same orders reversed. Over its
    ``n`` rows (``2n`` for odd ``n``) every contender is first equally often and *follows
    every other one equally often*: a cyclic rotation balances the first place but always
    puts a contender after the same neighbour, which then charges it for the caches it
    leaves behind (Williams, 1949, "Experimental designs balanced for the estimation of
    residual effects of treatments").

    >>> [williams_order(4, r) for r in range(4)]
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    steps = [0] + [(j + 1) // 2 if j % 2 else n - j // 2 for j in range(1, n)]
    rows = n if n % 2 == 0 else 2 * n
    row = r % rows
    order = [(row % n + step) % n for step in steps]
    return order if row < n else order[::-1]


def time_groups(
    groups: dict[str, dict[str, Callable]], rounds: int, inner: int, device: torch.device
) -> dict:
    """Per group and contender: median, quartiles and every round's time per call, in ms."""
    flat = [(g, name, call) for g, calls in groups.items() for name, call in calls.items()]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _, _, call in flat:  # warm-up: allocator, kernels, lazy initialisation
        for _ in range(min(inner, 3)):
            call()
    sync()
    samples: dict[tuple[str, str], list[float]] = {(g, n): [] for g, n, _ in flat}
    for r in range(rounds):
        for group, calls in groups.items():
            names = list(calls)
            for name in (names[i] for i in williams_order(len(names), r)):
                call = calls[name]
                start = time.perf_counter()
                for _ in range(inner):
                    call()
                sync()
                samples[(group, name)].append((time.perf_counter() - start) * 1e3 / inner)
    result: dict[str, dict] = {}
    for (group, name), times in samples.items():
        q = quartiles(times)
        result.setdefault(group, {})[name] = {
            "median_ms": q["median"],
            "q1_ms": q["q1"],
            "q3_ms": q["q3"],
            "rounds": rounds,
            "calls_per_timing": inner,
            "times_ms": [round(t, 6) for t in times],
        }
    return result


def ratios(timings: dict) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Per-round paired ratios, for validation on and off: each rival over ours, ours over
    the floor. ``ratios[group][rival]["on" | "off"]`` is a median and quartiles."""
    floor = timings[FLOOR]["uniform + softmax"]["times_ms"]
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for group, entries in timings.items():
        if group in (FLOOR, COMPONENTS):
            continue
        ours = {mode: entries[name]["times_ms"] for mode, name in VALIDATION.items()}
        out[group] = {
            name: {
                mode: quartiles([t / o for t, o in zip(e["times_ms"], mine, strict=True)])
                for mode, mine in ours.items()
            }
            for name, e in entries.items()
            if name not in (OURS, OURS_OFF)
        }
        out[group][FLOOR_RATIO] = {
            mode: quartiles([o / f for o, f in zip(mine, floor, strict=True)])
            for mode, mine in ours.items()
        }
    return out


def summary_timings(timings: dict) -> dict:
    """Medians and quartiles without the per-round times, for readers of schema 2 (which had
    one thread count and ``entry["timings"]``): the first thread count's timings."""
    return {
        group: {name: {k: v for k, v in t.items() if k != "times_ms"} for name, t in calls.items()}
        for group, calls in timings.items()
    }


def run(
    shapes: list[tuple[int, ...]],
    rounds: int,
    device: torch.device,
    threads: list[int],
    *,
    rss: bool,
    memory_shapes: list[tuple[int, ...]],
    smoke: bool = False,
) -> dict:
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "speed",
        "machine": describe_machine(device),
        "settings": {
            "tau": TAU,
            "k": K,
            "dtype": "float32",
            "rounds": rounds,
            "threads": threads,
            "validation": list(VALIDATION),
        },
        "shapes": [],
    }
    before = torch.get_num_threads()
    for shape in shapes:
        gen = torch.Generator(device=device).manual_seed(0)
        logits = torch.randn(shape, generator=gen, device=device)
        entry: dict = {"shape": list(shape), "by_threads": {}}
        for n in threads:
            torch.set_num_threads(n)
            timings = time_groups(contenders(logits, gen), rounds, repeats(logits, smoke), device)
            entry["by_threads"][str(n)] = {"timings": timings, "ratios": ratios(timings)}
            print(f"{device.type} {shape}, {n} thread(s): done", flush=True)
        torch.set_num_threads(before)
        entry["timings"] = summary_timings(entry["by_threads"][str(threads[0])]["timings"])
        if shape in memory_shapes:
            entry["memory"] = memory(logits, gen, rss=rss)
        report["shapes"].append(entry)
    report["machine"]["load_after"] = describe_machine(device)["load_before"]
    return report


def print_table(report: dict) -> None:
    """Every timing per shape and thread count, then the ratio table."""
    machine = report["machine"]
    settings = report["settings"]
    print(f"\n{machine['description']}, measured {machine['date']}")
    print(f"load average (1 min) before {machine['load_before']}, after {machine['load_after']}")
    print(f"float32 logits, tau={settings['tau']}, {settings['rounds']} rounds")
    for entry in report["shapes"]:
        for n, run_n in entry["by_threads"].items():
            print(f"\nshape {tuple(entry['shape'])}, {n} thread(s): median ms per call [q1, q3]")
            for group, calls in run_n["timings"].items():
                for name, t in calls.items():
                    print(
                        f"  {group:<32} {name:<34} {t['median_ms']:10.4f} "
                        f"[{t['q1_ms']:.4f}, {t['q3_ms']:.4f}]"
                    )
        for name, m in entry.get("memory", {}).items():
            cells = ", ".join(f"{k} {v:,}" for k, v in m.items() if v is not None)
            print(f"  memory {name:<34} {cells}")
    print_ratio_table(report)


def print_ratio_table(report: dict) -> None:
    """Rows: comparison; columns: threads x validation. Ratio = theirs / ours (> 1: we win),
    and ours / floor; median of the per-round ratios."""
    threads = report["settings"]["threads"]
    columns = [(str(n), mode) for n in threads for mode in VALIDATION]
    head = "".join(f"{n + 't ' + mode:>9}" for n, mode in columns)
    print("\nratio table: theirs / ours per round, median (> 1: gumbel_lib is faster);")
    print("ours / floor for the floor rows; columns: threads and validation (on = default)")
    for entry in report["shapes"]:
        print(f"\nshape {tuple(entry['shape'])}{'':<52}{head}")
        by_threads = entry["by_threads"]
        first = by_threads[columns[0][0]]["ratios"]
        for group, rivals in first.items():
            for rival in rivals:
                cells = "".join(
                    f"{by_threads[n]['ratios'][group][rival][mode]['median']:9.2f}"
                    for n, mode in columns
                )
                print(f"  {group:<32} {rival:<34}{cells}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: default_device())")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=None, help="torch thread counts (1 2)"
    )
    parser.add_argument(
        "--show", type=Path, default=None, help="print a results file, run nothing"
    )
    parser.add_argument("--label", default="", help="file name suffix: speed-cpu-LABEL.json")
    args = parser.parse_args(argv)
    if args.show is not None:
        print_table(json.loads(args.show.read_text()))
        return args.show
    device = torch.device(args.device) if args.device else gl.default_device()
    shapes = SMOKE_SHAPES if args.smoke else FULL_SHAPES
    rounds = args.rounds or (3 if args.smoke else 24)
    if rounds < 3:
        parser.error("--rounds must be at least 3 (quartiles need them)")
    threads = args.threads or ([1] if args.smoke else THREADS)
    memory_shapes = SMOKE_SHAPES[:1] if args.smoke else MEMORY_SHAPES
    path = results_path(args.out, "speed", device, smoke=args.smoke, label=args.label)
    report = run(shapes, rounds, device, threads, rss=not args.smoke, memory_shapes=memory_shapes)
    print_table(report)
    return write_report(path, report)


if __name__ == "__main__":
    main()
