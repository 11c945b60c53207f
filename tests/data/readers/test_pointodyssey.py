"""PointOdyssey in its real layout: anno.npz w2c + K, depth as a fraction of 1000 m."""

from __future__ import annotations

import numpy as np
import pytest

from any4d.data.readers.pointodyssey import PointOdyssey
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


def write_pointodyssey(root, scene, annotation="anno.npz"):
    folder = root / "train" / "r4_new_f"
    folder.mkdir(parents=True)
    n = scene.num_frames
    np.savez(
        folder / annotation,
        intrinsics=scene.cameras.K.numpy(),
        extrinsics=w2c(scene),
        trajs_3d=np.zeros((n, 2, 3)),
    )
    write_frames(scene, [folder / "rgbs" / f"rgb_{f:05d}.jpg" for f in range(n)])
    for f in range(n):
        write_uint16(folder / "depths" / f"depth_{f:05d}.png", depth_m(scene, f) / 1000 * 65535)
    return folder


@pytest.mark.parametrize("annotation", ["anno.npz", "annot.npz"])
def test_pointodyssey_reads_back_w2c_and_fractional_depth(tmp_path, annotation):
    scene = truth(4)
    write_pointodyssey(tmp_path, scene, annotation)
    clip = PointOdyssey(tmp_path, split="train")[0]
    assert_cameras_match(clip, scene)
    assert (clip.depth - scene.depth).abs().max() <= 0.5 * 1000 / 65535 + 1e-6
    assert_rgb_matches(clip, scene, tol=0.04)


def test_pointodyssey_truncated_annotations_name_the_file(tmp_path):
    folder = write_pointodyssey(tmp_path, truth(4))
    truncate(folder / "anno.npz")
    with pytest.raises(ValueError, match="anno.npz: not readable annotations"):
        PointOdyssey(tmp_path).sequences()


def test_pointodyssey_missing_annotations_name_both_names(tmp_path):
    folder = write_pointodyssey(tmp_path, truth(4))
    (folder / "anno.npz").unlink()
    with pytest.raises(FileNotFoundError, match="anno.npz does not exist .*annot.npz"):
        PointOdyssey(tmp_path).sequences()


def test_pointodyssey_saturated_code_65535_is_invalid_not_1000_m(tmp_path):
    scene = truth(4)
    folder = write_pointodyssey(tmp_path, scene)
    code = np.round(depth_m(scene, 0) / 1000 * 65535)
    code[:3] = 65535  # the top of the uint16 range, 1000 m by the formula
    code[3] = 0
    write_uint16(folder / "depths" / "depth_00000.png", code)
    depth = PointOdyssey(tmp_path).read_clip("train/r4_new_f", 0, 1).depth[0, 0]
    assert (depth[:4] == 0).all()
    expected = scene.depth[0, 0, 4:]
    assert (depth[4:] - expected).abs().max() <= 0.5 * 1000 / 65535 + 1e-6
    assert depth.max() < 1000.0
