"""One place that builds a tokenizer from its description (a training config's ``tokenizer``
section, or a pipeline's ``pipeline.json``)."""

from __future__ import annotations

from pathlib import Path

import torch

from any4d.tokenize.base import Tokenizer


def build_tokenizer(
    kind: str,
    *,
    stride: int = 1,
    vae_path: str | Path | None = None,
    stream_scales: dict[str, float] | None = None,
    device: str | torch.device = "cpu",
) -> Tokenizer:
    """ "pixel" → ``PixelTokenizer(stride)``; "wan_vae" → ``WanVAETokenizer`` from the local
    ``vae_path``; both with ``stream_scales``."""
    from any4d.tokenize.pixel import PixelTokenizer
    from any4d.tokenize.wan_vae import WanVAETokenizer

    scales = stream_scales or None
    if kind == "pixel":
        return PixelTokenizer(int(stride), scales)
    if kind == "wan_vae":
        if vae_path is None:
            raise ValueError("a 'wan_vae' tokenizer needs vae_path (a local Wan2.1 VAE)")
        return WanVAETokenizer.from_pretrained(vae_path, device=device, stream_scales=scales)
    raise ValueError(f"tokenizer kind {kind!r} (expected 'pixel' or 'wan_vae')")
