"""Diffusion forcing: masks, training noise, the loss, the sampler, test-time search.

Never imports ``any4d.model``: samplers and losses take any callable with the model's signature
(DESIGN §4).
"""

from any4d.diffusion.loss import LossTerms, flow_matching_loss, target_counts
from any4d.diffusion.masks import PRESETS, TRAINING_PATTERNS, Layout, Mask, State
from any4d.diffusion.noise import NoiseConfig, add_noise, sample_patterns, sample_times, shift_time
from any4d.diffusion.sampler import Latents, SamplerConfig, make_scheduler, sample
from any4d.diffusion.scoring import (
    anchor_pairs,
    combined_score,
    geometric_score,
    photometric_score,
)
from any4d.diffusion.search import SearchConfig, SearchResult, search
from any4d.diffusion.uncertainty import Uncertainty, posterior_spread

__all__ = [
    "PRESETS",
    "TRAINING_PATTERNS",
    "Latents",
    "Layout",
    "LossTerms",
    "Mask",
    "NoiseConfig",
    "SamplerConfig",
    "SearchConfig",
    "SearchResult",
    "State",
    "Uncertainty",
    "add_noise",
    "anchor_pairs",
    "combined_score",
    "flow_matching_loss",
    "target_counts",
    "geometric_score",
    "make_scheduler",
    "photometric_score",
    "posterior_spread",
    "sample",
    "sample_patterns",
    "sample_times",
    "search",
    "shift_time",
]
