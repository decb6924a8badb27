"""Where a benchmark ran: the machine description stored with every results file."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_family_model() -> str | None:
    """``family F model M`` from /proc/cpuinfo (the marketing name is often generic)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()[:30]
        fields = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)}
        return f"family {fields['cpu family']} model {fields['model']}"
    except (OSError, KeyError):
        return None


def describe_machine(device: torch.device) -> dict:
    """CPU, cores, threads, torch version, the device, and the load when we started."""
    loads = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    load = loads[0] if loads else None
    info = {
        "cpu": cpu_model(),
        "cpu_family_model": cpu_family_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_1_5_15": loads,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
        "load_before": load,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    cpu = f"{info['cpu']} ({info['cpu_family_model']}, {info['cpu_capability']})"
    name = f"{info['gpu']} with host CPU {cpu}" if "gpu" in info else cpu
    info["description"] = (
        f"{device.type.upper()}: {name}, {info['cores']} cores, torch {info['torch']}, "
        f"{info['torch_threads']} threads"
    )
    return info


def results_path(
    folder: Path | None, kind: str, device: torch.device, *, smoke: bool, label: str = ""
) -> Path:
    """``<folder>/<kind>-<device>[-<label>].json``, by default in benchmarks/results."""
    if folder is None:
        if smoke:
            raise ValueError("--smoke needs --out: smoke results are never committed")
        folder = RESULTS
    if label and not label.replace("_", "").isalnum():
        raise ValueError(f"--label must be letters, digits or '_', got {label!r}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{device.type}{'-' + label if label else ''}.json"


def write_report(path: Path, report: dict) -> Path:
    """Write ``report`` as indented JSON to ``path`` and say so."""
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {path}")
    return path
