"""Speculative sampling: the exact step, its keyed noise, the noise-reuse bias, drafter invariance.

False-failure budget of this module: 1e-6, split over its six chance asserts (ALPHA each):
chi-square tests of the step's output against the target law (generator and keyed noise;
asymptotic rates), an exact binomial test of its acceptance rate, the rejection of the
noise-reusing step (a near control: its exact bias, from the Gumbel coupling's joint law,
has an effect size at least the design's), and two binomial tests of drafter-invariant
acceptance against the coupling's agreement probability.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import gumbel_max, sample_gumbel, sample_tokens
from gumbel_lib.coupling import coupling_agreement, coupling_joint
from gumbel_lib.speculative import drafter_invariant_step, residual_logits, speculative_step
from gumbel_lib.stats import chisquare_sample_size, chisquare_test

ALPHA = 1e-6 / 6
P_LOGITS = torch.tensor([1.2, 0.4, 0.0, -0.3, -1.0, -1.5], dtype=torch.float64)
Q_LOGITS = torch.tensor([0.6, 0.9, -0.2, -0.3, -0.4, -2.0], dtype=torch.float64)
K = 6
P = torch.softmax(P_LOGITS, 0).numpy()
Q = torch.softmax(Q_LOGITS, 0).numpy()
TV = 0.5 * np.abs(P - Q).sum()


def reuse_law() -> np.ndarray:
    """The exact output law when the recovery draw reuses the draft's Gumbels."""
    recovery = coupling_joint(Q_LOGITS, residual_logits(P_LOGITS, Q_LOGITS)).numpy()
    rejectable = Q > P
    rows = recovery[rejectable] / Q[rejectable, None]
    assert np.abs(rows - rows[0]).max() < 1e-14  # the same law after every rejection
    return np.minimum(P, Q) + TV * rows[0]


W = float(np.sqrt(((reuse_law() - P) ** 2 / P).sum()))  # the design: the reuse bias itself
N = chisquare_sample_size(W, K - 1, ALPHA)


def test_output_law_acceptance_and_the_noise_reuse_control() -> None:
    gen = seeded(1)
    drafts = gumbel_max(Q_LOGITS.expand(N, K), generator=gen)
    token, accepted = speculative_step(
        P_LOGITS.expand(N, K), Q_LOGITS.expand(N, K), drafts, generator=gen
    )
    assert chisquare_test(torch.bincount(token, minlength=K), P, alpha=ALPHA).passed
    assert scipy.stats.binomtest(int(accepted.sum()), N, 1 - TV).pvalue >= ALPHA
    assert torch.equal(token[accepted], drafts[accepted])
    g = sample_gumbel((N, K), generator=gen, dtype=torch.float64)
    draft = (Q_LOGITS + g).argmax(-1)
    keep = torch.rand(N, generator=gen, dtype=torch.float64) < torch.from_numpy(P / Q)[draft]
    reused = torch.where(keep, draft, (residual_logits(P_LOGITS, Q_LOGITS) + g).argmax(-1))
    assert not chisquare_test(torch.bincount(reused, minlength=K), P, alpha=ALPHA).passed


def test_keyed_step_uses_noise_independent_of_the_keyed_draft() -> None:
    """The draft drawn by sample_tokens at (key, position) and the step at the same pair:
    the step's uniform and recovery noise come from derived keys, so the law is exact."""
    keys = torch.arange(N) + 77
    drafts = sample_tokens(Q_LOGITS.expand(N, K), key=keys, position=3)
    token, _ = speculative_step(
        P_LOGITS.expand(N, K), Q_LOGITS.expand(N, K), drafts, key=keys, position=3
    )
    assert chisquare_test(torch.bincount(token, minlength=K), P, alpha=ALPHA).passed
    again, _ = speculative_step(
        P_LOGITS.expand(N, K), Q_LOGITS.expand(N, K), drafts, key=keys, position=3
    )
    assert torch.equal(token, again)
    first, _ = speculative_step(P_LOGITS, Q_LOGITS, drafts[0], key=77, position=3)
    assert first == token[0]  # a row does not depend on its batch


def test_equal_laws_accept_everything_and_the_residual_is_exact() -> None:
    logits = torch.randn(20, 5, generator=seeded(2), dtype=torch.float64)
    drafts = gumbel_max(logits, generator=seeded(3))
    token, accepted = speculative_step(logits, logits + 3.0, drafts, generator=seeded(4))
    assert accepted.all() and torch.equal(token, drafts)
    other = torch.randn(20, 5, generator=seeded(5), dtype=torch.float64)
    p, q = torch.softmax(logits, -1), torch.softmax(other, -1)
    residual = torch.softmax(residual_logits(logits, other), -1)
    expected = (p - q).clamp_min(0)
    torch.testing.assert_close(residual, expected / expected.sum(-1, keepdim=True))
    same = residual_logits(logits, logits)  # no positive part: the fallback is log p
    torch.testing.assert_close(torch.softmax(same, -1), p)


def test_drafter_invariance_and_its_acceptance_rate() -> None:
    keys = torch.arange(N) + 5000
    drafters = (Q_LOGITS, torch.zeros(K, dtype=torch.float64))
    outputs = []
    for drafter in drafters:
        draft = sample_tokens(drafter.expand(N, K), key=keys, position=0)
        token, accepted = drafter_invariant_step(
            P_LOGITS.expand(N, K), draft, key=keys, position=0
        )
        assert torch.equal(accepted, token == draft)
        rate = coupling_agreement(P_LOGITS, drafter).item()
        assert scipy.stats.binomtest(int(accepted.sum()), N, rate).pvalue >= ALPHA
        outputs.append(token)
    assert torch.equal(outputs[0], outputs[1])
    assert torch.equal(outputs[0], sample_tokens(P_LOGITS.expand(N, K), key=keys, position=0))


def test_structural_and_value_errors() -> None:
    target, draft = torch.zeros(2, 4), torch.zeros(2, 4)
    tokens = torch.tensor([0, 3])
    with pytest.raises(ValueError, match="same shape"):
        speculative_step(target, torch.zeros(2, 5), tokens)
    with pytest.raises(TypeError, match="draft_token"):
        speculative_step(target, draft, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="draft_token must have the batch shape"):
        speculative_step(target, draft, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        speculative_step(target, draft, torch.tensor([0, 4]), generator=seeded(0))
    masked = draft.clone()
    masked[1, 3] = -torch.inf
    with pytest.raises(ValueError, match="probability zero"):
        speculative_step(target, masked, tokens, generator=seeded(0))
    bad = target.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="target_logits"):
        speculative_step(bad, draft, tokens, generator=seeded(0))
    with pytest.raises(ValueError, match="either generator or key"):
        speculative_step(target, draft, tokens, generator=seeded(0), key=1, position=0)
    with pytest.raises(ValueError, match="position is required"):
        speculative_step(target, draft, tokens, key=1)
    token, _ = speculative_step(bad, draft, tokens, generator=seeded(0), validate_args=False)
    assert token.shape == (2,)
