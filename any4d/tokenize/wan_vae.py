"""``WanVAETokenizer``: the paper-scale tokenizer, a frozen Wan2.1 VAE (DESIGN §2, WAN.md §4).

The VAE (diffusers ``AutoencoderKLWan``) is causal in time with stride 4 × 8 × 8: latent frame 0
holds pixel frame 0, latent frame ``j`` pixel frames ``4j−3 … 4j``. Latents are the posterior
mode, normalised per channel as Wan does, ``z = (μ − mean) / std``; decoding inverts it.

The VAE silently drops trailing frames of a clip that is not ``1 + 4k`` long, and crops sizes
that are not multiples of 8; here both are a ``ValueError`` instead.

diffusers is imported inside the functions that need it, so ``import any4d.tokenize`` stays
light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor

from any4d.tokenize.base import Tokenizer
from any4d.tokenize.rays import RAY_CHANNELS

if TYPE_CHECKING:
    from diffusers import AutoencoderKLWan

# Wan2.1's own VAE width; an original checkpoint of another width (tests) is read from its keys.
_WAN21_BASE_DIM = 96


class WanVAETokenizer(Tokenizer):
    """Tokenizer over a frozen ``AutoencoderKLWan``: grids (B, z_dim, 1 + (T−1)/4, H/8, W/8).

    vae: the VAE; it is put in eval mode with gradients off (this tokenizer never trains it).
    Strides and channels come from its config (``scale_factor_temporal``,
    ``scale_factor_spatial``, ``z_dim``). The ray streams use ``3 × temporal stride`` channels
    (Wan: 12 of 16), so ``z_dim`` must be at least that.
    """

    def __init__(
        self, vae: AutoencoderKLWan, stream_scales: dict[str, float] | None = None
    ) -> None:
        from diffusers import AutoencoderKLWan

        self.set_stream_scales(stream_scales)
        if not isinstance(vae, AutoencoderKLWan):
            raise ValueError(
                f"vae is a {type(vae).__name__} (expected a diffusers AutoencoderKLWan)"
            )
        config = vae.config
        self.temporal_stride = int(config.scale_factor_temporal)
        self.spatial_stride = int(config.scale_factor_spatial)
        self.latent_channels = int(config.z_dim)
        needed = RAY_CHANNELS * self.temporal_stride
        if self.latent_channels < needed:
            raise ValueError(
                f"vae has z_dim {self.latent_channels} (expected ≥ {needed} = 3 × temporal stride "
                f"{self.temporal_stride}, to pack the ray frames of a latent frame)"
            )
        for name in ("latents_mean", "latents_std"):
            if len(getattr(config, name)) != self.latent_channels:
                raise ValueError(
                    f"vae config {name} has {len(getattr(config, name))} values (expected z_dim "
                    f"= {self.latent_channels})"
                )
        self.vae = vae.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        stream_scales: dict[str, float] | None = None,
    ) -> WanVAETokenizer:
        """Load a Wan2.1 VAE from a local path (never the network).

        path: a diffusers VAE directory (``config.json`` + weights), a diffusers pipeline
              directory with a ``vae/`` subfolder, or the original ``Wan2.1_VAE.pth`` (or an
              original-key ``.safetensors``) file.
        """
        from diffusers import AutoencoderKLWan

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"Wan VAE path {path} does not exist (expected a diffusers VAE directory, a "
                "pipeline directory with vae/, or the original Wan2.1_VAE.pth)"
            )
        if path.is_dir():
            if (path / "config.json").is_file():
                subfolder = None
            elif (path / "vae" / "config.json").is_file():
                subfolder = "vae"
            else:
                raise ValueError(
                    f"{path} has neither config.json nor vae/config.json (expected a diffusers "
                    "AutoencoderKLWan directory or a pipeline directory with vae/)"
                )
            vae = AutoencoderKLWan.from_pretrained(
                path, subfolder=subfolder, torch_dtype=dtype, local_files_only=True
            )
        else:
            vae = load_original_wan_vae(path)
        return cls(vae.to(device=device, dtype=dtype), stream_scales)

    @property
    def device(self) -> torch.device:
        return self.vae.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    def to(self, device=None, dtype: torch.dtype | None = None) -> WanVAETokenizer:
        """Move (and cast) the VAE; returns ``self``."""
        self.vae.to(device=device, dtype=dtype)
        return self

    def enable_tiling(self, **options) -> WanVAETokenizer:
        """Encode and decode in overlapping spatial tiles (diffusers' ``enable_tiling``; its
        options): the VAE's peak memory no longer grows with the frame size. Returns ``self``."""
        self.vae.enable_tiling(**options)
        return self

    def _statistics(self) -> tuple[Tensor, Tensor]:
        """Per-channel latent mean and std, (1, C, 1, 1, 1) on the VAE's device and dtype."""
        config = self.vae.config
        mean, std = (
            torch.tensor(values, dtype=self.dtype, device=self.device).view(1, -1, 1, 1, 1)
            for values in (config.latents_mean, config.latents_std)
        )
        return mean, std

    @torch.no_grad()
    def encode_images(self, images: Tensor) -> Tensor:
        """(B, T, 3, H, W) in [-1, 1], T = 1 + 4k → latents (B, z_dim, 1 + k, H/8, W/8)."""
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"images has shape {tuple(images.shape)} (expected (B, T, 3, H, W))")
        self.latent_size(images.shape[1], *images.shape[3:])
        video = rearrange(images, "b t c h w -> b c t h w").to(device=self.device, dtype=self.dtype)
        mu = self.vae.encode(video).latent_dist.mode()  # the mean: Wan encodes without sampling
        mean, std = self._statistics()
        return ((mu - mean) / std).to(device=images.device, dtype=images.dtype)

    @torch.no_grad()
    def decode_images(self, latents: Tensor) -> Tensor:
        """Normalised latents (B, z_dim, T', H', W') → (B, 1 + 4(T'−1), 3, 8H', 8W') in [-1, 1]."""
        if latents.dim() != 5 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents has shape {tuple(latents.shape)} (expected (B, {self.latent_channels}, "
                "T', H', W'))"
            )
        mean, std = self._statistics()
        z = latents.to(device=self.device, dtype=self.dtype) * std + mean
        video = self.vae.decode(z).sample.clamp(-1.0, 1.0)
        return rearrange(video, "b c t h w -> b t c h w").to(
            device=latents.device, dtype=latents.dtype
        )

    def __repr__(self) -> str:
        return (
            f"WanVAETokenizer(stride={self.temporal_stride}×{self.spatial_stride}×"
            f"{self.spatial_stride}, channels={self.latent_channels}, dtype={self.dtype})"
        )


def load_original_wan_vae(path: str | os.PathLike) -> AutoencoderKLWan:
    """An ``AutoencoderKLWan`` (float32, CPU) from an original-format Wan2.1 VAE checkpoint.

    path: ``Wan2.1_VAE.pth`` (a plain state dict, read with ``weights_only=True``) or a
    ``.safetensors`` file with the same keys. Keys are converted by diffusers'
    ``convert_wan_vae_to_diffusers`` and loaded strictly into the Wan2.1 architecture; its
    width (``base_dim``, 96 for Wan2.1) is read from the first convolution.
    """
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Wan VAE checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "encoder.conv1.weight" not in state:
        raise ValueError(
            f"{path} is not an original Wan2.1 VAE state dict (expected keys such as "
            "'encoder.conv1.weight', 'encoder.downsamples.0.residual.0.gamma')"
        )
    base_dim = int(state["encoder.conv1.weight"].shape[0])
    vae = AutoencoderKLWan() if base_dim == _WAN21_BASE_DIM else AutoencoderKLWan(base_dim=base_dim)
    try:
        vae.load_state_dict(convert_wan_vae_to_diffusers(state), strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{path} does not match the Wan2.1 VAE architecture (expected the original "
            f"Wan2.1_VAE.pth layout): {error}"
        ) from None
    return vae
