"""Camera files other tools open: COLMAP text, nerfstudio ``transforms.json``, TUM trajectories
and our cameras JSON (the one ``any4d.data.readers.user`` reads).

Our cameras are OpenCV axes, camera-to-world, K in pixels with pixel centres at ``+0.5``
(DESIGN §1). Per format:

- COLMAP: world-to-camera ``QW QX QY QZ TX TY TZ``, OpenCV axes; its image coordinates put the
  centre of the top-left pixel at (0.5, 0.5) (COLMAP docs, "Keypoints and Descriptors"), so
  ``fx fy cx cy`` are written unchanged.
- nerfstudio: camera-to-world with OpenGL camera axes (``c2w @ diag(1, −1, −1, 1)``); it casts
  rays through ``pixel + 0.5`` (``Cameras.get_image_coords``), so K is written unchanged.
- TUM: ``t tx ty tz qx qy qz qw``, the camera's pose in the world (camera-to-world).

``image_size`` is ``(height, width)`` in pixels, the grid K refers to. Floats are written with
Python's shortest round-trip ``repr``, so a float64 reader gets back the values bit for bit.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.io import atomic_path
from any4d.viz.exports_geometry import check_points

# Flips camera y and z: OpenCV (x right, y down, z forward) ↔ OpenGL / nerfstudio.
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


def write_colmap_text(
    directory: str | os.PathLike,
    cameras: Cameras,
    image_size: tuple[int, int],
    image_names: Sequence[str] | None = None,
    points: Tensor | np.ndarray | None = None,
    colors: Tensor | np.ndarray | None = None,
) -> Path:
    """Write a COLMAP text model: ``cameras.txt``, ``images.txt`` and ``points3D.txt``.

    cameras:     batch shape (N,), no skew (COLMAP's PINHOLE model has none).
    image_names: N file names without whitespace; default ``000000.png``, ``000001.png``, ….
    points, colors: optional (P, 3) world points and uint8 RGB (e.g. ``scene_point_cloud``)
                 written as 3D points without tracks — the initial cloud 3D Gaussian splatting
                 reads; default: no points.
    One PINHOLE camera shared by every image when all K are equal, else one per image.
    Returns ``directory``.
    """
    K, c2w = _camera_arrays(cameras)
    height, width = _check_image_size(image_size)
    names = _check_names(image_names, len(K), "image_names", default="{:06d}.png")
    for name in names:
        if any(c.isspace() for c in name):
            raise ValueError(
                f"image_names holds {name!r} (expected names without whitespace: COLMAP text "
                "lines are split on spaces)"
            )
    _check_no_skew(K, "COLMAP's PINHOLE model")
    points, colors = check_points(points, colors, default_color=128)
    shared = bool((K == K[0]).all())
    intrinsics = K[:1] if shared else K
    camera_lines = [
        f"{i + 1} PINHOLE {width} {height} " + _numbers(k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        for i, k in enumerate(intrinsics)
    ]
    image_lines = []
    for i, (pose, name) in enumerate(zip(c2w, names, strict=True)):
        rotation = pose[:3, :3].T  # world-to-camera: [Rᵀ | −Rᵀ t]
        translation = -rotation @ pose[:3, 3]
        camera_id = 1 if shared else i + 1
        values = _numbers(*rotation_to_quaternion(rotation), *translation)
        image_lines += [f"{i + 1} {values} {camera_id} {name}", ""]  # "" = no 2D points
    directory = Path(directory)
    _write_text(
        directory / "cameras.txt",
        [
            "# Camera list with one line of data per camera:",
            "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
            f"# Number of cameras: {len(camera_lines)}",
            *camera_lines,
        ],
    )
    _write_text(
        directory / "images.txt",
        [
            "# Image list with two lines of data per image:",
            "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
            "#   POINTS2D[] as (X, Y, POINT3D_ID)",
            f"# Number of images: {len(names)}, mean observations per image: 0",
            *image_lines,
        ],
    )
    point_lines = [  # ERROR 0 and an empty track: the points were not triangulated
        f"{i + 1} {_numbers(*p)} {r} {g} {b} 0.0"
        for i, (p, (r, g, b)) in enumerate(zip(points, colors, strict=True))
    ]
    _write_text(
        directory / "points3D.txt",
        [
            "# 3D point list with one line of data per point:",
            "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
            f"# Number of points: {len(point_lines)}, mean track length: 0",
            *point_lines,
        ],
    )
    return directory


def write_transforms_json(
    path: str | os.PathLike,
    cameras: Cameras,
    image_size: tuple[int, int],
    file_paths: Sequence[str | os.PathLike],
) -> Path:
    """Write a nerfstudio / instant-ngp ``transforms.json``.

    file_paths: N image paths relative to the JSON's folder (e.g. ``images/000000.png``).
    ``transform_matrix`` is ``c2w @ diag(1, −1, −1, 1)`` (OpenGL camera axes, same world).
    Intrinsics ``fl_x fl_y cx cy`` go at the top level when every K is equal, else into each
    frame; ``w`` and ``h`` always at the top level.
    """
    K, c2w = _camera_arrays(cameras)
    height, width = _check_image_size(image_size)
    names = _check_names(file_paths, len(K), "file_paths")
    _check_no_skew(K, "transforms.json (fl_x, fl_y, cx, cy)")
    shared = bool((K == K[0]).all())
    meta: dict = {"camera_model": "OPENCV", "w": width, "h": height}
    if shared:
        meta.update(_nerfstudio_intrinsics(K[0]))
    meta["frames"] = [
        {
            "file_path": name,
            "transform_matrix": (pose @ OPENCV_TO_OPENGL).tolist(),
            **({} if shared else _nerfstudio_intrinsics(k)),
        }
        for name, pose, k in zip(names, c2w, K, strict=True)
    ]
    _write_text(Path(path), [json.dumps(meta, indent=2)])
    return Path(path)


def write_tum(
    path: str | os.PathLike, cameras: Cameras, timestamps: Sequence[float] | None = None
) -> Path:
    """Write a TUM RGB-D trajectory: one line ``t tx ty tz qx qy qz qw`` per camera.

    The pose is camera-to-world (the camera's position and orientation in the world), as TUM
    and evo (``file_interface.read_tum_trajectory_file``) read it. timestamps: N strictly
    increasing seconds; default the frame indices ``0, 1, …`` (pass ``arange(T) / scene.fps``
    for seconds).
    """
    _, c2w = _camera_arrays(cameras)
    count = len(c2w)
    if timestamps is None:
        times = np.arange(count, dtype=np.float64)
    else:
        if isinstance(timestamps, torch.Tensor):
            timestamps = timestamps.detach().cpu().double()
        # float64 throughout: Unix times (~1.7e9 s) keep only ~2 minutes of float32 precision
        try:
            times = np.asarray(timestamps, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"timestamps is {timestamps!r} (expected {count} numbers)") from None
        if times.shape != (count,) or not np.isfinite(times).all():
            raise ValueError(
                f"timestamps has shape {times.shape} (expected ({count},) finite seconds, one "
                "per camera)"
            )
        if (np.diff(times) <= 0).any():
            raise ValueError(f"timestamps {times.tolist()} are not strictly increasing")
    lines = ["# timestamp tx ty tz qx qy qz qw"]
    for time, pose in zip(times, c2w, strict=True):
        w, x, y, z = rotation_to_quaternion(pose[:3, :3])
        lines.append(_numbers(time, *pose[:3, 3], x, y, z, w))
    _write_text(Path(path), lines)
    return Path(path)


def write_cameras_json(
    path: str | os.PathLike,
    cameras: Cameras,
    image_size: tuple[int, int],
    fps: float | None = None,
) -> Path:
    """Write our cameras JSON (see ``any4d.data.readers.user``): ``c2w`` (OpenCV axes) per frame,
    ``K`` once when all are equal else per frame, ``width``, ``height`` and optionally ``fps``."""
    K, c2w = _camera_arrays(cameras)
    height, width = _check_image_size(image_size)
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf
    ):
        raise ValueError(f"fps is {fps!r} (expected a positive finite number or None)")
    shared = bool((K == K[0]).all())
    meta: dict = {
        "c2w": c2w.tolist(),
        "K": (K[0] if shared else K).tolist(),
        "width": width,
        "height": height,
    }
    if fps is not None:
        meta["fps"] = float(fps)
    _write_text(Path(path), [json.dumps(meta, indent=2)])
    return Path(path)


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` with ``w ≥ 0`` of a (3, 3) rotation matrix.

    Shepperd's method: divides by the largest of ``4w², 4x², 4y², 4z²``, so it stays accurate
    near half turns where the trace-only formula loses every digit.
    """
    r = np.asarray(rotation, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    candidates = [trace, r[0, 0], r[1, 1], r[2, 2]]
    largest = int(np.argmax(candidates))
    if largest == 0:
        s = 2.0 * math.sqrt(1.0 + trace)  # 4w
        q = [s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif largest == 1:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])  # 4x
        q = [(r[2, 1] - r[1, 2]) / s, s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif largest == 2:
        s = 2.0 * math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])  # 4y
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])  # 4z
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


