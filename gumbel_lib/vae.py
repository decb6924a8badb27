"""A variational autoencoder with categorical latent variables, and its bounds.

The model of :doc:`A categorical VAE </book/categorical-vae>` (Kingma and Welling, 2014;
Jang et al., 2017): ``V`` independent latent variables ``z_v`` with ``K`` categories each,

* prior ``p(z) = prod_v Uniform{1..K}``, so ``log p(z) = -V log K``;
* encoder ``q(z | x) = prod_v Categorical(softmax(l_v(x)))``, ``l = MLP(x)`` reshaped ``(V, K)``;
* decoder ``p(x | z) = prod_i Bernoulli(x_i; sigmoid(a_i(z)))``, ``a = MLP(flat one-hot z)``,
  for binary pixels ``x_i`` in ``{0, 1}``.

The evidence lower bound and its exact KL term::

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))
    KL      = sum_v sum_k q_vk log(K q_vk) = V log K - sum_v H(q_v)

and the importance-weighted bound (Burda et al., 2016) with ``S`` draws ``z_s ~ q``::

    log p(x) >= E log (1/S) sum_s p(x | z_s) p(z_s) / q(z_s | x)  (>= ELBO; -> log p(x))

Functions return *negative* bounds in nats, one per example (lower is better). Training with
any gradient estimator is in :mod:`gumbel_lib.vae_training`.
"""

from __future__ import annotations

import math

import torch

from gumbel_lib._validation import check_count, check_logits, require, should_validate
from gumbel_lib.enumeration import joint_outcomes
from gumbel_lib.sampling import gumbel_max


