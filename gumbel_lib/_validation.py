"""Argument checks shared by the public functions, and the switch that turns them off.

Every check raises ``TypeError`` or ``ValueError`` with a message that names the argument,
so that bad input fails loudly instead of flowing on as NaN.

The switch follows ``torch.distributions``: every public function takes a keyword
``validate_args: bool | None = None``; ``None`` means the library-wide default, which is on
and which :func:`gumbel_lib.set_default_validate_args` changes (like
``torch.distributions.Distribution.set_default_validate_args``). There are two kinds of check:

* *Structural* checks read only Python objects and tensor metadata (types, dtypes, shapes,
  ``dim``, ``k``, a Python-number ``tau``). They cost well under a microsecond, never touch
  the device, and always run.
* *Value* checks read tensor values (NaN or ``+inf`` logits, a row masked everywhere, a
  tensor ``tau`` that is not positive, ``k`` larger than the drawable categories). They run
  only under validation. Each costs one reduction the sampler computes anyway (the
  perturbed maximum, the top-k values) plus one read of a single number; only when that
  number is not finite do we look closer, to say what is wrong. On a GPU that read is a
  host synchronisation, as in ``torch.distributions``: turn validation off to avoid it.

With validation off, nothing reads tensor values, so nothing synchronises, no Python branch
depends on tensor values, and every sampler compiles with ``torch.compile(fullgraph=True)``
and maps with ``torch.func.vmap``. Bad *values* are then the caller's responsibility: the
result is unspecified (it may hold NaN), exactly as with ``validate_args=False`` in
``torch.distributions``. Chapter: :doc:`Numerics and performance </book/numerics-performance>`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

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
    """The library-wide default of ``validate_args`` (``True`` unless changed).

    >>> get_default_validate_args()
    True
    """
    return _default_validate_args


def should_validate(validate_args: bool | None) -> bool:
    """Resolve a function's ``validate_args`` argument against the library-wide default."""
    if validate_args is None:
        return _default_validate_args
    if validate_args is True or validate_args is False:
        return validate_args
    raise TypeError(f"validate_args must be a bool or None, got {type(validate_args).__name__}")


def tracing() -> bool:
    """Whether we run under ``torch.compile`` or inside a ``torch.func`` transform (``vmap``,
    ``grad``, ...), where no Python branch may read a tensor value."""
    return torch.compiler.is_compiling() or torch._C._functorch.maybe_current_level() is not None


def require(ok: torch.Tensor, message: str, explain: Callable[[], None] | None = None) -> None:
    """A value check that works in every mode: ``ok`` is a bool tensor, true where the
    values are good.

    * Eager: one reduction and one read; if any entry is false, ``explain()`` raises the
      precise ``ValueError`` (when given), else ``ValueError(message)``.
    * Under ``torch.compile``: ``torch._assert_async(ok.all(), message)``, a check inside
      the graph (no graph break; on a GPU no host synchronisation). A failure raises
      PyTorch's ``RuntimeError`` carrying ``message``.
    * Inside a ``torch.func`` transform: skipped (PyTorch has no batching rule for
      ``_assert_async``); bad values are then the caller's responsibility, as with
      validation off.
    """
    if torch._C._functorch.maybe_current_level() is not None:
        return
    if torch.compiler.is_compiling():
        torch._assert_async(ok.all(), message)
        return
    if not bool(ok.all()):
        if explain is not None:
            explain()
        raise ValueError(message)


def check_logits(logits: object, name: str = "logits") -> torch.Tensor:
    """A dense floating-point tensor of rank at least 1 (structural: reads no values)."""
    if type(logits) is not torch.Tensor and not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.dtype.is_floating_point:
        raise TypeError(
            f"{name} must have a floating-point dtype, got {logits.dtype}; "
            f"convert with {name}.float()"
        )
    if logits.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension, got a rank-0 tensor")
    if logits.layout is not torch.strided:
        raise TypeError(
            f"{name} must be a dense (strided) tensor, got layout {logits.layout}; "
            f"convert with {name}.to_dense()"
        )
    return logits


def check_dim(dim: object, ndim: int, name: str = "dim") -> int:
    """An integer axis in ``[-ndim, ndim)``, returned non-negative."""
    if type(dim) is int and -ndim <= dim < ndim:  # the common case, without ABC checks
        return dim % ndim
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__}")
    dim = int(dim)
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}={dim} is out of range for a tensor with {ndim} dimension(s)")
    return dim % ndim


def check_categories(shape: torch.Size, dim: int, name: str = "logits") -> None:
    """At least one category along ``dim`` (structural): a sample needs something to draw."""
    if shape[dim] == 0:
        raise ValueError(
            f"{name} has no categories along dim={dim} (shape {tuple(shape)}): "
            "there is nothing to draw"
        )


def check_positive(value: object, name: str) -> float:
    """A finite real number strictly greater than zero (a Python number or a 1-element tensor).

    A tensor is read with ``.item()`` (a value check, so a host synchronisation on a GPU).
    """
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
    """A finite Python-number temperature strictly greater than zero (a tensor is read)."""
    return check_positive(tau, name)


