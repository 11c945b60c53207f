"""Clip windows, the 1 + 4k length rule, resize + centre crop with exact intrinsics, splits."""

from __future__ import annotations

import pytest
import torch

from any4d.data.clips import Clips, check_clip_length, clip_starts, resize_and_crop, split_of
from any4d.data.readers.base import SkippedSequenceWarning
from any4d.data.readers.vkitti2 import VirtualKitti2
from any4d.geometry import project, unproject
from tests.data.readers.fixtures import truncate, truth
from tests.data.readers.test_base import two_scene_root


def test_clip_length_must_be_one_plus_multiple_of_temporal_stride():
    assert check_clip_length(49) == 49 and check_clip_length(1) == 1
    assert check_clip_length(6, temporal_stride=1) == 6
    with pytest.raises(ValueError, match=r"length is 50 \(expected 1 \+ 4·k .* 49 or 53\)"):
        check_clip_length(50)


def test_clip_starts_fit_inside_the_sequence():
    assert clip_starts(10, length=5, stride=2, hop=1) == [0, 1]  # span 9
    assert clip_starts(20, length=5, stride=1, hop=5) == [0, 5, 10, 15]
    assert clip_starts(4, length=5, stride=1, hop=1) == []


def test_split_is_deterministic_and_close_to_the_fraction():
    names = [f"scene_{i}" for i in range(2000)]
    splits = [split_of(n, 0.1) for n in names]
    assert splits == [split_of(n, 0.1) for n in names]
    assert 150 < splits.count("eval") < 250
    assert split_of("x", 0.0) == "train" and split_of("x", 1.0) == "eval"
    # a salt gives another, equally deterministic split
    assert [split_of(n, 0.5, "a") for n in names] != [split_of(n, 0.5, "b") for n in names]


def test_resize_and_crop_reaches_the_target_size_and_keeps_projection():
    scene = truth(0)  # 32 × 48
    out = resize_and_crop(scene.to(dtype=torch.float32), 24, 24)
    assert out.rgb.shape == (5, 3, 24, 24) and out.depth.shape == (5, 1, 24, 24)
    # the pixel centre (u, v) of the output sees the point that the old K maps there too
    points = unproject(out.depth, out.cameras)  # (T, 3, H, W) world points
    uv, _ = project(points, scene.cameras.to(dtype=torch.float32))  # (T, 2, H, W)
    # the output is the input scaled by 0.75 (32 → 24 rows, 48 → 36 columns), then 6 columns
    # cropped on each side: input u = (u' + 6) / 0.75, input v = v' / 0.75
    centres = torch.arange(24) + 0.5
    assert torch.allclose(uv[:, 0, 5, :], (centres + 6) / 0.75, atol=1e-3)
    assert torch.allclose(uv[:, 1, :, 7], centres[None] / 0.75, atol=1e-3)


def test_resize_and_crop_keeps_invalid_depth_exactly_zero():
    scene = truth(0).to(dtype=torch.float32)
    depth = scene.depth.clone()
    depth[:, :, :, :10] = 0
    out = resize_and_crop(type(scene)(scene.rgb, depth, scene.cameras), 16, 16)
    assert set(torch.unique(out.depth[out.depth < 0.5]).tolist()) <= {0.0}


def test_clips_enumerate_windows_and_resize(tmp_path):
    root = two_scene_root(tmp_path)
    clips = Clips(VirtualKitti2(root, cameras=(0,)), length=5, size=(16, 16), hop=1)
    assert len(clips) == 2  # one 5-frame window per 5-frame sequence
    scene = clips[1]
    assert scene.rgb.shape == (5, 3, 16, 16) and scene.has("depth")


def test_clips_train_and_eval_splits_partition_the_sequences(tmp_path):
    root = two_scene_root(tmp_path)
    reader = VirtualKitti2(root, cameras=(0, 1))
    kwargs = dict(length=1, temporal_stride=1, size=None, eval_fraction=0.5)
    train, held = Clips(reader, split="train", **kwargs), Clips(reader, split="eval", **kwargs)
    names = lambda clips: {s.name for s, _ in clips.windows}  # noqa: E731
    assert names(train).isdisjoint(names(held))
    assert names(train) | names(held) == {s.name for s in reader.sequences()}


def test_clips_skip_a_corrupt_sequence_with_a_warning(tmp_path):
    root = two_scene_root(tmp_path)
    truncate(root / "Scene01" / "clone" / "frames" / "depth" / "Camera_0" / "depth_00004.png")
    reader = VirtualKitti2(root, cameras=(0,), skip_corrupt=True)
    clips = Clips(reader, length=5, size=None)
    with pytest.warns(SkippedSequenceWarning, match="depth_00004.png"):
        scene = clips[0]  # clone is corrupt: the fog clip comes instead
    assert reader.skipped.keys() == {"Scene01/clone/Camera_0"} and scene.num_frames == 5
    strict = Clips(VirtualKitti2(root, cameras=(0,)), length=5, size=None)
    with pytest.raises(ValueError, match="depth_00004.png"):
        strict[0]
