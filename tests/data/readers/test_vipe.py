"""ViPE results in ViPE's own output format: pose/ and intrinsics/ .npz (data, inds), rgb/ mp4,
depth/ zip of "%05d.exr" with one HALF channel Z.

The writer follows nv-tlabs/vipe ``vipe/utils/io.py`` (``save_pose_artifacts``,
``save_intrinsics_artifacts``, ``save_rgb_artifacts``, ``save_depth_artifacts``): the same
files, keys, dtypes, member names and the same legacy OpenEXR API (``OpenEXR.OutputFile`` with an
``Imath`` HALF channel), so that the reader is checked against the format ViPE writes.
"""

from __future__ import annotations

import tempfile
import zipfile

import Imath
import numpy as np
import OpenEXR
import pytest

from any4d.data.mixture import DatasetConfig
from any4d.data.readers import READERS, build_reader
from any4d.data.readers.vipe import ViPE
from tests.data.readers.fixtures import (
    assert_cameras_match,
    assert_rgb_matches,
    rgb_uint8,
    truncate,
    truth,
    write_video,
)

NAME = "dl3dv_0a1b2c3d"
FRAMES = 9


def write_exr_half(path, depth: np.ndarray) -> None:
    """One EXR with a single HALF channel "Z", written as ViPE writes its depth."""
    height, width = depth.shape
    header = OpenEXR.Header(width, height)
    header["channels"] = {"Z": Imath.Channel(Imath.PixelType(Imath.PixelType.HALF))}
    exr = OpenEXR.OutputFile(str(path), header)
    exr.writePixels({"Z": depth.astype(np.float16).tobytes()})
    exr.close()


def write_vipe(root, posed=range(FRAMES), depth_of=None, camera_type="PINHOLE", fps=10):
    """ViPE's artifacts of a 9-frame clip, with poses (and intrinsics, depth) for ``posed``."""
    video = truth(6, frames=FRAMES)
    posed = list(posed)
    scene = video.frames(posed)
    write_video(root / "rgb" / f"{NAME}.mp4", rgb_uint8(video), fps=fps)
    inds = np.array(posed)
    (root / "pose").mkdir(parents=True)
    c2w = scene.cameras.c2w.numpy().astype(np.float32)  # lietorch SE3.matrix() of float poses
    np.savez(root / "pose" / f"{NAME}.npz", data=c2w, inds=inds)
    K = scene.cameras.K.numpy()
    intrinsics = np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], 1).astype(np.float32)
    (root / "intrinsics").mkdir(parents=True)
    np.savez(root / "intrinsics" / f"{NAME}.npz", data=intrinsics, inds=inds)
    lines = "".join(f"{f}: {camera_type}\n" for f in posed)
    (root / "intrinsics" / f"{NAME}_camera.txt").write_text(lines)
    (root / "depth").mkdir(parents=True)
    with zipfile.ZipFile(root / "depth" / f"{NAME}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for k, frame in enumerate(posed):
            depth = scene.depth[k, 0].numpy().copy() if depth_of is None else depth_of(k, scene)
            with tempfile.NamedTemporaryFile(suffix=".exr") as handle:
                write_exr_half(handle.name, depth)
                archive.write(handle.name, f"{frame:05d}.exr")
    return scene


def test_vipe_reads_back_c2w_poses_intrinsics_rgb_and_metric_depth(tmp_path):
    scene = write_vipe(tmp_path)
    reader = ViPE(tmp_path)
    assert [s.name for s in reader.sequences()] == [NAME]
    assert reader.modalities == ("rgb", "depth", "cameras")
    clip = reader[0]
    assert clip.num_frames == FRAMES and reader.sequences()[0].fps == 10.0
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.02)  # near-lossless H.264
    relative = ((clip.depth - scene.depth) / scene.depth).abs().max()
    assert relative <= 2.0**-11 + 1e-6  # float16 rounding of metres, no other change


