"""Memory of one forward + backward pass through a relaxed sampler, measured two ways.

* ``saved_bytes``: the bytes autograd keeps between the forward and the backward pass
  (distinct storages seen by saved-tensor hooks). Exact and deterministic on any device.
* ``peak_rss_bytes``: the peak resident memory of the process during one forward + backward
  pass, above what it held just before, measured in a **fresh** Python process. Linux
  only: we reset the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``) and read
  ``VmHWM``. The child runs with glibc's ``MALLOC_MMAP_THRESHOLD_=65536``, so every block
  above 64 KiB (every tensor that matters here) is its own mapping, returned to the system
  the moment it is freed; without it, glibc's adaptive threshold keeps freed blocks in its
  heap and the figure changes from run to run. The peak then counts the tensors alive at
  the worst moment (the gradient of the logits included), rounded up to pages, plus a few
  pages of small allocations: an honest upper bound on live tensor bytes. At tiny shapes it
  is dominated by page granularity and means little.

On CUDA ``run.py`` also records ``torch.cuda.max_memory_allocated`` in its own process.

    python -m benchmarks.memory CONTENDER ROWS COLS TAU   # prints the peak in bytes (child)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch.distributions import RelaxedOneHotCategorical

import gumbel_lib as gl

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def samplers(
    tau: float, gen: torch.Generator
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The relaxed samplers whose memory we compare, by name."""
    return {
        "gumbel_lib soft": lambda x: gl.gumbel_softmax(x, tau, generator=gen),
        "F.gumbel_softmax soft": lambda x: F.gumbel_softmax(x, tau),
        "gumbel_lib hard": lambda x: gl.gumbel_softmax(x, tau, True, generator=gen),
        "F.gumbel_softmax hard": lambda x: F.gumbel_softmax(x, tau, True),
        "RelaxedOneHotCategorical": lambda x: RelaxedOneHotCategorical(
            torch.tensor(tau, device=x.device), logits=x
        ).rsample(),
    }


def saved_bytes(sample: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of ``sample`` (distinct storages only)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    leaf = logits.detach().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sample(leaf).sum().backward()
    return sum(seen.values())


def _status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{key} not in {STATUS}")
    return int(match.group(1)) * 1024


def rss_supported() -> bool:
    return STATUS.exists() and CLEAR_REFS.exists()


def _child(name: str, rows: int, cols: int, tau: float) -> int:
    """Runs in the fresh process: peak RSS of one forward + backward, above the baseline."""
    gen = torch.Generator().manual_seed(0)
    sample = samplers(tau, gen)[name]
    warm = torch.randn(4, 8, requires_grad=True)  # lazy initialisation, kernels, autograd
    sample(warm).sum().backward()
    logits = torch.randn(rows, cols, generator=gen)
    leaf = logits.requires_grad_(True)
    baseline = _status_bytes("VmRSS")
    CLEAR_REFS.write_text("5")  # reset VmHWM to the current RSS
    sample(leaf).sum().backward()
    return _status_bytes("VmHWM") - baseline


def peak_rss_bytes(name: str, shape: tuple[int, int], tau: float) -> int | None:
    """Peak extra resident bytes of one forward + backward of ``name``, or None off Linux."""
    if not rss_supported():
        return None
    rows, cols = shape
    cmd = [sys.executable, "-m", "benchmarks.memory", name, str(rows), str(cols), str(tau)]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=root, env=env)
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    contender, n_rows, n_cols, temperature = sys.argv[1:5]
    print(json.dumps(_child(contender, int(n_rows), int(n_cols), float(temperature))))
