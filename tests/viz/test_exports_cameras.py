"""Camera exports read back by our readers (COLMAP text, transforms.json, our JSON) and by evo
(TUM), with shared and per-frame intrinsics, half-turn rotations and bad inputs."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from evo.tools.file_interface import read_tum_trajectory_file
from PIL import Image

from any4d.data import Scene
from any4d.data.readers.colmap import read_cameras_txt, read_images_txt
from any4d.data.readers.conversions import quaternion_to_rotation, w2c_to_c2w
from any4d.data.readers.user import read_user_scene
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras
from any4d.viz.exports_cameras import (
    rotation_to_quaternion,
    write_cameras_json,
    write_colmap_text,
    write_transforms_json,
    write_tum,
)

T, H, W = 4, 24, 32
POSE_TOL, K_TOL = 1e-6, 1e-6
NAMES = [f"{i}.png" for i in range(T)]


@lru_cache(maxsize=2)
def _scene(seed: int = 0) -> Scene:
    return render_clip(seed, num_frames=T, height=H, width=W)


def _per_frame_intrinsics(cameras: Cameras) -> Cameras:
    """The same poses with a different zoom and principal point in every frame."""
    K = cameras.K.clone()
    K[:, 0, 0] *= torch.linspace(1.0, 1.3, len(K))
    K[:, 1, 1] *= torch.linspace(1.0, 1.2, len(K))
    K[:, 0, 2] += torch.linspace(0.0, 1.5, len(K))
    return Cameras(K, cameras.c2w)


def _half_turns() -> Cameras:
    """Rotations where the trace-only quaternion formula fails: half turns, near-half turns."""
    angles = [(math.pi, "x"), (math.pi, "y"), (math.pi, "z"), (math.pi - 1e-4, "x"), (0.3, "z")]
    rotations = []
    for angle, axis in angles:
        c, s = math.cos(angle), math.sin(angle)
        i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
        r = torch.eye(3, dtype=torch.float64)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rotations.append(r)
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(angles), 1, 1)
    c2w[:, :3, :3] = torch.stack(rotations)
    c2w[:, :3, 3] = torch.arange(len(angles) * 3, dtype=torch.float64).reshape(-1, 3) / 7
    return Cameras.from_intrinsics(30.0, 30.0, W / 2, H / 2, c2w)


def _frames_folder(folder: Path, names: list[str]) -> Path:
    """Black frames of the clip's size named ``names`` (the user reader matches by name)."""
    folder.mkdir(parents=True)
    for name in names:
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / name)
    return folder


def _assert_cameras_close(got: Cameras, want: Cameras, pose_tol=POSE_TOL, k_tol=K_TOL) -> None:
    torch.testing.assert_close(got.c2w.double(), want.c2w.double(), atol=pose_tol, rtol=0)
    torch.testing.assert_close(got.K.double(), want.K.double(), atol=k_tol, rtol=0)


# ------------------------------------------------------------------------------------ COLMAP


def _read_colmap(directory: Path) -> tuple[Cameras, list[str], dict]:
    cameras = read_cameras_txt(directory / "cameras.txt")
    images = read_images_txt(directory / "images.txt")
    K = torch.stack([cameras[i.camera_id].K for i in images])
    c2w = w2c_to_c2w(torch.stack([i.w2c for i in images]))
    return Cameras(K, c2w), [i.name for i in images], cameras


@pytest.mark.parametrize("per_frame", [False, True])
def test_colmap_text_round_trips_through_our_reader(tmp_path, per_frame):
    cameras = _scene().cameras
    cameras = _per_frame_intrinsics(cameras) if per_frame else cameras
    names = [f"f{i}.jpg" for i in range(T)]
    directory = write_colmap_text(tmp_path / "sparse" / "0", cameras, (H, W), names)
    read, read_names, models = _read_colmap(directory)
    _assert_cameras_close(read, cameras)
    assert read_names == names
    assert len(models) == (T if per_frame else 1)
    assert all(m.model == "PINHOLE" and (m.height, m.width) == (H, W) for m in models.values())


def test_colmap_text_default_names_and_an_empty_points3d(tmp_path):
    directory = write_colmap_text(tmp_path, _scene().cameras, (H, W))
    assert [i.name for i in read_images_txt(directory / "images.txt")] == [
        f"{i:06d}.png" for i in range(T)
    ]
    lines = (directory / "points3D.txt").read_text().splitlines()
    assert lines and all(line.startswith("#") for line in lines)
    # every image line is followed by its (empty) line of 2D points, as COLMAP writes it
    data = [line for line in (directory / "images.txt").read_text().splitlines() if "#" not in line]
    assert len(data) == 2 * T and all(line == "" for line in data[1::2])


