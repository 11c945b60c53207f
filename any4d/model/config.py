"""Configuration of the four-stream transformer and its named presets.

A config is a frozen dataclass; presets are named values (``PRESETS["wan2.1-1.3b"]``). Change a
field with ``dataclasses.replace(config, num_layers=2)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# DESIGN §2: the four streams, always in this order.
STREAMS = ("rgb", "depth", "ray_d", "ray_m")

# A field checkpoints written before its removal still hold (the shipped demo model among them):
# a RoPE bound that nothing ever read. ``from_dict`` drops it whatever its value.
LEGACY_KEY = "max_positions"


@dataclass(frozen=True)
class TransformerConfig:
    """Shape of an ``Any4DTransformer``.

    streams:     the streams the model has weights for, a subsequence of ``STREAMS`` in order.
    in_channels: latent channels of every stream (Wan VAE: 16); the output has as many.
    dim:         hidden width; ``dim = num_heads · head_dim``.
    ffn_dim:     hidden width of the feed-forward networks.
    num_heads:   attention heads; ``head_dim`` must be even (RoPE rotates pairs).
    num_layers:  transformer blocks.
    patch_size:  (t, h, w) patch of the patch embedding (Wan: (1, 2, 2)).
    text_dim:    width of the text features (umT5-XXL: 4096), or None for a model without text
                 cross-attention.
    freq_dim:    width of the sinusoidal timestep features.
    eps:         epsilon of every LayerNorm / RMSNorm.
    rope_theta:  base of the RoPE frequency ladders.
    """

    streams: tuple[str, ...] = STREAMS
    in_channels: int = 16
    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_dim: int | None = 4096
    freq_dim: int = 256
    eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        streams = tuple(self.streams)
        object.__setattr__(self, "streams", streams)
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        unknown = [s for s in streams if s not in STREAMS]
        if unknown or not streams:
            raise ValueError(
                f"streams={list(streams)} (expected a non-empty subset of {list(STREAMS)})"
            )
        if list(streams) != [s for s in STREAMS if s in streams]:
            raise ValueError(
                f"streams={list(streams)} (expected unique names in the order {list(STREAMS)})"
            )
        for name in ("in_channels", "dim", "ffn_dim", "num_heads", "num_layers", "freq_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} (expected a positive integer)")
        if self.dim % self.num_heads:
            raise ValueError(
                f"dim={self.dim} is not divisible by num_heads={self.num_heads} "
                "(expected dim = num_heads · head_dim)"
            )
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(
                f"head_dim = dim / num_heads = {self.head_dim} (expected an even number ≥ 6: "
                "RoPE rotates pairs over three axes)"
            )
        if len(self.patch_size) != 3 or min(self.patch_size) <= 0:
            raise ValueError(f"patch_size={self.patch_size} (expected three positive integers)")
        if self.freq_dim % 2:
            raise ValueError(f"freq_dim={self.freq_dim} (expected an even number)")
        if self.text_dim is not None and self.text_dim <= 0:
            raise ValueError(f"text_dim={self.text_dim} (expected a positive integer or None)")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def patch_numel(self) -> int:
        """Latent values per token and stream: ``in_channels · p_t · p_h · p_w``."""
        p_t, p_h, p_w = self.patch_size
        return self.in_channels * p_t * p_h * p_w

    @property
    def rope_dims(self) -> tuple[int, int, int]:
        """Real dims of each head given to the (t, h, w) RoPE axes — Wan's split."""
        h = w = 2 * (self.head_dim // 6)
        return self.head_dim - h - w, h, w

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["streams"] = list(self.streams)
        data["patch_size"] = list(self.patch_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        """Inverse of ``to_dict``; unknown keys are an error, except ``LEGACY_KEY`` (dropped)."""
        data = {key: value for key, value in data.items() if key != LEGACY_KEY}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TransformerConfig keys {unknown} (known: {sorted(known)})")
        return cls(**data)


PRESETS: dict[str, TransformerConfig] = {
    # Wan2.1-T2V-1.3B (WAN.md §1), one copy per stream.
    "wan2.1-1.3b": TransformerConfig(),
    # CPU scale, for the pixel tokenizer (stride 2: 12 channels) and the procedural world.
    "small": TransformerConfig(
        in_channels=12, dim=256, ffn_dim=1024, num_heads=4, num_layers=6, text_dim=None
    ),
    "tiny": TransformerConfig(
        in_channels=12, dim=64, ffn_dim=256, num_heads=2, num_layers=2, text_dim=None
    ),
}


def preset(name: str, **overrides: Any) -> TransformerConfig:
    """A named config, optionally with fields replaced: ``preset("tiny", num_layers=4)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r} (expected one of {sorted(PRESETS)})")
    return dataclasses.replace(PRESETS[name], **overrides)
