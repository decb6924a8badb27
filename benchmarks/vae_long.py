"""The categorical VAE of the chapter, trained longer: the chapter's experiment at a larger scale.

    python -m benchmarks.vae_long                        # scale 10: 400 epochs (tens of min)
    python -m benchmarks.vae_long --scale 1              # the chapter's own budget
    python -m benchmarks.vae_long --smoke --out DIR      # 2 epochs, 2 seeds (seconds)

The chapter *A categorical VAE* trains five estimators from ten seeds for 40 epochs
(``GUMBEL_VAE_SCALE=1``). This script runs the same experiment with ``GUMBEL_VAE_SCALE``
multiplied by ``--scale``: the same data split, model, optimiser, seeds, evaluation draws
and temperature schedule (an exponential decay from 1 to 0.5 over all the steps of the
run, so a longer run also anneals more slowly). At every multiple of the chapter's budget
(every 40 epochs) it evaluates each model on the held-out images as the chapter does (the
negative ELBO with 10 one-hot codes per image, the negative importance-weighted bound with
100), on the training images (the negative ELBO), and records how the codes are used (the
mean KL term, the per-image and the aggregate perplexity). It also stores each run's
training loss per epoch. The chapter reads the file (it never trains this run).

Run it under the chapter's settings, one thread on the CPU path, so that ``--scale 1``
reproduces the chapter's tables::

    GUMBEL_DEVICE=cpu OMP_NUM_THREADS=1 TQDM_DISABLE=1 ATEN_CPU_CAPABILITY=avx2 \\
    MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Haswell NPY_ENABLE_CPU_FEATURES=X86_V3 \\
    ONEDNN_MAX_CPU_ISA=AVX2 nice -n 10 python -m benchmarks.vae_long

The JSON (``benchmarks/results/vae-long-<device>.json``) holds the machine's description,
the environment, the configuration and, per estimator and seed, the checkpoints and the
curve; it is rewritten after every run, with ``"complete": false`` until the last one.
Wall times are recorded but mean little: the run shares its machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import gumbel_lib
from benchmarks.machine import describe_machine, results_path
from gumbel_lib import default_device, exponential_schedule, generator_for
from gumbel_lib.vae import (
    CategoricalVAE,
    code_usage,
    importance_weighted_bound,
    kl_to_uniform,
    negative_elbo,
    perplexity,
)
from gumbel_lib.vae_training import train

SCHEMA_VERSION = 1
# The chapter's configuration (book/categorical-vae.md); the chapter asserts that it matches.
CONFIG = {
    "base_epochs": 40,
    "latents": 8,
    "categories": 8,
    "hidden": 128,
    "batch": 100,
    "lr": 3e-3,
    "tau_start": 1.0,
    "tau_end": 0.5,
    "baseline_decay": 0.9,
    "estimators": ["gumbel-softmax", "straight-through", "gumbel-rao", "reinmax", "reinforce"],
    "n_test": 360,
    "split_seed": 0,
    "eval_draws": 10,
    "iw_draws": 100,
    "init_seed": "seed",
    "train_seed": "100 + seed",
    "test_eval_seed": "200 + seed",
    "train_eval_seed": "300 + seed",
}
ENV_KEYS = (
    "GUMBEL_DEVICE",
    "OMP_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
    "NPY_ENABLE_CPU_FEATURES",
    "ONEDNN_MAX_CPU_ISA",
)


def library_fingerprint() -> str:
    """SHA-256 of the library's source files (which library made these results)."""
    digest = hashlib.sha256()
    for path in sorted(Path(gumbel_lib.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def digits(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The chapter's binarised digits: (train, held out), the held-out fifth by seed 0."""
    images = torch.tensor(load_digits().data > 8.0, dtype=torch.float32)
    order = np.random.default_rng(CONFIG["split_seed"]).permutation(len(images))
    n_test = CONFIG["n_test"]
    return images[order[n_test:]].to(device), images[order[:n_test]].to(device)


def evaluate(
    model: CategoricalVAE, x: torch.Tensor, seed: int, device: torch.device, *, iw: bool = True
) -> tuple[float, float]:
    """Mean -ELBO (one-hot codes) and -IW bound (NaN when ``iw`` is false), nats per image:
    the chapter's ``evaluate`` (each bound has its own generator, so skipping one leaves the
    other unchanged)."""
    with torch.no_grad():
        elbo = negative_elbo(
            model, x, n_samples=CONFIG["eval_draws"], generator=generator_for(device, seed)
        )
        if not iw:
            return elbo.mean().item(), math.nan
        bound = importance_weighted_bound(
            model, x, n_samples=CONFIG["iw_draws"], generator=generator_for(device, seed + 1)
        )
    return elbo.mean().item(), bound.mean().item()


def code_use(model: CategoricalVAE, x: torch.Tensor) -> dict:
    """Mean KL term, mean per-image perplexity, aggregate perplexity (mean and fewest)."""
    with torch.no_grad():
        logits = model.encode(x)
        aggregate = perplexity(code_usage(model, x))
        return {
            "kl": kl_to_uniform(logits).mean().item(),
            "per_image_perplexity": perplexity(torch.softmax(logits, -1)).mean().item(),
            "aggregate_perplexity": aggregate.mean().item(),
            "aggregate_perplexity_min": aggregate.min().item(),
        }


def one_run(
    name: str, seed: int, epochs: int, taus: np.ndarray, data: tuple, device: torch.device
) -> dict:
    x_train, x_test = data
    model = CategoricalVAE(
        64,
        CONFIG["latents"],
        CONFIG["categories"],
        CONFIG["hidden"],
        generator=torch.Generator().manual_seed(seed),
    )
    checkpoints = []

    def checkpoint(done: int) -> None:
        if done % CONFIG["base_epochs"] and done != epochs:
            return
        test_elbo, test_iw = evaluate(model, x_test, 200 + seed, device)
        train_elbo, _ = evaluate(model, x_train, 300 + seed, device, iw=False)
        entry = {"epoch": done, "test": test_elbo, "iw": test_iw, "train": train_elbo}
        checkpoints.append(entry | code_use(model, x_test))

    result = train(
        model,
        x_train,
        name,
        epochs=epochs,
        tau=taus,
        batch_size=CONFIG["batch"],
        lr=CONFIG["lr"],
        generator=generator_for(device, 100 + seed),
        device=device,
        baseline_decay=CONFIG["baseline_decay"],
        progress=False,
        on_epoch=checkpoint,
    )
    per_epoch = result.losses.reshape(epochs, -1).mean(-1)
    return {
        "estimator": name,
        "seed": seed,
        "seconds": result.seconds,
        "checkpoints": checkpoints,
        "epoch_loss": [round(float(v), 4) for v in per_epoch],
    }


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="multiple of 40 epochs")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0, 1, ... per estimator")
    parser.add_argument("--smoke", action="store_true", help="2 epochs, 2 seeds")
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON results")
    parser.add_argument("--label", default="", help="file name suffix")
    parser.add_argument(
        "--estimators", nargs="+", default=CONFIG["estimators"], choices=CONFIG["estimators"]
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.scale, args.seeds = 2 / CONFIG["base_epochs"], 2
    if not (args.scale > 0 and math.isfinite(args.scale)) or args.seeds < 2:
        raise ValueError("--scale must be > 0 and --seeds >= 2")
    device = default_device()
    epochs = max(1, round(CONFIG["base_epochs"] * args.scale))
    data = digits(device)
    steps = epochs * math.ceil(len(data[0]) / CONFIG["batch"])
    taus = exponential_schedule(CONFIG["tau_start"], CONFIG["tau_end"], steps)
    path = results_path(args.out, "vae-long", device, smoke=args.smoke, label=args.label)
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "vae-long",
        "machine": describe_machine(device),
        "environment": {key: os.environ.get(key) for key in ENV_KEYS},
        "gumbel_lib_sha256": library_fingerprint(),
        "niceness": os.nice(0) if hasattr(os, "nice") else None,
        "config": CONFIG,
        "scale": args.scale,
        "epochs": epochs,
        "steps": steps,
        "estimators": args.estimators,
        "seeds": list(range(args.seeds)),
        "complete": False,
        "runs": [],
    }
    start = time.perf_counter()
    for name in args.estimators:
        for seed in range(args.seeds):
            run = one_run(name, seed, epochs, taus, data, device)
            report["runs"].append(run)
            last = run["checkpoints"][-1]
            print(
                f"{name:>16} seed {seed}: held-out -ELBO {last['test']:.2f}, -IW "
                f"{last['iw']:.2f}, train -ELBO {last['train']:.2f}, KL {last['kl']:.2f} "
                f"({run['seconds']:.0f} s)",
                flush=True,
            )
            report["seconds"] = time.perf_counter() - start
            path.write_text(_dumps(report))
    report["complete"] = True
    report["seconds"] = time.perf_counter() - start
    path.write_text(_dumps(report))
    print(f"\nwrote {path} ({report['seconds'] / 60:.1f} min)")
    return path


def _dumps(report: dict) -> str:
    """JSON with one line per run (its curve is long), everything else indented."""
    runs = report["runs"]
    head = json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1)
    lines = ",\n".join("  " + json.dumps(run) for run in runs)
    return head[:-2] + ',\n "runs": [\n' + lines + "\n ]\n}\n"


if __name__ == "__main__":
    main()
