"""Shared helpers for the library tests.

Statistical tests fix their seed and their false-failure rate: each module documents its
budget (1e-6 unless it says otherwise) and splits it across its claims (Bonferroni).
"""

from __future__ import annotations

import torch


def seeded(seed: int, device: str = "cpu") -> torch.Generator:
    """A fresh generator; calling it twice with the same seed replays the same noise."""
    return torch.Generator(device=device).manual_seed(seed)
