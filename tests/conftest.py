"""Shared helpers for the library tests.

Statistical tests fix their seed and their false-failure rate: each module documents its
budget (1e-6 unless it says otherwise) and splits it across its claims (Bonferroni).
"""

from __future__ import annotations

import scipy.special
import torch


def seeded(seed: int, device: str = "cpu") -> torch.Generator:
    """A fresh generator; calling it twice with the same seed replays the same noise."""
    return torch.Generator(device=device).manual_seed(seed)


def relaxed_bernoulli_cdf(log_odds: float, tau: float):
    """cdf of y_1 = sigmoid((log_odds + L) / tau), L ~ Logistic(0, 1): sigmoid(tau logit(y) - l).

    Derived in *The logistic difference*; the two-category case of the Concrete law.
    """
    return lambda y: scipy.special.expit(tau * scipy.special.logit(y) - log_odds)
