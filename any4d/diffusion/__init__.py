"""Diffusion forcing: masks, training noise, the loss, the sampler, test-time search.

Never imports ``any4d.model``: samplers and losses take any callable with the model's signature
(DESIGN §4).
"""

from any4d.diffusion.loss import LossTerms, flow_matching_loss
from any4d.diffusion.masks import PRESETS, TRAINING_PATTERNS, Layout, Mask, State
from any4d.diffusion.noise import NoiseConfig, add_noise, sample_patterns, sample_times, shift_time
from any4d.diffusion.sampler import make_scheduler, sample

__all__ = [
    "PRESETS",
    "TRAINING_PATTERNS",
    "Layout",
    "LossTerms",
    "Mask",
    "NoiseConfig",
    "State",
    "add_noise",
    "flow_matching_loss",
    "make_scheduler",
    "sample",
    "sample_patterns",
    "sample_times",
    "shift_time",
]
