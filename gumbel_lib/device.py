"""Where GPU-optional code runs: CUDA when present, overridable, CPU otherwise.

Chapters run on the CPU path (``GUMBEL_DEVICE=cpu``) so that their stored outputs
reproduce: see :doc:`Reproducibility </book/reproducibility>`.
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "GUMBEL_DEVICE"


def default_device() -> torch.device:
    """The device chapters and benchmarks use.

    ``$GUMBEL_DEVICE`` (for example ``cpu`` or ``cuda:0``) wins when set; otherwise CUDA
    when available, else the CPU. An unusable override raises ``ValueError``.

    >>> default_device().type in ("cpu", "cuda")
    True
    """
    name = os.environ.get(ENV_VAR, "").strip()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(f"${ENV_VAR}={name!r} is not a torch device name") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"${ENV_VAR}={name!r} asks for CUDA, which is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def generator_for(device: torch.device | str, seed: int) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(seed)
