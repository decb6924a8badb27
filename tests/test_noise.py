"""sample_gumbel and gumbel_from_uniform: the law, the bounds, and never inf or NaN.

False-failure budget of this module: 1e-6, split over its two DKWM claims.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import gumbel_from_uniform, noise_bounds, sample_gumbel, truncated_tail_mass
from gumbel_lib.noise import uniform_bounds
from gumbel_lib.stats import dkwm_epsilon, dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 2
DISCREPANCY = 0.01  # the cdf error each DKWM test must detect, with miss rate ALPHA
N = dkwm_sample_size(DISCREPANCY, ALPHA)


def test_sample_size_has_power() -> None:
    assert dkwm_epsilon(N, ALPHA) <= DISCREPANCY / 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_standard_law(dtype: torch.dtype) -> None:
    samples = sample_gumbel((N,), generator=seeded(1), dtype=dtype)
    verdict = dkwm_test(samples, scipy.stats.gumbel_r.cdf, alpha=ALPHA)
    assert verdict.passed, verdict


def test_negative_control_exponential_noise_is_rejected() -> None:
    u = torch.rand(N, generator=seeded(1), dtype=torch.float64)
    verdict = dkwm_test(-torch.log(u), scipy.stats.gumbel_r.cdf, alpha=ALPHA)
    assert not verdict.passed, verdict


def test_negative_control_small_shift_is_rejected() -> None:
    # A location error of 0.05 moves the cdf by about 0.018 at most: above DISCREPANCY.
    samples = sample_gumbel((N,), generator=seeded(2), dtype=torch.float64) + 0.05
    verdict = dkwm_test(samples, scipy.stats.gumbel_r.cdf, alpha=ALPHA)
    assert not verdict.passed, verdict


def test_same_seed_same_noise() -> None:
    a = sample_gumbel((5, 7), generator=seeded(3))
    b = sample_gumbel((5, 7), generator=seeded(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_gumbel((5, 7), generator=seeded(4)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_endpoints_of_the_uniform_give_finite_bounds(dtype: torch.dtype) -> None:
    ends = gumbel_from_uniform(torch.tensor([0.0, 1.0], dtype=dtype))
    assert torch.isfinite(ends).all()
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    exact = gumbel_from_uniform(torch.tensor([0.0, 1.0], dtype=wide))
    assert torch.allclose(exact, torch.tensor(noise_bounds(dtype), dtype=wide), rtol=1e-6)


def test_bounds_match_hand_computation() -> None:
    lo, hi = noise_bounds(torch.float32)
    assert lo == pytest.approx(-math.log(-math.log(2.0**-126)))
    assert hi == pytest.approx(-math.log(2.0**-24), rel=1e-7)  # -log(u) ~ 1 - u near one
    assert uniform_bounds(torch.float16) == uniform_bounds(torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tail_mass_is_the_gumbel_mass_outside_the_bounds(dtype: torch.dtype) -> None:
    lo, hi = noise_bounds(dtype)
    left, right = truncated_tail_mass(dtype)
    assert left == pytest.approx(scipy.stats.gumbel_r.cdf(lo), rel=1e-9)
    assert right == pytest.approx(scipy.stats.gumbel_r.sf(hi), rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_never_inf_or_nan_over_1e7_draws(dtype: torch.dtype) -> None:
    gen = seeded(5)
    lo, hi = noise_bounds(dtype)
    for _ in range(5):
        noise = sample_gumbel((2_000_000,), generator=gen, dtype=dtype)
        assert noise.dtype == dtype
        assert torch.isfinite(noise).all()
        assert lo - 0.05 <= noise.min().item() and noise.max().item() <= hi + 0.05


def test_loc_and_scale_are_applied_exactly() -> None:
    g = sample_gumbel((1000,), generator=seeded(6), dtype=torch.float64)
    x = sample_gumbel((1000,), loc=1.5, scale=0.25, generator=seeded(6), dtype=torch.float64)
    assert torch.allclose(x, 1.5 + 0.25 * g, rtol=0, atol=1e-14)
    loc = torch.tensor([0.0, 10.0], dtype=torch.float64)
    y = sample_gumbel((3, 2), loc=loc, generator=seeded(7), dtype=torch.float64)
    z = sample_gumbel((3, 2), generator=seeded(7), dtype=torch.float64)
    assert torch.equal(y, z + loc)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"shape": (-1,)}, ValueError, "shape"),
        ({"shape": (2.5,)}, TypeError, "shape"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
        ({"scale": 0.0}, ValueError, "scale"),
        ({"scale": -1.0}, ValueError, "scale"),
        ({"scale": math.nan}, ValueError, "scale"),
        ({"scale": torch.tensor([1.0, 0.0])}, ValueError, "scale"),
        ({"loc": math.inf}, ValueError, "loc"),
        ({"loc": torch.tensor([math.nan])}, ValueError, "loc"),
        ({"loc": "0"}, TypeError, "loc"),
        ({"loc": 70000.0, "dtype": torch.float16}, ValueError, "loc"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, error: type, name: str) -> None:
    shape = kwargs.pop("shape", (4,))
    with pytest.raises(error, match=name):
        sample_gumbel(shape, generator=seeded(0), **kwargs)


def test_gumbel_from_uniform_rejects_integers() -> None:
    with pytest.raises(TypeError, match="u must"):
        gumbel_from_uniform(torch.tensor([0, 1]))