# ----------------------------------------------------------------------------------- helpers


def _camera_arrays(cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """(K (N, 3, 3), c2w (N, 4, 4)) float64 numpy of a validated batch of N ≥ 1 cameras."""
    if not isinstance(cameras, Cameras):
        raise TypeError(f"cameras must be a Cameras, got {type(cameras).__name__}")
    if len(cameras.shape) != 1 or cameras.shape[0] == 0:
        raise ValueError(
            f"cameras has batch shape {tuple(cameras.shape)} (expected (N,) with N ≥ 1, "
            "one camera per frame)"
        )
    try:
        cameras.validate()  # ``Cameras.unchecked`` skips it; a file outlives the session
    except ValueError as error:
        raise ValueError(f"cameras: {error}") from None
    cameras = cameras.to(device="cpu", dtype=torch.float64)
    return cameras.K.numpy(), cameras.c2w.numpy()


def _check_image_size(image_size) -> tuple[int, int]:
    try:
        height, width = (operator.index(v) for v in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if isinstance(image_size, (str, bytes)) or min(height, width) < 1:
        raise ValueError(
            f"image_size is {image_size!r} (expected (height, width): two positive integers)"
        )
    return height, width


def _check_names(names, count: int, argument: str, default: str | None = None) -> list[str]:
    if names is None and default is not None:
        return [default.format(i) for i in range(count)]
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ValueError(f"{argument} is {names!r} (expected a sequence of {count} file names)")
    # paths become forward-slash strings, as COLMAP and nerfstudio resolve them on every OS
    names = [Path(n).as_posix() if isinstance(n, os.PathLike) else n for n in names]
    if len(names) != count:
        raise ValueError(
            f"{argument} has {len(names)} names for {count} cameras (expected one per camera)"
        )
    for name in names:
        if not isinstance(name, str) or not name.strip() or "\n" in name or "\r" in name:
            raise ValueError(f"{argument} holds {name!r} (expected a non-empty one-line str)")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{argument} holds {duplicate!r} twice (expected distinct names)")
    return names


def _check_no_skew(K: np.ndarray, target: str) -> None:
    skewed = np.flatnonzero(K[:, 0, 1] != 0)
    if skewed.size:
        i = int(skewed[0])
        raise ValueError(
            f"cameras.K of camera {i} has skew {K[i, 0, 1]:g} (expected 0: {target} cannot "
            "represent a skewed K)"
        )


def _nerfstudio_intrinsics(k: np.ndarray) -> dict[str, float]:
    return {
        "fl_x": float(k[0, 0]),
        "fl_y": float(k[1, 1]),
        "cx": float(k[0, 2]),
        "cy": float(k[1, 2]),
    }


def _numbers(*values) -> str:
    return " ".join(repr(float(v)) for v in values)


def _write_text(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
