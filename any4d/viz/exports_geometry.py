"""Geometry files other tools open: point clouds as ``.ply``, depth maps as ``.npz`` / 16-bit PNG.

- ``write_ply``: binary little-endian PLY, ``float x y z`` then optional ``uchar red green blue``
  — the vertex layout MeshLab, Open3D, CloudCompare and ``plyfile`` read.
- ``write_depth_npz``: float32 metres, exact, under the key ``"depth"``.
- ``PlyWriter`` / ``DepthNpzWriter``: the same files written chunk by chunk (a long video window
  by window), so memory does not grow with the clip; ``subsample_points`` keeps a point budget.
- ``write_depth_png16``: one ``(H, W)`` map as uint16 codes ``round(depth · scale)`` (default
  millimetres), 0 = invalid — the TUM / ScanNet / 7-Scenes convention, read back by
  ``UserClip(depth=folder, depth_scale=scale)``.

Every writer validates its inputs first, creates parent folders and writes through a temporary
file renamed onto the target, so a crash never leaves a truncated file behind (the incremental
writers: when their ``with`` block ends without error).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from contextlib import ExitStack
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
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(_ply_header(len(points), colors is not None))
        handle.write(_ply_vertices(points, colors).tobytes())
    return Path(path)


class PlyWriter:
    """``write_ply`` chunk by chunk: the same file for the concatenation of every ``add``.

        with PlyWriter(out / "points.ply") as ply:
            for window in windows:
                ply.add(points, colors)  # (N, 3) floats, (N, 3) uint8 or None

    The vertex count heads the file but is known only at the end, so the records go to an
    anonymous temporary file beside ``path`` and are copied behind the header when the block ends
    without error; on error nothing is written at ``path``. No ``add`` at all: an empty PLY.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.count = 0  # vertices added so far
        self._colored: bool | None = None  # whether the adds carry colours; None before the first
        self._body = None

    def __enter__(self) -> PlyWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._body = tempfile.TemporaryFile(dir=self.path.parent)  # same disk as the target
        return self

    def add(self, points: Tensor | np.ndarray, colors: Tensor | np.ndarray | None = None) -> None:
        """Append (N, 3) finite float points and their optional (N, 3) uint8 colours."""
        if self._body is None:
            raise RuntimeError("PlyWriter.add called outside its with block")
        points, colors = check_points(points, colors)
        colored = colors is not None
        if self._colored is not None and colored != self._colored:
            raise ValueError(
                f"colors is {'given' if colored else 'None'} but the earlier points were added "
                f"{'with' if self._colored else 'without'} colours (expected every add to agree)"
            )
        self._colored = colored
        self._body.write(_ply_vertices(points, colors).tobytes())
        self.count += len(points)

    def __exit__(self, error_type, error, traceback) -> None:
        body, self._body = self._body, None
        with body:  # closing the anonymous file deletes it
            if error_type is None:
                body.seek(0)
                with atomic_path(self.path) as temporary, open(temporary, "wb") as handle:
                    handle.write(_ply_header(self.count, bool(self._colored)))
                    shutil.copyfileobj(body, handle)


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


