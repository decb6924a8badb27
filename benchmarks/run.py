"""Speed benchmark: gumbel_lib against PyTorch's own functions, in one interleaved run.

    python -m benchmarks.run                      # full run, writes benchmarks/results/
    python -m benchmarks.run --smoke --out DIR    # tiny sizes, a few seconds (CI)
    python -m benchmarks.run --show FILE          # print the tables of a results file
    python -m benchmarks.run --label busy         # write speed-cpu-busy.json instead

Every round times each contender once, in a fixed order, so slow drifts of the machine
(other processes, frequency scaling) hit all contenders alike. For each contender we report
the median and the interquartile range of its times over the rounds; for each comparison,
the median and quartiles of the per-round ratio (theirs / ours, or ours / floor), a paired
statistic that cancels most of the drift. Memory: see ``benchmarks/memory.py``.
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
from benchmarks.memory import peak_rss_bytes, samplers, saved_bytes

SCHEMA_VERSION = 2
FULL_SHAPES = [(64, 10), (4096, 1024), (256, 50_000)]
SMOKE_SHAPES = [(8, 10), (64, 32)]
TAU = 0.5
K = 8
OURS = "gumbel_lib"
FLOOR = "floor"
COMPONENTS = "components"  # pieces of the cost, not contenders: no ratios


def contenders(logits: torch.Tensor, gen: torch.Generator) -> dict[str, dict[str, Callable]]:
    """Groups of interchangeable calls; the first entry of each group is ours."""
    w = torch.randn_like(logits)
    y = gl.gumbel_softmax(logits, TAU, generator=gen).clamp_min(1e-30)
    y = y / y.sum(-1, keepdim=True)
    u = torch.rand(logits.shape, generator=gen, device=logits.device)
    u.clamp_(*gl.noise.uniform_bounds(u.dtype))
    scratch = torch.empty_like(u)

    def fwd_bwd(sample: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            leaf = logits.detach().requires_grad_(True)
            (sample(leaf) * w).sum().backward()

        return run

    relaxed = RelaxedOneHotCategorical  # its temperature is a tensor
    temperature = torch.tensor(TAU, device=logits.device)
    return {
        FLOOR: {"uniform + softmax": lambda: torch.softmax(torch.rand_like(logits), -1)},
        COMPONENTS: {
            "uniform draw (rand)": lambda: torch.rand(
                logits.shape, generator=gen, device=logits.device
            ),
            "exponential draw (exponential_)": lambda: scratch.exponential_(generator=gen),
            "log (one pass)": lambda: torch.log(u, out=scratch),
            "negation (one pass)": lambda: torch.neg(u, out=scratch),
            "softmax": lambda: torch.softmax(logits, -1),
            "amax": lambda: logits.amax(-1),
            "argmax": lambda: logits.argmax(-1),
            f"topk({K})": lambda: logits.topk(K, -1),
        },
        "softmax soft, forward": {
            OURS: lambda: gl.gumbel_softmax(logits, TAU, generator=gen),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(logits, TAU),
            "RelaxedOneHotCategorical": lambda: relaxed(temperature, logits=logits).rsample(),
        },
        "softmax soft, forward, tau=1": {
            OURS: lambda: gl.gumbel_softmax(logits, 1.0, generator=gen),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(logits, 1.0),
        },
        "softmax hard, forward": {
            OURS: lambda: gl.gumbel_softmax(logits, TAU, True, generator=gen),
            "F.gumbel_softmax": lambda: F.gumbel_softmax(logits, TAU, True),
        },
        "softmax soft, forward + backward": {
            OURS: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, generator=gen)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU)),
            "RelaxedOneHotCategorical": fwd_bwd(
                lambda x: relaxed(temperature, logits=x).rsample()
            ),
        },
        "softmax hard, forward + backward": {
            OURS: fwd_bwd(lambda x: gl.gumbel_softmax(x, TAU, True, generator=gen)),
            "F.gumbel_softmax": fwd_bwd(lambda x: F.gumbel_softmax(x, TAU, True)),
        },
        "categorical sample": {
            OURS: lambda: gl.gumbel_max(logits, generator=gen),
            "multinomial(softmax, 1)": lambda: torch.multinomial(torch.softmax(logits, -1), 1),
            "Categorical.sample": lambda: Categorical(logits=logits).sample(),
        },
        f"top-{K} without replacement": {
            OURS: lambda: gl.gumbel_topk(logits, K, generator=gen),
            f"multinomial(softmax, {K})": lambda: torch.multinomial(
                torch.softmax(logits, -1), K, replacement=False
            ),
        },
        "Concrete log-density": {
            OURS: lambda: gl.concrete_log_prob(y, logits, TAU),
            "RelaxedOneHotCategorical.log_prob": lambda: relaxed(
                temperature, logits=logits
            ).log_prob(y),
        },
    }


def memory(
    logits: torch.Tensor, gen: torch.Generator, *, rss: bool | set[str]
) -> dict[str, dict[str, int | None]]:
    """Saved-for-backward bytes for every sampler; peak RSS (CPU) or peak allocated (CUDA).

    ``rss`` is True (every sampler), False (none) or the set of sampler names to measure.
    """
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
        elif rss is True or (rss and name in rss):
            entry["peak_rss_bytes"] = peak_rss_bytes(name, shape, TAU)
        out[name] = entry
    return out


def quartiles(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3}


def time_groups(logits: torch.Tensor, gen: torch.Generator, rounds: int) -> dict:
    """Per group and contender: median, quartiles and every round's time, in ms."""
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
        q = quartiles(times)
        result.setdefault(group, {})[name] = {
            "median_ms": q["median"],
            "q1_ms": q["q1"],
            "q3_ms": q["q3"],
            "rounds": rounds,
            "times_ms": [round(t, 4) for t in times],
        }
    return result


