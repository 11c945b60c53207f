"""Tiny data sets in each source's real on-disk layout, written from the procedural world so
that the truth (poses, intrinsics, metric depth) is known exactly.

Encoders here are written independently of the readers' decoders: a test that reads back what
these wrote checks the conversion, not a function against itself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from any4d.data import Scene
from any4d.data.synthetic import render_clip

FRAMES, HEIGHT, WIDTH = 5, 32, 48
# Tolerances of the acceptance criteria.
POSE_TOL, K_TOL = 1e-5, 1e-4


@lru_cache(maxsize=8)
def truth(seed: int = 0, frames: int = FRAMES, **overrides) -> Scene:
    """A rendered clip (float64 cameras) whose files the fixtures write."""
    scene = render_clip(seed, num_frames=frames, height=HEIGHT, width=WIDTH, **overrides)
    return Scene(scene.rgb, scene.depth, scene.cameras.to(dtype=torch.float64), scene.text)


def rgb_uint8(scene: Scene) -> np.ndarray:
    """(T, H, W, 3) uint8 of the clip's RGB."""
    rgb = ((scene.rgb + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return rgb.permute(0, 2, 3, 1).numpy()


def write_image(path: Path, array: np.ndarray) -> Path:
    """An 8-bit RGB (H, W, 3) or 16-bit (H, W) image, format by suffix (JPEG: q=95, 4:4:4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=95, subsampling=0)
    else:
        image.save(path)
    return path


def write_frames(scene: Scene, paths: list[Path]) -> None:
    for array, path in zip(rgb_uint8(scene), paths, strict=True):
        write_image(path, array)


def write_uint16(path: Path, code: np.ndarray) -> Path:
    """A 16-bit single-channel PNG of the codes (clipped to [0, 65535])."""
    return write_image(path, np.clip(np.round(code), 0, 65535).astype(np.uint16))


def depth_m(scene: Scene, frame: int) -> np.ndarray:
    return scene.depth[frame, 0].double().numpy()


def w2c(scene: Scene) -> np.ndarray:
    """(T, 4, 4) float64 world-to-camera of the truth."""
    return torch.linalg.inv(scene.cameras.c2w).numpy()


def rotation_to_quaternion_wxyz(rotation: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion (w, x, y, z) of a 3×3 rotation (Shepperd's method)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    return np.array([w, x, y, z])


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its bytes (a download that stopped half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def write_video(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """An H.264 video of (T, H, W, 3) uint8 frames (near-lossless: crf 1)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def assert_cameras_match(scene: Scene, expected: Scene) -> None:
    """Poses within POSE_TOL, intrinsics within K_TOL (pixels)."""
    c2w_error = (scene.cameras.c2w.double() - expected.cameras.c2w).abs().max()
    K_error = (scene.cameras.K.double() - expected.cameras.K.double()).abs().max()
    assert c2w_error <= POSE_TOL, f"c2w differs by {float(c2w_error):.3g}"
    assert K_error <= K_TOL, f"K differs by {float(K_error):.3g}"


def assert_rgb_matches(scene: Scene, expected: Scene, tol: float) -> None:
    """Mean absolute RGB error (in [−1, 1] units) below ``tol`` (PNG: rounding; JPEG: more)."""
    assert scene.rgb.shape == expected.rgb.shape
    error = (scene.rgb - expected.rgb).abs().mean()
    assert error <= tol, f"rgb differs by {float(error):.3g} on average"


def truth_with_intrinsics(
    seed: int, fx: float, fy: float, cx: float, cy: float, height: int, width: int
) -> Scene:
    """The clip of ``seed`` re-rendered through given intrinsics (for data sets whose K is
    fixed, e.g. 7-Scenes)."""
    from any4d.data.synthetic import render, sample_clip
    from any4d.geometry import Cameras

    spec = sample_clip(seed, num_frames=FRAMES, height=height, width=width)
    K = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float32)
    cameras = Cameras(K.expand(FRAMES, 3, 3).clone(), spec.cameras.c2w)
    rgb, depth = render(spec.world, cameras, spec.times, height, width)
    return Scene(rgb, depth, cameras.to(dtype=torch.float64), spec.text)