def check_tau_like(
    tau: object, logits: torch.Tensor, dim: int, validate: bool, name: str = "tau"
) -> float | torch.Tensor:
    """A temperature: a finite Python number > 0, or a floating tensor (kept as a tensor, so
    a learnable temperature keeps its gradient), returned ready to divide ``logits``.

    A tensor may have (a) the rank of ``logits`` and broadcast to it without enlarging it,
    as in ``torch.nn.functional.gumbel_softmax`` (size 1 along ``dim`` gives one temperature
    per sample; 0-d is one for all), or (b) one dimension fewer, the batch shape of
    ``logits`` with ``dim`` removed, as TensorFlow Probability's relaxed distributions take
    it: one temperature per sample, returned with ``dim`` restored as size 1. Python
    numbers are checked always; a tensor's values (finite, ``> 0``) only under validation,
    with :func:`require`.
    """
    if type(tau) is float and 0.0 < tau < math.inf:  # the common case, without ABC checks
        return tau
    if isinstance(tau, torch.Tensor):
        if not tau.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor, got {tau.dtype}")
        if tau.dim() == logits.dim() - 1 and tau.dim() > 0:
            tau = tau.unsqueeze(dim)
        elif tau.dim() not in (0, logits.dim()):
            raise ValueError(
                f"{name} of shape {tuple(tau.shape)} must be 0-d, have the batch shape of "
                f"logits {tuple(logits.shape)} without dim={dim}, or broadcast to logits"
            )
        try:
            shape = torch.broadcast_shapes(tau.shape, logits.shape)
        except RuntimeError as err:
            raise ValueError(
                f"{name} of shape {tuple(tau.shape)} does not broadcast to logits "
                f"{tuple(logits.shape)}"
            ) from err
        if shape != logits.shape:
            raise ValueError(
                f"{name} of shape {tuple(tau.shape)} would change the shape of logits "
                f"{tuple(logits.shape)}"
            )
        if validate and tau.numel():
            require((tau > 0) & (tau < math.inf), f"{name} must be finite and > 0 everywhere")
        return tau
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"{name} must be a real number or a tensor, got {type(tau).__name__}")
    tau = float(tau)
    if not 0.0 < tau < math.inf:
        raise ValueError(f"{name} must be finite and > 0, got {tau}")
    return tau


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


def check_generator(generator: object) -> None:
    """``None`` or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def check_noise_source(generator: object, key: object, position: object) -> None:
    """The noise comes from ``generator`` (a ``torch.Generator`` or ``None``) or from ``key``
    at ``position``, not both; a ``key`` needs a ``position``."""
    check_generator(generator)
    if key is not None and generator is not None:
        raise ValueError("pass either generator or key, not both")
    if key is not None and position is None:
        raise ValueError("position is required with key: the noise is keyed by (key, position)")


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype we compute in: float32 for half precision, else the dtype itself."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def all_finite(reduced: torch.Tensor) -> bool:
    """Whether every entry of a small reduced tensor is finite: one sum and one read.

    A sum is NaN or infinite when an entry is; it can also overflow for huge finite entries,
    so callers treat ``False`` as "look closer", never as an error on its own.
    """
    return math.isfinite(reduced.sum().item())


def check_finite_max(low: torch.Tensor, logits: torch.Tensor, dim: int) -> None:
    """Under validation: the perturbed maxima (or their negations) ``low`` are finite.

    A NaN logit makes its row's maximum NaN, a ``+inf`` logit makes it infinite, and a row
    masked everywhere has maximum ``-inf``: one reduction over ``low`` catches all three.
    """
    require(
        torch.isfinite(low),
        "logits contains NaN or +inf, or is -inf for every category of a row",
        lambda: raise_bad_logits(logits, dim),
    )


def check_drawable(logits: torch.Tensor, count: int, name: str, dim: int) -> None:
    """Under validation: every row along ``dim`` has at least ``count`` finite logits.

    A ``-inf`` logit is a masked category, never drawn, so ``k`` (or ``m``) distinct draws
    need that many finite ones in every row. A value check: one reduction and one read.
    """
    if not logits.numel():
        return
    drawable = torch.isfinite(logits).sum(dim)

    def explain() -> None:
        raise ValueError(
            f"{name}={count} is larger than the number of categories that can be drawn "
            f"(at least one row has only {int(drawable.min())} finite logits)"
        )

    require(drawable >= count, f"{name} is larger than the number of drawable categories", explain)


def raise_bad_logits(logits: torch.Tensor, dim: int, name: str = "logits") -> None:
    """Explain why ``logits`` cannot be sampled from; called only on the failure path."""
    if torch.isnan(logits).any():
        raise ValueError(f"{name} contains NaN")
    if torch.isposinf(logits).any():
        raise ValueError(f"{name} contains +inf")
    if torch.isneginf(logits).all(dim=dim).any():
        raise ValueError(f"{name} is -inf for every category along dim={dim}: nothing to draw")
    raise ValueError(f"{name} could not be sampled from (non-finite perturbed maximum)")
