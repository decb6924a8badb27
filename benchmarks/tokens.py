"""Token sampling at vocabulary scale: sample_tokens against what engines otherwise call.

    python -m benchmarks.tokens                      # full run, writes benchmarks/results/
    python -m benchmarks.tokens --smoke --out DIR    # tiny sizes, a few seconds (CI)
    python -m benchmarks.tokens --show FILE          # print the table of a results file

For batch 1, 8, 64 and 256 rows of 32k, 128k and 256k logits, at one and two threads, each
round times, in a Williams order (``benchmarks.run.time_groups``):

* ``sample_tokens`` with default settings (validation on) and with ``validate_args=False``;
* ``multinomial(softmax(l / T))``: ``torch.multinomial`` on the probabilities, one draw;
* ``exponential race (float32)``: ``argmax(softmax(l / T) / E)`` with ``E`` from
  ``exponential_()`` in float32, as inference engines write it;
* ``Gumbel-max, float32 noise``: ``argmax(l / T - log(-log u))`` with float32 ``u``, the
  sampler whose tail the vocabulary-scale chapter shows to be wrong: the cost of exactness.

The ratio of each rival is ``theirs / ours`` per round (median and quartiles; above 1 we are
faster), against ``sample_tokens`` with default settings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report
from benchmarks.run import quartiles, time_groups

BATCHES = [1, 8, 64, 256]
VOCABS = [32_768, 131_072, 262_144]
SMOKE_SHAPES = [(2, 1000)]
THREADS = [1, 2]
TEMPERATURE = 0.8
OURS = "sample_tokens"
OURS_OFF = "sample_tokens, validate_args=False"
RIVALS = ("multinomial(softmax(l / T))", "exponential race (float32)", "Gumbel-max, float32 noise")


def contenders(logits: torch.Tensor, gen: torch.Generator) -> dict[str, Callable[[], object]]:
    t = TEMPERATURE
    scratch = torch.empty_like(logits)

    def race() -> torch.Tensor:
        probs = torch.softmax(logits / t, -1)
        return probs.div_(scratch.exponential_(generator=gen)).argmax(-1)

    def float32_gumbel() -> torch.Tensor:
        u = torch.rand(logits.shape, generator=gen, dtype=torch.float32)
        return (logits / t).sub_(u.log_().neg_().log_().neg_()).argmax(-1)

    return {
        OURS: lambda: gl.sample_tokens(logits, temperature=t, generator=gen),
        OURS_OFF: lambda: gl.sample_tokens(
            logits, temperature=t, generator=gen, validate_args=False
        ),
        RIVALS[0]: lambda: torch.multinomial(torch.softmax(logits / t, -1), 1, generator=gen),
        RIVALS[1]: race,
        RIVALS[2]: float32_gumbel,
    }


def inner_calls(numel: int, smoke: bool) -> int:
    """Calls per timing: small inputs loop so that one timing lasts tens of milliseconds."""
    return 1 if smoke else max(1, min(50, 4_000_000 // numel))


def run(shapes: list[tuple[int, int]], rounds: int, threads: list[int], smoke: bool) -> dict:
    device = torch.device("cpu")
    report: dict = {
        "schema_version": 1,
        "kind": "tokens",
        "machine": describe_machine(device),
        "settings": {"temperature": TEMPERATURE, "rounds": rounds, "threads": threads},
        "rows": [],
    }
    before = torch.get_num_threads()
    for batch, vocab in shapes:
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(batch, vocab, generator=gen) * 3
        for n in threads:
            torch.set_num_threads(n)
            timings = time_groups(
                {"tokens": contenders(logits, gen)},
                rounds,
                inner_calls(logits.numel(), smoke),
                device,
            )["tokens"]
            ours = timings[OURS]["times_ms"]
            report["rows"].append(
                {
                    "batch": batch,
                    "vocab": vocab,
                    "threads": n,
                    "timings": {
                        name: {k: v for k, v in t.items() if k != "times_ms"}
                        for name, t in timings.items()
                    },
                    "ratios": {
                        name: quartiles(
                            [a / b for a, b in zip(timings[name]["times_ms"], ours, strict=True)]
                        )
                        for name in (OURS_OFF, *RIVALS)
                    },
                }
            )
            print(f"batch {batch}, vocab {vocab}, {n} thread(s): done", flush=True)
    torch.set_num_threads(before)
    report["machine"]["load_after"] = describe_machine(device)["load_before"]
    return report


def print_table(report: dict) -> None:
    machine = report["machine"]
    print(f"\n{machine['description']}, measured {machine['date']}")
    print(
        f"temperature {report['settings']['temperature']}, {report['settings']['rounds']} rounds"
    )
    print("theirs / sample_tokens per round, median (> 1: sample_tokens is faster)")
    names = (OURS_OFF, *RIVALS)
    print(
        f"{'batch':>6} {'vocab':>8} {'thr':>4} {'ours ms':>9} "
        + " ".join(f"{n[:22]:>22}" for n in names)
    )
    for row in report["rows"]:
        cells = " ".join(f"{row['ratios'][n]['median']:22.2f}" for n in names)
        ms = row["timings"][OURS]["median_ms"]
        print(f"{row['batch']:>6} {row['vocab']:>8} {row['threads']:>4} {ms:9.3f} {cells}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--show", type=Path, default=None, help="print a results file")
    args = parser.parse_args(argv)
    if args.show is not None:
        print_table(json.loads(args.show.read_text()))
        return args.show
    shapes = SMOKE_SHAPES if args.smoke else [(b, v) for v in VOCABS for b in BATCHES]
    rounds = args.rounds or (3 if args.smoke else 10)
    threads = [1] if args.smoke else THREADS
    path = results_path(args.out, "tokens", torch.device("cpu"), smoke=args.smoke, label="")
    report = run(shapes, rounds, threads, args.smoke)
    print_table(report)
    return write_report(path, report)


if __name__ == "__main__":
    main()