def test_colmap_text_writes_a_point_cloud_as_3d_points(tmp_path):
    points = torch.tensor([[0.5, -1.0, 2.0], [1e-3, 3.0, -4.5]])
    colors = torch.tensor([[255, 0, 7], [1, 2, 3]], dtype=torch.uint8)
    write_colmap_text(tmp_path, _scene().cameras, (H, W), points=points, colors=colors)
    lines = [line.split() for line in (tmp_path / "points3D.txt").read_text().splitlines()]
    rows = [line for line in lines if line[0] != "#"]
    assert [r[0] for r in rows] == ["1", "2"] and all(len(r) == 8 for r in rows)
    assert np.array_equal(np.array([r[1:4] for r in rows], float), points.numpy())
    assert np.array_equal(np.array([r[4:7] for r in rows], int), colors.numpy())


def test_colmap_text_is_read_by_the_user_reader_with_frames(tmp_path):
    cameras = _scene().cameras
    names = [f"frame{i}.png" for i in range(T)]
    model = write_colmap_text(tmp_path / "sparse", cameras, (H, W), names)
    clip = read_user_scene(_frames_folder(tmp_path / "images", names), cameras=model)
    _assert_cameras_close(clip.cameras, cameras, pose_tol=1e-5, k_tol=1e-5)  # float32 scene


def test_colmap_quaternions_survive_half_turns(tmp_path):
    cameras = _half_turns()
    read, _, _ = _read_colmap(write_colmap_text(tmp_path, cameras, (H, W)))
    _assert_cameras_close(read, cameras)


def test_rotation_to_quaternion_inverts_the_readers_conversion():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(64, 4, generator=generator, dtype=torch.float64)
    rotations = quaternion_to_rotation(q, scalar_first=True)
    for rotation, quaternion in zip(rotations, q / q.norm(dim=-1, keepdim=True), strict=True):
        got = rotation_to_quaternion(rotation.numpy())
        assert got[0] >= 0
        assert np.allclose(got, np.sign(quaternion[0].item()) * quaternion.numpy(), atol=1e-12)


# ------------------------------------------------------------------------------- nerfstudio


@pytest.mark.parametrize("per_frame", [False, True])
def test_transforms_json_round_trips_through_the_user_reader(tmp_path, per_frame):
    cameras = _scene().cameras
    cameras = _per_frame_intrinsics(cameras) if per_frame else cameras
    names = [f"{i:03d}.png" for i in range(T)]
    file_paths = [Path("images") / n for n in names]  # paths are written with forward slashes
    path = write_transforms_json(tmp_path / "transforms.json", cameras, (H, W), file_paths)
    clip = read_user_scene(_frames_folder(tmp_path / "images", names), cameras=path)
    _assert_cameras_close(clip.cameras, cameras)
    meta = json.loads(path.read_text())
    assert (meta["w"], meta["h"]) == (W, H)
    assert ("fl_x" in meta) != per_frame and ("fl_x" in meta["frames"][0]) == per_frame
    assert [f["file_path"] for f in meta["frames"]] == [f"images/{n}" for n in names]


def test_transforms_json_stores_opengl_camera_axes(tmp_path):
    cameras = _scene().cameras
    path = write_transforms_json(
        tmp_path / "t.json", cameras, (H, W), [f"{i}.png" for i in range(T)]
    )
    matrices = torch.tensor([f["transform_matrix"] for f in json.loads(path.read_text())["frames"]])
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    assert torch.equal(matrices.float(), cameras.c2w @ flip)
    # the camera looks down its −z axis: OpenCV's forward (+z) column, negated
    assert torch.equal(matrices[:, :3, 2].float(), -cameras.c2w[:, :3, 2])


# -------------------------------------------------------------------------------------- TUM


@pytest.mark.parametrize("which", ["scene", "half_turns"])
def test_tum_is_read_by_evo_as_camera_to_world_poses(tmp_path, which):
    cameras = _scene().cameras if which == "scene" else _half_turns()
    times = np.arange(len(cameras)) / 30.0 + 1.7e9  # Unix times need float64 to survive
    trajectory = read_tum_trajectory_file(str(write_tum(tmp_path / "traj.txt", cameras, times)))
    c2w = cameras.c2w.double().numpy()
    assert np.array_equal(trajectory.timestamps, times)
    assert np.allclose(trajectory.positions_xyz, c2w[:, :3, 3], atol=POSE_TOL, rtol=0)
    rotations = np.stack([pose[:3, :3] for pose in trajectory.poses_se3])
    assert np.allclose(rotations, c2w[:, :3, :3], atol=POSE_TOL, rtol=0)


def test_tum_default_timestamps_are_frame_indices(tmp_path):
    trajectory = read_tum_trajectory_file(str(write_tum(tmp_path / "t.txt", _scene().cameras)))
    assert np.array_equal(trajectory.timestamps, np.arange(T, dtype=float))


