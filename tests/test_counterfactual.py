"""Gumbel-max counterfactuals: the posterior noise, counterfactual stability, the exact law.

False-failure budget of this module: 1e-6, split over its five chance asserts (ALPHA each):
a DKWM test of the prior noise kept by a masked category (exact rate), chi-square tests of
sampled (observation, counterfactual) pairs against the Gumbel coupling's joint law and of
counterfactual sequences against their exact law (asymptotic rates), and the rejections of
two near controls (a fraction of maximal-coupling pairs; a fraction of sequences abducted on
the counterfactual prefix), each placed at 1.25 times the effect size its test is sized for.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import conditional_gumbels, gumbel_max
from gumbel_lib.counterfactual import (
    counterfactual_gumbel_max,
    counterfactual_probs,
    counterfactual_sequence,
    posterior_gumbels,
)
from gumbel_lib.coupling import coupling_joint
from gumbel_lib.stats import chisquare_sample_size, chisquare_test, dkwm_sample_size, dkwm_test

ALPHA = 1e-6 / 5
LOGITS = torch.tensor([1.2, 0.4, 0.0, -0.3, -1.0], dtype=torch.float64)
CF_LOGITS = LOGITS + torch.tensor([-0.5, 0.0, 0.0, 1.5, 0.3], dtype=torch.float64)
K = 5


def cohen_w(law: np.ndarray, claimed: np.ndarray) -> float:
    keep = claimed > 0
    return float(np.sqrt(((law - claimed)[keep] ** 2 / claimed[keep]).sum()))


def test_posterior_is_conditional_gumbels_and_wins_every_time() -> None:
    observed = torch.tensor([0, 2, 4, 1])
    logits = LOGITS.expand(4, K)
    noise = posterior_gumbels(logits, observed, 300, generator=seeded(1))
    z = conditional_gumbels(logits, observed, 300, generator=seeded(1))
    assert torch.equal((logits + noise).argmax(-1), observed.expand(300, 4))
    torch.testing.assert_close(logits + noise, z, rtol=0, atol=1e-12)
    transposed = posterior_gumbels(logits.T, observed, 300, dim=0, generator=seeded(1))
    assert torch.equal((logits.T + transposed).argmax(1), observed.expand(300, 4))


def test_a_masked_category_keeps_its_prior_noise() -> None:
    n = dkwm_sample_size(0.01, ALPHA)
    logits = LOGITS.clone()
    logits[3] = -torch.inf
    noise = posterior_gumbels(logits, torch.tensor(0), n, generator=seeded(2))
    assert noise.isfinite().all()
    assert dkwm_test(noise[:, 3], scipy.stats.gumbel_r.cdf, alpha=ALPHA).passed
    cf = counterfactual_probs(logits, torch.tensor(0), CF_LOGITS)  # 3 becomes drawable
    assert cf[3] > 0 and abs(cf.sum().item() - 1) < 1e-12


def test_stability_exact_zeros_and_unchanged_logits() -> None:
    pairs = torch.randn(300, 2, 6, generator=seeded(3), dtype=torch.float64)
    for a, b in pairs:
        p, q = torch.softmax(a, 0), torch.softmax(b, 0)
        for k in range(6):
            law = counterfactual_probs(a, torch.tensor(k), b)
            blocked = (q[k] / p[k] >= q / p) & (torch.arange(6) != k)
            assert (law[blocked] == 0).all() and abs(law.sum().item() - 1) < 1e-12
    for k in range(K):
        same = counterfactual_gumbel_max(
            LOGITS, torch.tensor(k), LOGITS, 2000, generator=seeded(4)
        )
        assert (same == k).all()
        assert torch.equal(
            counterfactual_probs(LOGITS, torch.tensor(k), LOGITS),
            torch.eye(K, dtype=torch.float64)[k],
        )


def test_sampled_counterfactuals_follow_the_coupling_joint_law() -> None:
    joint = coupling_joint(LOGITS, CF_LOGITS).numpy()
    p, q = joint.sum(1), joint.sum(0)
    tv = 0.5 * np.abs(p - q).sum()
    maximal = np.diag(np.minimum(p, q)) + np.outer(np.maximum(p - q, 0), np.maximum(q - p, 0)) / tv
    w = 0.03
    omega = 1.25 * w / cohen_w(maximal, joint)
    n = chisquare_sample_size(w, int((joint > 0).sum()) - 1, ALPHA)
    gen = seeded(5)
    x = gumbel_max(LOGITS.expand(n, K), generator=gen)
    y = counterfactual_gumbel_max(LOGITS.expand(n, K), x, CF_LOGITS.expand(n, K), 1, generator=gen)
    cells = x * K + y[0]
    assert chisquare_test(
        torch.bincount(cells, minlength=K * K), joint.ravel(), alpha=ALPHA
    ).passed
    law = counterfactual_probs(LOGITS.expand(K, K), torch.arange(K), CF_LOGITS.expand(K, K))
    np.testing.assert_allclose(law.numpy() * p[:, None], joint, atol=1e-15)
    flat = torch.from_numpy(maximal.ravel())  # a near control: some pairs from another mechanism
    other = torch.multinomial(flat, n, replacement=True, generator=gen)
    mixed = torch.where(torch.rand(n, generator=gen) < omega, other, cells)
    counts = torch.bincount(mixed, minlength=K * K)
    assert not chisquare_test(counts, joint.ravel(), alpha=ALPHA).passed


BIGRAM = torch.tensor([[0.5, -0.2, 0.1], [0.0, 1.0, -1.0], [-0.5, 0.3, 0.4]], dtype=torch.float64)
BIGRAM_CF = BIGRAM + torch.tensor([0.0, -0.8, 1.2], dtype=torch.float64)
OBSERVED = [1, 0, 2]


def last(prefix: torch.Tensor) -> torch.Tensor:
    return prefix[:, -1] if prefix.shape[1] else torch.zeros(len(prefix), dtype=torch.int64)


def sequence_law(wrong: bool = False) -> np.ndarray:
    """Exact counterfactual law of the 27 sequences; `wrong` abducts on the counterfactual
    prefix instead of the observed one."""
    law = np.zeros(27)
    for code, seq in enumerate(np.ndindex(3, 3, 3)):
        prob, before, before_cf = 1.0, 0, 0
        for x_t, y_t in zip(OBSERVED, seq, strict=True):
            factual = BIGRAM[before_cf if wrong else before]
            row = counterfactual_probs(factual, torch.tensor(x_t), BIGRAM_CF[before_cf])
            prob *= row[y_t].item()
            before, before_cf = x_t, y_t
        law[code] = prob
    return law


def test_counterfactual_sequences_follow_their_exact_law() -> None:
    law, wrong_law = sequence_law(), sequence_law(wrong=True)
    assert abs(law.sum() - 1) < 1e-12 and abs(wrong_law.sum() - 1) < 1e-12
    w = 0.03
    n = chisquare_sample_size(w, int((law > 0).sum()) - 1, ALPHA)
    factual = torch.stack([BIGRAM[b] for b in [0, *OBSERVED[:-1]]])
    gen = seeded(6)
    draws = counterfactual_sequence(
        factual, torch.tensor(OBSERVED), lambda prefix: BIGRAM_CF[last(prefix)], n, generator=gen
    )
    code = draws @ torch.tensor([9, 3, 1])
    assert chisquare_test(torch.bincount(code, minlength=27), law, alpha=ALPHA).passed
    omega = 1.25 * w / cohen_w(wrong_law, law)
    other = torch.multinomial(torch.from_numpy(wrong_law), n, replacement=True, generator=gen)
    mixed = torch.where(torch.rand(n, generator=gen) < omega, other, code)
    assert not chisquare_test(torch.bincount(mixed, minlength=27), law, alpha=ALPHA).passed


def test_structural_and_value_errors() -> None:
    with pytest.raises(TypeError, match="observed"):
        posterior_gumbels(LOGITS, torch.tensor(1.0), 2)
    with pytest.raises(ValueError, match="observed must have shape"):
        posterior_gumbels(LOGITS, torch.tensor([1, 2]), 2)
    with pytest.raises(ValueError, match="out of range"):
        posterior_gumbels(LOGITS, torch.tensor(7), 2)
    masked = LOGITS.clone()
    masked[2] = -torch.inf
    with pytest.raises(ValueError, match="probability 0"):
        counterfactual_probs(masked, torch.tensor(2), CF_LOGITS)
    with pytest.raises(ValueError, match="counterfactual_logits must have the shape"):
        counterfactual_gumbel_max(LOGITS, torch.tensor(0), CF_LOGITS[:3], 2)
    bad = CF_LOGITS.clone()
    bad[0] = float("nan")
    with pytest.raises(ValueError, match="counterfactual_logits"):
        counterfactual_gumbel_max(LOGITS, torch.tensor(0), bad, 2, generator=seeded(0))
    with pytest.raises(ValueError, match="n_samples"):
        posterior_gumbels(LOGITS, torch.tensor(0), 0)
