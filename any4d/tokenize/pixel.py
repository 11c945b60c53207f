"""``PixelTokenizer``: the CPU-scale tokenizer — pixels are the latents (DESIGN §2).

No learned compression and temporal stride 1. The optional spatial stride is space-to-depth
(``pixel_unshuffle``): each ``stride × stride`` block becomes the channels of one latent cell.
Unlike average pooling it is lossless, so encoding and decoding are exact inverses and the only
thing a stride changes is how many tokens a clip costs. Every stream has ``3·stride²``
channels: RGB and ``D̃`` (replicated to 3 channels) are unshuffled; rays, computed at the coarse
grid, fill 3 of them and the rest are zero.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from any4d.tokenize.base import Tokenizer


class PixelTokenizer(Tokenizer):
    """Space-to-depth tokenizer: grids (B, 3·stride², T, H / stride, W / stride).

    stride: spatial stride (≥ 1); H and W of every clip must be multiples of it.
    stream_scales: optional per-stream factors of the grids (``Tokenizer.stream_scales``).
    """

    temporal_stride = 1

    def __init__(self, stride: int = 1, stream_scales: dict[str, float] | None = None) -> None:
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError(f"stride is {stride!r} (expected an integer ≥ 1)")
        self.spatial_stride = stride
        self.latent_channels = 3 * stride * stride
        self.set_stream_scales(stream_scales)

    def encode_images(self, images: Tensor) -> Tensor:
        """(B, T, 3, H, W) → (B, 3·stride², T, H / stride, W / stride)."""
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images has shape {tuple(images.shape)} (expected (B, T, 3, H, W))")
        self.latent_size(images.shape[1], *images.shape[3:])
        cells = F.pixel_unshuffle(images.flatten(0, 1), self.spatial_stride)  # (B·T, C, H', W')
        return rearrange(cells, "(b t) c h w -> b c t h w", b=images.shape[0])

    def decode_images(self, latents: Tensor) -> Tensor:
        """(B, 3·stride², T, H', W') → (B, T, 3, H'·stride, W'·stride), clamped to [-1, 1]."""
        if latents.dim() != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents has shape {tuple(latents.shape)} (expected (B, {self.latent_channels}, "
                "T, H', W'))"
            )
        cells = rearrange(latents, "b c t h w -> (b t) c h w")
        images = F.pixel_shuffle(cells, self.spatial_stride).clamp(-1.0, 1.0)
        return rearrange(images, "(b t) c h w -> b t c h w", b=latents.shape[0])

    def __repr__(self) -> str:
        scales = f", stream_scales={self.stream_scales}" if self.stream_scales else ""
        return f"PixelTokenizer(stride={self.spatial_stride}{scales})"