def test_vipe_frames_are_the_posed_frame_numbers_of_the_video(tmp_path):
    posed = [0, 2, 4, 6, 8]  # frames without a pose are absent from pose/ and depth/
    scene = write_vipe(tmp_path, posed=posed)
    reader = ViPE(tmp_path)
    sequence = reader.sequences()[0]
    assert sequence.rgb.indices == tuple(posed)
    assert sequence.fps == 5.0  # the video's 10 fps over a step of 2
    clip = reader.read_clip(sequence, 1, 2)  # posed frames 2 and 4
    expected = scene.frames([1, 2])
    assert_cameras_match(clip, expected)
    assert_rgb_matches(clip, expected, tol=0.02)
    assert ((clip.depth - expected.depth) / expected.depth).abs().max() <= 2.0**-11 + 1e-6


def test_vipe_sky_far_and_unreadable_depth_become_invalid(tmp_path):
    def depth_of(k, scene):
        depth = scene.depth[k, 0].numpy().copy()
        depth[0] = 1000.0  # 1 / the 1e-3 inverse-depth clamp of ViPE's alignment: sky
        depth[1] = np.inf
        depth[2] = np.nan
        depth[3] = -1.0
        return depth

    scene = write_vipe(tmp_path, depth_of=depth_of)
    depth = ViPE(tmp_path)[0].depth
    assert (depth[:, :, :4] == 0).all()
    valid = scene.depth[:, :, 4:]
    assert ((depth[:, :, 4:] - valid) / valid).abs().max() <= 2.0**-11 + 1e-6
    assert (ViPE(tmp_path, max_depth=5.0)[0].depth[:, :, 4:] < 5.0).all()


def test_vipe_refuses_non_pinhole_results_naming_the_camera_file(tmp_path):
    write_vipe(tmp_path, camera_type="MEI")
    with pytest.raises(ValueError, match=r"_camera.txt: gives camera type MEI .*expected PINHOLE"):
        ViPE(tmp_path).sequences()


def test_vipe_missing_depth_frame_names_the_zip(tmp_path):
    write_vipe(tmp_path)
    archive = tmp_path / "depth" / f"{NAME}.zip"
    with zipfile.ZipFile(archive) as opened:
        kept = {n: opened.read(n) for n in opened.namelist() if n != "00003.exr"}
    with zipfile.ZipFile(archive, "w") as opened:
        for name, data in kept.items():
            opened.writestr(name, data)
    with pytest.raises(ValueError, match=rf"{NAME}.zip: has no depth for frame 3"):
        ViPE(tmp_path).sequences()


def test_vipe_pose_only_results_read_without_depth(tmp_path):
    scene = write_vipe(tmp_path)
    for path in (tmp_path / "depth").iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{NAME}.zip does not exist"):
        ViPE(tmp_path).sequences()
    reader = ViPE(tmp_path, read_depth=False)
    assert reader.modalities == ("rgb", "cameras")
    clip = reader[0]
    assert clip.depth is None
    assert_cameras_match(clip, scene)


def test_vipe_malformed_pose_file_names_it(tmp_path):
    write_vipe(tmp_path)
    path = tmp_path / "pose" / f"{NAME}.npz"
    np.savez(path, data=np.zeros((FRAMES, 3, 4), np.float32), inds=np.arange(FRAMES))
    with pytest.raises(ValueError, match=r"pose/.*\.npz: has data float32 \(9, 3, 4\)"):
        ViPE(tmp_path).sequences()
    truncate(path)
    with pytest.raises(ValueError, match=r"\.npz: not a readable \.npz"):
        ViPE(tmp_path).sequences()


def test_vipe_tree_of_output_folders_names_sequences_by_folder(tmp_path):
    scene = write_vipe(tmp_path / "1K" / "0a1b2c3d")  # one `vipe infer -o` per scene
    write_vipe(tmp_path / "1K" / "9f8e7d6c")
    reader = ViPE(tmp_path)
    names = [s.name for s in reader.sequences()]
    assert names == [f"1K/0a1b2c3d/{NAME}", f"1K/9f8e7d6c/{NAME}"]
    assert_cameras_match(reader[0], scene)


def test_vipe_is_registered_for_mixtures(tmp_path):
    write_vipe(tmp_path)
    assert READERS["vipe"] is ViPE
    assert isinstance(build_reader("vipe", tmp_path), ViPE)
    entry = DatasetConfig("dl3dv", "vipe", str(tmp_path), modalities=["rgb", "depth", "cameras"])
    assert entry.reader == "vipe"
