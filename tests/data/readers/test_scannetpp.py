"""ScanNet++ iPhone in its real layout: COLMAP w2c quaternions, low-resolution mm depth."""

from __future__ import annotations

import pytest
import torch

from any4d.data.readers.scannetpp import ScanNetPP
from tests.data.readers.fixtures import (
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    rotation_to_quaternion_wxyz,
    truth,
    w2c,
    write_frames,
    write_uint16,
)


def write_scannetpp(root, scene, model="PINHOLE", step=10):
    iphone = root / "0a5c013435" / "iphone"
    (iphone / "colmap").mkdir(parents=True)
    K = scene.cameras.K[0]
    params = f"{K[0, 0]:.10f} {K[1, 1]:.10f} {K[0, 2]:.10f} {K[1, 2]:.10f}"
    if model == "OPENCV":
        params += " 0.01 0 0 0"
    (iphone / "colmap" / "cameras.txt").write_text(
        f"# Camera list\n1 {model} {scene.width} {scene.height} {params}\n"
    )
    lines = ["# Image list", "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME"]
    names = [f"frame_{f * step:06d}" for f in range(scene.num_frames)]
    for f in reversed(range(scene.num_frames)):  # COLMAP order is arbitrary; sorted by name
        pose = w2c(scene)[f]
        q, t = rotation_to_quaternion_wxyz(pose[:3, :3]), pose[:3, 3]
        values = " ".join(f"{v:.12f}" for v in [*q, *t])
        lines += [f"{f + 1} {values} 1 {names[f]}.jpg", "1.0 2.0 -1"]
    (iphone / "colmap" / "images.txt").write_text("\n".join(lines) + "\n")
    write_frames(scene, [iphone / "rgb" / f"{n}.jpg" for n in names])
    for f, n in enumerate(names):  # depth at half the RGB resolution, like 256×192
        write_uint16(iphone / "depth" / f"{n}.png", depth_m(scene, f)[::2, ::2] * 1000)
    return iphone


def test_scannetpp_reads_back_colmap_poses_and_upsampled_mm_depth(tmp_path):
    scene = truth(1)
    write_scannetpp(tmp_path, scene)
    reader = ScanNetPP(tmp_path)
    sequence = reader.sequences()[0]
    assert sequence.name == "0a5c013435" and sequence.fps == 6.0  # 60 fps, every 10th frame
    clip = reader[0]
    assert_cameras_match(clip, scene)
    low = scene.depth[..., ::2, ::2]
    expected = low.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert (clip.depth - expected).abs().max() <= 0.0005 + 1e-6
    assert_rgb_matches(clip, scene, tol=0.04)


def test_scannetpp_warns_that_distortion_is_dropped(tmp_path):
    write_scannetpp(tmp_path, truth(1), model="OPENCV")
    with pytest.warns(UserWarning, match="distortion"):
        ScanNetPP(tmp_path).sequences()


def test_scannetpp_rejects_fisheye_cameras(tmp_path):
    iphone = write_scannetpp(tmp_path, truth(1))
    (iphone / "colmap" / "cameras.txt").write_text("1 OPENCV_FISHEYE 48 32 1 1 1 1 0 0 0 0\n")
    with pytest.raises(ValueError, match="cameras.txt: camera 1 uses model OPENCV_FISHEYE"):
        ScanNetPP(tmp_path).sequences()


def test_scannetpp_missing_frame_names_the_extraction_step(tmp_path):
    iphone = write_scannetpp(tmp_path, truth(1))
    (iphone / "rgb" / "frame_000020.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"frame_000020.jpg .*extract_rgb"):
        ScanNetPP(tmp_path).sequences()


def test_scannetpp_depth_zero_stays_invalid(tmp_path):
    iphone = write_scannetpp(tmp_path, truth(1))
    write_uint16(iphone / "depth" / "frame_000000.png", torch.zeros(16, 24).numpy())
    assert (ScanNetPP(tmp_path).read_clip("0a5c013435", 0, 1).depth == 0).all()
