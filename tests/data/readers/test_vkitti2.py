"""Virtual KITTI 2 in its real layout: w2c rows per camera, centimetre depth, sky = 65535."""

from __future__ import annotations

import pytest

from any4d.data.readers.vkitti2 import VirtualKitti2
from tests.data.readers.fixtures import (
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    truncate,
    truth,
    w2c,
    write_frames,
    write_uint16,
)


def write_vkitti2(root, scene, camera=0, sky=None):
    folder = root / "Scene01" / "clone"
    folder.mkdir(parents=True)
    n = scene.num_frames
    ext = ["frame cameraID r1,1 r1,2 r1,3 t1 r2,1 r2,2 r2,3 t2 r3,1 r3,2 r3,3 t3 0 0 0 1"]
    intr = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"]
    K, pose = scene.cameras.K, w2c(scene)
    for f in range(n):
        for cam in (0, 1):  # the other camera gets a shifted pose: filtering must pick ours
            m = pose[f].copy()
            if cam != camera:
                m[0, 3] += 0.5
            ext.append(f"{f} {cam} " + " ".join(f"{v:.10f}" for v in m.reshape(-1)))
            k = K[f]
            intr.append(f"{f} {cam} {k[0, 0]:.10f} {k[1, 1]:.10f} {k[0, 2]:.10f} {k[1, 2]:.10f}")
    (folder / "extrinsic.txt").write_text("\n".join(ext) + "\n")
    (folder / "intrinsic.txt").write_text("\n".join(intr) + "\n")
    for cam in (0, 1):  # the same pixels for both cameras: only the poses tell them apart
        rgb_dir = folder / "frames" / "rgb" / f"Camera_{cam}"
        write_frames(scene, [rgb_dir / f"rgb_{f:05d}.jpg" for f in range(n)])
        for f in range(n):
            code = depth_m(scene, f) * 100  # centimetres
            if sky is not None:
                code[sky] = 65535
            depth_dir = folder / "frames" / "depth" / f"Camera_{cam}"
            write_uint16(depth_dir / f"depth_{f:05d}.png", code)
    return folder


def test_vkitti2_reads_back_poses_intrinsics_and_metric_depth(tmp_path):
    scene = truth(0)
    write_vkitti2(tmp_path, scene)
    reader = VirtualKitti2(tmp_path, cameras=(0,))
    assert [s.name for s in reader.sequences()] == ["Scene01/clone/Camera_0"]
    clip = reader.read_clip("Scene01/clone/Camera_0", 0, scene.num_frames)
    assert_cameras_match(clip, scene)
    assert (clip.depth - scene.depth).abs().max() <= 0.005 + 1e-6  # 1 cm steps
    assert_rgb_matches(clip, scene, tol=0.04)  # JPEG
    assert reader.modalities == ("rgb", "depth", "cameras")


def test_vkitti2_sky_code_becomes_invalid_depth(tmp_path):
    scene = truth(0)
    sky = (slice(0, 3), slice(None))
    write_vkitti2(tmp_path, scene, sky=sky)
    clip = VirtualKitti2(tmp_path, cameras=(0,)).read_clip("Scene01/clone/Camera_0", 0, 2)
    assert (clip.depth[:, 0, 0:3] == 0).all() and (clip.depth[:, 0, 3:] > 0).all()


def test_vkitti2_max_depth_caps_the_far_range(tmp_path):
    scene = truth(0)
    write_vkitti2(tmp_path, scene)
    cap = float(scene.depth.median())
    clip = VirtualKitti2(tmp_path, cameras=(0,), max_depth=cap).read_clip(
        "Scene01/clone/Camera_0", 0, 1
    )
    assert (clip.depth <= cap).all() and (clip.depth == 0).any()


def test_vkitti2_missing_depth_file_names_the_path(tmp_path):
    folder = write_vkitti2(tmp_path, truth(0))
    missing = folder / "frames" / "depth" / "Camera_0" / "depth_00003.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="depth_00003.png"):
        VirtualKitti2(tmp_path, cameras=(0,)).sequences()


def test_vkitti2_truncated_depth_is_a_clear_error(tmp_path):
    folder = write_vkitti2(tmp_path, truth(0))
    truncate(folder / "frames" / "depth" / "Camera_0" / "depth_00001.png")
    reader = VirtualKitti2(tmp_path, cameras=(0,))
    with pytest.raises(ValueError, match=r"depth_00001.png: not a readable image"):
        reader.read_clip("Scene01/clone/Camera_0", 0, 3)


def test_vkitti2_unknown_layout_names_the_root(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path} holds no vkitti2 sequences"):
        VirtualKitti2(tmp_path).sequences()


def test_vkitti2_missing_root_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="vkitti2 root .*nowhere does not exist"):
        VirtualKitti2(tmp_path / "nowhere")
