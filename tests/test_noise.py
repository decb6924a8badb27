"""sample_gumbel and gumbel_from_uniform: the law, the bounds, and never inf or NaN.

False-failure budget of this module: 1e-6, split over its two DKWM claims.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import gumbel_from_uniform, noise_bounds, sample_gumbel, truncated_tail_mass
from gumbel_lib.noise import minus_gumbel, uniform_bounds
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
    assert ends.tolist() == list(noise_bounds(dtype))


def test_bounds_match_hand_computation() -> None:
    lo, hi = noise_bounds()
    assert lo == pytest.approx(-math.log(-math.log(2.0**-1022)), rel=1e-15)
    assert hi == pytest.approx(-math.log(2.0**-53), rel=1e-15)  # -log(u) ~ 1 - u near one
    assert uniform_bounds() == (2.0**-1022, 1.0 - 2.0**-53)
    assert truncated_tail_mass() == (2.0**-1022, 2.0**-53)


def test_tail_mass_is_the_gumbel_mass_outside_the_bounds() -> None:
    lo, hi = noise_bounds()
    left, right = truncated_tail_mass()
    assert left == pytest.approx(scipy.stats.gumbel_r.cdf(lo), rel=1e-9)
    assert right == pytest.approx(scipy.stats.gumbel_r.sf(hi), rel=1e-9)


def test_upper_tail_is_exact_on_the_53_bit_grid() -> None:
    """Near u = 1 each grid point 1 - j 2**-53 maps to -log(-log1p(-j 2**-53)) to within
    float64 rounding, up to g_max = 36.7; float32 uniforms (negative control) cannot go
    past -log(2**-24) = 16.6, where a category 20 nats below the best can never win."""
    j = torch.arange(1, 100_001, dtype=torch.float64)
    u = 1.0 - j * 2.0**-53
    exact = -torch.log(-torch.log1p(-j * 2.0**-53))
    g = gumbel_from_uniform(u)
    assert torch.allclose(g, exact, rtol=4e-16, atol=0)
    assert g.max().item() > 36.7
    float32_grid = torch.floor(u * 2**24) / 2**24  # torch.rand's float32 values
    assert gumbel_from_uniform(float32_grid).max().item() < 16.7


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5])
def test_gumbel_from_uniform_rejects_nan_and_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"u must lie in \[0, 1\]"):
        gumbel_from_uniform(torch.tensor([0.5, bad]))
    g = gumbel_from_uniform(torch.tensor([0.5, bad]), validate_args=False)
    assert g.shape == (2,)  # validation off: the caller's responsibility


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


def ulp_error(values: np.ndarray, exact: np.ndarray) -> float:
    """Largest error of ``values`` in units of the last place of ``exact``."""
    return float((np.abs(values - exact) / np.spacing(np.abs(exact))).max())


def test_numpy_float64_log_is_accurate_to_one_ulp() -> None:
    """The logarithm the CPU noise uses (NumPy's, in float64), on the values it sees:
    uniforms, their -log, and a sweep over every binade; against C's log through Python's
    math module, which glibc rounds correctly here."""
    u = torch.rand(2**14, generator=seeded(12), dtype=torch.float64).clamp_(*uniform_bounds())
    x = np.concatenate([u.numpy(), -np.log(u.numpy()), np.logspace(-300, 300, 2000)])
    exact = np.array([math.log(v) for v in x])
    assert ulp_error(np.log(x), exact) <= 1
    # negative control: the measure sees a float32 logarithm
    normal32 = (x > 1e-37) & (x < 1e38)
    single = np.log(x[normal32].astype(np.float32)).astype(np.float64)
    assert ulp_error(single, exact[normal32]) > 1e6


@pytest.mark.parametrize("shape", [(3,), (64, 10), (256, 512)])
def test_noise_is_the_map_of_torch_rand_in_float64(shape: tuple[int, ...]) -> None:
    """The samplers' -g is gumbel_from_uniform of torch.rand's float64 draw, bit for bit,
    and agrees with PyTorch's own logarithms to a few units of float64 rounding (absolute
    near g = 0, where log(-log u) cancels, relative elsewhere)."""
    u = torch.rand(shape, generator=seeded(13), dtype=torch.float64)
    minus_g = minus_gumbel(shape, generator=seeded(13), device=None)
    assert torch.equal(minus_g, -gumbel_from_uniform(u))
    torch_map = u.clamp(*uniform_bounds()).log().neg().log()
    assert torch.allclose(minus_g, torch_map, rtol=5e-16, atol=5e-16)