class CategoricalVAE(torch.nn.Module):
    """Encoder and decoder MLPs (one hidden ReLU layer each) around ``V x K`` categoricals.

    The weights are drawn like ``torch.nn.Linear``'s defaults (uniform on
    ``+-1/sqrt(fan_in)``) from ``generator``, on the CPU; move the model with ``.to``.

    >>> model = CategoricalVAE(64, 4, 3, 16, generator=torch.Generator().manual_seed(0))
    >>> tuple(model.encode(torch.zeros(5, 64)).shape)
    (5, 4, 3)
    >>> tuple(model.decode(torch.zeros(5, 4, 3)).shape)
    (5, 64)
    """

    def __init__(
        self,
        n_pixels: int = 64,
        n_latents: int = 8,
        n_categories: int = 8,
        hidden: int = 128,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        big = 2**20
        self.n_pixels = check_count(n_pixels, "n_pixels", upper=big, what="allowed")
        self.n_latents = check_count(n_latents, "n_latents", upper=big, what="allowed")
        self.n_categories = check_count(n_categories, "n_categories", upper=big, what="allowed")
        hidden = check_count(hidden, "hidden", upper=big, what="allowed")
        code = self.n_latents * self.n_categories
        # Built on the meta device, so that the global RNG is never touched.
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(self.n_pixels, hidden, device="meta"),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, code, device="meta"),
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(code, hidden, device="meta"),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, self.n_pixels, device="meta"),
        )
        self.to_empty(device="cpu")
        with torch.no_grad():
            for layer in (*self.encoder, *self.decoder):
                if isinstance(layer, torch.nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``l(x)`` of ``q(z | x)``, shape ``(*batch, V, K)``."""
        flat: torch.Tensor = self.encoder(x)
        logits: torch.Tensor = flat.unflatten(-1, (self.n_latents, self.n_categories))
        return logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits ``a(z)`` of ``p(x | z)``, for codes ``z`` of shape ``(*batch, V, K)``.

        ``z`` may be one-hot or relaxed (a point of each latent's simplex).
        """
        pixel_logits: torch.Tensor = self.decoder(z.flatten(-2))
        return pixel_logits


def check_model(model: object, name: str = "model") -> CategoricalVAE:
    """``model`` is a :class:`CategoricalVAE` (structural)."""
    if not isinstance(model, CategoricalVAE):
        raise TypeError(
            f"{name} must be a gumbel_lib.vae.CategoricalVAE, got {type(model).__name__}"
        )
    return model


def model_dtype(model: CategoricalVAE) -> torch.dtype:
    """The dtype of the model's parameters (all of them share it unless the caller mixed)."""
    return next(model.parameters()).dtype


def check_pixels(
    x: object,
    model: object,
    validate_args: bool | None = None,
    *,
    check_device: bool = True,
) -> torch.Tensor:
    """``model`` is a :class:`CategoricalVAE`; ``x`` is a float tensor ``(B, n_pixels)`` of the
    model's dtype (and, with ``check_device``, on its device); under validation, its values
    are 0 or 1 (one reduction and one read, through ``require``). Structural checks always run.
    """
    model = check_model(model)
    x = check_logits(x, "x")
    if x.dim() != 2 or x.shape[-1] != model.n_pixels:
        raise ValueError(f"x must have shape (batch, {model.n_pixels}), got {tuple(x.shape)}")
    parameter = next(model.parameters())
    if x.dtype != parameter.dtype:
        raise TypeError(
            f"x has dtype {x.dtype} but the model's parameters have dtype {parameter.dtype}; "
            f"convert with x.to({parameter.dtype}) (or the model with model.to({x.dtype}))"
        )
    if check_device and x.device != parameter.device:
        raise ValueError(
            f"x is on {x.device} but the model is on {parameter.device}; move one of them"
        )
    if should_validate(validate_args):
        require((x == 0) | (x == 1), "x must be binary: every pixel 0 or 1")
    return x


def kl_to_uniform(logits: torch.Tensor, *, validate_args: bool | None = None) -> torch.Tensor:
    """Exact ``KL(q || Uniform)`` summed over the latents: ``sum_v sum_k q_vk log(K q_vk)``.

    ``logits`` has shape ``(*batch, V, K)``; the result has shape ``batch``. A ``-inf`` logit
    contributes ``0 log 0 = 0``. Derived in :doc:`A categorical VAE </book/categorical-vae>`.

    >>> round(kl_to_uniform(torch.tensor([[0.0, 0.0], [50.0, 0.0]])).item(), 4)  # 0 + log 2
    0.6931
    """
    check_logits(logits)
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape (*batch, V, K), got {tuple(logits.shape)}")
    if should_validate(validate_args):
        require(~torch.isnan(logits), "logits contains NaN")
    q = torch.softmax(logits, dim=-1)
    n_latents, n_categories = logits.shape[-2:]
    kl: torch.Tensor = torch.special.xlogy(q, q).sum((-2, -1))
    return kl + n_latents * math.log(n_categories)


def log_likelihood(
    pixel_logits: torch.Tensor, x: torch.Tensor, *, validate_args: bool | None = None
) -> torch.Tensor:
    """``log p(x | z) = sum_i [x_i log sigmoid(a_i) + (1 - x_i) log sigmoid(-a_i)]``.

    Broadcasts ``pixel_logits`` ``(*batch, P)`` against ``x``; sums over the ``P`` pixels.
    Under validation ``x`` must be binary.

    >>> round(log_likelihood(torch.zeros(1, 2), torch.ones(1, 2)).item(), 4)  # 2 log(1/2)
    -1.3863
    """
    check_logits(pixel_logits, "pixel_logits")
    check_logits(x, "x")
    if should_validate(validate_args):
        require((x == 0) | (x == 1), "x must be binary: every pixel 0 or 1")
    pixel_logits, x = torch.broadcast_tensors(pixel_logits, x)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(pixel_logits, x, reduction="none")
    return -bce.sum(-1)


def _encode_and_draw(
    model: CategoricalVAE,
    x: torch.Tensor,
    n_samples: int,
    generator: torch.Generator | None,
    validate_args: bool | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``q(z | x)`` and ``n_samples`` exact one-hot draws, ``(S, B, V, K)``."""
    check_pixels(x, model, validate_args)
    n_samples = check_count(n_samples, "n_samples", upper=2**31 - 1, what="allowed")
    logits = model.encode(x)
    index = gumbel_max(logits.detach().expand(n_samples, *logits.shape), generator=generator)
    return logits, torch.nn.functional.one_hot(index, logits.shape[-1]).to(logits.dtype)


def negative_elbo(
    model: CategoricalVAE,
    x: torch.Tensor,
    *,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """Unbiased estimate of ``-ELBO(x)`` with ``n_samples`` *hard* draws ``z_s ~ q(z | x)``.

    ``-(1/S) sum_s log p(x | z_s) + KL(q(z | x) || p(z))`` per example, shape ``(B,)``.

    >>> model = CategoricalVAE(4, 2, 3, 8, generator=torch.Generator().manual_seed(0))
    >>> gen = torch.Generator().manual_seed(1)
    >>> tuple(negative_elbo(model, torch.ones(5, 4), n_samples=3, generator=gen).shape)
    (5,)
    """
    logits, codes = _encode_and_draw(model, x, n_samples, generator, validate_args)
    reconstruction = -log_likelihood(model.decode(codes), x, validate_args=False).mean(0)
    return reconstruction + kl_to_uniform(logits, validate_args=validate_args)


def importance_weighted_bound(
    model: CategoricalVAE,
    x: torch.Tensor,
    *,
    n_samples: int,
    generator: torch.Generator | None = None,
    validate_args: bool | None = None,
) -> torch.Tensor:
    """``-log (1/S) sum_s p(x | z_s) p(z_s) / q(z_s | x)`` with ``z_s ~ q``, shape ``(B,)``.

    In expectation an upper bound on ``-log p(x)``, tighter as ``S`` grows; ``S = 1`` is
    the single-sample negative ELBO estimate (Burda et al., 2016).

    >>> model = CategoricalVAE(4, 1, 2, 8, generator=torch.Generator().manual_seed(0))
    >>> x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    >>> gen = torch.Generator().manual_seed(1)
    >>> bound = importance_weighted_bound(model, x, n_samples=4000, generator=gen)
    >>> nll = exact_bounds(model, x)[1]
    >>> bool(abs(bound - nll) < 0.01)
    True
    """
    logits, codes = _encode_and_draw(model, x, n_samples, generator, validate_args)
    log_q = (torch.log_softmax(logits, -1) * codes).sum((-2, -1))
    log_prior = -model.n_latents * math.log(model.n_categories)
    log_px = log_likelihood(model.decode(codes), x, validate_args=False)
    log_w = log_px + log_prior - log_q
    return math.log(n_samples) - torch.logsumexp(log_w, dim=0)


def exact_bounds(
    model: CategoricalVAE, x: torch.Tensor, *, validate_args: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(-ELBO(x), -log p(x))`` computed exactly by enumerating all ``K^V`` codes.

    ``-ELBO = -sum_z q(z | x) log p(x | z) + KL`` and
    ``-log p(x) = -logsumexp_z [log p(x | z) + log p(z)]``; each of shape ``(B,)``. For
    small models (tests, the chapter's checks): ``ValueError`` when ``K^V`` exceeds
    :data:`gumbel_lib.enumeration.MAX_OUTCOMES`.

    >>> model = CategoricalVAE(4, 2, 3, 8, generator=torch.Generator().manual_seed(0))
    >>> elbo, nll = exact_bounds(model, torch.ones(2, 4))
    >>> bool((elbo >= nll).all())
    True
    """
    check_pixels(x, model, validate_args)
    codes = joint_outcomes(model.n_latents, model.n_categories, dtype=x.dtype, device=x.device)
    logits = model.encode(x)  # (B, V, K)
    log_q = torch.einsum("bvk,nvk->bn", torch.log_softmax(logits, -1), codes)
    log_px = log_likelihood(model.decode(codes)[:, None, :], x, validate_args=False).T  # (B, N)
    neg_elbo = -(log_q.exp() * log_px).sum(-1) + kl_to_uniform(logits)
    log_prior = -model.n_latents * math.log(model.n_categories)
    return neg_elbo, -torch.logsumexp(log_px + log_prior, dim=-1)


def code_usage(
    model: CategoricalVAE, x: torch.Tensor, *, validate_args: bool | None = None
) -> torch.Tensor:
    """Aggregate posterior ``(1/B) sum_b q(z_v = k | x_b)``, shape ``(V, K)``.

    How often the encoder uses each category of each latent variable on the data ``x``; its
    perplexity along ``K`` (:func:`perplexity`) counts the categories in use.
    """
    check_pixels(x, model, validate_args)
    with torch.no_grad():
        return torch.softmax(model.encode(x), -1).mean(0)


def perplexity(probs: torch.Tensor, *, validate_args: bool | None = None) -> torch.Tensor:
    """``exp(H(p)) = exp(-sum_k p_k log p_k)`` along the last axis: 1 to ``K`` categories.

    Under validation ``probs`` must be non-negative and sum to 1 along the last axis.

    >>> perplexity(torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])).tolist()
    [2.0, 1.0]
    """
    check_logits(probs, "probs")
    if should_validate(validate_args):
        total = probs.sum(-1, keepdim=True)
        require(
            (probs >= 0) & ((total - 1).abs() <= 1e-5 + 1e-8),
            "probs must be non-negative and sum to 1 along the last axis",
        )
    return torch.exp(-torch.special.xlogy(probs, probs).sum(-1))
