"""Random cameras for tests: arbitrary rotations, non-square pixels, off-centre principal points."""

from __future__ import annotations

import torch

from any4d.geometry import Cameras


def random_rotations(shape: tuple[int, ...], generator: torch.Generator, dtype=torch.float64):
    """Uniformly random proper rotations (..., 3, 3) via QR of Gaussian matrices."""
    q, r = torch.linalg.qr(torch.randn(*shape, 3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
    det = torch.linalg.det(q)
    q[..., :, 0] = q[..., :, 0] * det[..., None]  # flip one axis of reflections
    return q.to(dtype)


def random_cameras(
    shape: tuple[int, ...],
    seed: int,
    height: int = 24,
    width: int = 32,
    dtype: torch.dtype = torch.float64,
    skew: bool = False,
) -> Cameras:
    """Cameras with batch ``shape``: focal 0.6–1.6 × width (fy/fx in [0.8, 1.25]), principal
    point up to 20 % off-centre, centres in [−3, 3]³, uniformly random orientation."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)

    fx = uniform(0.6, 1.6) * width
    fy = fx * uniform(0.8, 1.25)
    cx = width / 2 * uniform(0.8, 1.2)
    cy = height / 2 * uniform(0.8, 1.2)
    K = torch.zeros(*shape, 3, 3, dtype=torch.float64)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1
    if skew:
        K[..., 0, 1] = uniform(-0.05, 0.05) * fx
    c2w = torch.zeros(*shape, 4, 4, dtype=torch.float64)
    c2w[..., :3, :3] = random_rotations(shape, g)
    c2w[..., :3, 3] = 6 * torch.rand(*shape, 3, generator=g, dtype=torch.float64) - 3
    c2w[..., 3, 3] = 1
    return Cameras(K.to(dtype), c2w.to(dtype))
