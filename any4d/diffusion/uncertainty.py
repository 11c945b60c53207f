"""Uncertainty from the posterior: how much L sampled 4D hypotheses disagree.

A feed-forward predictor gives one answer; a generative model can be asked again. The spread of
its answers — per pixel for depth, per frame for cameras — says where the observation leaves the
scene undetermined.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.geometry import Cameras


@dataclass(frozen=True, eq=False)
class Uncertainty:
    """Spread over L candidates.

    depth_std:           (B, T, 1, H, W) standard deviation of depth (the depth's units).
    depth_relative_std:  (B, T, 1, H, W) ``depth_std / mean depth`` (0 where the mean is 0).
    center_std:          (B, T) RMS distance of the camera centres to their mean.
    rotation_spread_deg: (B, T) mean angle between each rotation and their chordal mean, degrees.
    """

    depth_std: Tensor | None
    depth_relative_std: Tensor | None
    center_std: Tensor | None
    rotation_spread_deg: Tensor | None


def mean_rotation(rotations: Tensor) -> Tensor:
    """Chordal L2 mean of rotations (L, ..., 3, 3) over the first dim → (..., 3, 3)."""
    u, _, vh = torch.linalg.svd(rotations.mean(0))
    sign = torch.sign(torch.linalg.det(u @ vh))
    correction = torch.ones_like(u[..., 0, :])
    correction[..., -1] = sign
    return u @ torch.diag_embed(correction) @ vh


def rotation_angle_deg(a: Tensor, b: Tensor) -> Tensor:
    """Geodesic angle between rotations (..., 3, 3), in degrees."""
    trace = (a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.rad2deg(torch.arccos(((trace - 1) / 2).clamp(-1.0, 1.0)))


def posterior_spread(depths: list[Tensor | None], cameras: list[Cameras | None]) -> Uncertainty:
    """Spread of L decoded candidates.

    depths:  L tensors (B, T, 1, H, W) or None; cameras: L ``Cameras`` of batch (B, T) or None.
    Candidates given as None (e.g. undecodable) are left out; fewer than two left → None fields.
    """
    depth_std = depth_relative = center_std = rotation_spread = None
    kept = [d for d in depths if d is not None]
    if len(kept) >= 2:
        stacked = torch.stack(kept)  # (L, B, T, 1, H, W)
        depth_std = stacked.std(0, correction=0)
        mean = stacked.mean(0)
        depth_relative = torch.where(mean > 0, depth_std / mean.clamp_min(1e-12), 0.0)
    kept_cameras = [c for c in cameras if c is not None]
    if len(kept_cameras) >= 2:
        centers = torch.stack([c.centers for c in kept_cameras])  # (L, B, T, 3)
        center_std = (centers - centers.mean(0)).square().sum(-1).mean(0).sqrt()
        rotations = torch.stack([c.R for c in kept_cameras]).double()  # (L, B, T, 3, 3)
        mean = mean_rotation(rotations)
        rotation_spread = rotation_angle_deg(rotations, mean).mean(0).to(centers.dtype)
    return Uncertainty(depth_std, depth_relative, center_std, rotation_spread)
