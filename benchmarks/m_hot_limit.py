"""m_hot at low temperature: its largest entry and its distance to the hard top-m indicator.

``python -m benchmarks.m_hot_limit`` prints, for logits ``2 * randn(20000, 6)``, ``m = 3`` and
``tau`` in 1, 0.1, 0.01 (float32 and float16 logits), the largest relaxed entry and the
largest and mean absolute distance ``|m_hot - 1[top-m of l + g]|`` for the same noise. The
issue that fixed ``m_hot`` (computing ``log(1 - a)`` in log space) recorded this table
before and after the fix in ``benchmarks/results/m-hot-limit-*.txt``. With ``--exact`` it
adds the largest entry of the same recursion in float64 on the same perturbed logits and
the largest error against it: the entries near 2 are the relaxation's, not rounding.
"""

from __future__ import annotations

import sys

import torch

from gumbel_lib import gumbel_topk, m_hot
from gumbel_lib.sampling import perturb


def limit_table(n: int = 20_000, size: int = 6, m: int = 3, seed: int = 0) -> list[tuple]:
    """Rows ``(dtype, tau, largest entry, max distance, mean distance)``."""
    logits = 2 * torch.randn(n, size, generator=torch.Generator().manual_seed(seed))
    rows = []
    for dtype in (torch.float32, torch.float16):
        x = logits.to(dtype)
        for tau in (1.0, 0.1, 0.01):
            noise_seed = seed + 1
            y = m_hot(x, m, tau, generator=torch.Generator().manual_seed(noise_seed)).float()
            top = gumbel_topk(x, m, generator=torch.Generator().manual_seed(noise_seed))
            hard = torch.zeros(n, size).scatter_(-1, top, 1.0)
            gap = (y - hard).abs()
            rows.append((str(dtype), tau, y.max().item(), gap.max().item(), gap.mean().item()))
    return rows


def exact_table(n: int = 20_000, size: int = 6, m: int = 3, seed: int = 0) -> list[tuple]:
    """Rows ``(dtype, tau, exact largest entry, max |m_hot - exact|)`` on the same noise."""
    from gumbel_lib.subsets import relaxed_top_m  # after the fix only

    logits = 2 * torch.randn(n, size, generator=torch.Generator().manual_seed(seed))
    rows = []
    for dtype in (torch.float32, torch.float16):
        x = logits.to(dtype)
        keys = perturb(x, generator=torch.Generator().manual_seed(seed + 1)).double()
        for tau in (1.0, 0.1, 0.01):
            y = m_hot(x, m, tau, generator=torch.Generator().manual_seed(seed + 1)).double()
            exact = relaxed_top_m(keys, m, tau)
            rows.append((str(dtype), tau, exact.max().item(), (y - exact).abs().max().item()))
    return rows


def main() -> None:
    print(f"{'dtype':>14} {'tau':>6} {'largest':>9} {'max |y-h|':>10} {'mean |y-h|':>11}")
    for dtype, tau, top, gap_max, gap_mean in limit_table():
        print(f"{dtype:>14} {tau:>6} {top:>9.4f} {gap_max:>10.4f} {gap_mean:>11.5f}")
    if "--exact" in sys.argv[1:]:
        print(f"\n{'dtype':>14} {'tau':>6} {'exact largest':>14} {'max |y-exact|':>14}")
        for dtype, tau, top, error in exact_table():
            print(f"{dtype:>14} {tau:>6} {top:>14.4f} {error:>14.2e}")


if __name__ == "__main__":
    main()
