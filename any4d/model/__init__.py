"""The four-stream Mixture-of-Transformers DiT (Wan2.1 blocks) and its checkpoint import.

Imports nothing else of any4d: the model sees latent grids and flow times, never scenes.
"""

from any4d.model.config import PRESETS, STREAMS, TransformerConfig, preset
from any4d.model.transformer import Any4DTransformer

__all__ = ["PRESETS", "STREAMS", "Any4DTransformer", "TransformerConfig", "preset"]
