"""COLMAP's text model (``cameras.txt``, ``images.txt``): intrinsics and world-to-camera poses.

COLMAP stores ``qw qx qy qz tx ty tz`` = world-to-camera in OpenCV axes, intrinsics in pixels
with the centre of the top-left pixel at (0.5, 0.5) — our convention (DESIGN §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.conversions import intrinsics_matrix, pose_from_quaternion
from any4d.data.readers.decode import CorruptFileError, require_file

# Model name → number of parameters, for the models whose projection is a pinhole plus a
# distortion that vanishes at zero coefficients; the parameters are (f | fx fy) cx cy, then the
# distortion coefficients (FOV: omega, whose limit at 0 is the pinhole).
PINHOLE_LIKE = {
    "SIMPLE_PINHOLE": 3,
    "PINHOLE": 4,
    "SIMPLE_RADIAL": 4,
    "RADIAL": 5,
    "OPENCV": 8,
    "FULL_OPENCV": 12,
    "FOV": 5,
}
SINGLE_FOCAL = ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL")
# Fisheye models distort the angle θ = atan(r): at zero coefficients they are the equidistant
# projection r = f·θ, not a pinhole, so they are never read as one.
FISHEYE = ("SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE", "OPENCV_FISHEYE", "THIN_PRISM_FISHEYE")
UNDISTORT = "undistort the frames first (e.g. colmap image_undistorter) and give those"


@dataclass(frozen=True)
class ColmapCamera:
    """One camera of ``cameras.txt``: K (3, 3) float64 pixels for ``height × width``, and the
    distortion coefficients the model adds (empty for pinhole models)."""

    model: str
    width: int
    height: int
    K: Tensor
    distortion: tuple[float, ...]


@dataclass(frozen=True)
class ColmapImage:
    """One image of ``images.txt``: its file name, camera id and 4×4 float64 world-to-camera."""

    name: str
    camera_id: int
    w2c: Tensor


def read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    """Cameras of a COLMAP ``cameras.txt`` by id; fisheye and unknown models are an error.
    Distortion coefficients are kept as given (see ``require_undistorted``)."""
    cameras = {}
    for number, line in _lines(path):
        parts = line.split()
        try:
            camera_id, model = int(parts[0]), parts[1]
            width, height = int(parts[2]), int(parts[3])
            params = [float(p) for p in parts[4:]]
        except (IndexError, ValueError):
            raise CorruptFileError(path, f"line {number} is not a COLMAP camera") from None
        if model in FISHEYE:
            raise CorruptFileError(
                path,
                f"camera {camera_id} uses model {model}, a fisheye projection (not a pinhole even "
                f"with zero coefficients); {UNDISTORT}",
            )
        if model not in PINHOLE_LIKE:
            raise CorruptFileError(
                path,
                f"camera {camera_id} uses model {model} (expected one of {sorted(PINHOLE_LIKE)}; "
                f"{UNDISTORT})",
            )
        if len(params) != PINHOLE_LIKE[model]:
            raise CorruptFileError(
                path, f"line {number}: {model} needs {PINHOLE_LIKE[model]} parameters"
            )
        if model in SINGLE_FOCAL:
            fx = fy = params[0]
            cx, cy, rest = params[1], params[2], params[3:]
        else:
            fx, fy, cx, cy, rest = *params[:4], params[4:]
        cameras[camera_id] = ColmapCamera(
            model, width, height, intrinsics_matrix(fx, fy, cx, cy), tuple(rest)
        )
    return cameras


def require_undistorted(cameras: dict[int, ColmapCamera], path: Path) -> None:
    """Refuse cameras whose distortion coefficients are not all exactly 0 (their frames are not
    pinhole images: K alone would misplace every ray away from the centre)."""
    for camera_id, camera in cameras.items():
        if any(k != 0 for k in camera.distortion):
            coefficients = ", ".join(f"{k:g}" for k in camera.distortion)
            raise CorruptFileError(
                path,
                f"camera {camera_id} uses model {camera.model} with distortion ({coefficients}) "
                f"(expected pinhole frames; {UNDISTORT})",
            )


def read_images_txt(path: Path) -> list[ColmapImage]:
    """Images of a COLMAP ``images.txt`` (each image line is followed by a line of 2D points)."""
    lines = [(n, line) for n, line in _lines(path, keep_blank=True)]
    images = []
    for number, line in lines[::2]:
        parts = line.split()
        try:
            values = [float(v) for v in parts[1:8]]
            camera_id, name = int(parts[8]), " ".join(parts[9:])
        except (IndexError, ValueError):
            raise CorruptFileError(path, f"line {number} is not a COLMAP image line") from None
        if not name:
            raise CorruptFileError(path, f"line {number} has no image name")
        q, t = torch.tensor(values[:4]), torch.tensor(values[4:])
        w2c = pose_from_quaternion(q.double(), t.double(), scalar_first=True)
        images.append(ColmapImage(name, camera_id, w2c))
    return images


def _lines(path: Path, keep_blank: bool = False) -> list[tuple[int, str]]:
    require_file(path, f"a COLMAP text file ({path.name})")
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out = []
    for number, line in enumerate(text, start=1):
        if line.startswith("#") or (not keep_blank and not line.strip()):
            continue
        out.append((number, line.strip()))
    return out
