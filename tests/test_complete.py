"""any4d complete on a user's video / frames folder: every output written and readable; bad
inputs are clear errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.cli import main
from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer
from any4d.viz.exports_geometry import read_depth_npz, read_ply


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    pipe = Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2),
        {"num_frames": 3, "height": 16, "width": 16, "steps": 2},
    )
    return pipe.save_pretrained(tmp_path_factory.mktemp("pipe"))


def frames_of(scene: Scene):
    return ((scene.rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """An mp4 the model never saw: 8 frames of 24 × 32, written with PyAV."""
    import av

    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for frame in frames_of(render_clip(7, num_frames=8, height=24, width=32)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_complete_a_video_writes_every_output(tmp_path, video, checkpoint, capsys):
    status = main(
        [
            "complete",
            str(video),
            "--task",
            "video",
            "--checkpoint",
            str(checkpoint),
            "--stride",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert status == 0, capsys.readouterr().err
    out = tmp_path / "out"
    scene = Scene.load(out / "scene.safetensors")
    assert scene.rgb.shape == (3, 3, 16, 16) and scene.depth.shape == (3, 1, 16, 16)
    assert (out / "grid.png").is_file() and len(list((out / "frames").glob("*.png"))) == 3
    assert np.allclose(read_depth_npz(out / "depth.npz"), scene.depth[:, 0].numpy())
    record = json.loads((out / "result.json").read_text())
    assert record["frames"] == {"start": 0, "stride": 2, "count": 3}
    if scene.cameras is not None:  # an untrained model's rays may determine no camera
        points, _ = read_ply(out / "points.ply")
        assert points.shape[1] == 3
        assert (out / "cameras" / "colmap" / "images.txt").is_file()
        assert (out / "cameras" / "trajectory.tum").is_file()
    else:
        assert record["failures"]


def write_frames_folder(folder, scene):
    """The clip's RGB as numbered PNGs in ``folder`` (created); returns ``folder``."""
    folder.mkdir()
    for i, frame in enumerate(frames_of(scene)):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    return folder


def test_complete_a_frames_folder_with_known_cameras(tmp_path, checkpoint):
    truth = render_clip(3, num_frames=3, height=16, width=16)
    folder = write_frames_folder(tmp_path / "frames", truth)
    from any4d.viz.exports_cameras import write_cameras_json

    write_cameras_json(tmp_path / "cameras.json", truth.cameras, (16, 16))
    status = main(
        [
            "complete",
            str(folder),
            "--task",
            "depth",
            "--cameras",
            str(tmp_path / "cameras.json"),
            "--checkpoint",
            str(checkpoint),
            "--candidates",
            "2",
            "--select",
            "mean",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert status == 0
    scene = Scene.load(tmp_path / "out" / "scene.safetensors")
    torch.testing.assert_close(scene.cameras.c2w, truth.cameras.c2w.float(), atol=1e-5, rtol=0)
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["candidates"] == 2 and record["select"] == "mean"
    assert len(record["scores"]) == 2


def test_complete_takes_the_depth_npz_it_writes(tmp_path, checkpoint):
    from any4d.viz.exports_geometry import write_depth_npz

    truth = render_clip(4, num_frames=3, height=16, width=16)
    folder = write_frames_folder(tmp_path / "frames", truth)
    write_depth_npz(tmp_path / "depth.npz", truth.depth)
    status = main(
        [
            "complete",
            str(folder),
            "--task",
            "depth_to_video",
            "--depth",
            str(tmp_path / "depth.npz"),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert status == 0
    written = read_depth_npz(tmp_path / "out" / "depth.npz")
    assert torch.equal(written, truth.depth[:, 0].float())  # observed depth comes back as given


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.mp4"], "missing.mp4"),
        (["garbage.mp4"], "garbage.mp4"),
        (["VIDEO", "--intrinsics", "100,100,16"], "expected fx,fy,cx,cy"),
        (["VIDEO", "--task", "interpolate"], "scene has no cameras"),
        (["VIDEO", "--stride", "5"], "the clip has 8 frames"),
        (["VIDEO", "--prompt", "a walk"], "this model has no text conditioning"),
        (["VIDEO", "--text-encoder", "nowhere"], "text_encoder does not exist"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, video, checkpoint, capsys, args, message):
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all")
    args = [str(video) if a == "VIDEO" else a for a in args]
    if not args[0].startswith("/"):
        args[0] = str(tmp_path / args[0])
    status = main(
        [
            "complete",
            *args,
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert status == 1
    assert message in capsys.readouterr().err


def test_predicted_skew_is_removed_for_the_exports_and_reported():
    from any4d.complete import without_skew

    scene = render_clip(1, num_frames=3, height=16, width=16)
    same, skew = without_skew(scene)
    assert same is scene and skew == 0.0
    K = scene.cameras.K.clone()
    K[1, 0, 1] = -2.5
    skewed = dataclasses.replace(scene, cameras=Cameras.unchecked(K, scene.cameras.c2w))
    fixed, skew = without_skew(skewed)
    assert skew == 2.5 and (fixed.cameras.K[..., 0, 1] == 0).all()
    assert torch.equal(fixed.cameras.K[..., 1:, :], K[..., 1:, :])
    assert torch.equal(fixed.cameras.c2w, scene.cameras.c2w)
