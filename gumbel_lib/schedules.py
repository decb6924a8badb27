"""Temperature schedules for annealing a relaxation from smooth to sharp.

* ``exponential_schedule(start, end, steps)``: ``tau_t = start * (end / start)^(t / (steps - 1))``
  for ``t = 0, ..., steps - 1``, so ``tau_0 = start`` and ``tau_{steps-1} = end`` (the biased
  die of :doc:`Learning a biased die </book/biased-die>` anneals 2.0 -> 0.5 over 1000
  steps).
* ``jang_schedule(tau0, tau_min, rate, every)``: Jang et al. (2017) update the temperature
  every ``every`` steps to ``max(tau_min, tau0 * exp(-rate * t))``, with ``t`` the step at
  the last update.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from gumbel_lib._validation import check_positive


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def exponential_schedule(start: float, end: float, steps: int) -> np.ndarray:
    """The ``steps`` temperatures of an exponential decay from ``start`` to ``end``.

    ``end`` may not exceed ``start`` (this is a decay); ``steps = 1`` gives ``[start]``
    only when ``start == end``. Any positive finite endpoints work: where ``end / start``
    underflows (below the smallest normal double, as for ``1e300 -> 1e-300``, where it
    would give zero temperatures) we compute in log space,
    ``exp(log start + (t / (steps - 1)) (log end - log start))``, clipped to
    ``[end, start]``, with both endpoints exact.

    >>> exponential_schedule(2.0, 0.5, 3).round(4).tolist()
    [2.0, 1.0, 0.5]
    >>> [f"{tau:.3g}" for tau in exponential_schedule(1e300, 1e-300, 3)]
    ['1e+300', '1', '1e-300']
    """
    start, end = check_positive(start, "start"), check_positive(end, "end")
    steps = _count(steps, "steps", 1)
    if end > start:
        raise ValueError(f"end={end} is larger than start={start}: a decay must not increase")
    if steps == 1:
        if end != start:
            raise ValueError("steps=1 cannot go from start to a different end")
        return np.array([start])
    fraction = np.arange(steps) / (steps - 1)
    if end / start >= np.finfo(np.float64).tiny:
        return start * (end / start) ** fraction
    log_start = math.log(start)
    taus = np.clip(np.exp(log_start + fraction * (math.log(end) - log_start)), end, start)
    taus[0], taus[-1] = start, end
    return taus


def jang_schedule(tau0: float, tau_min: float, rate: float, every: int, steps: int) -> np.ndarray:
    """Jang et al.'s annealing: ``tau = max(tau_min, tau0 * exp(-rate * t))`` every N steps.

    Step ``t`` uses the temperature set at the last update, step ``every * (t // every)``.
    Any positive ``every`` works (one at least ``steps`` means no update after step 0: we
    use ``min(every, steps)``, the same schedule, so that ``every * t`` fits in int64), and
    a decay factor ``exp(-rate * t)`` that underflows to 0 leaves the floor ``tau_min``.

    >>> jang_schedule(1.0, 0.5, 0.1, 2, 4).round(4).tolist()
    [1.0, 1.0, 0.8187, 0.8187]
    """
    tau0, tau_min = check_positive(tau0, "tau0"), check_positive(tau_min, "tau_min")
    if tau_min > tau0:
        raise ValueError(f"tau_min={tau_min} is larger than tau0={tau0}")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a real number, got {type(rate).__name__}")
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be finite and >= 0 (a decay), got {rate}")
    every = _count(every, "every", 1)
    steps = _count(steps, "steps", 1)
    every = min(every, steps)  # a larger period updates no more often, and fits in int64
    updated_at = every * (np.arange(steps) // every)
    return np.maximum(tau_min, tau0 * np.exp(-float(rate) * updated_at))
