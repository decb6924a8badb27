"""Why the smallest shape loses with its backward pass: four ways to build a relaxed sample.

    python -m benchmarks.small_variants                    # 64 x 10, writes benchmarks/results/
    python -m benchmarks.small_variants --smoke --out DIR  # a few rounds (CI)

At 64 x 10 with ``requires_grad`` the library's relaxed sample can lose to
``F.gumbel_softmax`` on some processors (:doc:`Numerics and performance
</book/numerics-performance>`). Every variant below draws the same noise ``-g`` (the
library's own CPU path, :func:`gumbel_lib.noise.eager_cpu_log_exponential`) and computes
``softmax((l + g) / tau)`` with the validation probe of the library's default mode (one
reduction read back as one number); they differ only in how autograd sees the arithmetic:

* ``gumbel_lib``: the library as shipped, one autograd node written in Python
  (:mod:`gumbel_lib.relax_small`);
* ``recorded, shifted``: the library's safe arithmetic as PyTorch operations that autograd
  records (``l - (-g)``, the row maximum subtracted in place on the detached alias, the
  division by ``tau``, ``softmax``): three nodes, as many as ``F.gumbel_softmax``;
* ``recorded, shifted, from C++``: the same operations, called from a C++ function built
  with ``torch.utils.cpp_extension.load_inline`` (needs a C++ compiler and ninja; skipped
  with a message where the build fails), so that no Python runs between them;
* ``recorded, unshifted``: ``g / tau + l / tau`` as one addition with ``alpha = 1 / tau``,
  then ``softmax``: two nodes and fewer calls, but without the shift ``l / tau`` overflows
  once ``|l| > tau * max_float`` (and ``g / tau`` once ``tau`` is below about
  ``17 / max_float`` in float32), and the sample is NaN.

Each group is timed in one interleaved run (:func:`benchmarks.run.time_groups`, Williams
order) with ``F.gumbel_softmax`` as the rival; we report its time over each variant's, the
median of the per-round ratios (> 1: the variant is faster). Before timing, every variant
is checked against the formula, value and gradient, on the same noise.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report
from benchmarks.run import forward_backward, quartiles, repeats, time_groups
from gumbel_lib.noise import eager_cpu_log_exponential
from gumbel_lib.relax import _straight_through_unit

SHAPE = (64, 10)
TAU = 0.5
THREADS = [1, 2]
RIVAL = "F.gumbel_softmax"
SHIPPED = "gumbel_lib"
SHIFTED = "recorded, shifted"
NATIVE = "recorded, shifted, from C++"
UNSHIFTED = "recorded, unshifted"
CPU = torch.device("cpu")

NATIVE_SOURCE = r"""
#include <torch/extension.h>
#include <cmath>

// softmax((l + g) / tau) along the last dimension from the noise z = -g, as recorded
// PyTorch operations; hard: the straight-through one-hot of the first maximum.
at::Tensor shifted_sample(const at::Tensor& logits, const at::Tensor& z, double tau, bool hard) {
  at::Tensor t = at::sub(logits, z);
  at::Tensor shifted = t.detach();
  at::Tensor high, first;
  if (hard) {
    auto top = at::max(shifted, -1, true);
    high = std::get<0>(top);
    first = std::get<1>(top);
  } else {
    high = shifted.amax(-1, true);
  }
  TORCH_CHECK_VALUE(std::isfinite(high.sum().item<double>()), "logits could not be sampled from");
  shifted.sub_(high);
  at::Tensor y = at::softmax(at::div(t, tau), -1);
  if (!hard) return y;
  at::Tensor soft = y.detach();
  return y + at::zeros_like(soft).scatter_(-1, first, 1.0).sub_(soft);
}
"""


def native_module() -> object | None:
    """The C++ variant, built (or loaded from torch's extension cache); None if it fails."""
    from torch.utils.cpp_extension import load_inline

    try:
        return load_inline(
            "gumbel_small_variants",
            cpp_sources=NATIVE_SOURCE,
            functions=["shifted_sample"],
            extra_cflags=["-O2"],
        )
    except Exception as err:  # no compiler, no ninja, no headers: report and go on
        print(f"C++ variant skipped: {type(err).__name__}: {err}".splitlines()[0])
        return None


def straight_through(first: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The one-hot of ``first`` in the forward pass, ``y``'s gradient in the backward pass:
    the library's own one-op straight-through (what the C++ variant computes too)."""
    return _straight_through_unit(torch.zeros_like(y).scatter_(-1, first, 1.0), y)


def variants(gen: torch.Generator) -> dict[str, Callable[[torch.Tensor, bool], torch.Tensor]]:
    """Name -> ``sample(logits, hard)``; every one draws its noise from ``gen``."""

    def noise(logits: torch.Tensor) -> torch.Tensor:  # -g
        return eager_cpu_log_exponential(logits.shape, gen, logits.dtype)

    def shifted(logits: torch.Tensor, hard: bool) -> torch.Tensor:
        t = torch.sub(logits, noise(logits))
        detached = t.detach()
        high, first = detached.max(-1, True) if hard else (detached.amax(-1, True), None)
        if not math.isfinite(high.sum().item()):
            raise ValueError("logits could not be sampled from")
        detached.sub_(high)
        y = torch.softmax(t / TAU, -1)
        return y if first is None else straight_through(first, y)

    def unshifted(logits: torch.Tensor, hard: bool) -> torch.Tensor:
        s = torch.add(noise(logits).mul_(-1.0 / TAU), logits, alpha=1.0 / TAU)
        y = torch.softmax(s, -1)
        if not math.isfinite(y.detach().sum().item()):
            raise ValueError("logits could not be sampled from")
        return y if not hard else straight_through(s.detach().argmax(-1, True), y)

    out = {
        SHIPPED: lambda logits, hard: gl.gumbel_softmax(logits, TAU, hard, generator=gen),
        SHIFTED: shifted,
    }
    native = native_module()
    if native is not None:
        out[NATIVE] = lambda logits, hard: native.shifted_sample(  # type: ignore[attr-defined]
            logits, noise(logits), TAU, hard
        )
    out[UNSHIFTED] = unshifted
    return out


def check(samples: dict[str, Callable], gen: torch.Generator, logits: torch.Tensor) -> None:
    """Every variant against ``softmax((l - z) / tau)`` on the same noise: value and gradient
    of a fixed linear loss; and the hard variants' forward value against the one-hot."""
    w = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1))
    state = gen.get_state()
    for name, sample in samples.items():
        for hard in (False, True):
            gen.set_state(state)
            z = eager_cpu_log_exponential(logits.shape, gen, logits.dtype)
            x = logits.detach().requires_grad_(True)
            want = torch.softmax((x - z) / TAU, -1)
            (want_grad,) = torch.autograd.grad((want * w).sum(), x)
            gen.set_state(state)
            x = logits.detach().requires_grad_(True)
            got = sample(x, hard)
            (got_grad,) = torch.autograd.grad((got * w).sum(), x)
            if hard:
                want = F.one_hot(want.argmax(-1), logits.shape[-1]).to(want.dtype)
            torch.testing.assert_close(got, want.detach(), msg=f"{name}, hard={hard}")
            torch.testing.assert_close(got_grad, want_grad, msg=f"{name}, hard={hard}")
    gen.set_state(state)


