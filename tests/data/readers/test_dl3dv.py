"""DL3DV-10K in its real layout: nerfstudio transforms.json (OpenGL c2w, K at the JSON's w×h)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from any4d.data.readers.dl3dv import DL3DV
from tests.data.readers.fixtures import (
    HEIGHT,
    WIDTH,
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    truth,
    write_frames,
)


def write_dl3dv(root, scene, depth_root=None):
    folder = root / "1K" / "0a1b2c3d"
    K = scene.cameras.K[0]
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV ↔ OpenGL camera axes
    names = [f"frame_{f + 1:05d}.png" for f in range(scene.num_frames)]
    meta = {  # intrinsics for the full-resolution images, twice the images_4 size here
        "w": 2 * WIDTH, "h": 2 * HEIGHT,
        "fl_x": 2 * float(K[0, 0]), "fl_y": 2 * float(K[1, 1]),
        "cx": 2 * float(K[0, 2]), "cy": 2 * float(K[1, 2]),
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "camera_model": "OPENCV",
        "frames": [
            {"file_path": f"images/{name}",
             "transform_matrix": (scene.cameras.c2w[f].numpy() @ flip).tolist()}
            for f, name in enumerate(names)
        ],
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "transforms.json").write_text(json.dumps(meta))
    write_frames(scene, [folder / "images_4" / name for name in names])
    if depth_root is not None:
        (depth_root / "1K" / "0a1b2c3d").mkdir(parents=True)
        for f, name in enumerate(names):
            np.save(depth_root / "1K" / "0a1b2c3d" / name.replace(".png", ".npy"),
                    depth_m(scene, f).astype(np.float32))  # fmt: skip
    return folder


def test_dl3dv_reads_back_opengl_poses_and_rescaled_intrinsics(tmp_path):
    scene = truth(3)
    write_dl3dv(tmp_path, scene)
    reader = DL3DV(tmp_path)
    assert [s.name for s in reader.sequences()] == ["1K/0a1b2c3d"]
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.005)
    assert reader.modalities == ("rgb", "cameras")


def test_dl3dv_reads_annotated_depth_when_given(tmp_path):
    scene = truth(3)
    write_dl3dv(tmp_path / "data", scene, depth_root=tmp_path / "depth")
    reader = DL3DV(tmp_path / "data", depth_root=tmp_path / "depth")
    assert reader.modalities == ("rgb", "depth", "cameras")
    assert (reader[0].depth - scene.depth).abs().max() < 1e-6


def test_dl3dv_missing_transform_key_names_the_json(tmp_path):
    folder = write_dl3dv(tmp_path, truth(3))
    meta = json.loads((folder / "transforms.json").read_text())
    del meta["fl_x"]
    (folder / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="transforms.json: lacks or mangles"):
        DL3DV(tmp_path).sequences()


def test_dl3dv_missing_image_folder_names_the_frame(tmp_path):
    write_dl3dv(tmp_path, truth(3))
    with pytest.raises(FileNotFoundError, match=r"images_8/frame_00001.png does not exist"):
        DL3DV(tmp_path, images="images_8").sequences()