def ratios(timings: dict) -> dict[str, dict[str, dict[str, float]]]:
    """Per-round paired ratios: every contender over ours, and ours over the floor."""
    floor = timings[FLOOR]["uniform + softmax"]["times_ms"]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for group, entries in timings.items():
        if group in (FLOOR, COMPONENTS):
            continue
        ours = entries[OURS]["times_ms"]
        out[group] = {
            name: quartiles([t / o for t, o in zip(e["times_ms"], ours, strict=True)])
            for name, e in entries.items()
            if name != OURS
        }
        out[group]["gumbel_lib / floor"] = quartiles(
            [o / f for o, f in zip(ours, floor, strict=True)]
        )
    return out


def run(
    shapes: list[tuple[int, int]], rounds: int, device: torch.device, *, rss: bool | set[str]
) -> dict:
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "speed",
        "machine": describe_machine(device),
        "settings": {"tau": TAU, "k": K, "dtype": "float32", "rounds": rounds},
        "shapes": [],
    }
    for i, shape in enumerate(shapes):
        gen = torch.Generator(device=device).manual_seed(0)
        logits = torch.randn(shape, generator=gen, device=device)
        timings = time_groups(logits, gen, rounds)
        report["shapes"].append(
            {
                "shape": list(shape),
                "timings": timings,
                "ratios": ratios(timings),
                "memory": memory(logits, gen, rss=rss if i == 0 or rss is True else False),
            }
        )
        print(f"{device.type} {shape}: done", flush=True)
    report["machine"]["load_after"] = describe_machine(device)["load_before"]
    return report


def print_table(report: dict) -> None:
    machine = report["machine"]
    print(f"\n{machine['description']}, measured {machine['date']}")
    print(f"load average (1 min) before {machine['load_before']}, after {machine['load_after']}")
    print(
        f"float32 logits, tau={report['settings']['tau']}, {report['settings']['rounds']} rounds"
    )
    for entry in report["shapes"]:
        print(
            f"\nshape {tuple(entry['shape'])}: median ms [q1, q3]; "
            "ratio = theirs / ours per round, median [q1, q3]"
        )
        for group, calls in entry["timings"].items():
            for name, t in calls.items():
                r = entry["ratios"].get(group, {}).get(name)
                extra = f"  x{r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}]" if r else ""
                print(
                    f"  {group:<32} {name:<34} {t['median_ms']:9.3f} "
                    f"[{t['q1_ms']:.3f}, {t['q3_ms']:.3f}]{extra}"
                )
        for group, by_name in entry["ratios"].items():
            r = by_name["gumbel_lib / floor"]
            print(
                f"  {group:<32} {'gumbel_lib / floor':<34} "
                f"x{r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}]"
            )
        for name, m in entry["memory"].items():
            cells = ", ".join(f"{k} {v:,}" for k, v in m.items() if v is not None)
            print(f"  memory {name:<34} {cells}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: default_device())")
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
    rounds = args.rounds or (3 if args.smoke else 21)
    if rounds < 3:
        parser.error("--rounds must be at least 3 (quartiles need them)")
    # peak RSS needs one fresh process per sampler and shape: the smoke run measures one
    rss: bool | set[str] = {"gumbel_lib soft"} if args.smoke else True
    path = results_path(args.out, "speed", device, smoke=args.smoke, label=args.label)
    report = run(shapes, rounds, device, rss=rss)
    print_table(report)
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")
    return path


if __name__ == "__main__":
    main()
