"""The categorical VAE: exact bounds by enumeration, the KL formula, estimators, training.

False-failure budget of this module: 1e-6, split (Bonferroni) over its statistical claims:
the negative-ELBO estimate is unbiased (one claim, tested with 1 and with 3 draws per image,
2.5e-7 each), the REINFORCE gradient of the joint code is unbiased (one claim over 6
coordinates, two baselines), so 5e-7 per claim. The z-tests are asymptotic (normal
approximation of a mean of 1e5 or more i.i.d. draws). Each has a negative control that the
same test rejects, and its power (miss rate 1e-6) against that control is asserted.
Everything else is exact, or deterministic under fixed seeds.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import seeded

import gumbel_lib.vae_training as vae_training
from benchmarks import vae_long
from gumbel_lib import exponential_schedule, gumbel_softmax
from gumbel_lib.enumeration import exact_gradient
from gumbel_lib.vae import (
    CategoricalVAE,
    code_usage,
    exact_bounds,
    importance_weighted_bound,
    kl_to_uniform,
    log_likelihood,
    negative_elbo,
    perplexity,
)
from gumbel_lib.vae_training import train, training_step_loss

ALPHA_PER_CLAIM = 1e-6 / 2
TRAINED_WITH = ("gumbel-softmax", "straight-through", "gumbel-rao", "reinmax", "reinforce")


def tiny_model(seed: int = 0, dtype=torch.float64) -> CategoricalVAE:
    """V = 2 latents with K = 3 categories over 6 pixels; weights doubled, so that the
    posterior is far from uniform and the decoder depends on the code (at the default
    initialisation both are nearly flat and every effect the tests measure is tiny)."""
    model = CategoricalVAE(6, 2, 3, 8, generator=seeded(seed)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model


def prototypes(n: int, seed: int = 0, flip: float = 0.05, dtype=torch.float64) -> torch.Tensor:
    """Binary images: two 6-pixel prototypes, each pixel flipped with probability ``flip``."""
    gen = seeded(seed)
    protos = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=dtype)
    which = torch.randint(0, 2, (n,), generator=gen)
    flips = (torch.rand(n, 6, generator=gen, dtype=dtype) < flip).to(dtype)
    return (protos[which] + flips) % 2


# --- the KL term -------------------------------------------------------------------------


def test_kl_matches_torch_distributions():
    logits = torch.randn(5, 3, 4, generator=seeded(1), dtype=torch.float64)
    q = torch.distributions.Categorical(logits=logits)
    uniform = torch.distributions.Categorical(logits=torch.zeros_like(logits))
    expected = torch.distributions.kl_divergence(q, uniform).sum(-1)
    torch.testing.assert_close(kl_to_uniform(logits), expected, rtol=1e-12, atol=1e-12)


def test_kl_closed_form_values():
    # V log K - sum_v H(q_v): zero at the uniform posterior, V log K at one-hot posteriors
    assert kl_to_uniform(torch.zeros(2, 5, dtype=torch.float64)).item() == pytest.approx(0.0)
    hard = torch.full((3, 4), -torch.inf, dtype=torch.float64)
    hard[:, 0] = 0.0  # masked categories: q exactly one-hot, 0 log 0 = 0, no NaN
    assert kl_to_uniform(hard).item() == pytest.approx(3 * math.log(4), abs=1e-12)
    assert kl_to_uniform(torch.zeros(2, 1)).item() == 0.0  # one category: nothing to learn


def test_kl_and_likelihood_gradients():
    logits = torch.randn(2, 3, 4, dtype=torch.float64, generator=seeded(2), requires_grad=True)
    assert torch.autograd.gradcheck(kl_to_uniform, (logits,))
    a = torch.randn(3, 5, dtype=torch.float64, generator=seeded(3), requires_grad=True)
    x = (torch.rand(3, 5, generator=seeded(4)) < 0.5).double()
    assert torch.autograd.gradcheck(lambda a: log_likelihood(a, x), (a,))


def test_likelihood_is_the_bernoulli_log_pmf():
    a = torch.randn(4, 6, dtype=torch.float64, generator=seeded(5))
    x = (torch.rand(4, 6, generator=seeded(6)) < 0.5).double()
    expected = torch.distributions.Bernoulli(logits=a).log_prob(x).sum(-1)
    torch.testing.assert_close(log_likelihood(a, x), expected)


# --- exact bounds by enumeration ---------------------------------------------------------


def brute_force(model: CategoricalVAE, x: torch.Tensor) -> tuple[float, float]:
    """-ELBO and -log p(x) of one image by an explicit loop over the K^V codes."""
    q = torch.softmax(model.encode(x[None])[0], -1)
    n_latents, n_categories = q.shape
    elbo, evidence = 0.0, 0.0
    for code in itertools.product(range(n_categories), repeat=n_latents):
        z = torch.nn.functional.one_hot(torch.tensor(code), n_categories).to(x.dtype)
        px = torch.distributions.Bernoulli(logits=model.decode(z)).log_prob(x).sum().item()
        q_z = math.prod(q[v, k].item() for v, k in enumerate(code))
        p_z = n_categories**-n_latents
        elbo += q_z * (px + math.log(p_z) - math.log(q_z))
        evidence += math.exp(px) * p_z
    return -elbo, -math.log(evidence)


def test_exact_bounds_match_a_brute_force_loop():
    model, x = tiny_model(), prototypes(4)
    with torch.no_grad():
        neg_elbo, nll = exact_bounds(model, x)
    for b in range(4):
        want_elbo, want_nll = brute_force(model, x[b])
        assert neg_elbo[b].item() == pytest.approx(want_elbo, rel=1e-10)
        assert nll[b].item() == pytest.approx(want_nll, rel=1e-10)
    assert (neg_elbo >= nll).all()  # the ELBO is a lower bound of log p(x)


@pytest.mark.parametrize("n_samples", [1, 3])
def test_negative_elbo_estimate_is_unbiased_and_the_test_can_fail(n_samples):
    """z-test of the mean of n estimates, each from ``n_samples`` draws, against the exact
    value (two-sided, alpha 2.5e-7 per ``n_samples``; the claim's 5e-7 split in two).

    Negative control: the same estimate with *relaxed* codes (Gumbel-softmax, tau = 1)
    instead of one-hot ones, the mistake of evaluating a discrete model on relaxed samples.
    Power: n is large enough that its shift ``delta`` exceeds ``(z_alpha + z_beta) * se``
    with miss rate beta = 1e-6. An estimate that *sums* its draws instead of averaging them
    is off by ``(n_samples - 1)`` reconstruction terms, tens of standard errors.
    """
    model, x = tiny_model(), prototypes(1)
    n = 200_000
    z_alpha, z_beta = scipy.stats.norm.isf(ALPHA_PER_CLAIM / 2 / 2), scipy.stats.norm.isf(1e-6)
    with torch.no_grad():
        exact, _ = exact_bounds(model, x)
        draws = negative_elbo(model, x.expand(n, -1), n_samples=n_samples, generator=seeded(7))
        logits = model.encode(x.expand(n, -1))
        relaxed = gumbel_softmax(logits.expand(n_samples, -1, -1, -1), 1.0, generator=seeded(8))
        reconstruction = -log_likelihood(model.decode(relaxed), x).mean(0)
        wrong = reconstruction + kl_to_uniform(logits)
    se, se_wrong = draws.std().item() / math.sqrt(n), wrong.std().item() / math.sqrt(n)
    assert abs(draws.mean().item() - exact.item()) <= z_alpha * se
    delta = abs(wrong.mean().item() - exact.item())
    assert delta > (z_alpha + z_beta) * max(se, se_wrong)  # the test has power against it
    assert delta > z_alpha * se_wrong  # and rejects it


@pytest.mark.parametrize("n_samples", [1, 4])
def test_negative_elbo_averages_its_draws(n_samples):
    """Exact, for any draws: with a decoder that ignores the code, log p(x | z) is the same
    for every z, so the estimate equals the exact -ELBO whatever it draws, if and only if it
    averages its draws (a sum would count the reconstruction term n_samples times)."""
    model, x = tiny_model(), prototypes(5)
    with torch.no_grad():
        model.decoder[0].weight.zero_()  # the hidden layer no longer sees the code
        exact, _ = exact_bounds(model, x)
        estimate = negative_elbo(model, x, n_samples=n_samples, generator=seeded(11))
    torch.testing.assert_close(estimate, exact, rtol=1e-12, atol=1e-12)


def test_importance_weighted_bound_tightens_towards_log_evidence():
    model, x = tiny_model(), prototypes(3)
    with torch.no_grad():
        neg_elbo, nll = exact_bounds(model, x)
        iw = importance_weighted_bound(model, x, n_samples=50_000, generator=seeded(8))
    # with many draws the bound is within 0.01 nats of -log p(x), well below -ELBO
    torch.testing.assert_close(iw, nll, rtol=0, atol=1e-2)
    assert (neg_elbo - nll > 0.05).all()


def test_exact_bounds_refuse_too_many_codes():
    with pytest.raises(ValueError, match="MAX_OUTCOMES"):
        exact_bounds(CategoricalVAE(6, 10, 10, 4), prototypes(2, dtype=torch.float32))


# --- the REINFORCE gradient of the joint code -------------------------------------------


def objective_gradients(n: int, seed: int, baseline=None) -> torch.Tensor:
    """Per-draw gradients of the REINFORCE training objective w.r.t. the ``(V, K)`` logits."""
    model, x = tiny_model(), prototypes(1)
    base = model.encode(x)[0].detach()
    leaf = base.expand(n, *base.shape).clone().requires_grad_(True)
    model.encode = lambda _: leaf  # one copy of the logits per draw
    objective, _, _ = training_step_loss(
        model, x.expand(n, -1), "reinforce", 1.0, generator=seeded(seed), baseline=baseline
    )
    (objective * n).backward()  # objective is the mean over the n draws
    return leaf.grad.flatten(1)


def exact_objective_gradient() -> torch.Tensor:
    """``grad_l [sum_z q(z) (-log p(x | z)) + KL(q || p)]`` by enumeration, the reference."""
    model, x = tiny_model(), prototypes(1)
    logits = model.encode(x)[0].detach()
    _, reconstruction = exact_gradient(logits, lambda z: -log_likelihood(model.decode(z), x))
    leaf = logits.clone().requires_grad_(True)
    kl_to_uniform(leaf).backward()
    return (reconstruction + leaf.grad).flatten()


@pytest.mark.parametrize("baseline", [None, 4.0])
def test_reinforce_gradient_of_the_joint_code_is_unbiased(baseline):
    """The score of the joint code is the sum of the V latents' scores; the KL is exact.

    Per-coordinate z-tests, Bonferroni over 6 coordinates (alpha 5e-7 for the claim, which
    both baselines share at 2.5e-7 each). Negative control: the same draws scaled by 1/2,
    a mis-weighted estimator that the test must reject."""
    n, coords = 100_000, 6
    z_alpha = scipy.stats.norm.isf(ALPHA_PER_CLAIM / 2 / coords / 2)
    b = None if baseline is None else torch.tensor(baseline, dtype=torch.float64)
    grads = objective_gradients(n, seed=9, baseline=b)
    exact = exact_objective_gradient()
    se = grads.std(0) / math.sqrt(n)
    assert ((grads.mean(0) - exact).abs() <= z_alpha * se).all()
    wrong = grads / 2
    # power: the control's shift |exact| / 2 exceeds (z_alpha + z_beta) standard errors in
    # some coordinate (miss rate beta = 1e-6), and the test does reject it
    z_beta = scipy.stats.norm.isf(1e-6)
    assert (exact.abs() / 2 > (z_alpha + z_beta) * se).any()
    assert ((wrong.mean(0) - exact).abs() > z_alpha * wrong.std(0) / math.sqrt(n)).any()


@pytest.mark.parametrize("estimator", TRAINED_WITH)
def test_objective_value_is_reconstruction_plus_kl(estimator):
    """The value (not the gradient) of every estimator's objective is -log p(x | y) + KL at
    the drawn y: a negative-ELBO estimate for one-hot y, the relaxed objective otherwise."""
    model, x = tiny_model(), prototypes(5)
    objective, neg_elbo, reconstruction = training_step_loss(
        model, x, estimator, 0.7, generator=seeded(10), n_samples=4
    )
    assert objective.dim() == 0 and neg_elbo.shape == reconstruction.shape == (5,)
    torch.testing.assert_close(objective.detach(), neg_elbo.mean())
    kl = kl_to_uniform(model.encode(x)).detach()
    torch.testing.assert_close(neg_elbo - reconstruction, kl)
    objective.backward()  # every parameter receives a finite gradient
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


# --- training ----------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", TRAINED_WITH)
def test_training_decreases_the_exact_negative_elbo(estimator):
    x = prototypes(200, seed=1)
    model = tiny_model(seed=2)
    with torch.no_grad():
        before = exact_bounds(model, x)[0].mean().item()
    taus = exponential_schedule(1.0, 0.5, 40 * 4)
    result = train(
        model,
        x,
        estimator,
        epochs=40,
        tau=taus,
        batch_size=50,
        lr=1e-2,
        generator=seeded(3),
        progress=False,
        n_samples=4,
    )
    with torch.no_grad():
        after = exact_bounds(model, x)[0].mean().item()
    assert result.losses.shape == (160,) and np.isfinite(result.losses).all()
    assert after < before - 1.0, (before, after)


def test_training_is_deterministic_given_the_seeds():
    runs = []
    for _ in range(2):
        model = tiny_model(seed=4)
        result = train(
            model,
            prototypes(60),
            "reinforce",
            epochs=3,
            batch_size=20,
            generator=seeded(5),
            progress=False,
        )
        runs.append((result.losses, [p.detach().clone() for p in model.parameters()]))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


def record_steps(monkeypatch) -> list[dict]:
    """Wrap the loop's ``training_step_loss`` to record each step's tau, baseline and
    reconstruction loss (exact: the wrapper changes nothing it passes on)."""
    calls: list[dict] = []
    inner = vae_training.training_step_loss

    def recording(model, x, estimator, tau, **kwargs):
        out = inner(model, x, estimator, tau, **kwargs)
        baseline = kwargs.get("baseline")
        calls.append(
            dict(
                tau=tau,
                baseline=None if baseline is None else baseline.item(),
                mean=out[2].mean().item(),
            )
        )
        return out

    monkeypatch.setattr(vae_training, "training_step_loss", recording)
    return calls


def test_the_temperature_schedule_runs_over_steps_not_epochs(monkeypatch):
    """3 epochs of 4 batches: step t (0 to 11) must use tau[t], and the reported schedule
    must be the one used. Indexing the schedule by epoch would use tau[0], tau[1], tau[2]."""
    calls = record_steps(monkeypatch)
    taus = exponential_schedule(1.0, 0.25, 12)
    result = train(
        tiny_model(),
        prototypes(40),
        "straight-through",
        epochs=3,
        tau=taus,
        batch_size=10,
        generator=seeded(12),
        progress=False,
    )
    used = np.array([c["tau"] for c in calls])
    assert len(np.unique(taus)) == 12  # every step has its own temperature
    np.testing.assert_array_equal(used, taus)
    np.testing.assert_array_equal(result.taus, used)


@pytest.mark.parametrize("decay", [0.0, 0.9, 0.25])
def test_reinforce_baseline_is_the_moving_average_of_past_losses(monkeypatch, decay):
    """b_0 = None, b_1 = r_0, b_{t+1} = d b_t + (1 - d) r_t with r_t the batch mean
    reconstruction loss of step t; reversed weights (d r_t + (1 - d) b_t) fail for d != 1/2."""
    calls = record_steps(monkeypatch)
    train(
        tiny_model(),
        prototypes(40),
        "reinforce",
        epochs=2,
        batch_size=10,
        generator=seeded(13),
        progress=False,
        baseline_decay=decay,
    )
    baselines = [c["baseline"] for c in calls]
    means = [c["mean"] for c in calls]
    assert len(calls) == 8 and baselines[0] is None and baselines[1] == means[0]
    expected = means[0]
    for t in range(1, 8):
        assert baselines[t] == pytest.approx(expected, rel=1e-12)
        expected = decay * expected + (1 - decay) * means[t]
    assert len(set(means)) == 8  # the losses differ, so the weights matter


def test_other_estimators_get_no_baseline(monkeypatch):
    calls = record_steps(monkeypatch)
    train(
        tiny_model(),
        prototypes(20),
        "reinmax",
        epochs=2,
        batch_size=10,
        generator=seeded(14),
        progress=False,
    )
    assert [c["baseline"] for c in calls] == [None] * 4


def test_on_epoch_is_called_after_each_epoch():
    done = []
    model = tiny_model()
    train(
        model,
        prototypes(20),
        "gumbel-rao",
        epochs=3,
        batch_size=10,
        generator=seeded(15),
        progress=False,
        on_epoch=done.append,
        n_samples=2,
    )
    assert done == [1, 2, 3]


def test_model_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = tiny_model(seed=6), tiny_model(seed=6)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_shapes_and_code_usage():
    model = CategoricalVAE(64, 4, 5, 16, generator=seeded(0))
    x = (torch.rand(7, 64, generator=seeded(1)) < 0.5).float()
    assert model.encode(x).shape == (7, 4, 5)
    assert model.decode(torch.zeros(3, 7, 4, 5)).shape == (3, 7, 64)
    usage = code_usage(model, x)
    assert usage.shape == (4, 5)
    torch.testing.assert_close(usage.sum(-1), torch.ones(4))
    assert ((perplexity(usage) >= 1 - 1e-6) & (perplexity(usage) <= 5 + 1e-6)).all()
    gen = seeded(2)
    assert negative_elbo(model, x, n_samples=3, generator=gen).shape == (7,)


# --- bad input ---------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    model, x = tiny_model(), prototypes(10)
    gen = seeded(0)
    with pytest.raises(ValueError, match="x must be binary"):
        negative_elbo(model, x * 0.5, generator=gen)
    negative_elbo(model, x * 0.5, generator=gen, validate_args=False)  # the caller's risk
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 6\)"):
        negative_elbo(model, x[:, :5], generator=gen)
    with pytest.raises(TypeError, match="x must have a floating-point dtype"):
        negative_elbo(model, x.long(), generator=gen)
    with pytest.raises(ValueError, match="estimator must be one of"):
        train(model, x, "gumbel-max", epochs=1, generator=gen)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train(model, x, "reinforce", epochs=0, generator=gen)
    with pytest.raises(ValueError, match="batch_size=20 is larger than the 10 examples"):
        train(model, x, "reinforce", epochs=1, batch_size=20, generator=gen)
    with pytest.raises(ValueError, match="tau must be a number or hold one value per step"):
        train(model, x, "reinmax", epochs=1, batch_size=5, tau=[1.0], generator=gen)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        train(model, x, "reinmax", epochs=1, batch_size=5, tau=[1.0, -1.0], generator=gen)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        train(model, x, "reinmax", epochs=1, generator=0)
    with pytest.raises(ValueError, match="n_latents must be >= 1"):
        CategoricalVAE(64, 0, 4)
    with pytest.raises(ValueError, match="logits contains NaN"):
        kl_to_uniform(torch.full((2, 3), torch.nan))
    with pytest.raises(ValueError, match="x must be binary"):
        log_likelihood(torch.zeros(2, 6), x[:2] * 0.5)
    with pytest.raises(ValueError, match="probs must be non-negative and sum to 1"):
        perplexity(torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="x must be binary"):
        code_usage(model, x * 0.5)
    with pytest.raises(TypeError, match="model must be a gumbel_lib.vae.CategoricalVAE"):
        negative_elbo(torch.nn.Linear(6, 6), x, generator=gen)
    with pytest.raises(TypeError, match="x has dtype torch.float32 but the model's parameters"):
        exact_bounds(model, x.float())
    with pytest.raises(ValueError, match="x is on meta but the model is on cpu"):
        code_usage(model, x.to("meta"))


def test_value_checks_run_inside_vmap_and_stay_on_in_eager_mode():
    """Value checks go through ``require``: skipped inside ``torch.func`` transforms (no
    data-dependent branch there), a ValueError in eager mode."""
    logits = torch.randn(4, 2, 3, dtype=torch.float64, generator=seeded(16))
    mapped = torch.func.vmap(kl_to_uniform)(logits)
    torch.testing.assert_close(mapped, kl_to_uniform(logits))
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(torch.func.vmap(perplexity)(probs), perplexity(probs))
    a, x = torch.zeros(4, 6), prototypes(4, dtype=torch.float32)
    torch.testing.assert_close(torch.func.vmap(log_likelihood)(a, x), log_likelihood(a, x))
    with pytest.raises(ValueError, match="probs must be non-negative and sum to 1"):
        perplexity(torch.tensor([[0.5, float("nan")]]))


def train_call(**changes):
    """``train`` on a tiny problem, with some arguments replaced."""
    model, x = tiny_model(), prototypes(10)
    args = dict(
        model=model,
        x=x,
        estimator="reinforce",
        epochs=1,
        batch_size=5,
        generator=seeded(0),
        progress=False,
    )
    args.update(changes)
    return train(**args)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (dict(model=torch.nn.Linear(6, 6)), TypeError, "model must be a gumbel_lib.vae.Categ"),
        (dict(model=None), TypeError, "model must be a gumbel_lib.vae.CategoricalVAE"),
        (
            dict(model=tiny_model().half(), x=prototypes(10, dtype=torch.float16)),
            TypeError,
            "model must have float32 or float64 parameters",
        ),
        (
            dict(x=prototypes(10, dtype=torch.float32)),
            TypeError,
            "x has dtype torch.float32 but the model's parameters have dtype torch.float64",
        ),
        (dict(x=prototypes(10).bool()), TypeError, "x must have a floating-point dtype"),
        (dict(x=prototypes(10).long()), TypeError, "x must have a floating-point dtype"),
        (dict(x=prototypes(10) * 0.5), ValueError, "x must be binary"),
        (dict(baseline_decay=1.0), ValueError, r"baseline_decay must be in \[0, 1\)"),
        (dict(baseline_decay=-0.1), ValueError, r"baseline_decay must be in \[0, 1\)"),
        (dict(baseline_decay=math.nan), ValueError, r"baseline_decay must be in \[0, 1\)"),
        (dict(baseline_decay="0.9"), TypeError, "baseline_decay must be a real number"),
        (dict(baseline_decay=None), TypeError, "baseline_decay must be a real number"),
        (dict(baseline_decay=True), TypeError, "baseline_decay must be a real number"),
        (dict(device="gpu"), ValueError, "device='gpu' is not a torch device name"),
        (dict(device="meta"), ValueError, "device='meta' holds no data"),
        (dict(device=3), TypeError, "device must be a torch.device, a device name or None"),
        (dict(lr="fast"), TypeError, "lr must be a real number"),
        (dict(n_samples=0), ValueError, "n_samples must be >= 1"),
        (dict(progress="yes"), TypeError, "progress must be a bool or None"),
        (dict(on_epoch=3), TypeError, "on_epoch must be callable or None"),
    ],
)
def test_train_bad_inputs_name_the_argument(changes, error, message):
    with pytest.raises(error, match=message):
        train_call(**changes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_refuses_an_unavailable_device_and_leaves_the_model_alone():
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="device='cuda' is not available here"):
        train_call(model=model, device="cuda")
    with pytest.raises(ValueError, match="device='meta' holds no data"):
        train_call(model=model, device="meta")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_refuses_a_generator_on_another_device():
    with pytest.raises(ValueError, match="generator lives on cpu but training runs on cuda"):
        train_call(device="cuda")


def test_progress_bar_shows_unless_disabled(capsys, monkeypatch):
    """tqdm writes to stderr; ``$TQDM_DISABLE`` hides it unless ``progress=True`` forces it."""
    pytest.importorskip("tqdm")
    model, x = tiny_model(), prototypes(20)

    def run(progress):
        train(
            model, x, "reinforce", epochs=2, batch_size=10, generator=seeded(0), progress=progress
        )
        return capsys.readouterr().err

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert "reinforce" in run(None) and "2/2" in run(True)
    assert run(False) == ""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert run(None) == ""
    assert "2/2" in run(True)


def test_long_run_script_smoke(tmp_path):
    """``benchmarks/vae_long.py`` at 2 epochs and 2 seeds (two estimators, for time) writes
    the file the chapter reads; the chapter asserts that its configuration is the chapter's."""
    chosen = ["straight-through", "reinforce"]
    path = vae_long.main(["--smoke", "--out", str(tmp_path), "--estimators", *chosen])
    report = json.loads(path.read_text())
    assert report["complete"] and report["kind"] == "vae-long" and report["epochs"] == 2
    assert report["machine"]["description"] and report["config"] == vae_long.CONFIG
    assert report["gumbel_lib_sha256"] == vae_long.library_fingerprint()
    runs = report["runs"]
    assert [run["estimator"] for run in runs] == [n for n in chosen for _ in range(2)]
    for run in runs:
        assert len(run["epoch_loss"]) == 2 and run["checkpoints"][-1]["epoch"] == 2
        last = run["checkpoints"][-1]
        assert all(math.isfinite(v) for v in last.values())
        assert 0 <= last["kl"] <= 8 * math.log(8)
