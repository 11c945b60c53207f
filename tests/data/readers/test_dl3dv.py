"""DL3DV-10K in its real layout: nerfstudio transforms.json (OpenGL c2w, K at the JSON's w×h)."""

from __future__ import annotations

import json
import warnings

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

SCENE = "1K/0a1b2c3d"


def write_dl3dv(root, scene, depth_root=None, colmap_scale=1.0, distortion=None):
    """DL3DV's files of ``scene``; poses in a COLMAP scale of ``colmap_scale`` units per metre."""
    folder = root / SCENE
    K = scene.cameras.K[0]
    flip = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV ↔ OpenGL camera axes
    names = [f"frame_{f + 1:05d}.png" for f in range(scene.num_frames)]
    c2w = scene.cameras.c2w.numpy().copy()
    c2w[:, :3, 3] *= colmap_scale
    meta = {  # intrinsics for the full-resolution images, twice the images_4 size here
        "w": 2 * WIDTH,
        "h": 2 * HEIGHT,
        "fl_x": 2 * float(K[0, 0]),
        "fl_y": 2 * float(K[1, 1]),
        "cx": 2 * float(K[0, 2]),
        "cy": 2 * float(K[1, 2]),
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "camera_model": "OPENCV",
        **(distortion or {}),
        "frames": [
            {"file_path": f"images/{name}", "transform_matrix": (c2w[f] @ flip).tolist()}
            for f, name in enumerate(names)
        ],
    }
    folder.mkdir(parents=True)
    (folder / "transforms.json").write_text(json.dumps(meta))
    write_frames(scene, [folder / "images_4" / name for name in names])
    if depth_root is not None:
        (depth_root / SCENE).mkdir(parents=True)
        for f, name in enumerate(names):
            np.save(
                depth_root / SCENE / name.replace(".png", ".npy"),
                depth_m(scene, f).astype(np.float32),
            )
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


def test_dl3dv_refuses_depth_without_per_scene_scales(tmp_path):
    write_dl3dv(tmp_path / "data", truth(3), depth_root=tmp_path / "depth")
    with pytest.raises(ValueError, match=r"depth_root=.* needs depth_scales: .*no common scale"):
        DL3DV(tmp_path / "data", depth_root=tmp_path / "depth")
    with pytest.raises(ValueError, match="'vipe' reader"):
        DL3DV(tmp_path / "data", depth_root=tmp_path / "depth")


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_dl3dv_depth_scales_make_colmap_poses_metric(tmp_path, kind):
    scene = truth(3)  # metric truth; the files hold poses at 2.5 COLMAP units per metre
    write_dl3dv(tmp_path / "data", scene, depth_root=tmp_path / "depth", colmap_scale=2.5)
    scales = tmp_path / f"scales.{kind}"
    if kind == "json":
        scales.write_text(json.dumps({SCENE: 0.4, "1K/another": 3.0}))
    else:
        scales.write_text(f"scene,scale\n{SCENE},0.4\n1K/another,3.0\n")
    reader = DL3DV(tmp_path / "data", depth_root=tmp_path / "depth", depth_scales=scales)
    assert reader.modalities == ("rgb", "depth", "cameras")
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert (clip.depth - scene.depth).abs().max() < 1e-6
    unscaled = DL3DV(tmp_path / "data")[0].cameras.c2w[:, :3, 3]
    assert (unscaled - 2.5 * scene.cameras.c2w[:, :3, 3]).abs().max() < 1e-5


def test_dl3dv_scene_without_a_scale_names_the_scales_file(tmp_path):
    write_dl3dv(tmp_path / "data", truth(3), depth_root=tmp_path / "depth")
    scales = tmp_path / "scales.json"
    scales.write_text(json.dumps({"1K/another": 3.0}))
    reader = DL3DV(tmp_path / "data", depth_root=tmp_path / "depth", depth_scales=scales)
    with pytest.raises(ValueError, match=r"scales.json: has no scale for scene '1K/0a1b2c3d'"):
        reader.sequences()


@pytest.mark.parametrize(
    "content, message",
    [
        ({SCENE: -1.0}, r"scene '1K/0a1b2c3d' has scale -1.0 \(expected a finite number > 0\)"),
        ({SCENE: "big"}, r"scene '1K/0a1b2c3d' has scale 'big'"),
        ([0.4], r"holds a JSON list"),
    ],
)
def test_dl3dv_bad_scales_are_errors_naming_the_file(tmp_path, content, message):
    write_dl3dv(tmp_path / "data", truth(3))
    scales = tmp_path / "scales.json"
    scales.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=rf"scales.json: {message}"):
        DL3DV(tmp_path / "data", depth_scales=scales)
    with pytest.raises(ValueError, match=r"depth_scales is .*scales.txt.*\.json or \.csv"):
        DL3DV(tmp_path / "data", depth_scales=tmp_path / "scales.txt")


def test_dl3dv_warns_once_per_sequence_that_distortion_is_ignored(tmp_path):
    write_dl3dv(tmp_path, truth(3), distortion={"k1": -0.12, "p2": 0.003})
    reader = DL3DV(tmp_path)
    with pytest.warns(
        UserWarning, match=r"dl3dv 1K/0a1b2c3d: .*OPENCV distortion k1=-0.12 p2=0.003"
    ):
        reader.sequences()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # indexed once: reading clips warns no more
        reader[0]
        reader.read_clip(reader.sequences()[0], 1, 2)


def test_dl3dv_zero_distortion_reads_without_warning(tmp_path):
    write_dl3dv(tmp_path, truth(3))  # k1 = k2 = p1 = p2 = 0, as in a pinhole release
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DL3DV(tmp_path)[0]


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
