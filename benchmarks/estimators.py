"""Gradient estimators against the exact gradient: the bias / variance / cosine table.

    python -m benchmarks.estimators            # 3 temperatures, 2 draw counts, 5 x 4000 estimates
    python -m benchmarks.estimators --smoke    # tiny sizes (seconds)

On :func:`gumbel_lib.estimator_study.toy_problem` (V = 3 variables, K = 4 categories, three
losses) we print, for every estimator of ``gumbel_lib.estimators.ESTIMATORS`` and
temperatures 0.5, 1 and 2, the bias-corrected squared bias with a 95% interval for the
squared norm of the bias (from the Gaussian law of the mean's noise; see
:mod:`gumbel_lib.estimator_study`), the variance and the cosine similarity with the exact
gradient (by enumeration of the 64 joint outcomes), then the time per gradient relative to
one relaxed sample. The chapter
*Lower-variance gradients* shows the same study at a smaller size.
"""

from __future__ import annotations

import argparse

import torch

from gumbel_lib.estimator_study import format_table, seconds_per_gradient, study, toy_problem
from gumbel_lib.estimators import ESTIMATORS

TAUS = (0.5, 1.0, 2.0)


def cost_table(batch: int, repeats: int) -> str:
    """Median time of one gradient (sample, loss, backward) over ``batch`` rows of logits."""
    logits, losses = toy_problem()
    wide = logits.expand(batch, *logits.shape).contiguous()
    f = losses["softplus"]
    seconds = {
        name: seconds_per_gradient(name, wide, f, 0.5, repeats=repeats) for name in ESTIMATORS
    }
    base = seconds["gumbel-softmax"]
    lines = [f"{'estimator':<17}{'ms':>9}{'/ relaxed':>11}"]
    lines += [f"{n:<17}{1e3 * t:>9.3f}{t / base:>11.2f}" for n, t in seconds.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--estimates", type=int, default=4000, help="estimates per seed")
    parser.add_argument("--seeds", type=int, default=5, help="independent seeds (pooled)")
    args = parser.parse_args(argv)
    estimates, seeds = (50, 2) if args.smoke else (args.estimates, args.seeds)
    logits, losses = toy_problem()
    rows = study(
        logits, losses, taus=TAUS, n_draws=(2, 8), n_estimates=estimates, seeds=range(seeds)
    )
    report = format_table(rows)
    report += f"\n\n{estimates} estimates x {seeds} seeds per row, pooled; m = draws per estimate"
    batch = 16 if args.smoke else 1024
    report += f"\n\ncost per gradient, {batch} x 3 x 4 logits (torch {torch.__version__}):\n"
    report += cost_table(batch=batch, repeats=3 if args.smoke else 50)
    print(report)
    return report


if __name__ == "__main__":
    main()
