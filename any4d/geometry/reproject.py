"""Reprojection between views: back-projection, projection, inverse warping, photometric error.

Depth is z-depth (distance along the optical axis), so the 3D point of pixel ``x`` with depth
``D`` is ``c2w · (D · K⁻¹ x)``. Warping is *inverse*: every target pixel looks up the source
image where its own 3D point lands, so only the **target** depth is needed. Without the source
depth, occlusions are not detected (the looked-up colour may belong to an occluder); given it,
pixels whose point is hidden in the source view are marked invalid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.geometry.rays import ray_directions

# Points closer to the camera plane than this (scene units) are not projected.
MIN_DEPTH = 1e-6


def unproject(depth: Tensor, cameras: Cameras) -> Tensor:
    """World points of every pixel centre.

    depth: (..., 1, H, W) z-depth; cameras: batch shape (...). Returns (..., 3, H, W).
    """
    if depth.dim() != len(cameras.shape) + 3 or depth.shape[:-2] != (*cameras.shape, 1):
        raise ValueError(
            f"depth has shape {tuple(depth.shape)} for cameras of batch shape "
            f"{tuple(cameras.shape)} (expected {(*cameras.shape, 1, 'H', 'W')})"
        )
    height, width = depth.shape[-2:]
    directions = ray_directions(cameras, height, width, normalize=False)  # camera z = 1
    return cameras.centers[..., :, None, None] + depth * directions


def project(points: Tensor, cameras: Cameras) -> tuple[Tensor, Tensor]:
    """Project world points into cameras.

    points: (..., 3, H, W); cameras: batch shape (...).
    Returns ``(uv, z)``: continuous pixel coordinates (..., 2, H, W) in the +0.5 convention
    (pixel ``(u, v)``'s centre is at ``(u + 0.5, v + 0.5)``) and camera z-depth (..., 1, H, W).
    """
    w2c = cameras.w2c
    camera_points = torch.einsum("...ij,...jhw->...ihw", w2c[..., :3, :3], points)
    camera_points = camera_points + w2c[..., :3, 3, None, None]
    z = camera_points[..., 2:, :, :]
    image = torch.einsum("...ij,...jhw->...ihw", cameras.K, camera_points)
    uv = image[..., :2, :, :] / z.clamp_min(MIN_DEPTH)
    return uv, z


def warp(
    src_image: Tensor,
    tgt_depth: Tensor,
    src_cameras: Cameras,
    tgt_cameras: Cameras,
    src_depth: Tensor | None = None,
    occlusion_tolerance: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Inverse-warp a source image into the target view through the target's depth.

    src_image:   (..., C, Hs, Ws) the source view.
    tgt_depth:   (..., 1, H, W) target z-depth, 0 = invalid.
    src_cameras, tgt_cameras: batch shape (...), intrinsics for their own grids.
    src_depth:   optional (..., 1, Hs, Ws) source z-depth for occlusion masking: a target pixel
                 is invalid where the source depth found at its projection differs from the
                 point's source z by more than ``occlusion_tolerance`` (relative).
    Returns ``(warped, valid)``: (..., C, H, W) the source colours seen from the target (bilinear,
    0 where invalid), and (..., 1, H, W) bool — valid target depth, point in front of the source
    camera, inside the source image and (with ``src_depth``) not occluded there.
    """
    batch = src_image.shape[:-3]
    if tgt_depth.shape[:-3] != batch or tgt_depth.shape[-3] != 1:
        raise ValueError(
            f"tgt_depth has shape {tuple(tgt_depth.shape)} but src_image {tuple(src_image.shape)} "
            "(expected (..., 1, H, W) with the same leading dims)"
        )
    for name, cameras in (("src_cameras", src_cameras), ("tgt_cameras", tgt_cameras)):
        if cameras.shape != batch:
            raise ValueError(
                f"{name} has batch shape {tuple(cameras.shape)} (expected {tuple(batch)}, "
                "the images' leading dims)"
            )
    src_h, src_w = src_image.shape[-2:]
    height, width = tgt_depth.shape[-2:]
    channels = src_image.shape[-3]
    # Geometry in the widest dtype of depth and cameras (float32 cameras with float64 depth, …)
    geometry_dtype = torch.promote_types(
        tgt_depth.dtype, torch.promote_types(src_cameras.dtype, tgt_cameras.dtype)
    )
    tgt_depth = tgt_depth.to(geometry_dtype)
    src_cameras, tgt_cameras = (
        src_cameras.to(dtype=geometry_dtype),
        tgt_cameras.to(dtype=geometry_dtype),
    )
    if src_depth is not None:
        if src_depth.shape != (*batch, 1, src_h, src_w):
            raise ValueError(
                f"src_depth has shape {tuple(src_depth.shape)} (expected "
                f"{(*batch, 1, src_h, src_w)}, the source image's grid)"
            )
        # One sampling pass for colour and depth alike.
        src_image = torch.cat([src_image, src_depth.to(src_image.dtype)], dim=-3)

    points = unproject(tgt_depth, tgt_cameras)
    uv, z = project(points, src_cameras)
    u, v = uv[..., 0:1, :, :], uv[..., 1:2, :, :]
    valid = (tgt_depth > 0) & (z > MIN_DEPTH)
    valid &= (u >= 0) & (u <= src_w) & (v >= 0) & (v <= src_h)

    # grid_sample with align_corners=False puts −1 / +1 at the outer pixel edges, which is the
    # +0.5 pixel-centre convention: x_norm = 2u / W − 1. Border padding serves the half-pixel
    # margin outside the outermost centres with the edge colour instead of blending in zeros.
    grid = torch.stack([2 * u[..., 0, :, :] / src_w - 1, 2 * v[..., 0, :, :] / src_h - 1], -1)
    flat_image = src_image.reshape(-1, *src_image.shape[-3:])
    flat_grid = grid.reshape(-1, height, width, 2).to(src_image.dtype)
    flat_grid = torch.where(valid.reshape(-1, height, width, 1), flat_grid, -2.0)
    warped = F.grid_sample(
        flat_image, flat_grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    warped = warped.reshape(*batch, src_image.shape[-3], height, width)
    if src_depth is not None:
        seen_depth = warped[..., channels:, :, :]
        valid &= (seen_depth - z).abs() <= occlusion_tolerance * z
        warped = warped[..., :channels, :, :]
    return warped * valid, valid


def photometric_error(warped: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Masked mean absolute error between a warped image and the target view.

    warped, target: (..., C, H, W); valid: (..., 1, H, W) bool.
    Returns (...): the L1 error averaged over channels and valid pixels; ``inf`` where no pixel
    is valid (no overlap is no evidence of agreement).
    """
    if warped.shape != target.shape:
        raise ValueError(
            f"warped has shape {tuple(warped.shape)} but target {tuple(target.shape)} "
            "(expected the same)"
        )
    if valid.shape != (*warped.shape[:-3], 1, *warped.shape[-2:]):
        raise ValueError(
            f"valid has shape {tuple(valid.shape)} for images {tuple(warped.shape)} "
            f"(expected {(*warped.shape[:-3], 1, *warped.shape[-2:])})"
        )
    mask = valid.to(warped.dtype)
    total = ((warped - target).abs() * mask).sum(dim=(-3, -2, -1))
    count = mask.sum(dim=(-3, -2, -1)) * warped.shape[-3]
    return torch.where(count > 0, total / count.clamp_min(1), torch.inf)
