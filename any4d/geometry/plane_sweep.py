"""Plane-sweep view synthesis: target views rendered from source views and cameras alone.

For every target pixel and every fronto-parallel plane (a z-depth in the target camera) each
source image is inverse-warped through the plane (``reproject.warp``). Where the sources agree —
the mean absolute deviation of their colours from their mean, averaged over a
``window × window`` neighbourhood — the plane is likely the surface; the best plane wins per
pixel (winner-take-all), and the pixel takes the sources' weighted colour there. This is classic
two-view stereo without learning (Collins, "A space-sweep approach to true multi-image
matching", CVPR 1996): the geometric reference for interpolating frames between known cameras.

Pixels seen by fewer than two sources at every plane have no photo-consistency: their plane is
a guess, and ``views`` (the sources seeing each pixel at its plane) says so — 1: the colour is
that source's, 0: no source sees it and the colour is 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.geometry.reproject import warp

# Cost of a pixel fewer than two sources see at a plane: above any deviation of colours in
# [−1, 1], so a plane that two sources see wins over one they do not (before box filtering).
UNSEEN_COST = 4.0


def inverse_depth_planes(near: float, far: float, count: int) -> Tensor:
    """``count`` z-depths from ``near`` to ``far``, evenly spaced in inverse depth (even steps
    of disparity): (count,) float64."""
    if not (math.isfinite(near) and math.isfinite(far) and 0 < near < far):
        raise ValueError(f"near={near}, far={far} (expected 0 < near < far, both finite)")
    if count < 2:
        raise ValueError(f"count={count} (expected ≥ 2 planes)")
    return 1.0 / torch.linspace(1.0 / near, 1.0 / far, count, dtype=torch.float64)


def plane_sweep(
    sources: Tensor,
    source_cameras: Cameras,
    target_cameras: Cameras,
    planes: Tensor,
    weights: Tensor | None = None,
    window: int = 3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render target views from source views by a plane sweep (module docstring).

    sources:        (S, C, H, W) source images (S ≥ 2), colours in [−1, 1].
    source_cameras: (S,) their cameras; target_cameras: (T,) the views to render, same grid.
    planes:         (P,) z-depths to test (``inverse_depth_planes``).
    weights:        (T, S) ≥ 0 blend weight of each source in each target (None: equal), e.g.
                    ``1 − a`` and ``a`` for a target a fraction ``a`` of the way between two.
    window:         odd side of the box that averages the matching cost.
    Returns ``(images, depth, views)``: (T, C, H, W) renders, (T, 1, H, W) the winning plane's
    depth, and (T, 1, H, W) int64 how many sources see each pixel at that plane (the depth is
    matched where ≥ 2).
    """
    if sources.dim() != 4 or sources.shape[0] < 2:
        raise ValueError(f"sources has shape {tuple(sources.shape)} (expected (S ≥ 2, C, H, W))")
    count, channels, height, width = sources.shape
    if source_cameras.shape != (count,):
        raise ValueError(
            f"source_cameras has batch shape {tuple(source_cameras.shape)} (expected ({count},), "
            "one per source)"
        )
    if len(target_cameras.shape) != 1:
        raise ValueError(
            f"target_cameras has batch shape {tuple(target_cameras.shape)} (expected (T,))"
        )
    targets = target_cameras.shape[0]
    if planes.dim() != 1 or planes.numel() < 1 or not (planes > 0).all():
        raise ValueError(f"planes has shape {tuple(planes.shape)} (expected (P,) positive depths)")
    if weights is None:
        weights = torch.ones(targets, count)
    if weights.shape != (targets, count) or (weights < 0).any():
        raise ValueError(
            f"weights has shape {tuple(weights.shape)} (expected ({targets}, {count}), ≥ 0)"
        )
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window={window} (expected an odd size ≥ 1)")

    # Every (target, source) pair at once: batch shape (T, S).
    images = sources.expand(targets, *sources.shape)
    src = Cameras.stack([source_cameras] * targets)
    tgt = Cameras.stack([target_cameras] * count, dim=1)
    pair_weights = weights.to(sources)[:, :, None, None, None]  # (T, S, 1, 1, 1)
    like = dict(dtype=sources.dtype, device=sources.device)
    best_cost = torch.full((targets, 1, height, width), float("inf"), **like)
    best_depth = torch.zeros(targets, 1, height, width, **like)
    best_image = torch.zeros(targets, channels, height, width, **like)
    best_views = torch.zeros(targets, 1, height, width, dtype=torch.int64, device=sources.device)
    for depth in planes.tolist():
        plane = torch.full((targets, count, 1, height, width), depth, **like)
        warped, seen = warp(images, plane, src, tgt)  # (T, S, C, H, W), (T, S, 1, H, W)
        seen = seen.to(sources.dtype)
        views = seen.sum(1)  # (T, 1, H, W)
        mean = (warped * seen).sum(1) / views.clamp_min(1)
        deviation = ((warped - mean[:, None]).abs().mean(2, keepdim=True) * seen).sum(1)
        cost = torch.where(views >= 2, deviation / views.clamp_min(1), UNSEEN_COST)
        cost = F.avg_pool2d(cost, window, stride=1, padding=window // 2, count_include_pad=False)
        blend = (pair_weights * seen).sum(1)  # (T, 1, H, W)
        image = (pair_weights * seen * warped).sum(1) / blend.clamp_min(1e-12)
        image = torch.where(blend > 0, image, mean)  # seen only by zero-weight sources
        better = cost < best_cost
        best_cost = torch.where(better, cost, best_cost)
        best_depth = torch.where(better, torch.full_like(best_depth, depth), best_depth)
        best_image = torch.where(better, image, best_image)
        best_views = torch.where(better, views.long(), best_views)
    return best_image, best_depth, best_views
