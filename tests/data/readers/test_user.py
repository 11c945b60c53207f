"""Users' own clips: a video or a frames folder, with our JSON / nerfstudio / COLMAP cameras."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from any4d.data.readers.user import UserClip, read_user_scene
from tests.data.readers.fixtures import (
    HEIGHT,
    WIDTH,
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    rgb_uint8,
    rotation_to_quaternion_wxyz,
    truth,
    w2c,
    write_frames,
    write_image,
    write_uint16,
    write_video,
)

OPENGL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


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


def write_cameras(tmp_path, kind, scene, names, size=(HEIGHT, WIDTH), camera=None, **keys):
    """The truth's cameras as ``kind`` ("ours", "nerfstudio" or "colmap") for images of ``size``
    (H, W), K rescaled to it. ``keys``: more JSON keys; ``camera``: COLMAP camera 1's
    "MODEL W H params" (default PINHOLE)."""
    (h, w), K = size, scene.cameras.K[0].clone()
    K[0] *= w / scene.width
    K[1] *= h / scene.height
    fx, fy, cx, cy = (float(v) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    if kind == "ours":
        path = tmp_path / "cameras.json"
        ours = {"c2w": scene.cameras.c2w.tolist(), "K": K.tolist(), "width": w, "height": h}
        path.write_text(json.dumps({**ours, **keys}))
    elif kind == "nerfstudio":
        path = tmp_path / "transforms.json"
        frames = [
            {"file_path": f"images/{n}", "transform_matrix": (c.numpy() @ OPENGL_FLIP).tolist()}
            for n, c in zip(names, scene.cameras.c2w, strict=True)
        ]
        meta = {"w": w, "h": h, "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "frames": frames}
        path.write_text(json.dumps({**meta, **keys}))
    else:
        path = tmp_path / "sparse"
        path.mkdir()
        camera = camera or f"PINHOLE {w} {h} {fx} {fy} {cx} {cy}"
        (path / "cameras.txt").write_text(f"1 {camera}\n")
        lines = []
        for f, (name, pose) in enumerate(zip(names, w2c(scene), strict=True)):
            values = [*rotation_to_quaternion_wxyz(pose[:3, :3]), *pose[:3, 3]]
            lines += [f"{f + 1} " + " ".join(f"{v:.12f}" for v in values) + f" 1 {name}", ""]
        (path / "images.txt").write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("scale", [0, -1000.0, float("nan"), float("inf"), "1000"])
def test_depth_scale_must_be_a_positive_finite_number(tmp_path, scale):
    folder, _ = frames_folder(tmp_path, truth(8))
    message = r"depth_scale \(--depth-scale\) is .* \(expected a positive finite number of PNG"
    with pytest.raises(ValueError, match=message):
        UserClip(folder, depth=tmp_path / "depth", depth_scale=scale)


def write_depth_npy(folder, scene, rows=slice(None), columns=slice(None)):
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(scene.num_frames):
        np.save(folder / f"{f:04d}.npy", depth_m(scene, f)[rows, columns])
    return folder


def test_depth_of_another_aspect_ratio_is_refused_naming_the_file(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    depth = write_depth_npy(tmp_path / "depth", scene, rows=slice(0, 16))  # 48×16 of 48×32
    message = r"0000.npy: holds depth of 48×16 but the frames are 48×32 .*stretched unevenly"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, depth=depth)


def test_depth_npz_of_another_aspect_ratio_is_refused(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    np.savez(tmp_path / "depth.npz", depth=scene.depth[:, 0, :, :24].numpy())
    message = r"depth.npz: holds depth of 24×32 but the frames are 48×32"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, depth=tmp_path / "depth.npz")


def test_half_resolution_depth_is_accepted_and_upsampled(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    depth = write_depth_npy(tmp_path / "depth", scene, slice(None, None, 2), slice(None, None, 2))
    clip = read_user_scene(folder, depth=depth)
    assert clip.depth.shape == (scene.num_frames, 1, HEIGHT, WIDTH)
    assert torch.equal(clip.depth[:, :, ::2, ::2], scene.depth[:, :, ::2, ::2].float())


def test_depth_folder_of_8bit_pngs_is_refused(tmp_path):
    scene = truth(8)
    folder, _ = frames_folder(tmp_path, scene)
    for f in range(scene.num_frames):
        write_image(tmp_path / "depth" / f"{f:04d}.png", np.full((HEIGHT, WIDTH), 7, np.uint8))
    message = r"0000.png: is an 8-bit PNG .*expected a 16-bit PNG of depth codes .*\.npy metres"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, depth=tmp_path / "depth")


@pytest.mark.parametrize(
    ("camera", "distortion"),
    [
        ("SIMPLE_RADIAL 48 32 40 24 16 -0.1", "-0.1"),
        ("RADIAL 48 32 40 24 16 0 0.02", "0, 0.02"),
        ("OPENCV 48 32 40 40 24 16 0 0 0.001 0", "0, 0, 0.001, 0"),
        ("FULL_OPENCV 48 32 40 40 24 16 0 0 0 0 0 0 0 0.1", "0, 0, 0, 0, 0, 0, 0, 0.1"),
        ("FOV 48 32 40 40 24 16 0.9", "0.9"),
        ("OPENCV_FISHEYE 48 32 40 40 24 16 0 0 0 0", None),
        ("SIMPLE_RADIAL_FISHEYE 48 32 40 24 16 0", None),
        ("RADIAL_FISHEYE 48 32 40 24 16 0 0", None),
        ("THIN_PRISM_FISHEYE 48 32 40 40 24 16 0 0 0 0 0 0 0 0", None),
    ],
)
def test_colmap_lens_distortion_is_refused_with_how_to_undistort(tmp_path, camera, distortion):
    """Fisheye models are refused even at zero coefficients: they are not pinholes then."""
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    model = write_cameras(tmp_path, "colmap", scene, names, camera=camera)
    name = camera.split()[0]
    kind = "a fisheye projection" if distortion is None else rf"with distortion \({distortion}\)"
    message = rf"cameras.txt: camera 1 uses model {name},? {kind}.*colmap image_undistorter"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, cameras=model)


@pytest.mark.parametrize("model", ["SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV", "FOV"])
def test_colmap_zero_distortion_reads_the_pinhole_part(tmp_path, model):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    one_focal = model in ("SIMPLE_RADIAL", "RADIAL")
    fx, fy, cx, cy = 40.0, 40.0 if one_focal else 41.0, 24.5, 15.5
    zeros = {"SIMPLE_RADIAL": 1, "RADIAL": 2, "OPENCV": 4, "FULL_OPENCV": 8, "FOV": 1}[model]
    focal = f"{fx}" if one_focal else f"{fx} {fy}"
    camera = f"{model} {WIDTH} {HEIGHT} {focal} {cx} {cy}" + " 0" * zeros
    clip = read_user_scene(
        folder, cameras=write_cameras(tmp_path, "colmap", scene, names, camera=camera)
    )
    K = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    assert torch.allclose(clip.cameras.K, K.expand(scene.num_frames, 3, 3))
    assert (clip.cameras.c2w.double() - scene.cameras.c2w).abs().max() <= 1e-5


@pytest.mark.parametrize(
    ("keys", "frame_keys", "message"),
    [
        ({"camera_model": "OPENCV_FISHEYE"}, {}, r"gives camera_model OPENCV_FISHEYE"),
        ({"camera_model": "EQUIRECTANGULAR"}, {}, r"gives camera_model EQUIRECTANGULAR"),
        (
            {"camera_model": "OPENCV", "k1": -0.1, "k2": 0},
            {},
            r"gives frame images/frame0.png lens distortion k1=-0.1",
        ),
        (
            {"k1": 0.0, "p2": 0.0},
            {"p2": 0.003},
            r"gives frame images/frame8.png lens distortion p2=0.003",
        ),
    ],
)
def test_nerfstudio_lens_distortion_is_refused(tmp_path, keys, frame_keys, message):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    path = write_cameras(tmp_path, "nerfstudio", scene, names, **keys)
    meta = json.loads(path.read_text())
    meta["frames"][2].update(frame_keys)
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"transforms.json: " + message + r".*image_undistorter"):
        read_user_scene(folder, cameras=path)


def test_nerfstudio_zero_distortion_is_a_pinhole(tmp_path):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    zeros = {"camera_model": "OPENCV", "k1": 0.0, "k2": 0, "p1": 0.0, "p2": 0.0}
    clip = read_user_scene(
        folder, cameras=write_cameras(tmp_path, "nerfstudio", scene, names, **zeros)
    )
    assert_cameras_match(clip, scene)


def test_our_json_with_nonzero_distortion_is_refused(tmp_path):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    assert (
        read_user_scene(
            folder, cameras=write_cameras(tmp_path, "ours", scene, names, distortion=[0, 0, 0, 0])
        ).cameras
        is not None
    )
    path = write_cameras(tmp_path, "ours", scene, names, distortion={"k1": -0.2, "k2": 0})
    with pytest.raises(ValueError, match=r'cameras.json: gives "distortion" .*image_undistorter'):
        read_user_scene(folder, cameras=path)


@pytest.mark.parametrize(
    ("kind", "file"),
    [("ours", "cameras.json"), ("nerfstudio", "transforms.json"), ("colmap", "cameras.txt")],
)
def test_cameras_of_another_aspect_ratio_are_refused(tmp_path, kind, file):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    path = write_cameras(tmp_path, kind, scene, names, size=(48, 48))
    message = file + r": gives K for images of 48×48 but the frames are 48×32 .*stretched unevenly"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, cameras=path)


@pytest.mark.parametrize("kind", ["ours", "nerfstudio", "colmap"])
def test_cameras_at_another_resolution_are_rescaled_to_the_frames(tmp_path, kind):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    path = write_cameras(tmp_path, kind, scene, names, size=(2 * HEIGHT, 2 * WIDTH))
    assert_cameras_match(read_user_scene(folder, cameras=path), scene)


@pytest.mark.parametrize("fps", ["fast", 0, -5, True])
def test_bad_fps_in_our_json_names_the_file(tmp_path, fps):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    path = write_cameras(tmp_path, "ours", scene, names, fps=fps)
    message = r'cameras.json: gives "fps" .* \(expected a positive number of frames per second\)'
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, cameras=path)


def test_colmap_image_of_an_unknown_camera_names_images_txt(tmp_path):
    scene = truth(8)
    folder, names = frames_folder(tmp_path, scene)
    model = write_cameras(tmp_path, "colmap", scene, names)
    text = (model / "cameras.txt").read_text()
    (model / "cameras.txt").write_text(text.replace("1 PINHOLE", "2 PINHOLE", 1))
    message = r"images.txt: image frame0.png uses camera 1, which .*cameras.txt does not list"
    with pytest.raises(ValueError, match=message):
        read_user_scene(folder, cameras=model)


def test_streaming_reads_equal_plain_reads_and_may_go_backwards(tmp_path, monkeypatch):
    import av

    video = write_video(tmp_path / "walk.mp4", rgb_uint8(truth(8)), fps=25)
    reader = UserClip(video)
    sequence = reader.sequences()[0]
    plain = reader.read_frames(sequence, range(sequence.num_frames)).rgb
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    with reader.streaming():
        windows = [[0, 1], [1, 2, 3], [4]]
        forward = [reader.read_frames(sequence, w).rgb for w in windows]
        assert len(opened) == 1  # one container, decoded forward
        backward = reader.read_frames(sequence, [2, 0]).rgb  # before the last frame: reopens
    for window, rgb in zip(windows, forward, strict=True):
        assert torch.equal(rgb, plain[window])
    assert torch.equal(backward, plain[[2, 0]]) and len(opened) == 2
    assert torch.equal(reader.read_frames(sequence, [3]).rgb, plain[[3]])  # outside: as before
