"""Geometry files other tools open: point clouds as ``.ply``, depth maps as ``.npz`` / 16-bit PNG.

- ``write_ply``: binary little-endian PLY, ``float x y z`` then optional ``uchar red green blue``
  — the vertex layout MeshLab, Open3D, CloudCompare and ``plyfile`` read.
- ``write_depth_npz``: float32 metres, exact, under the key ``"depth"``.
- ``write_depth_png16``: one ``(H, W)`` map as uint16 codes ``round(depth · scale)`` (default
  millimetres), 0 = invalid — the TUM / ScanNet / 7-Scenes convention, read back by
  ``UserClip(depth=folder, depth_scale=scale)``.

Every writer validates its inputs first, creates parent folders and writes through a temporary
file renamed onto the target, so a crash never leaves a truncated file behind.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.decode import CorruptFileError, read_uint16_png, require_file
from any4d.data.readers.decode import read_depth_npz as read_depth_npz  # write_depth_npz's reader
from any4d.data.scene import Scene, check_depth_values
from any4d.geometry.reproject import unproject
from any4d.io import atomic_path

_UINT16_MAX = 65535
# PLY scalar type names (the spec's old and new spelling of each) → little-endian numpy dtypes.
_PLY_TYPES = {
    name: dtype
    for old, new, dtype in [
        ("char", "int8", "i1"),
        ("uchar", "uint8", "u1"),
        ("short", "int16", "i2"),
        ("ushort", "uint16", "u2"),
        ("int", "int32", "i4"),
        ("uint", "uint32", "u4"),
        ("float", "float32", "f4"),
        ("double", "float64", "f8"),
    ]
    for name in (old, new)
}
_XYZ, _RGB = ("x", "y", "z"), ("red", "green", "blue")


# ------------------------------------------------------------------------------ point clouds


def scene_point_cloud(
    scene: Scene,
    frames: Sequence[int] | None = None,
    stride: int = 1,
    max_depth: float | None = None,
) -> tuple[Tensor, Tensor]:
    """World points of the scene's valid depth pixels, with their colours.

    frames:    frame indices to use (negative count from the end); ``None``: all.
    stride:    keep every ``stride``-th pixel along both image axes (pixel centres unchanged).
    max_depth: drop pixels deeper than this (metres); ``None``: keep every valid depth.
    Returns ``(points, colors)``: (N, 3) float32 world coordinates (metres, the cameras' world
    frame) and (N, 3) uint8 RGB, frame by frame in row-major pixel order.
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a Scene, got {type(scene).__name__}")
    if scene.depth is None or scene.cameras is None:
        raise ValueError(
            f"scene provides {scene.modalities} (expected depth and cameras to unproject)"
        )
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride is {stride!r} (expected an integer ≥ 1)")
    if max_depth is not None and not (0 < float(max_depth) < float("inf")):
        raise ValueError(f"max_depth is {max_depth!r} (expected a positive finite number)")
    count = scene.num_frames
    indices = range(count) if frames is None else list(frames)
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"frames holds {index!r} (expected integer frame indices)")
        if not -count <= index < count:
            raise ValueError(f"frames holds {index} (expected an index in [-{count}, {count}))")
    points, colors = [], []
    for index in indices:  # one frame at a time bounds memory for long, large clips
        depth = scene.depth[index]  # (1, H, W)
        xyz = unproject(depth, scene.cameras[index])[:, ::stride, ::stride]  # (3, H', W')
        depth = depth[0, ::stride, ::stride]
        valid = depth > 0
        if max_depth is not None:
            valid &= depth <= max_depth
        rgb = ((scene.rgb[index, :, ::stride, ::stride] + 1) * 127.5).round().clamp(0, 255)
        points.append(xyz.permute(1, 2, 0)[valid])
        colors.append(rgb.permute(1, 2, 0)[valid])
    if not points:
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.uint8)
    return (
        torch.cat(points).float().cpu(),
        torch.cat(colors).to(torch.uint8).cpu(),
    )


