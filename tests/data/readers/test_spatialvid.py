"""SpatialVID in its real layout: annotated subset of an mp4, [t, q_xyzw] w2c, EXR inverse depth."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import OpenEXR
import pytest
import torch

from any4d.data.readers.spatialvid import SpatialVID
from tests.data.readers.fixtures import (
    HEIGHT,
    WIDTH,
    assert_cameras_match,
    assert_rgb_matches,
    rgb_uint8,
    truncate,
    truth,
    w2c,
    write_video,
)

CLIP = "group_0001/0a1b2c3d-0000"
ANNOTATED = [0, 2, 4, 6, 8]  # every other frame of a 9-frame, 10 fps video
# caption.json as SpatialVID's caption pipeline writes it (NJU-3DV/SpatialVID
# caption/utils/combine.py: VQA keys CamMotion, SceneDesc + LLM keys OptCamMotion, SceneSummary,
# MotionTrends, SceneTags, ShotImmersion, LLM; caption/tagging/inference.py adds CategoryTag).
OFFICIAL_CAPTION = {
    "CamMotion": "The camera dollies forward along the hallway, then pans slowly right.",
    "SceneDesc": "A bright hallway with white walls and a wooden floor leads to a sunlit room.",
    "OptCamMotion": "The camera moves forward steadily while turning slightly to the right.",
    "SceneSummary": "A walk down a bright hallway into a sunlit room.",
    "MotionTrends": ["forward translate", "right pan"],
    "SceneTags": ["hallway", "interior", "sunlight"],
    "ShotImmersion": "We glide down the quiet hallway as warm light spills from the room ahead.",
    "LLM": "qwen3-30b-a3b",
    "CategoryTag": {
        "sceneType": {"first": "Interior", "second": "Residential"},
        "lighting": "Natural light",
        "timeOfDay": "Daytime",
        "weather": "unknown",
        "crowdDensity": "Empty",
    },
}


def exr_bytes(z: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"Z": z.astype(np.float16)}).write(buffer)
    return buffer.getvalue()


def write_spatialvid(root, caption=None):
    video = truth(5, frames=9)
    scene = video.frames(ANNOTATED)
    group, clip = CLIP.split("/")
    folder = root / "annotations" / group / clip
    folder.mkdir(parents=True)
    write_video(root / "videos" / group / f"{clip}.mp4", rgb_uint8(video), fps=10)
    (folder / "indexes.txt").write_text("".join(f"{k} {i}\n" for k, i in enumerate(ANNOTATED)))
    pose = w2c(scene)
    quats = np.array([_quat_xyzw(p[:3, :3]) for p in pose])
    np.save(folder / "poses.npy", np.concatenate([pose[:, :3, 3], quats], 1))
    K = scene.cameras.K.numpy()
    norm = np.stack(
        [K[:, 0, 0] / WIDTH, K[:, 1, 1] / HEIGHT, K[:, 0, 2] / WIDTH, K[:, 1, 2] / HEIGHT], 1
    )
    np.save(folder / "intrinsics.npy", norm)
    caption = OFFICIAL_CAPTION if caption is None else caption
    (folder / "caption.json").write_text(json.dumps(caption, ensure_ascii=False, indent=2))
    (root / "depths" / group).mkdir(parents=True)
    with zipfile.ZipFile(root / "depths" / group / f"{clip}.zip", "w") as archive:
        for k in range(scene.num_frames):
            inverse = 1.0 / scene.depth[k, 0].numpy()
            inverse[:2] = np.nan  # unreadable rows, as the official reader marks them
            archive.writestr(f"{k:05d}.exr", exr_bytes(inverse))
    return scene, folder


def _quat_xyzw(rotation):
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rotation).as_quat()


def test_spatialvid_reads_back_annotated_frames_poses_and_caption(tmp_path):
    scene, _ = write_spatialvid(tmp_path)
    reader = SpatialVID(tmp_path)
    sequence = reader.sequences()[0]
    assert sequence.name == CLIP and sequence.fps == 5.0
    clip = reader[0]
    assert_cameras_match(clip, scene)
    assert_rgb_matches(clip, scene, tol=0.02)  # near-lossless H.264
    assert clip.text == OFFICIAL_CAPTION["SceneSummary"] and clip.depth is None


def test_spatialvid_inverse_depth_becomes_metres_with_nan_invalid(tmp_path):
    scene, _ = write_spatialvid(tmp_path)
    clip = SpatialVID(tmp_path, read_depth=True)[0]
    assert (clip.depth[:, :, :2] == 0).all()
    valid = scene.depth[:, :, 2:]
    relative = ((clip.depth[:, :, 2:] - valid) / valid).abs().max()
    assert relative <= 2.0**-11 + 1e-6  # float16 rounding of 1 / depth


@pytest.mark.parametrize("empty", ["", "unknown"])
def test_spatialvid_caption_falls_back_to_scene_description(tmp_path, empty):
    write_spatialvid(tmp_path, caption={**OFFICIAL_CAPTION, "SceneSummary": empty})
    assert SpatialVID(tmp_path)[0].text == OFFICIAL_CAPTION["SceneDesc"]


def test_spatialvid_caption_key_picks_another_official_caption(tmp_path):
    write_spatialvid(tmp_path)
    for key in ("ShotImmersion", "OptCamMotion"):
        assert SpatialVID(tmp_path, caption_key=key)[0].text == OFFICIAL_CAPTION[key]
    with pytest.raises(
        ValueError, match=r"caption.json: has no non-empty caption .*\['SceneTags'\]"
    ):
        SpatialVID(tmp_path, caption_key="SceneTags").sequences()  # a list of tags, not text


def test_spatialvid_unknown_caption_schema_names_keys(tmp_path):
    write_spatialvid(tmp_path, caption={"Camera": "pans"})
    with pytest.raises(ValueError, match=r"caption.json: has no .*SceneSummary.*'Camera': 'str'"):
        SpatialVID(tmp_path).sequences()
    assert SpatialVID(tmp_path, caption_key="Camera")[0].text == "pans"


def test_spatialvid_truncated_video_names_the_file(tmp_path):
    write_spatialvid(tmp_path)
    truncate(tmp_path / "videos" / "group_0001" / "0a1b2c3d-0000.mp4", keep=0.3)
    with pytest.raises(ValueError, match=r"0a1b2c3d-0000.mp4: not a readable video"):
        SpatialVID(tmp_path)[0]


def test_spatialvid_pose_array_of_wrong_shape_names_the_file(tmp_path):
    _, folder = write_spatialvid(tmp_path)
    np.save(folder / "poses.npy", torch.zeros(5, 6).numpy())
    with pytest.raises(ValueError, match=r"poses.npy: has shape \(5, 6\) \(expected \(5, 7\)\)"):
        SpatialVID(tmp_path).sequences()
