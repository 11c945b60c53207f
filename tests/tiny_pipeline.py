"""A tiny untrained pipeline for tests: the ``tiny`` transformer and a pixel tokenizer."""

from __future__ import annotations

import torch

from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer


def tiny_pipeline(num_frames: int = 3, steps: int = 2, tokenizer=None) -> Any4DPipeline:
    """Seeded (the same weights every call); clips of ``num_frames`` frames at 16 × 16."""
    torch.manual_seed(0)
    return Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2) if tokenizer is None else tokenizer,
        {"num_frames": num_frames, "height": 16, "width": 16, "steps": steps},
    )
