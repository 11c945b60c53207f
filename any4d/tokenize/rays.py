"""Ray packing: 3-channel ray frames ⇄ one latent grid per ray stream (DESIGN §2).

Rays never pass through a VAE. They are computed at the latent grid's pixel centres, so only
time has to be compressed, and that is done losslessly: the ``r = temporal_stride`` ray frames a
latent frame covers sit side by side in its channels (slot ``k`` = channels ``3k … 3k+2``),
zero-padded to the stream's channel count.

The causal frame rule of the Wan VAE is kept, so a ray group lines up with the RGB and depth
groups: latent frame 0 holds pixel frame 0 alone, latent frame ``j ≥ 1`` holds pixel frames
``r(j−1)+1 … rj``. Latent frame 0 repeats its one ray frame in all ``r`` slots, so its channel
statistics match every other latent frame.

Deviation from DESIGN §2 ("unpacking reads its first slot"): ``unpack_rays`` averages the ``r``
slots of latent frame 0. On packed input the slots are equal, so this is the same exact inverse;
on predicted latents the average of ``r`` noisy estimates is the better one.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

RAY_CHANNELS = 3  # one half of a Plücker map: directions d or moments m


def _check_stride(temporal_stride: int) -> None:
    if not isinstance(temporal_stride, int) or isinstance(temporal_stride, bool):
        raise ValueError(f"temporal_stride is {temporal_stride!r} (expected an integer ≥ 1)")
    if temporal_stride < 1:
        raise ValueError(f"temporal_stride is {temporal_stride} (expected an integer ≥ 1)")


def num_latent_frames(num_frames: int, temporal_stride: int) -> int:
    """Latent frames ``T' = 1 + (T − 1) / r`` of a clip of ``T = 1 + r·k`` pixel frames.

    Any other ``T`` is an error: the Wan VAE would silently drop the trailing frames.
    """
    _check_stride(temporal_stride)
    if num_frames < 1 or (num_frames - 1) % temporal_stride:
        raise ValueError(
            f"num_frames is {num_frames} (expected 1 + {temporal_stride}·k frames for temporal "
            f"stride {temporal_stride}, e.g. {1 + temporal_stride} or {1 + 2 * temporal_stride})"
        )
    return 1 + (num_frames - 1) // temporal_stride


def latent_frame_of(pixel_frame: int, temporal_stride: int) -> int:
    """The latent frame that holds ``pixel_frame`` (≥ 0): 0 for frame 0, else ``⌈p / r⌉``."""
    _check_stride(temporal_stride)
    if pixel_frame < 0:
        raise ValueError(
            f"pixel_frame is {pixel_frame} (expected ≥ 0; resolve negative indices first)"
        )
    return -(-pixel_frame // temporal_stride)


def pixel_frames_of(latent_frame: int, temporal_stride: int) -> tuple[int, ...]:
    """The pixel frames latent frame ``j`` holds: ``(0,)`` for ``j = 0``, else ``r(j−1)+1 … rj``."""
    _check_stride(temporal_stride)
    if latent_frame < 0:
        raise ValueError(f"latent_frame is {latent_frame} (expected ≥ 0)")
    if latent_frame == 0:
        return (0,)
    first = temporal_stride * (latent_frame - 1) + 1
    return tuple(range(first, first + temporal_stride))


def causal_pixel_frames(num_frames: int, temporal_stride: int) -> tuple[tuple[int, ...], ...]:
    """The causal layout of a clip of ``T = 1 + r·k`` frames: per latent frame, its pixel frames
    (``pixel_frames_of``), ``((0,), (1 … r), (r+1 … 2r), …)``."""
    num_latent = num_latent_frames(num_frames, temporal_stride)
    return tuple(pixel_frames_of(j, temporal_stride) for j in range(num_latent))


def _slot_frames(num_frames: int, temporal_stride: int, device) -> Tensor:
    """(T', r) pixel frame in each (latent frame, slot); latent frame 0 repeats frame 0."""
    rows = [list(frames) for frames in causal_pixel_frames(num_frames, temporal_stride)]
    rows[0] = [0] * temporal_stride
    return torch.tensor(rows, dtype=torch.long, device=device)


def pack_rays(rays: Tensor, temporal_stride: int, channels: int) -> Tensor:
    """Pack ray frames into a latent grid.

    rays: (B, T, 3, H, W), one half of a Plücker map (directions or moments), ``T = 1 + r·k``.
    Returns (B, channels, T', H, W) with ``T' = 1 + k``: slot ``k`` of latent frame ``j`` is
    channels ``3k … 3k+2``; channels ``3r …`` are zero.
    """
    if not isinstance(rays, Tensor) or rays.dim() != 5 or rays.shape[2] != RAY_CHANNELS:
        shape = tuple(rays.shape) if isinstance(rays, Tensor) else type(rays).__name__
        raise ValueError(f"rays has shape {shape} (expected (B, T, 3, H, W))")
    num_latent_frames(rays.shape[1], temporal_stride)  # the frame rule's error before the channels'
    used = RAY_CHANNELS * temporal_stride
    if channels < used:
        raise ValueError(
            f"channels is {channels} (expected ≥ {used} = 3 × temporal stride {temporal_stride} "
            "to hold every ray frame of a latent frame)"
        )
    slots = _slot_frames(rays.shape[1], temporal_stride, rays.device)
    gathered = rays[:, slots]  # (B, T', r, 3, H, W)
    packed = rearrange(gathered, "b t k c h w -> b (k c) t h w")
    return torch.nn.functional.pad(packed, (0, 0, 0, 0, 0, 0, 0, channels - used))


def unpack_rays(packed: Tensor, temporal_stride: int, num_frames: int) -> Tensor:
    """Exact inverse of ``pack_rays`` (latent frame 0: the mean of its ``r`` slots).

    packed: (B, C, T', H, W) with ``C ≥ 3r`` and ``T' = 1 + (num_frames − 1) / r``.
    Returns (B, num_frames, 3, H, W); the padding channels are ignored.
    """
    if not isinstance(packed, Tensor) or packed.dim() != 5:
        shape = tuple(packed.shape) if isinstance(packed, Tensor) else type(packed).__name__
        raise ValueError(f"packed has shape {shape} (expected (B, C, T', H, W))")
    num_latent = num_latent_frames(num_frames, temporal_stride)
    used = RAY_CHANNELS * temporal_stride
    if packed.shape[1] < used or packed.shape[2] != num_latent:
        raise ValueError(
            f"packed has shape {tuple(packed.shape)} (expected (B, ≥ {used}, {num_latent}, H, W) "
            f"for {num_frames} frames at temporal stride {temporal_stride})"
        )
    slots = rearrange(packed[:, :used], "b (k c) t h w -> b t k c h w", c=RAY_CHANNELS)
    first = slots[:, :1].mean(dim=2)  # (B, 1, 3, H, W)
    rest = rearrange(slots[:, 1:], "b t k c h w -> b (t k) c h w")
    return torch.cat([first, rest], dim=1)
