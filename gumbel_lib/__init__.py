"""gumbel_lib: seeded, numerically safe Gumbel tricks for PyTorch.

The library that *The Gumbel-Max Trick* book derives, chapter by chapter. Every sampler
takes an explicit ``torch.Generator``; bad input raises ``TypeError``/``ValueError`` naming
the argument; no function returns NaN.
"""

from gumbel_lib._validation import get_default_validate_args, set_default_validate_args
from gumbel_lib.conditional import conditional_gumbels, gumbel_rao
from gumbel_lib.counterfactual import (
    counterfactual_gumbel_max,
    counterfactual_probs,
    counterfactual_sequence,
    posterior_gumbels,
)
from gumbel_lib.coupling import coupled_gumbel_max, coupling_agreement, coupling_joint
from gumbel_lib.density import concrete_log_prob
from gumbel_lib.device import default_device, generator_for
from gumbel_lib.estimators import (
    ESTIMATORS,
    exact_expected_gradient,
    exact_gradient,
    relaxed_gradient,
    sample_with,
    score_function,
    sse_gradient,
    straight_through_gradient,
)
from gumbel_lib.keyed import keyed_uniform, philox4x32
from gumbel_lib.noise import (
    gumbel_from_uniform,
    noise_bounds,
    sample_gumbel,
    truncated_tail_mass,
)
from gumbel_lib.plackett_luce import (
    plackett_luce_log_prob,
    plackett_luce_subset_log_prob,
    sequential_sample,
)
from gumbel_lib.plackett_luce_distribution import PlackettLuce
from gumbel_lib.reinmax import reinmax
from gumbel_lib.relax import gumbel_softmax, relaxed_log_sample, straight_through
from gumbel_lib.sampling import gumbel_max, gumbel_topk, perturb
from gumbel_lib.schedules import exponential_schedule, jang_schedule
from gumbel_lib.sharded import sharded_gumbel_max
from gumbel_lib.speculative import drafter_invariant_step, residual_logits, speculative_step
from gumbel_lib.subsets import expected_redraws, m_hot, m_hot_by_redraw
from gumbel_lib.tokens import sample_tokens
from gumbel_lib.topk_conditional import conditional_topk_gumbels
from gumbel_lib.watermark import WatermarkScore, watermark_sample, watermark_score

__version__ = "0.1.0"

__all__ = [
    "ESTIMATORS",
    "PlackettLuce",
    "WatermarkScore",
    "concrete_log_prob",
    "conditional_gumbels",
    "conditional_topk_gumbels",
    "counterfactual_gumbel_max",
    "counterfactual_probs",
    "counterfactual_sequence",
    "coupled_gumbel_max",
    "coupling_agreement",
    "coupling_joint",
    "default_device",
    "drafter_invariant_step",
    "exact_expected_gradient",
    "exact_gradient",
    "expected_redraws",
    "exponential_schedule",
    "generator_for",
    "get_default_validate_args",
    "gumbel_from_uniform",
    "gumbel_max",
    "gumbel_rao",
    "gumbel_softmax",
    "gumbel_topk",
    "jang_schedule",
    "keyed_uniform",
    "m_hot",
    "m_hot_by_redraw",
    "noise_bounds",
    "perturb",
    "philox4x32",
    "plackett_luce_log_prob",
    "plackett_luce_subset_log_prob",
    "posterior_gumbels",
    "reinmax",
    "relaxed_gradient",
    "relaxed_log_sample",
    "residual_logits",
    "sample_gumbel",
    "sample_tokens",
    "sample_with",
    "score_function",
    "sequential_sample",
    "set_default_validate_args",
    "sharded_gumbel_max",
    "speculative_step",
    "sse_gradient",
    "straight_through",
    "straight_through_gradient",
    "truncated_tail_mass",
    "watermark_sample",
    "watermark_score",
]
