"""Numerics study: inf and NaN counts, noise ranges and edge cases, ours against PyTorch's.

    python -m benchmarks.numerics                     # >= 1e8 draws per dtype (minutes)
    python -m benchmarks.numerics --smoke --out DIR   # ~1e5 draws per dtype (seconds)

For float32, float16 and bfloat16 logits we draw at least 1e8 relaxed samples (in chunks, so
memory stays small) from ``gumbel_lib.gumbel_softmax`` and ``F.gumbel_softmax`` and count
non-finite outputs; we record the extreme noise values each library produces (ours:
``sample_gumbel``; PyTorch's: ``-exponential_().log()``, the formula inside
``F.gumbel_softmax``), the tail mass our clamping gives up (exact, from the bounds), and the
behaviour of both on masked and huge logits at small temperature. PyTorch's sampler has no
generator argument, so its draws run inside ``torch.random.fork_rng`` with a fixed seed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

import gumbel_lib as gl
from benchmarks.machine import describe_machine, results_path, write_report

SCHEMA_VERSION = 2
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TAU = 1.0


def torch_noise(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """The Gumbel noise of ``F.gumbel_softmax``, drawn in the logits' own dtype."""
    return -torch.empty(shape, dtype=dtype).exponential_().log()


def count_draws(dtype: torch.dtype, draws: int, chunk: tuple[int, int], seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    per_chunk = chunk[0] * chunk[1]
    chunks = math.ceil(draws / per_chunk)
    stats = {
        "draws": chunks * per_chunk,
        "gumbel_lib": {"nan": 0, "inf": 0, "noise_min": math.inf, "noise_max": -math.inf},
        "torch": {"nan": 0, "inf": 0, "noise_min": math.inf, "noise_max": -math.inf},
    }
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for _ in range(chunks):
            logits = torch.randn(chunk, generator=gen).to(dtype)
            for name, y, noise in (
                (
                    "gumbel_lib",
                    gl.gumbel_softmax(logits, TAU, generator=gen),
                    gl.sample_gumbel(chunk, generator=gen, dtype=dtype),
                ),
                ("torch", F.gumbel_softmax(logits, TAU), torch_noise(chunk, dtype)),
            ):
                entry = stats[name]
                entry["nan"] += int(torch.isnan(y).sum())
                entry["inf"] += int(torch.isinf(y).sum())
                finite = noise[torch.isfinite(noise)]
                entry["noise_nonfinite"] = entry.get("noise_nonfinite", 0) + int(
                    noise.numel() - finite.numel()
                )
                entry["noise_min"] = min(entry["noise_min"], finite.min().item())
                entry["noise_max"] = max(entry["noise_max"], finite.max().item())
    lo, hi = gl.noise_bounds(dtype)
    left, right = gl.truncated_tail_mass()
    stats["gumbel_lib"].update(
        {"bound_min": lo, "bound_max": hi, "tail_mass_below": left, "tail_mass_above": right}
    )
    return stats


def edge_cases() -> list[dict]:
    """Masked and huge logits at small temperature, for both libraries, with gradients."""
    inf = math.inf
    cases = [
        ("masked, float32, tau=0.5", [0.0, -inf, 1.0], torch.float32, 0.5),
        ("masked, float32, tau=1e-3", [0.0, -inf, 1.0], torch.float32, 1e-3),
        ("masked, float16, tau=1e-3", [0.0, -inf, 1.0], torch.float16, 1e-3),
        ("masked + huge 1e30, float32, tau=1e-3", [1e30, -inf, -1e30], torch.float32, 1e-3),
        ("huge 1e30, float32, tau=1e-3", [1e30, -1e30, 0.0], torch.float32, 1e-3),
        ("huge 1e30, bfloat16, tau=1e-3", [1e30, -1e30, 0.0], torch.bfloat16, 1e-3),
        ("large 6e4, float16, tau=1e-3", [6e4, -6e4, 0.0], torch.float16, 1e-3),
        ("logits 100, float16, tau=1e-3", [100.0, -100.0, 0.0], torch.float16, 1e-3),
        ("logits 30, float16, tau=1e-3", [30.0, -30.0, 0.0], torch.float16, 1e-3),
    ]
    out = []
    for label, values, dtype, tau in cases:
        row = {"case": label}
        for name, sampler in (
            ("gumbel_lib", lambda x, t, g: gl.gumbel_softmax(x, t, generator=g)),
            ("torch", lambda x, t, g: F.gumbel_softmax(x, t)),
        ):
            with torch.random.fork_rng():
                torch.manual_seed(0)
                leaf = torch.tensor([values] * 1000, dtype=dtype, requires_grad=True)
                y = sampler(leaf, tau, torch.Generator().manual_seed(0))
                (y.float() * torch.arange(3.0)).sum().backward()
            masked = torch.isneginf(leaf.detach())
            row[name] = {
                "output_nonfinite": int((~torch.isfinite(y)).sum()),
                "gradient_nan": int(torch.isnan(leaf.grad).sum()),
                "masked_entries": int(masked.sum()),
                "masked_output_nonzero": int((y.detach()[masked] != 0).sum()),
                "masked_gradient_nonzero": int((leaf.grad[masked] != 0).sum()),
            }
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="about 1e5 draws per dtype")
    parser.add_argument("--draws", type=float, default=None, help="draws per dtype")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    args = parser.parse_args(argv)
    draws = int(args.draws or (1e5 if args.smoke else 1e8))
    chunk = (64, 1024) if args.smoke else (4096, 1024)
    device = torch.device("cpu")
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "numerics",
        "machine": describe_machine(device),
        "settings": {"tau": TAU, "draws_per_dtype": draws, "chunk": list(chunk)},
        "dtypes": {},
    }
    for seed, (name, dtype) in enumerate(DTYPES.items()):
        report["dtypes"][name] = count_draws(dtype, draws, chunk, seed)
        ours, theirs = report["dtypes"][name]["gumbel_lib"], report["dtypes"][name]["torch"]
        print(
            f"{name:>9}: {report['dtypes'][name]['draws']:,} draws | gumbel_lib nan "
            f"{ours['nan']} inf {ours['inf']} noise [{ours['noise_min']:.3f}, "
            f"{ours['noise_max']:.3f}] | torch nan {theirs['nan']} inf {theirs['inf']} "
            f"noise [{theirs['noise_min']:.3f}, {theirs['noise_max']:.3f}], "
            f"non-finite noise {theirs['noise_nonfinite']}",
            flush=True,
        )
    report["edge_cases"] = edge_cases()
    print("edge cases (non-finite outputs, NaN gradients, non-zero outputs/gradients on masks)")
    for row in report["edge_cases"]:
        cells = [
            f"{name} {r['output_nonfinite']} {r['gradient_nan']} "
            f"{r['masked_output_nonzero']}/{r['masked_gradient_nonzero']}"
            for name, r in ((n, row[n]) for n in ("gumbel_lib", "torch"))
        ]
        print(f"  {row['case']:<38} {cells[0]:<22} {cells[1]}")
    return write_report(results_path(args.out, "numerics", device, smoke=args.smoke), report)


if __name__ == "__main__":
    main()
