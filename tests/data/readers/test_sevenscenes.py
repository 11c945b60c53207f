"""7-Scenes in its real layout: c2w pose files, millimetre depth, fixed K, split files."""

from __future__ import annotations

import numpy as np
import pytest

from any4d.data.readers.sevenscenes import SevenScenes
from tests.data.readers.fixtures import (
    assert_cameras_match,
    assert_rgb_matches,
    depth_m,
    truth_with_intrinsics,
    write_frames,
    write_uint16,
)

# 7-Scenes' K (f = 525, centre (320, 240) at 640×480) for a 24×32 image: ÷ 20.
H, W = 24, 32


def seven_scenes_truth():
    return truth_with_intrinsics(0, 525 / 20, 525 / 20, 320 / 20, 240 / 20, H, W)


def write_seven_scenes(root, scene, raw_invalid=None):
    folder = root / "chess" / "seq-02"
    folder.mkdir(parents=True)
    (root / "chess" / "TestSplit.txt").write_text("sequence2\n")
    (root / "chess" / "TrainSplit.txt").write_text("sequence1\n")
    write_frames(scene, [folder / f"frame-{f:06d}.color.png" for f in range(scene.num_frames)])
    for f in range(scene.num_frames):
        pose = scene.cameras.c2w[f].numpy()
        (folder / f"frame-{f:06d}.pose.txt").write_text(
            "\n".join(" ".join(f"{v:.12e}" for v in row) for row in pose) + "\n"
        )
        code = depth_m(scene, f) * 1000
        write_uint16(folder / f"frame-{f:06d}.depth.proj.png", code)
        raw = code.copy()
        if raw_invalid is not None:
            raw[raw_invalid] = 65535
        write_uint16(folder / f"frame-{f:06d}.depth.png", raw)
    return folder


def test_seven_scenes_reads_back_poses_fixed_intrinsics_and_depth(tmp_path):
    scene = seven_scenes_truth()
    write_seven_scenes(tmp_path, scene)
    reader = SevenScenes(tmp_path, split="test")
    assert [s.name for s in reader.sequences()] == ["chess/seq-02"]
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert (clip.depth - scene.depth).abs().max() <= 0.0005 + 1e-6  # 1 mm steps
    assert_rgb_matches(clip, scene, tol=0.005)


def test_seven_scenes_raw_depth_code_65535_is_invalid(tmp_path):
    write_seven_scenes(tmp_path, seven_scenes_truth(), raw_invalid=(slice(0, 4), slice(None)))
    clip = SevenScenes(tmp_path, split="test", depth="raw")[0]
    assert (clip.depth[:, 0, :4] == 0).all() and (clip.depth[:, 0, 4:] > 0).all()


def test_seven_scenes_split_file_selects_sequences(tmp_path):
    write_seven_scenes(tmp_path, seven_scenes_truth())
    with pytest.raises(FileNotFoundError, match="seq-01 does not exist"):
        SevenScenes(tmp_path, split="train").sequences()


def test_seven_scenes_missing_projected_depth_says_how_to_make_it(tmp_path):
    folder = write_seven_scenes(tmp_path, seven_scenes_truth())
    (folder / "frame-000002.depth.proj.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"frame-000002.depth.proj.png .*SimpleRecon"):
        SevenScenes(tmp_path).sequences()


def test_seven_scenes_malformed_pose_names_the_file(tmp_path):
    folder = write_seven_scenes(tmp_path, seven_scenes_truth())
    (folder / "frame-000001.pose.txt").write_text(np.array2string(np.eye(3)))
    with pytest.raises(ValueError, match="frame-000001.pose.txt"):
        SevenScenes(tmp_path).sequences()