def write_ply(
    path: str | os.PathLike, points: Tensor | np.ndarray, colors: Tensor | np.ndarray | None = None
) -> Path:
    """Write a point cloud as a binary little-endian PLY (vertices only), atomically.

    points: (N, 3) finite floats, stored as float32 ``x y z``.
    colors: optional (N, 3) uint8, stored as ``uchar red green blue``.
    """
    points, colors = check_points(points, colors)
    fields = [(name, "<f4") for name in _XYZ]
    if colors is not None:
        fields += [(name, "u1") for name in _RGB]
    vertices = np.empty(len(points), dtype=fields)
    for axis, name in enumerate(_XYZ):
        vertices[name] = points[:, axis]
    if colors is not None:
        for channel, name in enumerate(_RGB):
            vertices[name] = colors[:, channel]
    types = {"<f4": "float", "u1": "uchar"}
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by any4d",
        f"element vertex {len(points)}",
        *(f"property {types[kind]} {name}" for name, kind in fields),
        "end_header",
    ]
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(vertices.tobytes())
    return Path(path)


def read_ply(path: str | os.PathLike) -> tuple[Tensor, Tensor | None]:
    """Points of a binary PLY's ``vertex`` element (the first element; faces after it ignored).

    Returns ``(points, colors)``: (N, 3) float32 ``x y z`` and (N, 3) uint8 ``red green blue``,
    or ``None`` when the file has no colours.
    """
    path = require_file(Path(path), "a .ply point cloud")
    with open(path, "rb") as handle:
        if handle.readline().strip() != b"ply":
            raise CorruptFileError(path, "does not start with 'ply' (expected a PLY file)")
        lines = []
        while (line := handle.readline()) and line.strip() != b"end_header":
            lines.append(line.decode("ascii", errors="replace").split())
        if not line:
            raise CorruptFileError(path, "has no 'end_header' line")
        data = handle.read()
    fmt = next((words[1] for words in lines if words[:1] == ["format"]), None)
    byte_order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    if byte_order is None:
        raise CorruptFileError(
            path, f"has format {fmt!r} (expected binary_little_endian or binary_big_endian)"
        )
    elements = [i for i, words in enumerate(lines) if words[:1] == ["element"]]
    if not elements or lines[elements[0]][1:2] != ["vertex"]:
        raise CorruptFileError(path, "does not start with a vertex element")
    try:
        count = int(lines[elements[0]][2])
        end = elements[1] if len(elements) > 1 else len(lines)
        properties = [w for w in lines[elements[0] + 1 : end] if w[:1] == ["property"]]
        dtype = np.dtype([(w[2], byte_order + _PLY_TYPES[w[1]]) for w in properties])
    except (IndexError, KeyError, ValueError):
        raise CorruptFileError(
            path, "has a vertex element with list or unknown properties (expected scalars)"
        ) from None
    if not set(_XYZ) <= set(dtype.names or ()):
        raise CorruptFileError(path, f"has vertex properties {dtype.names} (expected x, y, z)")
    if len(data) < count * dtype.itemsize:
        raise CorruptFileError(
            path, f"holds {len(data)} bytes of data for {count} vertices of {dtype.itemsize}"
        )
    vertices = np.frombuffer(data, dtype=dtype, count=count)
    points = np.stack([vertices[name] for name in _XYZ], -1).astype(np.float32)
    colors = None
    if set(_RGB) <= set(dtype.names):
        colors = np.stack([vertices[name] for name in _RGB], -1).astype(np.uint8)
    return torch.from_numpy(points), None if colors is None else torch.from_numpy(colors)


# ------------------------------------------------------------------------------------- depth


