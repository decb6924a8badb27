"""Training a :class:`~gumbel_lib.vae.CategoricalVAE` with any gradient estimator, by name.

One step on a batch ``x``: the encoder gives logits ``l(x)`` of shape ``(B, V, K)``;
:func:`gumbel_lib.estimators.sample_with` draws a code ``y`` whose backward pass is the
chosen estimator's; the objective is ``-log p(x | y) + KL(q(z | x) || p(z))``, with the KL
exact (:func:`~gumbel_lib.vae.kl_to_uniform`), so only the reconstruction term needs an
estimator. With a one-hot ``y`` the objective is a single-draw estimate of ``-ELBO(x)``; with
the relaxed ``y`` of ``"gumbel-softmax"`` it is the *relaxed objective* (the decoder fed a
point inside the simplex, plus the discrete KL), which estimates no bound of the discrete
model. REINFORCE gets a baseline ``b``, an exponential moving average of the batch mean
reconstruction loss ``r_t`` over *past* steps, ``b_1 = r_0`` and
``b_{t+1} = d b_t + (1 - d) r_t`` with ``d = baseline_decay`` (no baseline at step 0):
independent of the current draw, so it adds no bias.
Chapter: :doc:`A categorical VAE </book/categorical-vae>`.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gumbel_lib._validation import check_count, check_positive
from gumbel_lib.estimators import ESTIMATORS, sample_with
from gumbel_lib.vae import (
    CategoricalVAE,
    check_model,
    check_pixels,
    kl_to_uniform,
    log_likelihood,
    model_dtype,
)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: the per-step training loss and the wall time."""

    losses: np.ndarray  # each step's batch mean of -log p(x | y) + KL at the drawn y
    taus: np.ndarray  # the temperature of each step
    seconds: float


