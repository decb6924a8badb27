"""Measuring gradient estimators against the exact gradient: bias, variance, cosine, training.

For logits ``l`` of shape ``(V, K)`` and a loss ``f`` of a joint one-hot outcome, each
estimator of :data:`~gumbel_lib.estimators.ESTIMATORS` gives estimates ``G_1..G_N`` (each the
average of ``n_draws`` draws) of ``g = grad E[f(D)]``, which
:func:`~gumbel_lib.enumeration.exact_gradient` computes.
We pool the estimates of several seeds and report

* the bias-corrected squared bias ``B = ||mean G - g||^2 - tr(S) / N`` (``S`` the sample
  covariance): ``B`` is the U-statistic ``sum_{i != j} (G_i - g).(G_j - g) / (N (N - 1))``,
  so ``E[B] = ||b||^2`` exactly (``b = E G - g``); the noise floor ``tr(S) / N`` of the mean
  is subtracted, and ``B`` is negative when the bias is below it;
* an interval for ``||b||^2`` from the law of the noise ``e = mean G - E G``, approximately
  ``N(0, Sigma)`` with ``Sigma = S / N``: the bound of Laurent and Massart (2000),
  ``P(||e||^2 >= tr Sigma + 2 sqrt(tr(Sigma^2) t) + 2 lambda_max t) <= exp(-t)``, gives a
  radius ``r(alpha)`` with ``P(||e|| > r) <= alpha``, hence (triangle inequality) the
  interval ``[max(0, d - r), d + r]`` for ``||b||``, ``d = ||mean G - g||``, for every
  direction of ``b``. ``d > r(alpha)`` is a test of ``b = 0`` at level ``alpha``, and a bias
  of norm at least ``r(alpha) + r(beta)`` is detected with probability at least ``1 - beta``;
* the variance ``tr Cov(G)`` and the mean cosine ``E[cos(G, g)]``, with standard errors, and
  the mean of ``G`` with per-coordinate standard errors (for two-sample tests of means).

Used by :doc:`Lower-variance gradients </book/lower-variance-gradients>` and
``python -m benchmarks.estimators``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gumbel_lib.enumeration import exact_gradient, joint_outcomes
from gumbel_lib.estimators import ESTIMATORS, sample_with

JointLoss = Callable[[torch.Tensor], torch.Tensor]


def toy_problem(
    n_variables: int = 3, n_categories: int = 4, *, seed: int = 2026
) -> tuple[torch.Tensor, dict[str, JointLoss]]:
    """Logits ``(V, K)`` and three losses of the score ``s = sum_v w_v . D_v`` (float64).

    ``"linear"`` is ``s``; ``"quadratic"`` is ``(s - 1/2)^2``; ``"softplus"`` is
    ``softplus(3 (s - 1/2)) / 3``, smooth and of every order. ``l`` and ``w`` are Gaussian
    (``l`` scaled by 0.7), drawn from ``seed``.

    >>> logits, losses = toy_problem()
    >>> tuple(logits.shape), sorted(losses)
    ((3, 4), ['linear', 'quadratic', 'softplus'])
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (n_variables, n_categories)
    logits = 0.7 * torch.randn(shape, generator=gen, dtype=torch.float64)
    weights = torch.randn(shape, generator=gen, dtype=torch.float64)

    def score(y: torch.Tensor) -> torch.Tensor:
        return (y * weights.to(y.dtype)).sum((-2, -1))

    losses: dict[str, JointLoss] = {
        "linear": score,
        "quadratic": lambda y: (score(y) - 0.5) ** 2,
        "softplus": lambda y: torch.nn.functional.softplus(3 * (score(y) - 0.5)) / 3,
    }
    return logits, losses


