"""OmniWorld-Game in its real layout: per-split camera JSON (wxyz w2c), nonlinear uint16 depth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from any4d.data.readers.omniworld import OmniWorld
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

FIRST = 81  # split 1 starts at global frame 81


def omniworld_code(metres, near=1.0, far=1000.0):
    """Their formula solved for the code: a = 0.004·depth, d = a·far / (1 + a·(far − near))."""
    a = 0.004 * metres
    return a * far / (1 + a * (far - near)) * 65535


def write_omniworld(root, scene):
    folder = root / "b04f88d1f85a"
    (folder / "camera").mkdir(parents=True)
    frames = list(range(FIRST, FIRST + scene.num_frames))
    (folder / "split_info.json").write_text(json.dumps({"split": [list(range(81)), frames]}))
    pose, K = w2c(scene), scene.cameras.K
    camera = {
        "focals": K[:, 0, 0].tolist(),
        "cx": float(K[0, 0, 2]),
        "cy": float(K[0, 1, 2]),
        "quats": [rotation_to_quaternion_wxyz(p[:3, :3]).tolist() for p in pose],
        "trans": pose[:, :3, 3].tolist(),
    }
    (folder / "camera" / "split_1.json").write_text(json.dumps(camera))
    (folder / "fps.txt").write_text("24\n")
    write_frames(scene, [folder / "color" / f"{i:06d}.png" for i in frames])
    for f, i in enumerate(frames):
        code = omniworld_code(depth_m(scene, f))
        code[:3] = 65535  # sky
        write_uint16(folder / "depth" / f"{i:06d}.png", code)
    return folder


def test_omniworld_reads_back_split_poses_and_nonlinear_depth(tmp_path):
    scene = truth(6, aspect_jitter=0.0)  # fx = fy, as OmniWorld's single focal
    write_omniworld(tmp_path, scene)
    reader = OmniWorld(tmp_path)
    assert [s.name for s in reader.sequences()] == ["b04f88d1f85a/split_1"]
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.005)
    assert clip.fps == 24.0 and (clip.depth[:, :, :3] == 0).all()
    relative = ((clip.depth[:, :, 3:] - scene.depth[:, :, 3:]) / scene.depth[:, :, 3:]).abs()
    assert relative.max() <= 1e-3  # one uint16 step is < 4e-4 relative below 6 m


def test_omniworld_missing_depth_frame_names_its_global_index(tmp_path):
    folder = write_omniworld(tmp_path, truth(6, aspect_jitter=0.0))
    (folder / "depth" / f"{FIRST + 2:06d}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"depth/{FIRST + 2:06d}.png does not exist"):
        OmniWorld(tmp_path).sequences()


def test_omniworld_camera_json_without_quats_is_named(tmp_path):
    folder = write_omniworld(tmp_path, truth(6, aspect_jitter=0.0))
    camera = json.loads((folder / "camera" / "split_1.json").read_text())
    del camera["quats"]
    (folder / "camera" / "split_1.json").write_text(json.dumps(camera))
    with pytest.raises(ValueError, match=r"split_1.json: lacks or mangles 'quats'"):
        OmniWorld(tmp_path).sequences()


def test_omniworld_code_round_trip_is_the_inverse_of_the_formula():
    from any4d.data.readers.conversions import omniworld_depth_to_metres

    metres = np.array([0.5, 1.0, 5.0, 40.0])
    back = omniworld_depth_to_metres(np.round(omniworld_code(metres)))
    assert np.allclose(back.numpy(), metres, rtol=1e-2)