def write_depth_npz(path: str | os.PathLike, depth: Tensor | np.ndarray) -> Path:
    """Write depth (any shape with ≥ 2 dims, e.g. (H, W) or a clip's (T, 1, H, W)) as float32
    metres under the key ``"depth"`` of a compressed ``.npz``, atomically; 0 = invalid."""
    depth = _check_depth(depth).astype(np.float32)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, depth=depth)
    return Path(path)


def write_depth_png16(
    path: str | os.PathLike, depth: Tensor | np.ndarray, scale: float = 1000.0
) -> Path:
    """Write one (H, W) depth map in metres as a 16-bit PNG of ``round(depth · scale)``.

    scale: codes per metre (1000: millimetres, range 0.5 mm … 65.5 m; 5000: TUM RGB-D). 0 stays
    0 (invalid). Depths whose code would leave ``[1, 65535]`` cannot be stored: they are written
    as 0 (invalid) with a ``UserWarning`` that counts them — the file stays usable, and no
    pixel ever reads back as a wrong depth.
    """
    from PIL import Image  # here, so that importing any4d stays light

    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < np.inf:
        raise ValueError(f"scale is {scale!r} (expected a positive finite number of codes per m)")
    depth = _check_depth(depth).astype(np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth has shape {depth.shape} (expected one (H, W) map per PNG)")
    code = np.round(depth * scale)
    lost = (depth > 0) & ((code < 1) | (code > _UINT16_MAX))
    if lost.any():
        warnings.warn(
            f"{int(lost.sum())} depth pixels outside [{0.5 / scale:g}, "
            f"{(_UINT16_MAX + 0.5) / scale:g}) m cannot be stored with scale {scale:g} and are "
            f"written as 0 (invalid) in {path}",
            UserWarning,
            stacklevel=2,
        )
        code[lost] = 0
    with atomic_path(path) as temporary:
        Image.fromarray(code.astype(np.uint16)).save(temporary, format="PNG")
    return Path(path)


def read_depth_png16(path: str | os.PathLike, scale: float = 1000.0) -> Tensor:
    """(H, W) float32 metres from a 16-bit depth PNG: ``code / scale``, 0 = invalid."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < np.inf:
        raise ValueError(f"scale is {scale!r} (expected a positive finite number of codes per m)")
    code = read_uint16_png(Path(path))
    return code.double().div(scale).float()


# ----------------------------------------------------------------------------------- helpers


def check_points(
    points: Tensor | np.ndarray,
    colors: Tensor | np.ndarray | None,
    default_color: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated numpy ``(points (N, 3) float, colors (N, 3) uint8 or None)`` for the writers.

    ``points=None`` is an empty cloud; ``colors=None`` stays None, or becomes ``default_color``
    grey when one is given.
    """
    points = np.zeros((0, 3), np.float32) if points is None else _as_numpy(points, "points")
    if points.ndim != 2 or points.shape[1] != 3 or not np.issubdtype(points.dtype, np.floating):
        raise ValueError(
            f"points is {points.dtype} of shape {points.shape} (expected (N, 3) floats)"
        )
    if not np.isfinite(points).all():
        raise ValueError("points contains NaN or inf (expected finite coordinates)")
    if colors is None:
        if default_color is None:
            return points, None
        return points, np.full(points.shape, default_color, dtype=np.uint8)
    colors = _as_numpy(colors, "colors")
    if colors.shape != points.shape or colors.dtype != np.uint8:
        raise ValueError(
            f"colors is {colors.dtype} of shape {colors.shape} (expected uint8 of shape "
            f"{points.shape}, one RGB triple per point)"
        )
    return points, colors


def _as_numpy(value, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        # numpy has no bfloat16: widen half precisions to float32
        return (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name} must be a tensor or numpy array, got {type(value).__name__}")


def _check_depth(depth) -> np.ndarray:
    depth = _as_numpy(depth, "depth")
    if depth.ndim < 2 or depth.size == 0 or not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(
            f"depth is {depth.dtype} of shape {depth.shape} (expected floats of shape (..., H, W))"
        )
    check_depth_values(depth)
    return depth