def gradient_draws(
    name: str,
    logits: torch.Tensor,
    f: JointLoss,
    tau: float,
    *,
    n_estimates: int,
    n_draws: int = 1,
    rao_samples: int = 10,
    baseline: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n_estimates`` independent estimates of ``grad E[f(D)]``, shape ``(n_estimates, V*K)``.

    Each estimate averages ``n_draws`` draws (``"reinforce-loo"`` uses them as its
    leave-one-out group, so it needs ``n_draws >= 2``); ``"gumbel-rao"`` uses
    ``rao_samples`` conditional draws per draw; ``"reinforce"`` subtracts the constant
    ``baseline`` (0 when ``None``). ``f`` maps ``(..., V, K)`` to ``(...)``.

    >>> f = lambda d: d[..., 0, 0]
    >>> gen = torch.Generator().manual_seed(0)
    >>> draws = gradient_draws("reinmax", torch.zeros(2, 3), f, 1.0, n_estimates=5, generator=gen)
    >>> tuple(draws.shape)
    (5, 6)
    """
    leaf = logits.detach().expand(n_estimates, *logits.shape).clone().requires_grad_(True)
    surrogate = mean_surrogate(name, leaf, f, tau, n_draws, rao_samples, generator, baseline)
    (grad,) = torch.autograd.grad(surrogate.sum(), leaf)
    return grad.reshape(n_estimates, -1)


def mean_surrogate(
    name: str,
    logits: torch.Tensor,
    f: JointLoss,
    tau: float,
    n_draws: int,
    rao_samples: int,
    generator: torch.Generator | None,
    baseline: float | None = None,
) -> torch.Tensor:
    """The surrogate loss averaged over ``n_draws`` draws: its gradient is one estimate."""
    if name == "reinforce-loo":
        y, surrogate = sample_with(name, logits, tau, n_samples=n_draws, generator=generator)
    else:
        draws = logits.unsqueeze(0).expand(n_draws, *logits.shape)
        rao = rao_samples if name == "gumbel-rao" else None
        y, surrogate = sample_with(
            name, draws, tau, n_samples=rao, baseline=baseline, generator=generator
        )
    return surrogate(f(y)).mean(0)


@dataclass(frozen=True)
class EstimatorStats:
    """Bias, variance and cosine of one estimator in one setting, over ``seeds`` runs.

    >>> draws = 1 + 0.1 * torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    >>> stats = bias_variance_cosine(draws, torch.zeros(2))  # mean (1, 1): |beta|^2 = 2
    >>> row = EstimatorStats("x", "f", 1.0, 1, n=400, **stats)
    >>> row.bias_detected(1e-6), row.interval()[0] > 1.9
    (True, True)
    """

    estimator: str
    loss: str
    tau: float
    n_draws: int
    bias2: float  # bias-corrected squared norm of the bias (the U-statistic B)
    distance: float  # d = ||mean G - g||, the raw distance of the mean from the gradient
    noise_trace: float  # tr Sigma, Sigma = S / N: the noise floor E||e||^2 of the mean
    noise_trace2: float  # tr(Sigma^2)
    noise_max: float  # the largest eigenvalue of Sigma
    variance: float  # tr Cov of one estimate
    variance_se: float  # its standard error (from the squared distances to the mean)
    cosine: float  # mean cosine similarity of one estimate with the exact gradient
    cosine_se: float  # its standard error
    mean: tuple[float, ...]  # mean G, coordinate by coordinate
    mean_se: tuple[float, ...]  # its standard errors
    n: int  # estimates, all seeds pooled

    def noise_radius(self, alpha: float) -> float:
        """``r`` with ``P(||e|| > r) <= alpha`` for ``e ~ N(0, Sigma)`` (Laurent-Massart)."""
        t = math.log(1 / alpha)
        r2 = self.noise_trace + 2 * math.sqrt(self.noise_trace2 * t) + 2 * self.noise_max * t
        return math.sqrt(r2)

    def bias_detected(self, alpha: float) -> bool:
        """The test of ``b = 0`` at level ``alpha``: ``d > r(alpha)``."""
        return self.distance > self.noise_radius(alpha)

    def detectable_bias(self, alpha: float, miss: float) -> float:
        """A bias of norm at least this is detected at level ``alpha`` w.p. >= ``1 - miss``."""
        return self.noise_radius(alpha) + self.noise_radius(miss)

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Interval for ``||b||^2`` that covers it w.p. >= ``confidence``, any direction of b."""
        r = self.noise_radius(1 - confidence)
        return max(self.distance - r, 0.0) ** 2, (self.distance + r) ** 2


def bias_variance_cosine(draws: torch.Tensor, exact: torch.Tensor) -> dict[str, Any]:
    """The fields of :class:`EstimatorStats` that the estimates ``draws`` determine.

    ``draws`` has shape ``(N, d)``, one estimate per row; ``exact`` is the gradient.

    >>> draws = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    >>> stats = bias_variance_cosine(draws, torch.ones(2))
    >>> [round(stats[k], 3) for k in ("bias2", "distance", "noise_trace", "variance", "cosine")]
    [-1.0, 1.0, 2.0, 4.0, 0.844]
    """
    g = exact.reshape(-1).to(draws.dtype)
    n = draws.shape[0]
    centred = draws - draws.mean(0)
    sigma = centred.T @ centred / (n - 1) / n  # covariance of the mean
    bias = draws.mean(0) - g
    eigenvalues = torch.linalg.eigvalsh(sigma).clamp_min(0.0)
    cosine = torch.nn.functional.cosine_similarity(draws, g.expand_as(draws), dim=1)
    spread = (centred**2).sum(1)  # mean * n / (n - 1) is the variance
    return {
        "bias2": (bias @ bias).item() - sigma.trace().item(),
        "distance": bias.norm().item(),
        "noise_trace": eigenvalues.sum().item(),
        "noise_trace2": (eigenvalues**2).sum().item(),
        "noise_max": eigenvalues.max().item(),
        "variance": n * sigma.trace().item(),
        "variance_se": spread.std().item() / math.sqrt(n),
        "cosine": cosine.mean().item(),
        "cosine_se": cosine.std().item() / math.sqrt(n),
        "mean": tuple(draws.mean(0).tolist()),
        "mean_se": tuple((draws.std(0) / math.sqrt(n)).tolist()),
    }


TAU_FREE = ("reinforce", "reinforce-loo")
"""Estimators whose gradient does not depend on the temperature (reported once, tau = nan)."""


def study(
    logits: torch.Tensor,
    losses: dict[str, JointLoss],
    *,
    taus: Sequence[float],
    n_draws: Sequence[int],
    estimators: Sequence[str] = ESTIMATORS,
    n_estimates: int = 2000,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
) -> list[EstimatorStats]:
    """Every estimator x loss x temperature x draw count; ``n_estimates`` per seed, pooled.

    Setting and seed ``s`` get their own generator, seeded ``s + 1000 * i`` for the ``i``-th
    estimator of :data:`~gumbel_lib.estimators.ESTIMATORS`, so that rows of different
    estimators are independent (two-sample tests between rows are valid). REINFORCE rows
    ignore ``tau``.
    """
    rows = []
    for loss_name, f in losses.items():
        exact = exact_gradient(logits, f)[1]
        for name in estimators:
            for tau in [math.nan] if name in TAU_FREE else taus:
                for m in n_draws:
                    if name == "reinforce-loo" and m < 2:
                        continue
                    draws = torch.cat(
                        [
                            gradient_draws(
                                name,
                                logits,
                                f,
                                1.0 if math.isnan(tau) else tau,
                                n_estimates=n_estimates,
                                n_draws=m,
                                generator=torch.Generator().manual_seed(
                                    seed + 1000 * ESTIMATORS.index(name)
                                ),
                            )
                            for seed in seeds
                        ]
                    )
                    stats = bias_variance_cosine(draws, exact)
                    rows.append(EstimatorStats(name, loss_name, tau, m, n=len(draws), **stats))
    return rows


def format_table(rows: Sequence[EstimatorStats]) -> str:
    """A fixed-width text table (rounded, so that stored outputs compare exactly).

    ``bias^2`` is ``B``; the interval is :meth:`EstimatorStats.interval` (95%, for ``||b||^2``).
    """
    head = f"{'estimator':<17}{'loss':<10}{'tau':>5}{'m':>4}"
    head += f"{'bias^2':>11}{'95% interval':>23}{'variance':>11}{'cosine':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        low, high = r.interval()
        ci = f"[{low:.2e}, {high:.2e}]"
        tau = "-" if math.isnan(r.tau) else f"{r.tau:.2g}"
        lines.append(
            f"{r.estimator:<17}{r.loss:<10}{tau:>5}{r.n_draws:>4}"
            f"{r.bias2:>11.2e}{ci:>23}{r.variance:>11.2e}{r.cosine:>8.3f}"
        )
    return "\n".join(lines)


def expected_loss_table(logits_shape: torch.Size, f: JointLoss) -> torch.Tensor:
    """``f`` at every joint outcome, shape ``(K**V,)``: the exact loss is then a dot product."""
    outcomes = joint_outcomes(*logits_shape, dtype=torch.float64)
    with torch.no_grad():
        return f(outcomes)


def expected_loss(logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``E[f(D)]`` for a batch of logits ``(..., V, K)`` from the table of ``f``'s values."""
    outcomes = joint_outcomes(*logits.shape[-2:], dtype=logits.dtype)
    log_p = torch.einsum("nvk,...vk->...n", outcomes, torch.log_softmax(logits, -1))
    return (log_p.exp() * table.to(logits.dtype)).sum(-1)


def train(
    name: str,
    f: JointLoss,
    shape: tuple[int, int],
    *,
    tau: float,
    steps: int,
    runs: int,
    n_draws: int = 2,
    rao_samples: int = 10,
    lr: float = 0.05,
    seed: int = 0,
) -> torch.Tensor:
    """Adam on ``E[f(D)]`` with estimator ``name``; the exact loss per step and run.

    ``runs`` independent runs in one batch (logits ``(runs, V, K)``, starting at 0), each
    step ``n_draws`` draws per run. Returns ``(steps + 1, runs)`` exact expected losses.
    """
    table = expected_loss_table(torch.Size(shape), f)
    logits = torch.zeros(runs, *shape, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    curve = [expected_loss(logits.detach(), table)]
    for _ in range(steps):
        optimiser.zero_grad()
        mean_surrogate(name, logits, f, tau, n_draws, rao_samples, gen).sum().backward()
        optimiser.step()
        curve.append(expected_loss(logits.detach(), table))
    return torch.stack(curve)


def seconds_per_gradient(
    name: str, logits: torch.Tensor, f: JointLoss, tau: float, *, repeats: int = 50
) -> float:
    """Median wall time of one ``sample_with`` + loss + backward (for the cost table)."""
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        leaf = logits.detach().clone().requires_grad_(True)
        start = time.perf_counter()
        n = 2 if name == "reinforce-loo" else None
        y, surrogate = sample_with(name, leaf, tau, n_samples=n, generator=gen)
        surrogate(f(y)).sum().backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
