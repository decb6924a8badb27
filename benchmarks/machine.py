"""Where a benchmark ran: the machine description stored with every results file."""

from __future__ import annotations

import datetime
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


def describe_machine(device: torch.device) -> dict:
    """CPU, cores, threads, torch version, the device, and the load when we started."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {
        "cpu": cpu_model(),
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
    name = info.get("gpu", info["cpu"])
    info["description"] = (
        f"{device.type.upper()}: {name}, {info['cores']} cores, torch {info['torch']}, "
        f"{info['torch_threads']} threads"
    )
    return info


def results_path(folder: Path | None, kind: str, device: torch.device, *, smoke: bool) -> Path:
    """``<folder>/<kind>-<device>.json``; the committed results live in benchmarks/results."""
    if folder is None:
        if smoke:
            raise ValueError("--smoke needs --out: smoke results are never committed")
        folder = RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{device.type}.json"