@pytest.mark.parametrize(
    "timestamps, match",
    [
        ([0.0, 1.0], r"timestamps has shape \(2,\)"),
        ([0, 2, 1, 3], "not strictly increasing"),
        ([0, 1, 2, float("nan")], "finite seconds"),
        (["a", "b", "c", "d"], "expected 4 numbers"),
    ],
)
def test_tum_rejects_bad_timestamps(tmp_path, timestamps, match):
    with pytest.raises(ValueError, match=match):
        write_tum(tmp_path / "t.txt", _scene().cameras, timestamps)
    assert not (tmp_path / "t.txt").exists()


# --------------------------------------------------------------------------------- our JSON


@pytest.mark.parametrize("per_frame", [False, True])
def test_cameras_json_round_trips_through_the_user_reader(tmp_path, per_frame):
    cameras = _scene().cameras
    cameras = _per_frame_intrinsics(cameras) if per_frame else cameras
    path = write_cameras_json(tmp_path / "out" / "cameras.json", cameras, (H, W), fps=12)
    names = [f"{i}.png" for i in range(T)]
    clip = read_user_scene(_frames_folder(tmp_path / "frames", names), cameras=path)
    _assert_cameras_close(clip.cameras, cameras)
    assert clip.fps == 12
    meta = json.loads(path.read_text())
    assert (meta["height"], meta["width"]) == (H, W)
    assert np.array(meta["K"]).shape == ((T, 3, 3) if per_frame else (3, 3))


# ------------------------------------------------------------------------------- bad inputs


def _writers(tmp_path):
    """Each camera writer as ``f(cameras, image_size, names)``."""
    return {
        "colmap": lambda c, size, names: write_colmap_text(tmp_path / "c", c, size, names),
        "transforms": lambda c, size, names: write_transforms_json(
            tmp_path / "t.json", c, size, names
        ),
        "json": lambda c, size, names: write_cameras_json(tmp_path / "o.json", c, size),
        "tum": lambda c, size, names: write_tum(tmp_path / "tum.txt", c),
    }


@pytest.mark.parametrize("writer", ["colmap", "transforms", "json", "tum"])
def test_camera_writers_reject_cameras_that_are_not_one_batch_of_frames(tmp_path, writer):
    write = _writers(tmp_path)[writer]
    cameras = _scene().cameras
    with pytest.raises(ValueError, match=r"batch shape \(1, 4\)"):
        write(cameras.reshape(1, T), (H, W), NAMES)
    with pytest.raises(TypeError, match="cameras must be a Cameras"):
        write(cameras.c2w, (H, W), NAMES)
    c2w = cameras.c2w.clone()
    c2w[:, :3, :3] *= 2  # a scaled "rotation"
    bad = Cameras.unchecked(cameras.K, c2w)
    with pytest.raises(ValueError, match="cameras: c2w rotation .* not a proper rotation"):
        write(bad, (H, W), NAMES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", ["colmap", "transforms", "json"])
@pytest.mark.parametrize("size", [(W,), (0, W), (H, 2.5), "24x32"])
def test_camera_writers_reject_a_bad_image_size(tmp_path, writer, size):
    with pytest.raises(ValueError, match=r"image_size is .* \(expected \(height, width\)"):
        _writers(tmp_path)[writer](_scene().cameras, size, NAMES)


@pytest.mark.parametrize("writer", ["colmap", "transforms"])
@pytest.mark.parametrize(
    "names, match",
    [
        (NAMES[:3], "has 3 names for 4 cameras"),
        ([*NAMES[:3], NAMES[0]], "holds '0.png' twice"),
        ([*NAMES[:3], ""], "holds ''"),
    ],
)
def test_camera_writers_reject_names_that_do_not_match_the_cameras(tmp_path, writer, names, match):
    with pytest.raises(ValueError, match=match):
        _writers(tmp_path)[writer](_scene().cameras, (H, W), names)
    assert list(tmp_path.iterdir()) == []


def test_colmap_rejects_names_with_spaces_and_skewed_intrinsics(tmp_path):
    cameras = _scene().cameras
    with pytest.raises(ValueError, match="without whitespace"):
        write_colmap_text(tmp_path, cameras, (H, W), ["a b.png", *NAMES[1:]])
    K = cameras.K.clone()
    K[2, 0, 1] = 0.5
    with pytest.raises(ValueError, match="camera 2 has skew 0.5"):
        write_colmap_text(tmp_path, Cameras(K, cameras.c2w), (H, W))
    with pytest.raises(ValueError, match="fps is 0"):
        write_cameras_json(tmp_path / "c.json", cameras, (H, W), fps=0)
    with pytest.raises(ValueError, match="points is"):
        write_colmap_text(tmp_path, cameras, (H, W), points=torch.zeros(3))
