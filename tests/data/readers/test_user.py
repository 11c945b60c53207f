"""Users' own clips: a video or a frames folder, with our JSON / nerfstudio / COLMAP cameras."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from any4d.data.readers.user import UserClip, read_user_scene
from tests.data.readers.fixtures import (
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    rgb_uint8,
    rotation_to_quaternion_wxyz,
    truth,
    w2c,
    write_frames,
    write_uint16,
    write_video,
)


def frames_folder(tmp_path, scene):
    folder = tmp_path / "frames"
    # frame2 must come before frame10: names are sorted as numbers
    write_frames(scene, [folder / f"frame{i * 4}.png" for i in range(scene.num_frames)])
    return folder, [f"frame{i * 4}.png" for i in range(scene.num_frames)]


def test_frames_folder_with_our_json_reads_back_the_cameras(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    cameras = tmp_path / "cameras.json"
    ours = {"c2w": scene.cameras.c2w.tolist(), "K": scene.cameras.K[0].tolist(), "fps": 12}
    cameras.write_text(json.dumps(ours))
    clip = read_user_scene(folder, cameras=cameras)
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.005)
    assert clip.fps == 12


def test_video_with_colmap_text_reads_back_the_cameras(tmp_path):
    scene = truth(8)
    video = write_video(tmp_path / "walk.mp4", rgb_uint8(scene), fps=25)
    model = tmp_path / "sparse"
    model.mkdir()
    K = scene.cameras.K[0]
    (model / "cameras.txt").write_text(
        f"1 PINHOLE {scene.width} {scene.height} {K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}\n"
    )
    lines = []
    for f, pose in enumerate(w2c(scene)):
        values = [*rotation_to_quaternion_wxyz(pose[:3, :3]), *pose[:3, 3]]
        lines += [f"{f + 1} " + " ".join(f"{v:.12f}" for v in values) + f" 1 {f:03d}.jpg", ""]
    (model / "images.txt").write_text("\n".join(lines))
    reader = UserClip(video, cameras=model)
    assert reader.modalities == ("rgb", "cameras")
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.02)
    assert clip.fps == 25


def test_frames_folder_with_nerfstudio_transforms_converts_opengl_axes(tmp_path):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    K, flip = scene.cameras.K[0], np.diag([1.0, -1.0, -1.0, 1.0])
    meta = {
        "w": scene.width,
        "h": scene.height,
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "frames": [
            {"file_path": f"images/{n}", "transform_matrix": (c.numpy() @ flip).tolist()}
            for n, c in reversed(list(zip(names, scene.cameras.c2w, strict=True)))
        ],
    }
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    clip = read_user_scene(folder, cameras=tmp_path / "transforms.json")
    assert_cameras_match(clip, scene)


def test_depth_folder_of_millimetre_pngs_becomes_metres(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    for f in range(scene.num_frames):
        code = depth_m(scene, f) * 1000
        code[0] = 0
        write_uint16(tmp_path / "depth" / f"{f:04d}.png", code)
    clip = read_user_scene(folder, depth=tmp_path / "depth")
    assert clip.modalities == ("rgb", "depth") and (clip.depth[:, :, 0] == 0).all()
    assert (clip.depth[:, :, 1:] - scene.depth[:, :, 1:]).abs().max() <= 0.0005 + 1e-6


@pytest.mark.parametrize("with_channel", [True, False])
def test_depth_npz_of_the_clip_round_trips(tmp_path, with_channel):
    """The depth.npz that ``any4d complete`` writes ((N, 1, H, W) float32 metres) is an input."""
    from any4d.viz.exports_geometry import write_depth_npz

    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    depth = scene.depth.float() if with_channel else scene.depth[:, 0].float()
    write_depth_npz(tmp_path / "depth.npz", depth)
    clip = read_user_scene(folder, depth=tmp_path / "depth.npz")
    assert clip.modalities == ("rgb", "depth")
    assert torch.equal(clip.depth, scene.depth.float())


@pytest.mark.parametrize(
    ("array", "message"),
    [
        ("short", "holds 4 depth frames for 5 frames"),
        ("flat", r"holds depth of shape \(5, 384\) \(expected \(N, H, W\)"),
        ("negative", "holds negative or non-finite depth"),
        ("other_key", "holds arrays \\['disparity'\\] \\(expected one named 'depth'\\)"),
    ],
)
def test_bad_depth_npz_names_the_file(tmp_path, array, message):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    depth = scene.depth[:, 0].numpy().astype(np.float32)
    arrays = {
        "short": {"depth": depth[:4]},
        "flat": {"depth": depth.reshape(5, -1)[:, :384]},
        "negative": {"depth": -depth},
        "other_key": {"disparity": depth},
    }[array]
    np.savez(tmp_path / "depth.npz", **arrays)
    with pytest.raises(ValueError, match="depth.npz: " + message):
        read_user_scene(folder, depth=tmp_path / "depth.npz")


def test_frames_only_gives_an_rgb_scene(tmp_path):
    folder, _ = frames_folder(tmp_path, truth(8))
    clip = read_user_scene(folder, fps=8, text="a room")
    assert clip.modalities == ("rgb", "text") and clip.fps == 8


def test_pose_count_mismatch_names_the_camera_file(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    cameras = tmp_path / "cameras.json"
    cameras.write_text(json.dumps({"c2w": scene.cameras.c2w[:3].tolist()}))
    with pytest.raises(ValueError, match="cameras.json: lacks or mangles 'K'"):
        read_user_scene(folder, cameras=cameras)
    with pytest.raises(ValueError, match="cameras.json: gives 3 poses for 5 frames"):
        read_user_scene(folder, cameras=cameras, intrinsics=(30.0, 30.0, 24.0, 16.0))


def test_empty_folder_says_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty holds no .png / .jpg frames"):
        read_user_scene(tmp_path / "empty")


def test_intrinsics_without_poses_is_an_error(tmp_path):
    folder, _ = frames_folder(tmp_path, truth(8))
    with pytest.raises(ValueError, match="intrinsics were given without cameras"):
        read_user_scene(folder, intrinsics=(30.0, 30.0, 24.0, 16.0))
