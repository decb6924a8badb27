"""Gumbel-max watermarking: one step is exact, the null law of the score, its watermarked mean.

False-failure budget of this module: 1e-6, split over its five chance asserts (ALPHA each):
a chi-square test of one watermarked step against the law (asymptotic), a DKWM test of
de-duplicated null p-values (exact), a z-test of the watermarked mean score (asymptotic,
sized with the exact standard deviation), and the rejections of two near controls (a
temperature shift of the mean at 1.25 times the design shift; texts with exactly J repeated
pairs, whose naive law is at Kolmogorov distance at least the design's from Gamma(n)).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
import torch
from conftest import seeded

from gumbel_lib import keyed_uniform
from gumbel_lib.keyed_hash import derive_key, hash_tokens
from gumbel_lib.stats import chisquare_sample_size, chisquare_test, dkwm_sample_size, dkwm_test
from gumbel_lib.watermark import watermark_sample, watermark_score

ALPHA = 1e-6 / 5
LOGITS = torch.tensor([1.0, 0.2, -0.3, -1.2, 0.5], dtype=torch.float64)
P = torch.softmax(LOGITS, 0).numpy()
K = 5


def contexts(n: int, offset: int = 0) -> torch.Tensor:
    """n distinct two-token contexts."""
    index = torch.arange(n) + offset
    return torch.stack([index % 2**20, index // 2**20], -1)


def mean_score(p: np.ndarray) -> float:
    """E[-log(1 - r)] of the emitted token: sum_i p_i (psi(1 + 1/p_i) + gamma)."""
    return float((p * (scipy.special.digamma(1 + 1 / p) + np.euler_gamma)).sum())


def test_one_step_has_the_model_law_and_a_frozen_context_does_not() -> None:
    n = chisquare_sample_size(0.03, K - 1, ALPHA)
    token = watermark_sample(LOGITS.expand(n, K), contexts(n), key=9)
    assert chisquare_test(torch.bincount(token, minlength=K), P, alpha=ALPHA).passed
    frozen = watermark_sample(LOGITS.expand(n, K), contexts(1).expand(n, 2), key=9)
    assert (frozen == frozen[0]).all()  # one context, one noise, one token


def test_mean_score_is_the_digamma_formula() -> None:
    for a in (1.0, 0.3, 0.01):
        integral = scipy.integrate.quad(lambda v, a=a: -np.log1p(-(v**a)), 0, 1, limit=200)[0]
        assert abs(integral - (scipy.special.digamma(1 + 1 / a) + np.euler_gamma)) < 1e-8
    target = mean_score(P)
    second = sum(
        p * scipy.integrate.quad(lambda v, p=p: np.log1p(-(v**p)) ** 2, 0, 1, limit=200)[0]
        for p in P
    )
    delta, sd = 0.03, float(np.sqrt(second - target**2))  # the shift to detect; exact sd
    z = scipy.stats.norm.isf(ALPHA / 2)
    n = int(np.ceil(((z + scipy.stats.norm.isf(ALPHA)) * sd / delta) ** 2))
    hot = scipy.optimize.brentq(
        lambda t: mean_score(torch.softmax(LOGITS / t, 0).numpy()) - target - 1.25 * delta, 1, 3
    )
    scores = {}
    for name, logits in (("watermark", LOGITS), ("control", LOGITS / hot)):
        ctx = contexts(n, offset=2**25)
        token = watermark_sample(logits.expand(n, K), ctx, key=10)
        text = torch.cat([ctx, token[:, None]], -1)
        scores[name] = watermark_score(text, key=10, context_width=2).score
    z_ok = (scores["watermark"].mean().item() - target) / (sd / n**0.5)
    z_hot = (scores["control"].mean().item() - target) / (sd / n**0.5)
    assert abs(z_ok) <= z
    assert abs(z_hot) > z


def test_null_scores_are_gamma_and_repeats_must_be_counted_once() -> None:
    d, n_tokens, width = 0.03, 16, 2
    n = dkwm_sample_size(d, ALPHA)
    gen = seeded(1)
    keys = torch.arange(n) + 10**6
    phrase = torch.randint(0, 50, (n, 6), generator=gen).repeat(1, 3)  # texts independent of keys
    once = watermark_score(phrase, key=keys, context_width=width)
    assert dkwm_test(once.p_value, scipy.stats.uniform.cdf, alpha=ALPHA).passed
    # near control: J repeated pairs among n_tokens; the naive law is Gamma(n - 2J) + 2 Gamma(J)
    xs = np.linspace(0, 6 * n_tokens, 4001)

    def distance(j: int) -> float:
        b, w = scipy.special.roots_genlaguerre(100, j - 1)
        law = (
            w
            / scipy.special.gamma(j)
            * scipy.stats.gamma(n_tokens - 2 * j).cdf(xs[:, None] - 2 * b)
        ).sum(1)
        return float(np.abs(law - scipy.stats.gamma(n_tokens).cdf(xs)).max())

    j = next(j for j in range(1, 4) if distance(j) >= d)
    text = torch.randint(0, 2**40, (n, n_tokens + width), generator=gen)
    for r in range(j):  # copy a token triple: one repeated (context, token) pair each
        text[:, 9 + 4 * r : 12 + 4 * r] = text[:, 4 * r : 3 + 4 * r]
    assert (watermark_score(text, key=keys, context_width=width).pairs == n_tokens - j).all()
    naive = watermark_score(text, key=keys, context_width=width, deduplicate=False)
    assert (naive.pairs == n_tokens).all()
    assert not dkwm_test(naive.score, scipy.stats.gamma(n_tokens).cdf, alpha=ALPHA).passed


def test_deduplication_matches_a_reference_loop() -> None:
    tokens = torch.randint(0, 4, (40, 25), generator=seeded(2))
    keys = torch.arange(40) + 3
    result = watermark_score(tokens, key=keys, context_width=2)
    for b in range(40):
        seen, score = set(), 0.0
        for t in range(2, 25):
            pair = (tuple(tokens[b, t - 2 : t].tolist()), int(tokens[b, t]))
            if pair in seen:
                continue
            seen.add(pair)
            r = keyed_uniform(int(keys[b]), hash_tokens(tokens[b, t - 2 : t]), tokens[b, t])
            score += -np.log1p(-r.item())
        assert result.pairs[b] == len(seen)
        assert abs(result.score[b].item() - score) < 1e-9
        expected = scipy.stats.gamma.sf(score, len(seen))
        assert abs(result.p_value[b].item() - expected) <= 1e-12 * max(expected, 1e-300)


def test_the_score_reads_the_uniform_that_chose_the_token() -> None:
    ctx = contexts(200)
    token = watermark_sample(LOGITS.expand(200, K), ctx, key=12)
    score = watermark_score(torch.cat([ctx, token[:, None]], -1), key=12, context_width=2)
    r = keyed_uniform(12, hash_tokens(ctx), token)
    assert torch.equal(score.score, -torch.log1p(-r))
    u = keyed_uniform(12, hash_tokens(ctx)[:, None], torch.arange(K))
    assert torch.equal(token, (u.log() / torch.from_numpy(P)).argmax(-1))  # argmax r^(1/p)


def test_hash_and_derived_keys() -> None:
    a = hash_tokens(torch.tensor([[1, 2], [2, 1], [1, 2]]))
    assert a[0] == a[2] and a[0] != a[1] and (a >= 0).all()
    assert hash_tokens(torch.tensor([2])) != hash_tokens(torch.tensor([1, 2]))
    block = torch.randint(0, 1000, (30, 3), generator=seeded(3))
    assert torch.equal(hash_tokens(block)[7], hash_tokens(block[7]))
    keys = torch.tensor([5, 6, 2**62])
    derived = derive_key(keys, 1)
    assert derived[0] == derive_key(5, 1) and derived[2] == derive_key(2**62, 1)
    assert derive_key(5, 1) != derive_key(5, 2) and (derived >= 0).all()


def test_structural_and_value_errors() -> None:
    with pytest.raises(TypeError, match="tokens"):
        watermark_score(torch.zeros(2, 5), key=1, context_width=2)
    with pytest.raises(ValueError, match="context_width"):
        watermark_score(torch.zeros(2, 5, dtype=torch.int64), key=1, context_width=0)
    with pytest.raises(ValueError, match="tokens must be >= 0"):
        watermark_score(-torch.ones(2, 5, dtype=torch.int64), key=1, context_width=2)
    with pytest.raises(ValueError, match="context"):
        watermark_sample(torch.zeros(3, 4), torch.zeros(2, 2, dtype=torch.int64), key=1)
    with pytest.raises(TypeError, match="context"):
        watermark_sample(torch.zeros(3, 4), torch.zeros(3, 2), key=1)
    short = watermark_score(torch.zeros(2, 2, dtype=torch.int64), key=1, context_width=2)
    assert (short.pairs == 0).all() and (short.p_value == 1).all()
    with pytest.raises(TypeError, match="stream"):
        derive_key(1, 1.5)  # type: ignore[arg-type]