def groups(samples: dict[str, Callable], logits: torch.Tensor) -> dict[str, dict[str, Callable]]:
    """Forward (soft) and forward + backward (soft and hard), each variant and the rival."""
    w = torch.randn_like(logits)
    leaf = logits.detach().requires_grad_(True)

    def group(hard: bool, backward: bool) -> dict[str, Callable]:
        calls = {name: (lambda x, s=s: s(x, hard)) for name, s in samples.items()}
        calls[RIVAL] = lambda x: F.gumbel_softmax(x, TAU, hard)
        if backward:
            return {name: forward_backward(call, logits, w) for name, call in calls.items()}
        return {name: (lambda call=call: call(leaf)) for name, call in calls.items()}

    return {
        "soft, forward": group(False, False),
        "soft, forward + backward": group(False, True),
        "hard, forward + backward": group(True, True),
    }


def run(rounds: int, threads: list[int], smoke: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(SHAPE, generator=gen)
    samples = variants(gen)
    check(samples, gen, logits)
    report: dict = {
        "kind": "small-variants",
        "machine": describe_machine(logits.device),
        "settings": {"shape": list(SHAPE), "tau": TAU, "rounds": rounds, "threads": threads},
        "variants": list(samples),
        "by_threads": {},
    }
    before = torch.get_num_threads()
    for n in threads:
        torch.set_num_threads(n)
        timings = time_groups(groups(samples, logits), rounds, repeats(logits, smoke), CPU)
        report["by_threads"][str(n)] = {
            group: {
                name: quartiles(
                    [r / v for r, v in zip(t[RIVAL]["times_ms"], e["times_ms"], strict=True)]
                )
                for name, e in t.items()
                if name != RIVAL
            }
            for group, t in timings.items()
        }
    torch.set_num_threads(before)
    return report


def print_table(report: dict) -> None:
    threads = list(report["by_threads"])
    print(f"\n{report['machine']['description']}, measured {report['machine']['date']}")
    print(f"shape {tuple(report['settings']['shape'])}, tau {report['settings']['tau']}")
    print(f"{RIVAL} / variant per round, median (> 1: the variant is faster)")
    print(f"{'':<58}" + "".join(f"{n + 't':>8}" for n in threads))
    first = report["by_threads"][threads[0]]
    for group, rows in first.items():
        for name in rows:
            cells = "".join(
                f"{report['by_threads'][n][group][name]['median']:8.2f}" for n in threads
            )
            print(f"  {group:<26} {name:<29}{cells}")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few rounds, one thread")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--label", default="", help="file name suffix")
    parser.add_argument("--show", type=Path, default=None, help="print a results file")
    args = parser.parse_args(argv)
    if args.show is not None:
        print_table(json.loads(args.show.read_text()))
        return args.show
    path = results_path(args.out, "small-variants", CPU, smoke=args.smoke, label=args.label)
    report = run(4 if args.smoke else 240, [1] if args.smoke else THREADS, args.smoke)
    print_table(report)
    return write_report(path, report)


if __name__ == "__main__":
    main()
