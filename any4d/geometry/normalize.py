"""Clip normalisation (DESIGN §1): first-camera frame, clip scale ``s``, depth ↔ ``D̃``.

A clip is re-expressed relative to its first camera (first ``c2w`` = identity) and its world
is divided by one positive scale ``s`` per clip, so camera centres and ray moments are in
units of ``s`` while directions stay unit. Depth is then stored as

    D̃ = 2 / (1 + D / s) − 1  ∈ [−1, 1]      (far → −1, D = s → 0, D = 0 → +1)
    D  = s · (1 − D̃) / (1 + D̃)              (exact inverse)

Invalid depth (``D = 0``) maps to ``D̃ = +1`` and back to ``0``.

The clip scale ``s``:

* with depth: the median of the valid (``> 0``) depth values over the whole clip;
* without depth (or with no valid pixel): the **trajectory rule** — the largest distance of a
  camera centre from the first camera centre, so that the normalised centres lie in the unit
  ball and the moments ``|o × d| ≤ 1``;
* a static or rotation-only camera without depth (extent ``< 1e-6`` of the scene's units): ``1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras, rigid_inverse
from any4d.geometry.rays import check_ray_map

# Below this trajectory extent (in the input's units) a camera counts as static.
STATIC_EXTENT = 1e-6


def _check_scale(scale: Tensor | float) -> None:
    value = torch.as_tensor(scale)
    if not torch.isfinite(value).all() or (value <= 0).any():
        shown = float(value) if value.numel() == 1 else f"values down to {float(value.min())}"
        raise ValueError(f"scale must be positive and finite (the clip scale s), got {shown}")


def encode_depth(depth: Tensor, scale: Tensor | float) -> Tensor:
    """Metric depth → ``D̃ = 2 / (1 + D / s) − 1``.

    depth: any shape, metres ≥ 0 (0 = invalid). scale: positive, broadcastable to ``depth``.
    Returns ``D̃`` of ``depth``'s shape, in ``(−1, 1]``.
    """
    _check_scale(scale)
    return 2.0 / (1.0 + depth / scale) - 1.0


def decode_depth(encoded: Tensor, scale: Tensor | float) -> Tensor:
    """``D̃`` → metric depth ``s · (1 − D̃) / (1 + D̃)`` (the exact inverse of ``encode_depth``).

    Predicted values are clamped to ``[−1 + ε, 1]`` first (ε: the dtype's machine epsilon):
    ``D̃ ≤ −1`` would be infinitely far (or behind the camera) and ``D̃ > 1`` negative depth.
    """
    _check_scale(scale)
    encoded = encoded.clamp(-1.0 + torch.finfo(encoded.dtype).eps, 1.0)
    return scale * (1.0 - encoded) / (1.0 + encoded)


def normalize_rays(rays: Tensor, scale: Tensor | float) -> Tensor:
    """Divide the moments of ``rays`` (..., 6, H, W) by the clip scale (directions unchanged).

    scale: positive, broadcastable to (..., 1, 1, 1).
    """
    check_ray_map(rays)
    _check_scale(scale)
    return torch.cat([rays[..., :3, :, :], rays[..., 3:, :, :] / scale], dim=-3)


def denormalize_rays(rays: Tensor, scale: Tensor | float) -> Tensor:
    """Inverse of ``normalize_rays``: multiply the moments by the clip scale."""
    check_ray_map(rays)
    _check_scale(scale)
    return torch.cat([rays[..., :3, :, :], rays[..., 3:, :, :] * scale], dim=-3)


def clip_scale(depth: Tensor | None = None, cameras: Cameras | None = None) -> Tensor:
    """The clip scale ``s`` (module docstring for the rule).

    depth:   (..., T, 1, H, W) metres, 0 = invalid; or None.
    cameras: batch shape (..., T); or None.
    Returns (...) positive scales (float32 unless the inputs are float64).
    """
    if depth is None and cameras is None:
        raise ValueError("clip_scale needs depth or cameras (got neither)")
    by_trajectory = None
    if cameras is not None:
        if not cameras.shape:
            raise ValueError("cameras must have a time dimension (batch shape (..., T))")
        centers = cameras.centers
        extent = (centers - centers[..., :1, :]).norm(dim=-1).amax(-1)  # (...)
        by_trajectory = torch.where(extent < STATIC_EXTENT, torch.ones_like(extent), extent)
    if depth is None:
        return by_trajectory
    if depth.dim() < 4 or depth.shape[-3] != 1:
        raise ValueError(f"depth has shape {tuple(depth.shape)} (expected (..., T, 1, H, W))")
    batch = depth.shape[:-4]
    flat = depth.reshape(*batch, -1)
    # nanmedian ignores the invalid pixels; torch's median takes the lower middle value.
    median = torch.where(flat > 0, flat, torch.nan).nanmedian(dim=-1).values
    if by_trajectory is None:
        fallback = torch.ones_like(median)
    else:
        fallback = by_trajectory.to(median.dtype).expand_as(median)
    return torch.where(torch.isnan(median), fallback, median)


@dataclass(frozen=True, eq=False)
class ClipFrame:
    """The normalised frame of a clip: its first camera's pose and its scale.

    reference: (..., 4, 4) camera-to-world pose of the clip's first camera (original world).
    scale:     (...) clip scale ``s`` (original world units, e.g. metres).

    ``normalize_*`` maps original-world quantities into the clip frame and ``denormalize_*``
    back; each pair is an exact inverse up to floating-point rounding.
    """

    reference: Tensor
    scale: Tensor

    def __post_init__(self) -> None:
        if self.reference.shape[-2:] != (4, 4) or self.reference.shape[:-2] != self.scale.shape:
            raise ValueError(
                f"reference has shape {tuple(self.reference.shape)} and scale "
                f"{tuple(self.scale.shape)} (expected (..., 4, 4) and (...))"
            )
        _check_scale(self.scale)

    @classmethod
    def fit(cls, cameras: Cameras, depth: Tensor | None = None) -> ClipFrame:
        """Frame of a clip: cameras (batch (..., T)), optional depth (..., T, 1, H, W)."""
        if depth is not None and depth.shape[:-3] != cameras.shape:
            raise ValueError(
                f"depth has leading shape {tuple(depth.shape[:-3])} but cameras "
                f"{tuple(cameras.shape)} (expected the same (..., T))"
            )
        scale = clip_scale(depth, cameras).to(cameras.dtype)
        return cls(reference=cameras.c2w[..., 0, :, :], scale=scale)

    def _scale_for(self, value: Tensor, name: str, form: str) -> Tensor:
        """``scale`` shaped (..., 1, 1, 1, 1) to broadcast over ``value`` (..., T, C, H, W)."""
        if (
            value.dim() != self.scale.dim() + 4
            or value.shape[: self.scale.dim()] != self.scale.shape
        ):
            raise ValueError(
                f"{name} has shape {tuple(value.shape)} but the frame has {self.scale.numel()} "
                f"clip(s) of batch shape {tuple(self.scale.shape)} (expected {form})"
            )
        return self.scale.to(value.dtype).reshape(*self.scale.shape, 1, 1, 1, 1)

    def _per_camera(self, cameras: Cameras) -> tuple[Tensor, Tensor]:
        """Reference (..., 1, 4, 4) and scale (..., 1) aligned with cameras (..., T)."""
        if cameras.shape[:-1] != self.scale.shape or len(cameras.shape) != self.scale.dim() + 1:
            raise ValueError(
                f"cameras has batch shape {tuple(cameras.shape)} but the frame has batch shape "
                f"{tuple(self.scale.shape)} (expected {(*self.scale.shape, 'T')})"
            )
        return self.reference[..., None, :, :], self.scale[..., None].to(cameras.dtype)

    def normalize_cameras(self, cameras: Cameras) -> Cameras:
        """Original world → clip frame: ``c2w' = ref⁻¹ c2w`` with translation ÷ ``s``.

        cameras: batch shape (..., T), the frame's (...) plus time.
        """
        reference, scale = self._per_camera(cameras)
        return cameras.transform_world(rigid_inverse(reference)).scaled(1 / scale)

    def denormalize_cameras(self, cameras: Cameras) -> Cameras:
        """Clip frame → original world (inverse of ``normalize_cameras``)."""
        reference, scale = self._per_camera(cameras)
        return cameras.scaled(scale).transform_world(reference)

    def encode_depth(self, depth: Tensor) -> Tensor:
        """Metric depth (..., T, 1, H, W) → ``D̃`` of the same shape."""
        return encode_depth(depth, self._scale_for(depth, "depth", "(..., T, 1, H, W)"))

    def decode_depth(self, encoded: Tensor) -> Tensor:
        """``D̃`` (..., T, 1, H, W) → metric depth."""
        return decode_depth(encoded, self._scale_for(encoded, "encoded", "(..., T, 1, H, W)"))

    def normalize_rays(self, rays: Tensor) -> Tensor:
        """Metric-moment rays (..., T, 6, H, W) in the clip frame → moments ÷ ``s``."""
        return normalize_rays(rays, self._scale_for(rays, "rays", "(..., T, 6, H, W)"))

    def denormalize_rays(self, rays: Tensor) -> Tensor:
        """Inverse of ``normalize_rays``."""
        return denormalize_rays(rays, self._scale_for(rays, "rays", "(..., T, 6, H, W)"))
