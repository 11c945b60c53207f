"""RealEstate10K in its real layout: URL line, normalised K, 3×4 w2c rows, frames by timestamp."""

from __future__ import annotations

import pytest

from any4d.data.readers.re10k import RealEstate10K
from tests.data.readers.fixtures import (
    HEIGHT,
    WIDTH,
    assert_cameras_match,
    assert_rgb_matches,
    truth,
    w2c,
    write_frames,
)

STEP_US = 33_367  # microseconds between frames of a 29.97 fps video


def write_re10k(root, scene, clip_id="000c3ab189999a83", frames_root=None):
    (root / "test").mkdir(parents=True)
    lines = [f"https://www.youtube.com/watch?v={clip_id}"]
    stamps = [52_000_000 + f * STEP_US for f in range(scene.num_frames)]
    for f, stamp in enumerate(stamps):
        K = scene.cameras.K[f]
        norm = [K[0, 0] / WIDTH, K[1, 1] / HEIGHT, K[0, 2] / WIDTH, K[1, 2] / HEIGHT]
        pose = w2c(scene)[f][:3].reshape(-1)
        lines.append(" ".join([str(stamp)] + [f"{float(v):.12f}" for v in [*norm, 0, 0, *pose]]))
    (root / "test" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n")
    folder = (frames_root or root / "frames") / "test" / clip_id
    write_frames(scene, [folder / f"{stamp}.png" for stamp in stamps])
    return folder


def test_re10k_reads_back_w2c_rows_and_normalised_intrinsics(tmp_path):
    scene = truth(2)
    write_re10k(tmp_path, scene)
    reader = RealEstate10K(tmp_path, split="test")
    clip = reader.read_clip("test/000c3ab189999a83", 0, scene.num_frames)
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.005)
    assert clip.depth is None and reader.modalities == ("rgb", "cameras")
    assert abs(clip.fps - 1e6 / STEP_US) < 1e-9


def test_re10k_frames_root_can_live_elsewhere(tmp_path):
    scene = truth(2)
    write_re10k(tmp_path / "cameras", scene, frames_root=tmp_path / "pixels")
    reader = RealEstate10K(tmp_path / "cameras", split="test", frames_root=tmp_path / "pixels")
    assert reader[0].num_frames == scene.num_frames


def test_re10k_missing_frame_names_the_timestamp_file(tmp_path):
    folder = write_re10k(tmp_path, truth(2))
    (folder / f"{52_000_000 + STEP_US}.png").unlink()
    with pytest.raises(FileNotFoundError, match=f"{52_000_000 + STEP_US}.png does not exist"):
        RealEstate10K(tmp_path, split="test").sequences()


def test_re10k_line_with_wrong_count_names_file_and_line(tmp_path):
    write_re10k(tmp_path, truth(2))
    path = tmp_path / "test" / "000c3ab189999a83.txt"
    path.write_text(path.read_text() + "1 2 3\n")
    with pytest.raises(ValueError, match=r"000c3ab189999a83.txt: line 7 has 3 values"):
        RealEstate10K(tmp_path, split="test").sequences()
