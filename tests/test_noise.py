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
from gumbel_lib.noise import clamped_rand, log_exponential, uniform_bounds
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


# torch.rand(256, 512, generator=seeded(84)) holds an exact 0.0 at (188, 509): a large draw
# (the first is small), so both meet u = 0 (asserted, not assumed)
LARGE_ZERO_SEED, LARGE_ZERO_SHAPE, LARGE_ZERO_AT = 84, (256, 512), (188, 509)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("seed", "shape"), [(28587, (4, 64)), (LARGE_ZERO_SEED, LARGE_ZERO_SHAPE), (5, (3, 7, 11))]
)
def test_clamped_rand_is_the_clamped_torch_rand(
    dtype: torch.dtype, seed: int, shape: tuple[int, ...]
) -> None:
    """The one-pass CPU draw equals ``torch.rand(...).clamp_(tiny, 1 - eps/2)`` bit for bit,
    and leaves the generator where ``torch.rand`` leaves it (seeds 28587 and 84 draw an
    exact zero in float32: the clamp's lower bound binds)."""
    a, b = seeded(seed), seeded(seed)
    expected = torch.rand(shape, generator=a, dtype=dtype).clamp_(*uniform_bounds(dtype))
    assert torch.equal(clamped_rand(shape, generator=b, dtype=dtype, device=None), expected)
    assert torch.equal(torch.rand(9, generator=a), torch.rand(9, generator=b))


def test_large_zero_seed_really_draws_a_zero() -> None:
    u = torch.rand(LARGE_ZERO_SHAPE, generator=seeded(LARGE_ZERO_SEED))
    assert u[LARGE_ZERO_AT].item() == 0.0 and u.numel() > 2**16


def test_large_draws_share_the_injectable_path() -> None:
    """For a large draw too, sampler noise is gumbel_from_uniform of torch.rand's draw,
    finite where that draw is exactly zero."""
    u = torch.rand(LARGE_ZERO_SHAPE, generator=seeded(LARGE_ZERO_SEED))
    g = gumbel_from_uniform(u)
    assert torch.isfinite(g).all() and g[LARGE_ZERO_AT] == noise_bounds(torch.float32)[0]
    assert torch.equal(sample_gumbel(LARGE_ZERO_SHAPE, generator=seeded(LARGE_ZERO_SEED)), g)


def ulp_error(values: torch.Tensor, exact: torch.Tensor) -> float:
    """Largest error of float32 ``values`` in units of their last place, against float64."""
    spacing = torch.from_numpy(np.spacing(values.abs().numpy())).double()
    return float(((values.double() - exact).abs() / spacing).max())


def test_numpy_log_is_accurate_to_four_ulp_and_pytorch_to_one() -> None:
    """The claim of noise._log_exponential_of, on the values its logarithms see: uniforms
    and their -log, and a sweep of every binade of float32."""
    u = torch.rand(2**20, generator=seeded(12)).clamp_(*uniform_bounds(torch.float32))
    x = torch.cat([u, -torch.log(u), torch.logspace(-37, 38, 10_000)])
    exact = torch.log(x.double())
    assert ulp_error(torch.from_numpy(np.log(x.numpy())), exact) < 4
    assert ulp_error(torch.log(x), exact) < 1
    # negative control: the measure sees a coarser logarithm (float16's, rounded up)
    y = x.clamp(6e-5, 6e4)
    assert ulp_error(torch.log(y.half()).float(), torch.log(y.double())) > 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3,), (64, 10), (256, 512)])
def test_noise_is_the_numpy_log_of_the_same_draw(
    dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    """On the CPU the noise is log(-log u) in NumPy, of clamped_rand's u, at every size;
    in float64 NumPy and PyTorch agree within 2 ulp."""
    u = clamped_rand(shape, generator=seeded(13), dtype=dtype, device=None)
    a = u.numpy().copy()
    minus_g = log_exponential(shape, generator=seeded(13), dtype=dtype, device=None)
    assert torch.equal(minus_g, torch.from_numpy(np.log(-np.log(a))))
    if dtype == torch.float64:  # one logarithm, on the same inputs
        ours = torch.from_numpy(np.log(a))
        spacing = torch.from_numpy(np.spacing(np.abs(ours.numpy())))
        assert float(((ours - u.log()).abs() / spacing).max()) <= 2