def subsample_points(
    points: Tensor | np.ndarray,
    colors: Tensor | np.ndarray | None,
    budget: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor | np.ndarray, Tensor | np.ndarray | None]:
    """At most ``budget`` of the points (and their colours), drawn uniformly without replacement.

    points: (N, 3); colors: (N, 3) or None. Returns the kept rows in their original order —
    all of them when N ≤ budget; the same rows for the same ``generator`` state.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget is {budget!r} (expected an integer ≥ 1)")
    if colors is not None and len(colors) != len(points):
        raise ValueError(f"colors has {len(colors)} rows but points has {len(points)}")
    if len(points) <= budget:
        return points, colors
    keep = torch.randperm(len(points), generator=generator)[:budget].sort().values
    if isinstance(points, Tensor):
        keep = keep.to(points.device)
    else:
        keep = keep.numpy()
    return points[keep], None if colors is None else colors[keep]


# ------------------------------------------------------------------------------------- depth


def write_depth_npz(path: str | os.PathLike, depth: Tensor | np.ndarray) -> Path:
    """Write depth (any shape with ≥ 2 dims, e.g. (H, W) or a clip's (T, 1, H, W)) as float32
    metres under the key ``"depth"`` of a compressed ``.npz``, atomically; 0 = invalid."""
    depth = _check_depth(depth).astype(np.float32)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, depth=depth)
    return Path(path)


class DepthNpzWriter:
    """``write_depth_npz`` of a (num_frames, height, width) clip, written chunk by chunk.

        with DepthNpzWriter(out / "depth.npz", num_frames, height, width) as npz:
            for window in windows:
                npz.write(depth)  # (n, H, W) or (n, 1, H, W) metres, in frame order

    The ``.npy`` inside is byte for byte the one ``write_depth_npz`` writes for the whole
    C-ordered float32 array, deflated the same way (``np.savez_compressed``), so ``np.load`` and
    ``read_depth_npz`` read it. When the block ends without error exactly ``num_frames`` frames
    must have been written (else ``ValueError``) and the file is renamed onto ``path``; on any
    error nothing is left at ``path``.
    """

    def __init__(self, path: str | os.PathLike, num_frames: int, height: int, width: int):
        for name, value in (("num_frames", num_frames), ("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} is {value!r} (expected an integer ≥ 1)")
        self.path = Path(path)
        self.shape = (int(num_frames), int(height), int(width))
        self.written = 0  # frames written so far
        self._stack: ExitStack | None = None
        self._npy = None

    def __enter__(self) -> DepthNpzWriter:
        with ExitStack() as stack:  # unwinds what was opened if a later step fails
            temporary = stack.enter_context(atomic_path(self.path))
            archive = stack.enter_context(
                zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
            )
            # force_zip64: the size is unknown while streaming (numpy does the same, gh-10776)
            self._npy = stack.enter_context(archive.open("depth.npy", "w", force_zip64=True))
            header = {"descr": "<f4", "fortran_order": False, "shape": self.shape}
            np.lib.format.write_array_header_1_0(self._npy, header)
            self._stack = stack.pop_all()
        return self

    def write(self, depth: Tensor | np.ndarray) -> None:
        """Append n frames: (n, H, W) or (n, 1, H, W) finite metres ≥ 0, 0 = invalid."""
        if self._npy is None:
            raise RuntimeError("DepthNpzWriter.write called outside its with block")
        depth = _check_depth(depth)
        _, height, width = self.shape
        if depth.ndim == 4 and depth.shape[1] == 1:
            depth = depth[:, 0]
        if depth.ndim != 3 or depth.shape[1:] != (height, width):
            raise ValueError(
                f"depth has shape {depth.shape} (expected (n, {height}, {width}) or "
                f"(n, 1, {height}, {width}))"
            )
        if self.written + len(depth) > self.shape[0]:
            raise ValueError(
                f"depth brings the frames written to {self.written + len(depth)} "
                f"(expected num_frames = {self.shape[0]} in all)"
            )
        self._npy.write(np.ascontiguousarray(depth, dtype="<f4").data)
        self.written += len(depth)

    def __exit__(self, error_type, error, traceback) -> bool:
        stack, self._stack, self._npy = self._stack, None, None
        if error_type is None and self.written != self.shape[0]:
            with stack:  # the ValueError unwinds the archive and removes the temporary file
                raise ValueError(
                    f"{self.written} depth frames were written to {self.path} "
                    f"(expected num_frames = {self.shape[0]})"
                )
        return stack.__exit__(error_type, error, traceback)


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
    lost = unstorable_in_png16(depth, scale)
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


def unstorable_in_png16(depth, scale: float = 1000.0) -> np.ndarray:
    """Bool mask of the valid depths (metres, any shape) whose ``write_depth_png16`` code would
    leave ``[1, 65535]`` at ``scale`` codes per metre (they are written as 0)."""
    depth = _as_numpy(depth, "depth").astype(np.float64, copy=False)
    code = np.round(depth * scale)
    return (depth > 0) & ((code < 1) | (code > _UINT16_MAX))


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


def _ply_header(count: int, colored: bool) -> bytes:
    """The header of a binary little-endian PLY of ``count`` vertices, with or without colours."""
    properties = [f"property float {name}" for name in _XYZ]
    if colored:
        properties += [f"property uchar {name}" for name in _RGB]
    lines = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by any4d",
        f"element vertex {count}",
        *properties,
        "end_header",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def _ply_vertices(points: np.ndarray, colors: np.ndarray | None) -> np.ndarray:
    """Packed PLY vertex records of (N, 3) points and optional (N, 3) uint8 colours."""
    fields = [(name, "<f4") for name in _XYZ]
    if colors is not None:
        fields += [(name, "u1") for name in _RGB]
    vertices = np.empty(len(points), dtype=fields)
    for axis, name in enumerate(_XYZ):
        vertices[name] = points[:, axis]
    if colors is not None:
        for channel, name in enumerate(_RGB):
            vertices[name] = colors[:, channel]
    return vertices


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
