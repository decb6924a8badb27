"""Temperature schedules: values, endpoints and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gumbel_lib.schedules import exponential_schedule, jang_schedule


def test_exponential_endpoints_and_ratio() -> None:
    taus = exponential_schedule(2.0, 0.5, 1000)
    assert taus.shape == (1000,)
    assert taus[0] == pytest.approx(2.0) and taus[-1] == pytest.approx(0.5)
    assert np.allclose(taus[1:] / taus[:-1], (0.25) ** (1 / 999))


def test_exponential_constant_and_single_step() -> None:
    assert np.allclose(exponential_schedule(1.0, 1.0, 5), 1.0)
    assert exponential_schedule(0.7, 0.7, 1).tolist() == [0.7]


def test_jang_updates_every_n_steps_and_floors() -> None:
    taus = jang_schedule(1.0, 0.5, 1e-2, 100, 1000)
    assert np.all(taus[:100] == 1.0)
    assert taus[100] == pytest.approx(math.exp(-1.0)) or taus[100] == 0.5
    assert taus.min() == pytest.approx(0.5) and np.all(np.diff(taus) <= 0)
    assert len(set(taus[200:299].tolist())) == 1


def test_extreme_endpoints_stay_positive_and_exact() -> None:
    # end / start = 1e-600 underflows to 0: the log-space path keeps every value positive
    taus = exponential_schedule(1e300, 1e-300, 3)
    assert taus[0] == 1e300 and taus[-1] == 1e-300 and taus[1] == pytest.approx(1.0)
    widest = exponential_schedule(np.finfo(np.float64).max, 5e-324, 101)
    assert np.all(widest > 0) and np.all(np.isfinite(widest)) and np.all(np.diff(widest) <= 0)
    assert widest[0] == np.finfo(np.float64).max and widest[-1] == 5e-324
    assert np.allclose(np.diff(np.log(widest[1:-1])), np.diff(np.log(widest[1:-1]))[0])
    # the ordinary path is unchanged, bit for bit
    assert np.array_equal(exponential_schedule(2.0, 0.5, 50), 2.0 * 0.25 ** (np.arange(50) / 49))


def test_jang_with_a_period_beyond_the_run() -> None:
    # every * (t // every) overflowed int64 for every = 10**20; any every >= steps means
    # the temperature is never updated
    assert jang_schedule(1.0, 0.5, 0.1, 10**20, 5).tolist() == [1.0] * 5
    assert np.array_equal(jang_schedule(1.0, 0.5, 0.1, 7, 7), jang_schedule(1.0, 0.5, 0.1, 8, 7))
    huge_rate = jang_schedule(1e300, 1e-300, 1e300, 1, 4)  # exp underflows: the floor
    assert huge_rate.tolist() == [1e300, 1e-300, 1e-300, 1e-300]


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: exponential_schedule(0.0, 0.5, 10), ValueError, "start"),
        (lambda: exponential_schedule(2.0, -1.0, 10), ValueError, "end"),
        (lambda: exponential_schedule(2.0, math.inf, 10), ValueError, "end"),
        (lambda: exponential_schedule(0.5, 2.0, 10), ValueError, "end=2.0 is larger"),
        (lambda: exponential_schedule(2.0, 0.5, 0), ValueError, "steps"),
        (lambda: exponential_schedule(2.0, 0.5, 1), ValueError, "steps=1"),
        (lambda: exponential_schedule(2.0, 0.5, 2.5), TypeError, "steps"),
        (lambda: jang_schedule(1.0, 0.5, -0.1, 10, 10), ValueError, "rate"),
        (lambda: jang_schedule(1.0, 0.5, math.nan, 10, 10), ValueError, "rate"),
        (lambda: jang_schedule(1.0, 0.5, "0.1", 10, 10), TypeError, "rate"),
        (lambda: jang_schedule(1.0, 0.5, 0.1, 0, 10), ValueError, "every"),
        (lambda: jang_schedule(1.0, 2.0, 0.1, 1, 10), ValueError, "tau_min"),
        (lambda: jang_schedule(math.nan, 0.5, 0.1, 1, 10), ValueError, "tau0"),
        (lambda: jang_schedule(1.0, 0.5, 0.1, 1, 0), ValueError, "steps"),
    ],
)
def test_bad_parameters_name_themselves(call, error: type, name: str) -> None:
    with pytest.raises(error, match=name):
        call()


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    start=st.floats(1e-3, 1e3),
    ratio=st.floats(1e-4, 1.0),
    steps=st.integers(2, 2000),
)
def test_exponential_is_a_monotone_decay_between_its_endpoints(start, ratio, steps) -> None:
    end = start * ratio
    taus = exponential_schedule(start, end, steps)
    assert taus.shape == (steps,) and np.all(np.isfinite(taus))
    assert taus[0] == start and taus[-1] == pytest.approx(end, rel=1e-12)
    assert np.all(np.diff(taus) <= 0)
    assert np.all((taus >= end * (1 - 1e-12)) & (taus <= start))


@settings(derandomize=True, deadline=None, max_examples=200)
@given(
    tau0=st.floats(1e-2, 1e2),
    floor_ratio=st.floats(1e-3, 1.0),
    rate=st.floats(0.0, 1.0),
    every=st.integers(1, 50),
    steps=st.integers(1, 500),
)
def test_jang_is_piecewise_constant_non_increasing_and_floored(
    tau0, floor_ratio, rate, every, steps
) -> None:
    tau_min = tau0 * floor_ratio
    taus = jang_schedule(tau0, tau_min, rate, every, steps)
    assert taus.shape == (steps,) and taus[0] == tau0
    assert np.all(np.diff(taus) <= 0) and np.all(taus >= tau_min)
    blocks = taus[: (steps // every) * every].reshape(-1, every)
    assert np.all(blocks == blocks[:, :1])
