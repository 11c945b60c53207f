"""Tokenizers: scenes ⇄ aligned latent grids, one per stream (DESIGN §2).

``tokenizer.encode(scenes)`` normalises each clip (first camera, clip scale), turns RGB and depth
into latents with an image codec and computes camera rays analytically at the latent grid, and
returns a ``LatentClip``: grids ``rgb``, ``depth``, ``ray_d``, ``ray_m`` of one shape
(B, C, T', H', W') plus the metadata to map masks and decode. ``tokenizer.decode(clip, grids)``
goes back to ``Scene``s in the original world and metres.

* ``PixelTokenizer`` — CPU scale: no learned compression, optional lossless spatial stride.
* ``WanVAETokenizer`` — paper scale: the frozen Wan2.1 VAE, stride 4 × 8 × 8, 16 channels.

Builds on ``any4d.geometry`` and ``any4d.data``; never imports ``any4d.model``.
"""

from any4d.tokenize.base import Tokenizer
from any4d.tokenize.batch import Observed
from any4d.tokenize.build import build_tokenizer
from any4d.tokenize.clip import STREAMS, LatentClip
from any4d.tokenize.pixel import PixelTokenizer
from any4d.tokenize.rays import (
    causal_pixel_frames,
    latent_frame_of,
    num_latent_frames,
    pack_rays,
    pixel_frames_of,
    unpack_rays,
)
from any4d.tokenize.wan_vae import WanVAETokenizer, load_original_wan_vae

__all__ = [
    "STREAMS",
    "LatentClip",
    "Observed",
    "PixelTokenizer",
    "Tokenizer",
    "WanVAETokenizer",
    "build_tokenizer",
    "causal_pixel_frames",
    "latent_frame_of",
    "load_original_wan_vae",
    "num_latent_frames",
    "pack_rays",
    "pixel_frames_of",
    "unpack_rays",
]
