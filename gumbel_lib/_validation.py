"""Argument checks shared by the public functions.

Every check raises ``TypeError`` or ``ValueError`` with a message that names the argument,
so that bad input fails loudly instead of flowing on as NaN.
"""

from __future__ import annotations

import math
import numbers

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_logits(logits: object, name: str = "logits") -> torch.Tensor:
    """A floating-point tensor of rank at least 1."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.dtype.is_floating_point:
        raise TypeError(
            f"{name} must have a floating-point dtype, got {logits.dtype}; "
            f"convert with {name}.float()"
        )
    if logits.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension, got a rank-0 tensor")
    return logits


def check_dim(dim: object, ndim: int, name: str = "dim") -> int:
    """An integer axis in ``[-ndim, ndim)``, returned non-negative."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    dim = int(dim)
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for a tensor with {ndim} dimension(s)")
    return dim % ndim


def check_positive(value: object, name: str) -> float:
    """A finite real number strictly greater than zero (a Python number or a 1-element tensor)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def check_tau(tau: object, name: str = "tau") -> float:
    """A finite temperature strictly greater than zero."""
    return check_positive(tau, name)


def check_count(value: object, name: str, *, upper: int, what: str) -> int:
    """An integer in ``[1, upper]``; ``what`` says what ``upper`` counts."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if value > upper:
        raise ValueError(f"{name}={value} is larger than the {upper} {what}")
    return value


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype we compute in: float32 for half precision, else the dtype itself."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def raise_bad_logits(logits: torch.Tensor, dim: int, name: str = "logits") -> None:
    """Explain why ``logits`` cannot be sampled from; called only on the failure path."""
    if torch.isnan(logits).any():
        raise ValueError(f"{name} contains NaN")
    if torch.isposinf(logits).any():
        raise ValueError(f"{name} contains +inf")
    if torch.isneginf(logits).all(dim=dim).any():
        raise ValueError(f"{name} is -inf for every category along dim={dim}: nothing to draw")
    raise ValueError(f"{name} could not be sampled from (non-finite perturbed maximum)")
