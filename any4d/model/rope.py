"""3D rotary position embedding over the latent token grid ``(t', h', w')`` (Wan2.1's RoPE).

Each head's ``head_dim`` real dims form ``head_dim / 2`` rotated pairs, split over the three
axes as Wan does: ``t = d − 4·(d//6)``, ``h = w = 2·(d//6)`` real dims, each axis with its own
frequency ladder ``θ^(−2i / axis_dim)``. Pairs are adjacent dims ``(2i, 2i + 1)``. Every stream
shares the positions: token ``j`` of each stream sits at the same ``(t', h', w')``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _axis_angles(positions: Tensor, axis_dim: int, theta: float) -> Tensor:
    """positions (n,) → angles (n, axis_dim / 2) in float64."""
    exponent = torch.arange(0, axis_dim, 2, dtype=torch.float64, device=positions.device)
    frequencies = 1.0 / theta ** (exponent / axis_dim)
    return positions.to(torch.float64)[:, None] * frequencies


def rope_angles(
    frame_index: Tensor, height: int, width: int, dims: tuple[int, int, int], theta: float
) -> tuple[Tensor, Tensor]:
    """cos and sin of every token's rotation angles.

    frame_index: (T',) integer time position of each latent frame (usually ``arange(T')``).
    height, width: the token grid ``H'``, ``W'``; dims: real dims per axis (t, h, w).
    Returns cos, sin, each (T'·H'·W', head_dim / 2) float32, tokens in ``(t', h', w')`` order.
    """
    # float64 like Wan (positions up to 1024 times unit frequencies); MPS has no float64.
    device = frame_index.device
    if device.type == "mps":
        frame_index = frame_index.cpu()
    t_dim, h_dim, w_dim = dims
    t_angles = _axis_angles(frame_index, t_dim, theta)  # (T', t/2)
    h_angles = _axis_angles(torch.arange(height, device=frame_index.device), h_dim, theta)
    w_angles = _axis_angles(torch.arange(width, device=frame_index.device), w_dim, theta)
    frames = t_angles.shape[0]
    angles = torch.cat(
        [
            t_angles[:, None, None, :].expand(frames, height, width, -1),
            h_angles[None, :, None, :].expand(frames, height, width, -1),
            w_angles[None, None, :, :].expand(frames, height, width, -1),
        ],
        dim=-1,
    ).reshape(frames * height * width, -1)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate adjacent pairs of the last dim.

    x: (..., L, heads, head_dim); cos, sin: (L, head_dim / 2). Returns x's shape and dtype;
    the rotation is computed in float32.
    """
    pairs = x.float().unflatten(-1, (-1, 2))  # (..., L, heads, head_dim/2, 2)
    first, second = pairs.unbind(-1)
    cos, sin = cos[:, None, :], sin[:, None, :]  # (L, 1, head_dim/2)
    rotated = torch.stack([first * cos - second * sin, first * sin + second * cos], dim=-1)
    return rotated.flatten(-2).type_as(x)
