"""Plücker ray maps of pinhole cameras (DESIGN §1).

Every pixel centre ``(u + 0.5, v + 0.5)`` of an ``height × width`` grid defines the world ray
``d = normalize(R · K⁻¹ · [u + 0.5, v + 0.5, 1])`` through the camera centre ``o``; its Plücker
coordinates are ``(d, m)`` with moment ``m = o × d``. A latent grid uses the intrinsics rescaled
to that grid (``Cameras.strided``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.geometry.vectors import cross, norm


def check_ray_map(rays: Tensor) -> None:
    """Raise ``ValueError`` unless ``rays`` is a floating-point (..., 6, H, W) Plücker ray map."""
    if not isinstance(rays, Tensor) or not rays.is_floating_point():
        raise ValueError("rays must be a floating-point tensor (..., 6, H, W) of rays (d, m)")
    if rays.dim() < 3 or rays.shape[-3] != 6:
        raise ValueError(
            f"rays has shape {tuple(rays.shape)} (expected (..., 6, H, W) Plücker rays (d, m))"
        )


def pixel_grid(
    height: int, width: int, *, dtype: torch.dtype = torch.float32, device=None
) -> Tensor:
    """Homogeneous pixel centres of a grid.

    Returns (3, height, width): ``(u + 0.5, v + 0.5, 1)`` with ``u`` the column, ``v`` the row.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"grid size must be positive, got height={height}, width={width}")
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device) + 0.5,
        torch.arange(width, dtype=dtype, device=device) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v, torch.ones_like(u)])


def ray_directions(cameras: Cameras, height: int, width: int, normalize: bool = True) -> Tensor:
    """World directions of the rays through every pixel centre.

    Returns (..., 3, height, width). With ``normalize=False`` the direction of pixel ``x`` is
    ``R K⁻¹ x``, whose camera-frame z is exactly 1 (so depth × direction is the 3D point).
    """
    if not isinstance(cameras, Cameras):
        raise TypeError(f"cameras must be a Cameras, got {type(cameras).__name__}")
    pixels = pixel_grid(height, width, dtype=cameras.dtype, device=cameras.device)
    pixel_to_world = cameras.R @ cameras.K_inv  # (..., 3, 3)
    directions = torch.einsum("...ij,jhw->...ihw", pixel_to_world, pixels)
    if normalize:
        directions = directions / norm(directions, dim=-3, keepdim=True)
    return directions


def plucker_rays(cameras: Cameras, height: int, width: int) -> Tensor:
    """Ray map of every pixel centre, world frame.

    cameras: batch shape (...). Returns (..., 6, height, width): unit direction d, then moment
    m = o × d (o: camera centre).
    """
    directions = ray_directions(cameras, height, width)
    moments = cross(cameras.centers[..., :, None, None], directions, dim=-3)
    return torch.cat([directions, moments], dim=-3)