def training_step_loss(
    model: CategoricalVAE,
    x: torch.Tensor,
    estimator: str,
    tau: float,
    *,
    generator: torch.Generator | None = None,
    baseline: torch.Tensor | None = None,
    n_samples: int | None = None,
    validate_args: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(objective, negative_elbo, reconstruction)`` of one batch under ``estimator``.

    ``objective`` is a scalar whose value is the batch mean of
    ``-log p(x | y) + KL`` and whose gradient is the estimator's; ``negative_elbo`` (per
    example, detached) is ``-log p(x | y) + KL``; ``reconstruction`` (per example, detached)
    is ``-log p(x | y)``, what a REINFORCE baseline tracks. ``y`` is hard (one-hot) for every
    estimator but ``"gumbel-softmax"``, and then ``negative_elbo`` is a single-draw estimate
    of ``-ELBO(x)``; for ``"gumbel-softmax"`` ``y`` is relaxed and the value is the relaxed
    objective, not an estimate of the discrete model's ``-ELBO``.

    >>> from gumbel_lib.vae import CategoricalVAE
    >>> model = CategoricalVAE(4, 2, 3, 8, generator=torch.Generator().manual_seed(0))
    >>> gen = torch.Generator().manual_seed(1)
    >>> objective, _, _ = training_step_loss(model, torch.ones(5, 4), "straight-through", 1.0,
    ...                                      generator=gen)
    >>> objective.dim()
    0
    """
    check_pixels(x, model, validate_args)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    logits = model.encode(x)
    y, surrogate = sample_with(
        estimator,
        logits,
        tau,
        generator=generator,
        n_samples=n_samples,
        baseline=baseline,
        validate_args=validate_args,
    )
    # One loss per image, shared by its V latents (a prefix of y's batch shape): REINFORCE
    # multiplies it by the score of the joint code, sum_v grad log q(z_v | x).
    loss = -log_likelihood(model.decode(y), x, validate_args=False)  # x checked above
    joint = surrogate(loss)
    if loss.dim() == 2:  # "reinforce-loo": a leading axis of n_samples draws
        loss, joint = loss.mean(0), joint.mean(0)
    kl = kl_to_uniform(logits, validate_args=validate_args)
    return (joint + kl).mean(), (loss + kl).detach(), loss.detach()


def _taus(tau: float | Sequence[float] | np.ndarray, steps: int) -> np.ndarray:
    if isinstance(tau, Sequence | np.ndarray):
        taus = np.asarray(tau, dtype=np.float64)
        if taus.shape != (steps,):
            raise ValueError(
                f"tau must be a number or hold one value per step ({steps}), "
                f"got shape {taus.shape}"
            )
        for value in taus:
            check_positive(float(value), "tau")
        return taus
    return np.full(steps, check_positive(tau, "tau"))


def _check_device(device: object, model: CategoricalVAE) -> torch.device:
    """``None`` (where the model is), or a usable ``torch.device`` or device name."""
    if device is None:
        return next(model.parameters()).device
    if not isinstance(device, torch.device | str):
        raise TypeError(
            f"device must be a torch.device, a device name or None, got {type(device).__name__}"
        )
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device={device!r} is not a torch device name") from err
    if device.type == "meta":
        raise ValueError("device='meta' holds no data: training needs a real device")
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        raise ValueError(f"device={str(device)!r} is not available here ({err})") from err
    return device


def _check_decay(decay: object) -> float:
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise TypeError(f"baseline_decay must be a real number, got {type(decay).__name__}")
    decay = float(decay)
    if not 0.0 <= decay < 1.0:  # also refuses NaN
        raise ValueError(f"baseline_decay must be in [0, 1), got {decay}")
    return decay


def train(
    model: CategoricalVAE,
    x: torch.Tensor,
    estimator: str,
    *,
    epochs: int,
    tau: float | Sequence[float] | np.ndarray = 1.0,
    batch_size: int = 100,
    lr: float = 1e-3,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    n_samples: int | None = None,
    baseline_decay: float = 0.9,
    progress: bool | None = None,
    on_epoch: Callable[[int], object] | None = None,
    validate_args: bool | None = None,
) -> TrainResult:
    """Fit ``model`` to the binary images ``x`` ``(N, P)`` by Adam on the estimator's objective.

    ``epochs`` passes over ``x`` in minibatches of ``batch_size``, shuffled with
    ``generator`` (which must live on ``device``; ``gumbel_lib.generator_for``); that makes
    ``T = epochs * ceil(N / batch_size)`` steps, and ``tau`` is one temperature or one per step
    (for example ``exponential_schedule(1.0, 0.5, T)``): step ``t`` (counted over the whole
    run, not per epoch) uses ``tau[t]``. The objective is that of :func:`training_step_loss`:
    the negative ELBO estimate at a one-hot code, the relaxed objective for
    ``"gumbel-softmax"``. ``n_samples`` goes to ``sample_with`` (the conditional draws of
    ``"gumbel-rao"``, the draws of ``"reinforce-loo"``). REINFORCE's baseline is the moving
    average of the module docstring with decay ``baseline_decay`` in ``[0, 1)``. The model
    (float32 or float64) and ``x`` (the model's dtype) are moved to ``device`` (default:
    where the model is). ``on_epoch(e)``, if given, is called after epoch ``e = 1, ...,
    epochs`` (to evaluate checkpoints; it must not draw from ``generator``). ``progress``
    shows a tqdm bar over the epochs (``None``: unless ``$TQDM_DISABLE`` is set; the chapters
    run with ``TQDM_DISABLE=1`` so that no bar enters their stored outputs). The loop adds
    no host synchronisation of its own (validation is off inside it) except, with a bar, one
    per epoch for the bar's text. Every argument is checked before the model is touched.

    >>> from gumbel_lib.vae import CategoricalVAE
    >>> model = CategoricalVAE(4, 2, 3, 8, generator=torch.Generator().manual_seed(0))
    >>> result = train(model, torch.ones(10, 4), "gumbel-softmax", epochs=2, batch_size=5,
    ...                generator=torch.Generator().manual_seed(1), progress=False)
    >>> result.losses.shape
    (4,)
    """
    model = check_model(model)
    dtype = model_dtype(model)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"model must have float32 or float64 parameters to be trained, got {dtype}; "
            "convert with model.float()"
        )
    check_pixels(x, model, validate_args, check_device=False)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    epochs = check_count(epochs, "epochs", upper=2**31 - 1, what="allowed")
    batch_size = check_count(batch_size, "batch_size", upper=x.shape[0], what="examples in x")
    lr = check_positive(lr, "lr")
    baseline_decay = _check_decay(baseline_decay)
    if n_samples is not None:
        n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool or None, got {type(progress).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be callable or None, got {type(on_epoch).__name__}")
    device = _check_device(device, model)
    if generator.device.type != device.type:
        raise ValueError(
            f"generator lives on {generator.device.type} but training runs on {device.type}; "
            "make one with gumbel_lib.generator_for(device, seed)"
        )
    n_batches = math.ceil(x.shape[0] / batch_size)
    taus = _taus(tau, epochs * n_batches)
    model.to(device)
    x = x.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    baseline = None
    losses = torch.empty(epochs * n_batches, device=device, dtype=dtype)
    bar = _progress(epochs, estimator, progress)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator, device=generator.device)
        for b in range(n_batches):
            step = epoch * n_batches + b  # the schedule runs over steps, not epochs
            batch = x[order[b * batch_size : (b + 1) * batch_size].to(device)]
            objective, neg_elbo, reconstruction = training_step_loss(
                model,
                batch,
                estimator,
                float(taus[step]),
                generator=generator,
                baseline=baseline if estimator == "reinforce" else None,
                n_samples=n_samples,
                validate_args=False,
            )
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            losses[step] = neg_elbo.mean()
            mean = reconstruction.mean()  # used from the next step on: independent of its draw
            # b <- d b + (1 - d) mean: lerp(mean, b, d) = mean + d (b - mean)
            baseline = mean if baseline is None else torch.lerp(mean, baseline, baseline_decay)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[step].item():.2f}", tau=f"{taus[step]:.3f}")
        if on_epoch is not None:
            on_epoch(epoch + 1)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    return TrainResult(losses.cpu().numpy(), taus, seconds)


def _progress(epochs: int, estimator: str, progress: bool | None) -> Any:
    """A tqdm bar over epochs, or ``None`` (turned off, or tqdm not installed).

    ``progress=None`` shows it unless ``$TQDM_DISABLE`` is set (to anything but ``0`` or
    ``false``), read at each call: tqdm reads it only once, when it is imported.
    """
    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false")
    if not progress:
        return None
    try:
        from tqdm import tqdm  # the console bar: tqdm.auto warns in kernels without ipywidgets
    except ImportError:  # the bar is a convenience: the library does not require tqdm
        return None
    return tqdm(total=epochs, desc=estimator, unit="epoch", disable=False)
