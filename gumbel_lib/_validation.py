"""Argument checks shared by the public functions, and the switch that turns them off.

Every check raises ``TypeError`` or ``ValueError`` with a message that names the argument,
so that bad input fails loudly instead of flowing on as NaN.

The switch follows ``torch.distributions``: every public function takes a keyword
``validate_args: bool | None = None``; ``None`` means the library-wide default, which is on
and which :func:`set_default_validate_args` changes (like
``torch.distributions.Distribution.set_default_validate_args``). Checks that read tensor
*values* (NaN logits, a masked row) force a host synchronisation, so they run only under
validation; the sampling path itself never branches in Python on tensor values.
"""

from __future__ import annotations

import math
import numbers

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)

_default_validate_args = True


def set_default_validate_args(value: bool) -> None:
    """Turn argument validation on (the default) or off for every ``gumbel_lib`` function.

    A call's own ``validate_args=True/False`` overrides this default. With validation off,
    bad input is the caller's responsibility: no check reads tensor values, so nothing
    synchronises with the device and ``torch.compile`` sees no data-dependent branch.

    >>> set_default_validate_args(False); get_default_validate_args()
    False
    >>> set_default_validate_args(True)
    """
    global _default_validate_args
    if not isinstance(value, bool):
        raise TypeError(f"value must be a bool, got {type(value).__name__}")
    _default_validate_args = value


def get_default_validate_args() -> bool:
    """The library-wide default of ``validate_args`` (``True`` unless changed)."""
    return _default_validate_args


def should_validate(validate_args: bool | None) -> bool:
    """Resolve a function's ``validate_args`` argument against the library-wide default."""
    if validate_args is None:
        return _default_validate_args
    if not isinstance(validate_args, bool):
        raise TypeError(
            f"validate_args must be a bool or None, got {type(validate_args).__name__}"
        )
    return validate_args


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
