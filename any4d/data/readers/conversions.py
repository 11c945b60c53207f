"""Named conversions from the datasets' on-disk conventions to ours (DESIGN §1).

Ours: OpenCV camera axes (x right, y down, z forward), camera-to-world ``c2w`` (…, 4, 4),
intrinsics ``K`` (…, 3, 3) in pixels, depth in metres along the optical axis with ``0`` = invalid.
Every reader goes through these functions, so each conversion is written (and tested) once.
Poses are computed in float64; depth in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

# (1, 1): the "image size" of normalised intrinsics, whose rows are fractions of W and H.
NORMALISED = (1, 1)
# Flips camera y and z: OpenGL / Blender / nerfstudio (x right, y up, z backward) ↔ OpenCV.
OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


# ------------------------------------------------------------------------------------- poses


def homogeneous(pose: Tensor) -> Tensor:
    """Pad 3×4 rigid transforms ``[R | t]`` (…, 3, 4) with the row ``[0, 0, 0, 1]`` → (…, 4, 4)."""
    pose = torch.as_tensor(pose, dtype=torch.float64)
    if pose.shape[-2:] != (3, 4):
        raise ValueError(f"pose has shape {tuple(pose.shape)} (expected (..., 3, 4))")
    bottom = torch.zeros(*pose.shape[:-2], 1, 4, dtype=pose.dtype)
    bottom[..., 0, 3] = 1
    return torch.cat([pose, bottom], dim=-2)


def w2c_to_c2w(w2c: Tensor) -> Tensor:
    """Camera-to-world from world-to-camera (…, 4, 4): ``c2w = inv(w2c)``.

    A general inverse, as the datasets' own loaders do: a rotation stored to a few digits stays
    the one the file describes instead of being re-orthonormalised here.
    """
    w2c = torch.as_tensor(w2c, dtype=torch.float64)
    if w2c.shape[-2:] != (4, 4):
        raise ValueError(f"w2c has shape {tuple(w2c.shape)} (expected (..., 4, 4))")
    return torch.linalg.inv(w2c)


def opengl_to_opencv(c2w: Tensor) -> Tensor:
    """OpenCV-axes c2w from an OpenGL/Blender/nerfstudio-axes c2w: ``c2w @ diag(1, −1, −1, 1)``.

    The world frame is unchanged; only the camera's y and z axes are flipped.
    """
    c2w = torch.as_tensor(c2w, dtype=torch.float64)
    if c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w has shape {tuple(c2w.shape)} (expected (..., 4, 4))")
    return c2w @ OPENGL_TO_OPENCV


def quaternion_to_rotation(quaternion: Tensor, scalar_first: bool) -> Tensor:
    """Rotation matrices (…, 3, 3) from unit quaternions (…, 4).

    scalar_first: True for ``(w, x, y, z)`` (COLMAP, OmniWorld), False for ``(x, y, z, w)``
    (SciPy, lietorch / SpatialVID). The quaternion is normalised first; ``q`` and ``−q`` give
    the same rotation.
    """
    q = torch.as_tensor(quaternion, dtype=torch.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"quaternion has shape {tuple(q.shape)} (expected (..., 4))")
    norm = q.norm(dim=-1, keepdim=True)
    if (norm < 1e-12).any():
        raise ValueError("quaternion has zero norm (expected a unit quaternion)")
    q = q / norm
    w, x, y, z = q.unbind(-1) if scalar_first else (q[..., 3], q[..., 0], q[..., 1], q[..., 2])
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def pose_from_quaternion(quaternion: Tensor, translation: Tensor, scalar_first: bool) -> Tensor:
    """Rigid transforms ``[R(q) | t]`` (…, 4, 4) from quaternions (…, 4) and translations (…, 3).

    The result is in whatever direction the file stores (often world-to-camera).
    """
    translation = torch.as_tensor(translation, dtype=torch.float64)
    rotation = quaternion_to_rotation(quaternion, scalar_first)
    if translation.shape != rotation.shape[:-1]:
        raise ValueError(
            f"translation has shape {tuple(translation.shape)} but quaternion gives "
            f"{tuple(rotation.shape[:-2])} poses (expected {tuple(rotation.shape[:-1])})"
        )
    return homogeneous(torch.cat([rotation, translation[..., None]], dim=-1))


# -------------------------------------------------------------------------------- intrinsics


def intrinsics_matrix(fx, fy, cx, cy) -> Tensor:
    """K (…, 3, 3) ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` from numbers or arrays (broadcast)."""
    values = torch.broadcast_tensors(
        *(torch.as_tensor(v, dtype=torch.float64) for v in (fx, fy, cx, cy))
    )
    fx, fy, cx, cy = values
    K = torch.zeros(*fx.shape, 3, 3, dtype=torch.float64)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1
    return K


def rescale_intrinsics(K: Tensor, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> Tensor:
    """K for an image of ``to_hw = (H, W)`` from K for ``from_hw``: row 0 × W'/W, row 1 × H'/H.

    Exact with pixel centres at ``+0.5`` (DESIGN §1), which all our sources use.
    """
    (h0, w0), (h1, w1) = from_hw, to_hw
    if min(h0, w0, h1, w1) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_hw} -> {to_hw}")
    K = torch.as_tensor(K, dtype=torch.float64).clone()
    K[..., 0, :] *= w1 / w0
    K[..., 1, :] *= h1 / h0
    return K


def same_aspect_ratio(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether image sizes ``a`` and ``b`` (H, W) have one aspect ratio, up to the rounding of
    one pixel in one side (e.g. a half-resolution depth map of an odd-sized frame):
    ``|H_a·W_b − H_b·W_a| ≤ max(H_a, W_a, H_b, W_b)``."""
    (h0, w0), (h1, w1) = a, b
    return abs(h0 * w1 - h1 * w0) <= max(h0, w0, h1, w1)


def normalised_to_pixel_intrinsics(K: Tensor, width: int, height: int) -> Tensor:
    """Pixel K from normalised K (fx/W, fy/H, cx/W, cy/H): row 0 × ``width``, row 1 × ``height``."""
    return rescale_intrinsics(K, NORMALISED, (height, width))


# ------------------------------------------------------------------------------------- depth


def invalid_to_zero(depth: Tensor, invalid: Tensor) -> Tensor:
    """``depth`` with 0 (our invalid code) where ``invalid`` is True or the value is not finite."""
    depth = torch.as_tensor(depth, dtype=torch.float32)
    return torch.where(invalid | ~torch.isfinite(depth), torch.zeros_like(depth), depth)


def millimetres_to_metres(value: Tensor) -> Tensor:
    """Metres from millimetres (ScanNet++, 7-Scenes uint16 PNGs)."""
    return torch.as_tensor(value).to(torch.float64).div(1000.0).float()


def centimetres_to_metres(value: Tensor) -> Tensor:
    """Metres from centimetres (Virtual KITTI 2 uint16 PNGs)."""
    return torch.as_tensor(value).to(torch.float64).div(100.0).float()


def uint16_fraction_to_metres(value: Tensor, full_scale: float) -> Tensor:
    """Metres from uint16 codes spanning ``[0, full_scale]`` metres: ``v / 65535 · full_scale``.

    PointOdyssey stores ``full_scale = 1000``.
    """
    return (torch.as_tensor(value).to(torch.float64) / 65535.0 * full_scale).float()


def inverse_depth_to_metres(inverse: Tensor, max_depth: float = 100.0) -> Tensor:
    """Metres from inverse depth (SpatialVID EXR ``Z``): ``1 / Z``; 0 where not finite,
    ``Z ≤ 0`` or the depth is ≥ ``max_depth`` (the official reader clips at 100 m)."""
    inverse = torch.as_tensor(inverse).to(torch.float64)
    with torch.no_grad():
        depth = 1.0 / inverse
    invalid = ~torch.isfinite(depth) | (inverse <= 0) | (depth >= max_depth)
    return invalid_to_zero(depth.float(), invalid)


def omniworld_depth_to_metres(value: Tensor, near: float = 1.0, far: float = 1000.0) -> Tensor:
    """Metres from OmniWorld's uint16 depth codes (their ``scripts/utils.py``, ``load_depth``).

    ``d = v / 65535``; ``depth = d / (far − d·(far − near)) / 0.004``; invalid (→ 0) where
    ``d < 0.0015`` (too close) or ``d > 65500 / 65535`` (sky).
    """
    d = torch.as_tensor(value).to(torch.float64) / 65535.0
    invalid = (d < 0.0015) | (d > 65500.0 / 65535.0)
    depth = d / (far - d * (far - near)) / 0.004
    return invalid_to_zero(depth.float(), invalid)
