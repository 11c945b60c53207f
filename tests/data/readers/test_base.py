"""The shared reader behaviour: clip ranges, fps, skip-corrupt policy (warn + count), captions."""

from __future__ import annotations

import json
import warnings

import pytest

from any4d.data.readers import READERS, build_reader
from any4d.data.readers.base import SkippedSequenceWarning
from any4d.data.readers.vkitti2 import VirtualKitti2
from tests.data.readers.fixtures import truncate, truth
from tests.data.readers.test_vkitti2 import write_vkitti2

NAME = "Scene01/clone/Camera_0"


def two_scene_root(tmp_path):
    """Two VKITTI2 variations: 'clone' and 'fog' (the same truth written twice)."""
    write_vkitti2(tmp_path, truth(0))
    write_vkitti2(tmp_path / "tmp", truth(0))
    (tmp_path / "tmp" / "Scene01" / "clone").rename(tmp_path / "Scene01" / "fog")
    return tmp_path


def test_read_clip_takes_strided_frames_and_divides_fps(tmp_path):
    write_vkitti2(tmp_path, truth(0))
    reader = VirtualKitti2(tmp_path, cameras=(0,))
    clip = reader.read_clip(NAME, 1, 2, stride=3)
    full = reader.read_clip(NAME, 0, 5)
    assert clip.num_frames == 2 and clip.fps == full.fps / 3
    assert (clip.rgb == full.rgb[[1, 4]]).all()
    assert (clip.cameras.c2w == full.cameras.c2w[[1, 4]]).all()


def test_read_clip_past_the_end_names_sequence_and_length(tmp_path):
    write_vkitti2(tmp_path, truth(0))
    reader = VirtualKitti2(tmp_path, cameras=(0,))
    with pytest.raises(ValueError, match=f"ends at frame 6 but sequence '{NAME}' has 5 frames"):
        reader.read_clip(NAME, 2, 3, stride=2)


def test_missing_file_is_an_error_by_default(tmp_path):
    root = two_scene_root(tmp_path)
    (root / "Scene01" / "fog" / "intrinsic.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"fog/intrinsic.txt does not exist"):
        VirtualKitti2(root, cameras=(0,)).sequences()


def test_skip_corrupt_warns_per_sequence_and_counts_them(tmp_path):
    root = two_scene_root(tmp_path)
    (root / "Scene01" / "fog" / "intrinsic.txt").unlink()
    reader = VirtualKitti2(root, cameras=(0, 1), skip_corrupt=True)
    with pytest.warns(SkippedSequenceWarning) as caught:
        names = [s.name for s in reader.sequences()]
    assert len(caught) == 2  # fog/Camera_0 and fog/Camera_1, one warning each
    assert "fog/Camera_0" in str(caught[0].message) and "intrinsic.txt" in str(caught[0].message)
    assert reader.num_skipped == 2 and set(reader.skipped) == {
        "Scene01/fog/Camera_0",
        "Scene01/fog/Camera_1",
    }
    assert "Scene01/fog/Camera_0" not in names


def test_skip_corrupt_at_read_time_warns_once_and_drops_the_sequence(tmp_path):
    root = two_scene_root(tmp_path)
    truncate(root / "Scene01" / "fog" / "frames" / "rgb" / "Camera_0" / "rgb_00002.jpg")
    reader = VirtualKitti2(root, cameras=(0,), skip_corrupt=True)
    fog = reader.sequence("Scene01/fog/Camera_0")
    with pytest.warns(SkippedSequenceWarning, match="rgb_00002.jpg"):
        with pytest.raises(ValueError, match="rgb_00002.jpg"):
            reader.read_clip(fog, 0, 5)  # read_clip itself raises; the caller decides to skip
        reader.skip(fog.name, ValueError("rgb_00002.jpg is truncated"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader.skip(fog.name, ValueError("again"))  # already counted: no second warning
    assert reader.num_skipped == 1 and [s.name for s in reader.sequences()] == [NAME]


def test_captions_file_gives_clips_text(tmp_path):
    write_vkitti2(tmp_path / "data", truth(0))
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({NAME: "a street in the rain"}))
    reader = VirtualKitti2(tmp_path / "data", cameras=(0,), captions=captions)
    assert reader.modalities == ("rgb", "depth", "cameras", "text")
    assert reader.read_clip(NAME, 0, 1).text == "a street in the rain"


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_names_a_missing_root_and_its_layout(tmp_path, name):
    reader = READERS[name]
    with pytest.raises(FileNotFoundError, match=f"{name} root .*missing does not exist"):
        reader(tmp_path / "missing")


@pytest.mark.parametrize("name", sorted(set(READERS) - {"user"}))
def test_every_reader_names_an_unknown_layout(tmp_path, name):
    (tmp_path / "unrelated" / "stuff").mkdir(parents=True)
    (tmp_path / "unrelated" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=f"{tmp_path} holds no {name} sequences \\(expected"):
        READERS[name](tmp_path).sequences()


def test_build_reader_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown reader 'kitti'"):
        build_reader("kitti", tmp_path)
