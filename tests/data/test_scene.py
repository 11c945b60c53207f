import json

import pytest
import torch
from safetensors.torch import save_file

from any4d.data import Scene
from any4d.geometry import Cameras
from tests.cameras_factory import random_cameras

T, H, W = 3, 5, 6


def _parts(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    rgb = (torch.rand(T, 3, H, W, generator=g) * 2 - 1).to(dtype)
    depth = (torch.rand(T, 1, H, W, generator=g) * 4).to(dtype)
    depth[0, 0, 0, 0] = 0.0  # invalid pixel
    cameras = random_cameras((T,), seed=1, height=H, width=W, dtype=dtype)
    return rgb, depth, cameras


def test_scene_reports_its_modalities():
    rgb, depth, cameras = _parts()
    assert Scene(rgb).modalities == ("rgb",)
    full = Scene(rgb, depth, cameras, text="a room", fps=24)
    assert full.modalities == ("rgb", "depth", "cameras", "text")
    assert full.has("depth") and not Scene(rgb, cameras=cameras).has("depth")
    assert (full.num_frames, full.height, full.width) == (T, H, W)
    with pytest.raises(ValueError, match="unknown modality"):
        full.has("normals")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_scene_save_load_is_lossless(tmp_path, dtype):
    rgb, depth, cameras = _parts(torch.float64)
    scene = Scene(rgb, depth, cameras, text="ünïcode — a room 🏠", fps=29.97).to(dtype=dtype)
    path = scene.save(tmp_path / "clips" / "scene.safetensors")
    assert [p.name for p in path.parent.iterdir()] == ["scene.safetensors"]  # no temp left over
    loaded = Scene.load(path)
    assert loaded.rgb.dtype == dtype
    assert torch.equal(loaded.rgb, scene.rgb) and torch.equal(loaded.depth, scene.depth)
    assert torch.equal(loaded.cameras.K, scene.cameras.K)
    assert torch.equal(loaded.cameras.c2w, scene.cameras.c2w)
    assert (loaded.text, loaded.fps) == (scene.text, scene.fps)


def test_scene_save_load_keeps_missing_modalities_missing(tmp_path):
    rgb, _, _ = _parts()
    loaded = Scene.load(Scene(rgb, fps=5).save(tmp_path / "rgb_only.safetensors"))
    assert loaded.modalities == ("rgb",) and loaded.fps == 5


def test_scene_load_rejects_foreign_or_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Scene.load(tmp_path / "missing.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"rgb": torch.zeros(1, 3, 2, 2)}, foreign)
    with pytest.raises(ValueError, match="no any4d scene metadata"):
        Scene.load(foreign)
    future = tmp_path / "future.safetensors"
    info = {"format": "any4d.scene", "version": 99, "fps": 1.0, "text": None}
    save_file({"rgb": torch.zeros(1, 3, 2, 2)}, future, metadata={"any4d": json.dumps(info)})
    with pytest.raises(ValueError, match="version 99"):
        Scene.load(future)
    incomplete = tmp_path / "incomplete.safetensors"
    info = {"format": "any4d.scene", "version": 1, "fps": 1.0}
    save_file({"rgb": torch.zeros(1, 3, 2, 2)}, incomplete, metadata={"any4d": json.dumps(info)})
    with pytest.raises(ValueError, match=r"metadata lacks \['text'\]"):
        Scene.load(incomplete)
    extra = tmp_path / "extra.safetensors"
    info = {"format": "any4d.scene", "version": 1, "fps": 1.0, "text": None}
    tensors = {"rgb": torch.zeros(1, 3, 2, 2), "normals": torch.zeros(1, 3, 2, 2)}
    save_file(tensors, extra, metadata={"any4d": json.dumps(info)})
    with pytest.raises(ValueError, match=r"unexpected tensors \['normals'\]"):
        Scene.load(extra)
    garbled = tmp_path / "garbled.safetensors"
    save_file({"rgb": torch.zeros(1, 3, 2, 2)}, garbled, metadata={"any4d": "{not json"})
    with pytest.raises(ValueError, match="malformed any4d metadata"):
        Scene.load(garbled)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 5)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        Scene.load(corrupt)


def test_scene_load_validates_the_tensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    info = {"format": "any4d.scene", "version": 1, "fps": 1.0, "text": None}
    save_file({"rgb": torch.full((1, 3, 2, 2), 7.0)}, path, metadata={"any4d": json.dumps(info)})
    with pytest.raises(ValueError, match=r"expected values in \[-1, 1\]"):
        Scene.load(path)


def test_scene_frames_and_to_keep_fields_aligned():
    rgb, depth, cameras = _parts()
    scene = Scene(rgb, depth, cameras, text="x")
    sub = scene.frames([2, 0])
    assert torch.equal(sub.rgb, rgb[[2, 0]]) and torch.equal(sub.depth, depth[[2, 0]])
    assert torch.equal(sub.cameras.c2w, cameras.c2w[[2, 0]])
    assert scene.frames(slice(0, 2)).num_frames == 2
    half = scene.to(dtype=torch.float64)
    assert half.rgb.dtype == half.depth.dtype == half.cameras.dtype == torch.float64


def _bad(field, rgb, depth, cameras):
    """Each case corrupts one field; returns the kwargs to build the scene with."""
    kwargs = dict(rgb=rgb, depth=depth, cameras=cameras)
    if field == "rgb_shape":
        kwargs["rgb"] = rgb[:, :2]
    elif field == "rgb_range":
        kwargs["rgb"] = rgb * 3
    elif field == "rgb_nan":
        kwargs["rgb"] = rgb.clone().index_fill_(0, torch.tensor([1]), float("nan"))
    elif field == "rgb_int":
        kwargs["rgb"] = (rgb > 0).to(torch.uint8)
    elif field == "depth_frames":
        kwargs["depth"] = depth[:2]
    elif field == "depth_no_channel":
        kwargs["depth"] = depth[:, 0]
    elif field == "depth_negative":
        kwargs["depth"] = depth - 10
    elif field == "depth_inf":
        kwargs["depth"] = depth.clone().index_fill_(0, torch.tensor([2]), float("inf"))
    elif field == "cameras_frames":
        kwargs["cameras"] = cameras[:2]
    elif field == "cameras_not_rotation":
        c2w = cameras.c2w.clone()
        c2w[1, :3, :3] *= 2
        kwargs["cameras"] = Cameras.unchecked(cameras.K, c2w)
    elif field == "cameras_singular_k":
        K = cameras.K.clone()
        K[0, 0, 0] = 0
        kwargs["cameras"] = Cameras.unchecked(K, cameras.c2w)
    elif field == "cameras_type":
        kwargs["cameras"] = cameras.c2w
    return kwargs


@pytest.mark.parametrize(
    "field, message",
    [
        ("rgb_shape", r"rgb has shape \(3, 2, 5, 6\) \(expected \(T, 3, H, W\)\)"),
        ("rgb_range", r"rgb spans .* \(expected values in \[-1, 1\]\)"),
        ("rgb_nan", "rgb contains NaN"),
        ("rgb_int", "rgb must be a floating-point tensor"),
        ("depth_frames", r"depth has shape \(2, 1, 5, 6\) .* \(expected \(3, 1, 5, 6\)\)"),
        ("depth_no_channel", r"depth has shape \(3, 5, 6\) .* \(expected \(3, 1, 5, 6\)\)"),
        ("depth_negative", "depth has negative values"),
        ("depth_inf", "depth contains NaN or inf"),
        ("cameras_frames", r"cameras has batch shape \(2,\) but rgb has 3 frames"),
        ("cameras_not_rotation", "cameras: c2w rotation at index .* not a proper rotation"),
        ("cameras_singular_k", "cameras: K has a focal length ≤ 0"),
        ("cameras_type", "cameras must be a Cameras"),
    ],
)
def test_scene_rejects_bad_fields_with_a_named_error(field, message):
    with pytest.raises(ValueError, match=message):
        Scene(**_bad(field, *_parts()))


def test_scene_rejects_bad_metadata():
    rgb, _, _ = _parts()
    with pytest.raises(ValueError, match="fps is 0"):
        Scene(rgb, fps=0)
    with pytest.raises(ValueError, match="fps is True"):
        Scene(rgb, fps=True)
    with pytest.raises(ValueError, match="fps is nan"):
        Scene(rgb, fps=float("nan"))
    with pytest.raises(ValueError, match="text must be a str"):
        Scene(rgb, text=3)
