"""The exact law of a grid Gumbel-max sampler (gumbel_lib.finite_precision), against brute force.

Every check here is exact or deterministic: no false-failure budget.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gumbel_lib.finite_precision import (
    exact_group_law,
    grid_group_law,
    grid_noise,
    total_variation_bound,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("logits", "counts"),
    [
        ([0.0, -0.7], [1, 2]),
        ([0.3, 0.0, -1.0], [2, 1, 1]),
        ([0.0, 0.0], [1, 2]),
        ([-1.0, 0.0], [2, 1]),
    ],
)
def test_grid_group_law_is_the_law_of_every_combination(
    dtype: torch.dtype, logits: list[float], counts: list[int]
) -> None:
    """Run the grid sampler on every combination of grid points (3 bits), first index on ties."""
    bits = 3
    noise = torch.from_numpy(grid_noise(bits, dtype)).to(dtype)
    tokens = torch.tensor(
        [v for v, c in zip(logits, counts, strict=True) for _ in range(c)], dtype=dtype
    )
    group = [a for a, c in enumerate(counts) for _ in range(c)]
    law = np.zeros(len(counts))
    for ks in itertools.product(range(2**bits), repeat=len(tokens)):
        law[group[int((tokens + noise[list(ks)]).argmax())]] += 1
    law /= 2 ** (bits * len(tokens))
    np.testing.assert_allclose(
        grid_group_law(logits, counts, bits, dtype), law, rtol=1e-12, atol=1e-15
    )


def test_the_order_of_the_groups_matters_on_ties() -> None:
    """Negative control: with equal logits the first group wins the ties."""
    first, second = grid_group_law([0.0, 0.0], [1, 1], 4, torch.float64)
    assert first > 0.5 > second


def test_float32_grid_starves_a_large_tail_and_the_exact_law_does_not() -> None:
    """20 bits, one token at 0 and 1024 at -16: the grid sampler draws the tail far below its
    softmax mass (the float32 bias that vocabulary-scale measures at 24 bits)."""
    grid = grid_group_law([0.0, -16.0], [1, 1024], 20)
    exact = exact_group_law([0.0, -16.0], [1, 1024])
    assert math.isclose(grid.sum(), 1.0, rel_tol=1e-12) and math.isclose(exact.sum(), 1.0)
    assert grid[1] < 0.01 * exact[1]


def test_grid_noise_is_the_float32_map_of_the_grid() -> None:
    noise = grid_noise(8, torch.float32)
    u = (
        (torch.arange(256, dtype=torch.float64) / 256)
        .float()
        .clamp_(min=torch.finfo(torch.float32).tiny)
    )
    assert np.array_equal(noise, (-torch.log(-torch.log(u))).double().numpy())
    assert np.all(np.diff(noise) > 0)


def test_total_variation_bound_and_bad_arguments() -> None:
    assert total_variation_bound(2**18) == 3 * 2**18 * 2.0**-53 + 2.0**-44
    assert total_variation_bound(2**60) == 1.0
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n must"):
            total_variation_bound(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bits"):
        grid_noise(40)
    with pytest.raises(TypeError, match="dtype"):
        grid_noise(4, torch.float16)
    with pytest.raises(ValueError, match="same length"):
        grid_group_law([0.0], [1, 2], 4)
    with pytest.raises(ValueError, match="counts"):
        grid_group_law([0.0, 1.0], [1, 0], 4)
