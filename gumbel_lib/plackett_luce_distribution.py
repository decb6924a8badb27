"""``PlackettLuce(logits)``: the law of rankings as a ``torch.distributions.Distribution``.

A ranking ``sigma`` of ``K`` categories with logits ``l`` has Plackett-Luce probability
``prod_j exp(l_{sigma_j}) / sum_{r >= j} exp(l_{sigma_r})``, the law of the top ``K`` of
``l + g`` in decreasing order (Gumbel-top-k). Choices made here, in torch's terms:

* **Event**: the first ``k`` places of a ranking, ``event_shape = (k,)``, int64 category
  indices, best first. ``k = K`` (the default) is a full ranking, ``k < K`` a partial one
  (a top-k prefix), whose probability is the product of its first ``k`` factors: the
  marginal of the full law. ``k`` is fixed per distribution, so that ``sample`` and
  ``log_prob`` agree on the event and ``support`` is one constraint, :class:`Ranking`.
* **Logits**: unnormalised; ``-inf`` masks a category (never drawn; a ranking that places
  it has probability 0), provided every row keeps at least ``k`` finite logits. NaN and
  ``+inf`` are refused (``arg_constraints``: ``masked_real_vector``).
* **Validation**: ``validate_args=None`` follows ``gumbel_lib``'s library-wide default
  (on), not ``torch.distributions``'; its value checks run in every mode (``ValueError``
  in eager, ``torch._assert_async`` under ``torch.compile``, skipped inside ``torch.func``
  transforms), so construction, ``sample`` and ``log_prob`` compile with
  ``fullgraph=True`` with validation on.
* **Entropy**: exact. No closed form is known to us; by the chain rule
  ``H = sum_j E[H(sigma_j | sigma_1..sigma_{j-1})]``, and step ``j``'s law depends on the
  *set* already placed only, so a dynamic programme over those sets costs
  ``sum_{j<k} C(K, j)`` states (``2^K - 1`` for a full ranking) instead of
  ``K! / (K - k)!`` rankings. Above :data:`MAX_ENTROPY_SETS` states it raises.
* **Mode**: the ``k`` largest logits in decreasing order (an exchange argument: swapping a
  better category forward raises the probability); ``mean`` and ``variance`` are not
  defined for rankings and raise ``NotImplementedError``.

Chapter: :doc:`Sampling without replacement </book/sampling-without-replacement>`.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch.distributions import Distribution, constraints

from gumbel_lib._validation import (
    check_categories,
    check_count,
    check_logits,
    require,
    should_validate,
    working_dtype,
)
from gumbel_lib.plackett_luce import (
    _check_sample_values,
    plackett_luce_log_prob,
    require_drawable,
    safe_logsumexp,
    sample_ok,
)
from gumbel_lib.sampling import gumbel_topk

#: The most sets of placed categories :meth:`PlackettLuce.entropy` sums over (a full
#: ranking of K = 16 categories needs 2^16 - 1).
MAX_ENTROPY_SETS = 2**16

#: The most rankings :meth:`PlackettLuce.enumerate_support` lists (8! = 40,320 fit).
MAX_ENUMERATED = 2**16

_NO_SHAPE = torch.Size()


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


class Ranking(constraints.Constraint):
    """The first ``length`` places of a ranking of ``n_categories`` categories: integers in
    ``[0, n_categories)``, distinct along the last dimension, which has size ``length``.

    >>> Ranking(4, 2).check(torch.tensor([[3, 0], [1, 1], [0, 4]])).tolist()
    [True, False, False]
    """

    is_discrete = True
    event_dim = 1

    def __init__(self, n_categories: int, length: int) -> None:
        self.n_categories, self.length = n_categories, length
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        if not _is_integer(value.dtype) or value.dim() == 0 or value.shape[-1] != self.length:
            return torch.zeros(value.shape[:-1], dtype=torch.bool, device=value.device)
        return sample_ok(value, self.n_categories, -1)

    def __repr__(self) -> str:
        return f"Ranking(n_categories={self.n_categories}, length={self.length})"


class _MaskedRealVector(constraints.Constraint):
    """Real vectors whose entries may be ``-inf`` (a masked category), never NaN or ``+inf``."""

    event_dim = 1

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return (value < torch.inf).all(-1)

    def __repr__(self) -> str:
        return "MaskedRealVector()"


#: The constraint on logit vectors (real, ``-inf`` allowed for masked categories, NaN and
#: ``+inf`` refused).
masked_real_vector = _MaskedRealVector()


class PlackettLuce(Distribution):
    """Plackett-Luce law of the first ``k`` places of a ranking of the categories of ``logits``.

    ``P(sigma_1..sigma_k) = prod_{j<=k} exp(l_{sigma_j}) / sum_{r not in sigma_1..sigma_{j-1}}
    exp(l_r)``, over the last dimension of ``logits`` (``K`` categories; the others are the
    batch shape). ``k`` defaults to ``K`` (full rankings). ``sample(sample_shape,
    generator=...)`` draws with :func:`~gumbel_lib.sampling.gumbel_topk` (torch's
    ``sample`` has no generator: ours takes one as a keyword, for explicit seeding);
    ``log_prob`` calls :func:`~gumbel_lib.plackett_luce.plackett_luce_log_prob` (float32
    for half-precision logits). Under validation, construction refuses NaN or ``+inf``
    logits and rows with fewer than ``k`` finite logits, and ``log_prob`` values that are
    not rankings. The module notes give the design. Chapter:
    :doc:`Sampling without replacement </book/sampling-without-replacement>`.

    >>> pl = PlackettLuce(torch.tensor([2.0, 1.0, 0.0]))
    >>> pl.sample((2,), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3])
    >>> round(pl.log_prob(torch.tensor([0, 1, 2])).exp().item(), 4), pl.mode.tolist()
    (0.4863, [0, 1, 2])
    >>> round(PlackettLuce(torch.zeros(4), k=2).entropy().item(), 4)  # log(4 * 3)
    2.4849
    """

    arg_constraints = {"logits": masked_real_vector}
    has_enumerate_support = True

    def __init__(
        self, logits: torch.Tensor, k: int | None = None, *, validate_args: bool | None = None
    ) -> None:
        check_logits(logits)
        check_categories(logits.shape, logits.dim() - 1)
        n = logits.shape[-1]
        self.k = n if k is None else check_count(k, "k", upper=n, what="categories of logits")
        self.logits = logits
        validate = should_validate(validate_args)
        if validate and logits.numel():
            require_drawable(logits, self.k, -1, "k")
        super().__init__(logits.shape[:-1], torch.Size((self.k,)), validate_args=False)
        self._validate_args = validate

    @property
    def n_categories(self) -> int:
        """``K``, the number of categories being ranked."""
        return int(self.logits.shape[-1])

    @property
    def support(self) -> Ranking:
        """:class:`Ranking` of ``k`` places among the ``K`` categories."""
        return Ranking(self.n_categories, self.k)

    def expand(
        self,
        batch_shape: torch.Size | list[int] | tuple[int, ...],
        _instance: PlackettLuce | None = None,
    ) -> PlackettLuce:
        """The same law with ``logits`` expanded (a view, not a copy) to ``batch_shape``."""
        new: PlackettLuce = self._get_checked_instance(PlackettLuce, _instance)
        batch_shape = torch.Size(batch_shape)
        new.logits = self.logits.expand(batch_shape + self.logits.shape[-1:])
        new.k = self.k
        super(PlackettLuce, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(
        self,
        sample_shape: torch.Size | list[int] | tuple[int, ...] = _NO_SHAPE,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Rankings of shape ``sample_shape + batch_shape + (k,)``: the top ``k`` of
        ``logits + g`` (Gumbel-top-k), drawn from ``generator`` (``None``: the global one)."""
        shape = self._extended_shape(sample_shape)
        logits = self.logits.expand(shape[:-1] + self.logits.shape[-1:])
        with torch.no_grad():
            return gumbel_topk(logits, self.k, generator=generator, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log P(value)`` for rankings ``value`` of shape ``(..., k)`` that broadcast with
        ``batch_shape``: ``-inf`` (gradient 0) for a ranking that places a masked category."""
        if not isinstance(value, torch.Tensor) or not _is_integer(value.dtype):
            raise TypeError("value must be an integer torch.Tensor of category indices")
        if value.dim() == 0 or value.shape[-1] != self.k:
            raise ValueError(
                f"value must have a last dimension of size k={self.k} (the event shape), "
                f"got shape {tuple(value.shape)}"
            )
        try:
            batch = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        except RuntimeError as err:
            raise ValueError(
                f"value of shape {tuple(value.shape)} does not broadcast with batch_shape "
                f"{tuple(self.batch_shape)}"
            ) from err
        value = value.long().expand(batch + self.event_shape)
        if self._validate_args:
            n = self.n_categories
            require(
                sample_ok(value, n, -1),
                f"value must hold rankings: distinct indices in [0, {n}) along its last dim",
                lambda: _check_sample_values(value, n, -1, "value"),
            )
        logits = self.logits.expand(batch + self.logits.shape[-1:])
        return plackett_luce_log_prob(logits, value, validate_args=False)

    def entropy(self) -> torch.Tensor:
        """Exact entropy of the first ``k`` places (module notes), shape ``batch_shape``."""
        n_sets = sum(math.comb(self.n_categories, j) for j in range(self.k))
        if n_sets > MAX_ENTROPY_SETS:
            raise ValueError(
                f"entropy of k={self.k} places among {self.n_categories} categories sums over "
                f"{n_sets} sets of placed categories, more than MAX_ENTROPY_SETS = "
                f"{MAX_ENTROPY_SETS}: estimate it with -log_prob(sample).mean() instead"
            )
        return ranking_entropy(self.logits.to(working_dtype(self.logits.dtype)), self.k)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """Every ranking of ``k`` places, shape ``(K! / (K - k)!,) + batch_shape + (k,)``."""
        count = math.perm(self.n_categories, self.k)
        if count > MAX_ENUMERATED:
            raise ValueError(
                f"k={self.k} places among {self.n_categories} categories make {count} "
                f"rankings, more than MAX_ENUMERATED = {MAX_ENUMERATED}"
            )
        rows = itertools.permutations(range(self.n_categories), self.k)
        values = torch.tensor(list(rows), dtype=torch.long, device=self.logits.device)
        values = values.view((count,) + (1,) * len(self.batch_shape) + self.event_shape)
        return values.expand((count,) + self.batch_shape + self.event_shape) if expand else values

    @property
    def mode(self) -> torch.Tensor:
        """The most probable ranking, the ``k`` largest logits in decreasing order (ties broken
        by index)."""
        order = torch.argsort(self.logits, dim=-1, descending=True, stable=True)
        return order[..., : self.k]

    @property
    def mean(self) -> torch.Tensor:
        raise NotImplementedError("a ranking is an order of labels: PlackettLuce has no mean")

    @property
    def variance(self) -> torch.Tensor:
        raise NotImplementedError("a ranking is an order of labels: PlackettLuce has no variance")

    def __repr__(self) -> str:
        return f"PlackettLuce(logits: {tuple(self.logits.shape)}, k={self.k})"


def _binomials(n: int, r_max: int, device: torch.device) -> torch.Tensor:
    """``C(c, r)`` for ``c < n`` and ``r <= r_max``, int64, by Pascal's rule (internal)."""
    table = torch.zeros(n, r_max + 1, dtype=torch.long, device=device)
    table[:, 0] = 1
    for r in range(1, r_max + 1):
        table[1:, r] = table[:-1, r - 1].cumsum(0)
    return table


def ranking_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy of the first ``k`` places of a Plackett-Luce ranking, exactly (internal).

    ``H = sum_S P(S) H(softmax of l off S)`` over the sets ``S`` of fewer than ``k``
    categories, where ``P(S)`` is the probability that the first ``|S|`` places hold ``S``:
    ``P(T) = sum_{t in T} P(T - t) q(t | T - t)``. Level ``j`` lists the ``j``-sets in
    colexicographic order, so that a set's position is its rank ``sum_m C(t_m, m)``.
    """
    n = logits.shape[-1]
    table = _binomials(n, max(k - 1, 1), logits.device)
    combos = torch.zeros(1, 0, dtype=torch.long, device=logits.device)  # level 0: the empty set
    p = torch.ones(*logits.shape[:-1], 1, dtype=logits.dtype, device=logits.device)
    entropy = torch.zeros(logits.shape[:-1], dtype=logits.dtype, device=logits.device)
    for j in range(k):
        taken = torch.zeros(combos.shape[0], n, dtype=torch.bool, device=logits.device)
        rest = torch.where(taken.scatter(1, combos, True), -torch.inf, logits.unsqueeze(-2))
        log_z = safe_logsumexp(rest)
        log_q = rest - torch.where(torch.isneginf(log_z), 0.0, log_z).unsqueeze(-1)
        q = log_q.exp()
        entropy = entropy - (p * (q * torch.where(q > 0, log_q, 0.0)).sum(-1)).sum(-1)
        if j + 1 == k:
            break
        counts = table[:, j]  # the (j+1)-sets with largest element i: C(i, j) of them
        size = math.comb(n, j + 1)  # known to Python, so the shapes stay static when compiled
        largest = torch.repeat_interleave(
            torch.arange(n, device=logits.device), counts, output_size=size
        )
        prefix = torch.arange(size, device=logits.device)
        prefix = prefix - (counts.cumsum(0) - counts)[largest]
        combos = torch.cat([combos[prefix], largest.unsqueeze(1)], 1)
        position = torch.arange(j + 1, device=logits.device)
        below, above = table[combos, position + 1], table[combos, position]
        dropped = (below.cumsum(1) - below) + (above.sum(1, keepdim=True) - above.cumsum(1))
        step = q.flatten(-2)[..., dropped * n + combos]  # q(t_m | T - t_m)
        p = (p[..., dropped] * step).sum(-1)
    return entropy
