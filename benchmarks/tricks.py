"""What each speed device of the sampling path gains, measured by switching it off.

    python -m benchmarks.tricks                      # full run, writes benchmarks/results/
    python -m benchmarks.tricks --smoke --out DIR    # tiny sizes, a few seconds (CI)
    python -m benchmarks.tricks --show FILE          # print the table of a results file

Each device is switched off by replacing one module attribute for the duration of a timing
(the library's code is otherwise untouched), and each round times the calls with and
without it, in alternating order. The table gives ``time without / time with`` per call and
shape, the median over the rounds: above 1 the device gains, and a device that gains less
than 5% at every shape has no place in the library.

* NumPy's float64 logarithm for CPU noise (``gumbel_lib.noise``), against PyTorch's;
* the unshifted quotient that validation's probe allows (``gumbel_lib.relax``), against
  always subtracting the row maximum first;
* ``-(centred + g)`` formed in the noise's storage (``gumbel_lib.sampling``), against a
  fresh tensor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report
from gumbel_lib import noise, relax, sampling, tokens

SHAPES = [(64, 10), (128, 30, 10), (1024, 100), (4096, 1024), (256, 50_000), (64, 32_768)]
SMOKE_SHAPES = [(8, 10)]
TAU = 0.5

Patch = list[tuple[object, str, object]]
DEVICES: dict[str, Patch] = {
    "NumPy float64 logarithms": [(noise, "_numpy_memory", lambda u: None)],
    "unshifted quotient under validation": [
        (relax, "HALF_MAX", {torch.float32: 0.0, torch.float64: 0.0})
    ],
    "-(centred + g) in the noise's storage": [
        (sampling, "minus_perturbed", torch.sub),
        (tokens, "minus_perturbed", torch.sub),
    ],
}


@contextlib.contextmanager
def switched_off(patches: Patch) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def calls(logits: torch.Tensor, gen: torch.Generator) -> dict[str, Callable[[], object]]:
    w = torch.randn_like(logits)

    def forward_backward(hard: bool) -> Callable[[], None]:
        def run() -> None:
            x = logits.detach().requires_grad_(True)
            (gl.gumbel_softmax(x, TAU, hard, generator=gen) * w).sum().backward()

        return run

    return {
        "soft fwd": lambda: gl.gumbel_softmax(logits, TAU, generator=gen),
        "soft fwd+bwd": forward_backward(False),
        "hard fwd+bwd": forward_backward(True),
        "gumbel_max": lambda: gl.gumbel_max(logits, generator=gen),
        "gumbel_topk": lambda: gl.gumbel_topk(logits, min(8, logits.shape[-1]), generator=gen),
        "sample_tokens": lambda: gl.sample_tokens(logits, temperature=0.8, generator=gen),
    }


def timed(call: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        call()
    return (time.perf_counter() - start) / inner


def run(shapes: list[tuple[int, ...]], rounds: int, smoke: bool) -> dict:
    cpu = torch.device("cpu")
    report: dict = {
        "schema_version": 1,
        "kind": "tricks",
        "machine": describe_machine(cpu),
        "settings": {"rounds": rounds, "threads": torch.get_num_threads(), "tau": TAU},
        "gains": {},
    }
    for shape in shapes:
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(shape, generator=gen)
        inner = 1 if smoke else max(1, min(200, 40_000 // logits.numel()))
        for device_name, patches in DEVICES.items():
            for name, call in calls(logits, gen).items():
                call()
                with switched_off(patches):
                    call()
                ratios = []
                for r in range(rounds):
                    if r % 2:
                        with_it = timed(call, inner)
                        with switched_off(patches):
                            without = timed(call, inner)
                    else:
                        with switched_off(patches):
                            without = timed(call, inner)
                        with_it = timed(call, inner)
                    ratios.append(without / with_it)
                entry = report["gains"].setdefault(device_name, {}).setdefault(str(shape), {})
                entry[name] = statistics.median(ratios)
        print(f"shape {shape}: done", flush=True)
    report["machine"]["load_after"] = describe_machine(cpu)["load_before"]
    return report


def print_table(report: dict) -> None:
    machine = report["machine"]
    print(f"\n{machine['description']}, measured {machine['date']}")
    print(f"{report['settings']['rounds']} paired rounds; time without / time with, median")
    for device_name, by_shape in report["gains"].items():
        print(f"\n{device_name}")
        names = list(next(iter(by_shape.values())))
        print(f"{'shape':>16} " + " ".join(f"{n:>13}" for n in names))
        for shape, row in by_shape.items():
            print(f"{shape:>16} " + " ".join(f"{row[n]:13.2f}" for n in names))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="paired rounds per call")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--show", type=Path, default=None, help="print a results file")
    args = parser.parse_args(argv)
    if args.show is not None:
        print_table(json.loads(args.show.read_text()))
        return args.show
    torch.set_num_threads(1)
    rounds = args.rounds or (2 if args.smoke else 16)
    report = run(SMOKE_SHAPES if args.smoke else SHAPES, rounds, args.smoke)
    print_table(report)
    path = results_path(args.out, "tricks", torch.device("cpu"), smoke=args.smoke, label="")
    return write_report(path, report)


if __name__ == "__main__":
    main()
