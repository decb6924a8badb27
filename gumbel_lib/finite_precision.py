"""The exact law of a Gumbel-max sampler whose uniforms lie on a finite grid.

A sampler that draws ``u = k 2**-b`` (``k = 0, ..., 2**b - 1``, each with probability
``2**-b``), maps it to noise ``g(k)`` in some floating-point dtype and compares the rounded
sums ``x_i = fl(l_i + g(k_i))``, taking the first index among ties, draws category ``i``
with probability

    P(i) = sum_x P(x_i = x) prod_{j < i} P(x_j < x) prod_{j > i} P(x_j <= x),

a finite sum over the values ``x`` the sums can take. This module evaluates it exactly, in
float64, for logits made of groups of equal values (a vocabulary's head and tail), so that
the error of a float32 sampler at vocabulary scale can be computed instead of estimated.
Derived in :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_GRID_BITS = 26  # 2**26 grid points: 512 MiB of float64 per group at most


def grid_noise(bits: int, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Every noise value of a ``bits``-bit grid sampler computed in ``dtype``, in grid order.

    ``u = k 2**-bits`` is clamped below to ``dtype``'s smallest normal number and mapped
    to ``-log(-log u)`` with PyTorch's logarithm in ``dtype``: with ``bits = 24`` and float32,
    the sampler that ``torch.rand`` in float32 feeds. Non-decreasing in ``k``.

    >>> grid_noise(2, torch.float64).round(3).tolist()
    [-6.563, -0.327, 0.367, 1.246]
    """
    if not isinstance(bits, int) or not 1 <= bits <= MAX_GRID_BITS:
        raise ValueError(f"bits must be an int in [1, {MAX_GRID_BITS}], got {bits!r}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    k = torch.arange(2**bits, dtype=torch.float64)
    u = (k * 2.0**-bits).to(dtype).clamp_(min=torch.finfo(dtype).tiny)
    return (-torch.log(-torch.log(u))).double().numpy()


def _group_sums(noise: np.ndarray, logit: float, dtype: torch.dtype) -> np.ndarray:
    """The sorted values ``fl(logit + g)`` a token of logit ``logit`` can take."""
    sums = torch.from_numpy(noise).to(dtype) + torch.tensor(logit, dtype=dtype)
    return sums.double().numpy()


def grid_group_law(
    logits: list[float], counts: list[int], bits: int, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    """Probability that the argmax falls in each group of equal logits, for a grid sampler.

    Group ``a`` holds ``counts[a]`` tokens of logit ``logits[a]``; groups come in index
    order and ties go to the first index (``torch.argmax``). The noise is
    :func:`grid_noise` of ``bits`` bits and the sums are rounded to ``dtype``. With
    ``F_a(x)`` the probability that one token of group ``a`` is ``<= x`` and ``F_a^-(x)``
    that it is ``< x``, group ``a`` wins with probability

        sum_x [F_a(x)^c_a - F_a^-(x)^c_a] prod_{b < a} F_b^-(x)^c_b prod_{b > a} F_b(x)^c_b,

    summed over every value ``x`` a sum can take. Each difference of powers is computed as
    ``F^-^c expm1(c log1p(dF / F^-))``, accurate to float64 rounding however small.

    >>> p = grid_group_law([0.0, 0.0], [1, 1], 12, torch.float64)
    >>> bool(abs(p[0] - 0.5) < 1e-3 and p[0] > p[1])  # ties go to the first index
    True
    """
    if len(logits) != len(counts) or not logits:
        raise ValueError("logits and counts must be non-empty lists of the same length")
    if any(not isinstance(c, int) or c < 1 for c in counts):
        raise ValueError(f"counts must be positive ints, got {counts}")
    noise = grid_noise(bits, dtype)
    sums = [_group_sums(noise, float(logit), dtype) for logit in logits]
    scale = float(2**bits)
    law = np.empty(len(logits))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for a, c in enumerate(counts):
            points: np.ndarray = np.unique(sums[a])  # group a can only win at its own values
            log_at_most = np.log(np.searchsorted(sums[a], points, side="right") / scale)
            log_below = np.log(np.searchsorted(sums[a], points, side="left") / scale)
            log_others = np.zeros_like(points)  # log prod_{b<a} F_b^-^c_b prod_{b>a} F_b^c_b
            for b, s_b in enumerate(sums):
                if b != a:
                    side = "left" if b < a else "right"
                    count = np.searchsorted(s_b, points, side=side)  # type: ignore[call-overload]
                    log_others += counts[b] * np.log(count / scale)
            # log(F^c - F^-^c) = c log F^- + log(expm1(c (log F - log F^-))), stable for
            # tiny steps; where F^- = 0 it is c log F
            jump = c * (log_at_most - log_below)
            log_step = np.where(jump > 30.0, jump, np.log(np.expm1(jump)))
            log_term = np.where(np.isneginf(log_below), c * log_at_most, c * log_below + log_step)
            law[a] = float(np.sum(np.exp(log_term + log_others)))
    return law


def exact_group_law(logits: list[float], counts: list[int]) -> np.ndarray:
    """``softmax`` mass of each group: ``counts[a] e^{logits[a]} / sum_b counts[b] e^{logits[b]}``.

    >>> exact_group_law([0.0, -18.0], [1, 16384]).round(6).tolist()
    [0.999751, 0.000249]
    """
    weights = np.log(np.asarray(counts, dtype=np.float64)) + np.asarray(logits, dtype=np.float64)
    law: np.ndarray = np.exp(weights - np.logaddexp.reduce(weights))
    return law


def total_variation_bound(n: int) -> float:
    """``3 n 2**-53 + 2**-44``: the total-variation distance from ``softmax(l)`` within which
    :func:`gumbel_lib.sampling.gumbel_max` samples ``n`` drawable categories, at any logits
    (the theorem of :doc:`Gumbel-max at vocabulary scale </book/vocabulary-scale>`).

    >>> f"{total_variation_bound(2**18):.1e}"
    '8.7e-11'
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return min(1.0, 3 * n * 2.0**-53 + 2.0**-44)
