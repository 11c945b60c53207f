"""Clip normalisation (DESIGN §1): first-camera frame, clip scale ``s``, depth ↔ ``D̃``.

A clip is re-expressed relative to its first camera (first ``c2w`` = identity) and its world
is divided by one positive scale ``s`` per clip, so camera centres and ray moments are in
units of ``s`` while directions stay unit. Depth is then stored as

    D̃ = 2 / (1 + D / s) − 1  ∈ [−1, 1]      (far → −1, D = s → 0, D = 0 → +1)
    D  = s · (1 − D̃) / (1 + D̃)              (exact inverse)

Invalid depth (``D = 0``) maps to ``D̃ = +1`` and back to ``0``.

**The scale rule** (``observed_scale``): ``s`` is a function of what a sample *observes* — its
clean groups — computed the same way for a training sample (for the pattern drawn) and at
inference (for the task), so the model always knows which units its targets are in:

1. depth observed → the median of the observed valid (``> 0``) depth; units ``"depth"``;
2. else cameras observed and moving → the **camera rule** ``CAMERA_SECONDS × L / Δt``: the path
   length ``L`` of the observed camera centres over the seconds ``Δt`` between the first and
   last of them, times a constant calibrated so that ``s`` approximates the median depth of
   clips that have both (``benchmarks/scale_rule.py``); units ``"cameras"``;
3. else (nothing scale-bearing observed: RGB only, or a static / single camera) → relative
   units, ``"relative"``: in training the median of the target depth (else the camera rule on
   the target cameras, else 1); at inference, where nothing unobserved is known, ``s = 1`` — so
   predicted depth has a median near 1 and cameras are in units of that median.

Both scale-bearing rules are equivariant: scaling the input's world by λ scales ``s`` by λ, so
outputs come back in the input's units. Which rule applies is visible to the model: depth or
ray groups at ``t = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras, rigid_inverse
from any4d.geometry.rays import check_ray_map

# Below this path length (in the input's units) a camera counts as static: it fixes no scale.
STATIC_EXTENT = 1e-6
# The camera rule's constant, in seconds: s = CAMERA_SECONDS · (path length / duration). The
# median of median-depth / (path / duration) over 200 procedural training clips is 7.7 s at 5
# frames and 4 fps, 7.2 s at 5 frames and 10 fps, 8.0 s at 49 frames and 10 fps (6.8 s over 400
# clips at 5 frames and 4 fps); per clip the ratio spreads from 0.4× to 16× of it (p10–p90: pans
# barely translate). benchmarks/scale_rule.py prints these.
CAMERA_SECONDS = 7.0
UNITS = ("depth", "cameras", "relative")


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


def median_depth(depth: Tensor) -> Tensor:
    """Median of the valid (``> 0``) values of each clip; NaN where none is valid.

    depth: (..., T, 1, H, W) metres, 0 = invalid. Returns (...) (torch's median takes the lower
    middle value).
    """
    if depth.dim() < 4 or depth.shape[-3] != 1:
        raise ValueError(f"depth has shape {tuple(depth.shape)} (expected (..., T, 1, H, W))")
    flat = depth.reshape(*depth.shape[:-4], -1)
    return torch.where(flat > 0, flat, torch.nan).nanmedian(dim=-1).values


def path_length(cameras: Cameras) -> Tensor:
    """(...) summed distance between consecutive camera centres of cameras (..., N)."""
    centers = cameras.centers
    return (centers[..., 1:, :] - centers[..., :-1, :]).norm(dim=-1).sum(-1)


def camera_scale(cameras: Cameras, seconds: float | Tensor) -> Tensor:
    """The camera rule: ``CAMERA_SECONDS × path length / seconds``; NaN where static.

    cameras: batch shape (..., N), in time order. seconds: the time between the first and last
    of them (> 0 when N > 1). A single camera, or a path shorter than ``STATIC_EXTENT``, fixes
    no scale (NaN). Returns (...) in the cameras' units.
    """
    if not cameras.shape:
        raise ValueError("cameras must have a time dimension (batch shape (..., N))")
    path = path_length(cameras)  # (...)
    seconds = torch.as_tensor(seconds, dtype=path.dtype, device=path.device)
    moving = (path >= STATIC_EXTENT) & (seconds > 0)
    return torch.where(moving, CAMERA_SECONDS * path / seconds.clamp_min(1e-12), torch.nan)


def observed_scale(
    depth: Tensor | None = None,
    cameras: Cameras | None = None,
    seconds: float = 0.0,
    *,
    target_depth: Tensor | None = None,
    target_cameras: Cameras | None = None,
    target_seconds: float = 0.0,
) -> tuple[Tensor, str]:
    """The clip scale ``s`` of one clip and its units (the module docstring's rule).

    depth:   (T_d, 1, H, W) the observed depth (unobserved frames left out or 0), or None.
    cameras: batch (N,) the observed cameras in time order, or None; seconds: from the first to
             the last of them.
    target_depth, target_cameras, target_seconds: ground truth the sample does not observe —
             training's relative units; None at inference.
    Returns (a 0-d scale, one of ``UNITS``). Never NaN: the last fallback is 1.
    """
    found = _scale_of(depth, cameras, seconds)
    if found is not None:
        return found
    found = _scale_of(target_depth, target_cameras, target_seconds)
    if found is not None:
        return found[0], "relative"
    like = next((x for x in (depth, target_depth) if x is not None), None)
    if like is None:
        like = next((c.c2w for c in (cameras, target_cameras) if c is not None), torch.ones(()))
    return torch.ones((), dtype=like.dtype, device=like.device), "relative"


def _scale_of(depth: Tensor | None, cameras: Cameras | None, seconds) -> tuple[Tensor, str] | None:
    """The median of ``depth``'s valid values ("depth"), else the camera rule on ``cameras``
    ("cameras"); None when neither is given or fixes a scale."""
    if depth is not None:
        median = median_depth(depth[None])[0]
        if not torch.isnan(median):
            return median, "depth"
    if cameras is not None:
        by_cameras = camera_scale(cameras, seconds)
        if not torch.isnan(by_cameras):
            return by_cameras, "cameras"
    return None


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
    def fit(
        cls, cameras: Cameras, depth: Tensor | None = None, seconds: float | Tensor = 1.0
    ) -> ClipFrame:
        """Frame of clips that observe ``cameras`` (batch (..., T)) and optional ``depth``
        (..., T, 1, H, W): the median valid depth, else the camera rule over ``seconds`` (the
        clips' duration), else 1."""
        if depth is not None and depth.shape[:-3] != cameras.shape:
            raise ValueError(
                f"depth has leading shape {tuple(depth.shape[:-3])} but cameras "
                f"{tuple(cameras.shape)} (expected the same (..., T))"
            )
        scale = camera_scale(cameras, seconds)
        if depth is not None:
            median = median_depth(depth)
            scale = torch.where(torch.isnan(median), scale.to(median.dtype), median)
        scale = torch.nan_to_num(scale, nan=1.0).to(cameras.dtype)
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
