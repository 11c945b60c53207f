"""any4d complete on a user's video / frames folder: the whole clip at its own resolution, every
output written and readable (predicted cameras included), a failed run leaving ``--out`` as it
was, and bad inputs refused before the model loads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.cli import main
from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.demo import shipped_checkpoint
from any4d.geometry import Cameras
from any4d.pipeline import Any4DPipeline
from any4d.viz.exports_geometry import read_depth_npz, read_depth_png16, read_ply
from tests.tiny_pipeline import tiny_pipeline

VIDEO_FRAMES, VIDEO_SIZE, VIDEO_FPS = 9, (24, 40), 10


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained model of 3-frame 16 × 16 clips (its rays may determine no camera)."""
    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("pipe"))


def frames_of(scene: Scene):
    return ((scene.rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()


@pytest.fixture(scope="module")
def truth():
    return render_clip(7, num_frames=VIDEO_FRAMES, height=VIDEO_SIZE[0], width=VIDEO_SIZE[1])


@pytest.fixture(scope="module")
def video(tmp_path_factory, truth):
    """An mp4 the model never saw: 9 frames of 40 × 24 (not the model's size or aspect)."""
    import av

    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = VIDEO_SIZE[1], VIDEO_SIZE[0], "yuv420p"
        for frame in frames_of(truth):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def run(*args) -> int:
    return main(["complete", *map(str, args), "--no-progress"])


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, video):
    """``geometry`` on frames 1, 3, 5, 7 of the video by the shipped model, which decodes
    cameras: (out folder, printed line)."""
    out = tmp_path_factory.mktemp("predicted") / "out"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = run(video, "--task", "geometry", "--frames", "1:", "--stride", "2",
                     "--steps", "4", "--out", out)  # fmt: skip
    assert status == 0
    return out, printed.getvalue()


# ---------------------------------------------------------------------- the whole clip


def test_complete_a_video_covers_every_frame_at_its_resolution(tmp_path, video, checkpoint, capsys):
    out = tmp_path / "out"
    assert run(video, "--task", "video", "--checkpoint", checkpoint, "--out", out) == 0
    line = capsys.readouterr().out
    height, width = VIDEO_SIZE
    assert f"completed {VIDEO_FRAMES} frames at {width}x{height} in " in line
    assert f"any4d view {out / 'scene.safetensors'}" in line
    frames = sorted((out / "frames").glob("*.png"))
    assert [p.name for p in frames] == [f"{i:06d}.png" for i in range(VIDEO_FRAMES)]
    assert Image.open(frames[0]).size == (width, height)
    depth = read_depth_npz(out / "depth.npz")
    assert depth.shape == (VIDEO_FRAMES, height, width) and (depth > 0).all()
    assert read_depth_png16(out / "depth" / "000004.png").shape == (height, width)
    record = json.loads((out / "result.json").read_text())
    assert record["frames"]["count"] == VIDEO_FRAMES and record["size"] == [height, width]
    assert record["model_size"] == [16, 16] and record["fit"] == "pad"
    # 3-frame windows that observe 1 completed frame: 0-2, 2-4, 4-6, 6-8.
    assert [w["frames"] for w in record["windows"]] == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8]]
    assert [w["context"] for w in record["windows"]] == [0, 1, 1, 1]
    assert set(record["written"]) >= {"frames/", "depth.npz", "scene.safetensors", "result.json"}
    for name in record["written"]:
        assert (out / name).exists(), name
    # The observed first frame comes back as read (video → PNG is lossless from here).
    first = np.asarray(Image.open(frames[0]))
    from any4d.data import read_user_scene

    source = read_user_scene(video).frames([0])
    assert np.array_equal(first, frames_of(source)[0])


def test_the_pictures_show_the_input_frames_legibly(predicted):
    """grid.png and video.mp4 show the input's own frames (not the model's 16 × 16), upscaled
    to a legible size, with one colour bar; the video lasts at least 4 s; the display scratch
    files are gone."""
    import av

    out, _ = predicted
    with Image.open(out / "grid.png") as grid:
        assert max(grid.size) >= 512
        pixels = np.asarray(grid.convert("RGB"))
    with av.open(str(out / "video.mp4")) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        seconds = len(frames) / float(stream.average_rate)
    assert len(frames) == 4 and seconds >= 4.0 - 1e-6  # frames 1, 3, 5, 7 at 5 fps → slowed
    assert max(frames[0].shape[:2]) >= 512
    # The input's aspect ratio (40 × 24) is kept: an upscaled input frame is in the grid.
    from any4d.viz.layout import upscale_factor

    factor = upscale_factor(*VIDEO_SIZE)
    first = np.asarray(Image.open(out / "frames" / "000001.png").convert("RGB"))
    tile = first.repeat(factor, 0).repeat(factor, 1)
    found = any(
        np.abs(pixels[y : y + tile.shape[0], x : x + tile.shape[1]].astype(int) - tile).mean() < 1
        for y in range(0, 80)
        for x in range(0, 200)
        if pixels[y : y + tile.shape[0], x : x + tile.shape[1]].shape == tile.shape
    )
    assert found, "the first input frame, upscaled, is not in grid.png"
    assert not list(out.glob(".display-*"))


def test_frame_options_choose_fewer(tmp_path, video, checkpoint):
    out = tmp_path / "out"
    args = ("--frames", "2:9", "--stride", "3", "--max-frames", "2")
    assert run(video, "--checkpoint", checkpoint, "--out", out, *args) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["frames"] == {"start": 2, "stop": 6, "stride": 3, "count": 2, "of": 9}
    assert record["fps"] == VIDEO_FPS / 3
    assert sorted(p.name for p in (out / "frames").glob("*")) == ["000002.png", "000005.png"]


def test_crop_is_an_explicit_option(tmp_path, video, checkpoint):
    out = tmp_path / "out"
    assert run(video, "--checkpoint", checkpoint, "--out", out, "--fit", "crop") == 0
    depth = read_depth_npz(out / "depth.npz")
    assert depth.shape == (VIDEO_FRAMES, *VIDEO_SIZE)
    # A 40 × 24 frame cropped to a square keeps its middle 24 columns: the sides are invalid.
    assert (depth[:, :, :4] == 0).all() and (depth[:, :, 12:28] > 0).all()


# ---------------------------------------------------------------------- predicted cameras


def test_predicted_cameras_are_exported_for_every_frame(predicted, truth):
    out, line = predicted
    record = json.loads((out / "result.json").read_text())
    assert record["failures"] == [], record["failures"]
    names = [f"{i:06d}.png" for i in (1, 3, 5, 7)]
    assert sorted(p.name for p in (out / "frames").glob("*")) == names
    assert "cameras/" in line and "points.ply" in line
    data = json.loads((out / "cameras" / "cameras.json").read_text())
    assert data["fps"] == pytest.approx(VIDEO_FPS / 2)  # the stride halves the clip's fps
    assert (data["height"], data["width"]) == VIDEO_SIZE
    K = torch.tensor(data["K"], dtype=torch.float64)
    assert K.shape == (4, 3, 3) and (K[:, 0, 1] == 0).all()  # zero skew, for COLMAP
    # Intrinsics of the input's pixel grid: the principal point lies inside the 40 × 24 frame.
    assert ((K[:, 0, 2] > 0) & (K[:, 0, 2] < VIDEO_SIZE[1])).all()
    assert ((K[:, 1, 2] > 0) & (K[:, 1, 2] < VIDEO_SIZE[0])).all()
    assert record["skew_removed_px"] >= 0.0


def test_tum_timestamps_are_the_frames_times_in_the_video(predicted):
    from evo.tools import file_interface

    out, _ = predicted
    trajectory = file_interface.read_tum_trajectory_file(str(out / "cameras" / "trajectory.tum"))
    np.testing.assert_allclose(trajectory.timestamps, np.array([1, 3, 5, 7]) / VIDEO_FPS)
    c2w = json.loads((out / "cameras" / "cameras.json").read_text())["c2w"]
    np.testing.assert_allclose(trajectory.positions_xyz, np.array(c2w)[:, :3, 3], atol=1e-6)


def test_transforms_json_and_colmap_name_the_written_frames(predicted):
    out, _ = predicted
    transforms = json.loads((out / "cameras" / "transforms.json").read_text())
    for frame in transforms["frames"]:
        assert (out / "cameras" / frame["file_path"]).resolve().is_file(), frame["file_path"]
    assert (transforms["h"], transforms["w"]) == VIDEO_SIZE
    images = (out / "cameras" / "colmap" / "images.txt").read_text().splitlines()
    entries = [line.split() for line in images if not line.startswith("#")]
    named = [entry[-1] for entry in entries if len(entry) == 10]  # IMAGE_ID … NAME lines
    assert sorted(named) == ["000001.png", "000003.png", "000005.png", "000007.png"]
    for name in named:
        assert (out / "frames" / name).is_file()


def test_the_colmap_export_reads_back_as_our_cameras(predicted):
    from any4d.data.readers.user import UserClip

    out, _ = predicted
    written = json.loads((out / "cameras" / "cameras.json").read_text())
    scene = UserClip(out / "frames", cameras=out / "cameras" / "colmap")[0]
    torch.testing.assert_close(scene.cameras.c2w, torch.tensor(written["c2w"]).float(),
                               atol=1e-4, rtol=0)  # fmt: skip


def test_pycolmap_reads_the_colmap_export(predicted):
    import pycolmap

    out, _ = predicted
    written = json.loads((out / "cameras" / "cameras.json").read_text())
    model = pycolmap.Reconstruction(str(out / "cameras" / "colmap"))
    images = sorted(model.images.values(), key=lambda image: image.name)
    assert [image.name for image in images] == [f"{i:06d}.png" for i in (1, 3, 5, 7)]
    for image, c2w, K in zip(images, written["c2w"], written["K"], strict=True):
        w2c = np.eye(4)
        pose = image.cam_from_world  # a method since pycolmap 3.12, a property before
        w2c[:3] = (pose() if callable(pose) else pose).matrix()
        np.testing.assert_allclose(np.linalg.inv(w2c), c2w, atol=1e-4)
        camera = model.cameras[image.camera_id]
        assert (camera.height, camera.width) == VIDEO_SIZE
        np.testing.assert_allclose(camera.calibration_matrix(), K, atol=1e-3)


def test_the_point_cloud_holds_every_frame(predicted):
    out, _ = predicted
    points, colors = read_ply(out / "points.ply")
    assert points.shape[1] == 3 and colors.shape == points.shape
    assert len(points) == 4 * VIDEO_SIZE[0] * VIDEO_SIZE[1]  # every valid pixel of 4 frames


# ---------------------------------------------------------------------- a run that fails


def test_a_failed_run_leaves_the_previous_out_untouched(tmp_path, video, checkpoint, monkeypatch):
    out = tmp_path / "out"
    assert run(video, "--checkpoint", checkpoint, "--out", out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    from any4d import complete_outputs

    def broken(self):
        raise ValueError("the disk broke while writing the pictures")

    monkeypatch.setattr(complete_outputs.CompletionWriter, "_finish", broken)
    assert run(video, "--checkpoint", checkpoint, "--out", out, "--task", "video") == 1
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def test_a_second_run_replaces_the_first(tmp_path, video, checkpoint):
    out = tmp_path / "out"
    assert run(video, "--checkpoint", checkpoint, "--out", out) == 0
    (out / "stale.txt").write_text("from an earlier run")
    assert run(video, "--checkpoint", checkpoint, "--out", out, "--max-frames", "3") == 0
    assert not (out / "stale.txt").exists()
    assert len(list((out / "frames").glob("*.png"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------------- bad input


def write_frames_folder(folder, scene, mode=None):
    """The clip's RGB as numbered PNGs in ``folder`` (created); returns ``folder``."""
    folder.mkdir()
    for i, frame in enumerate(frames_of(scene)):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def inputs(tmp_path, truth):
    """Files for the bad-input cases, by name."""
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all")
    (tmp_path / "a_file").write_text("not a folder")
    folder = write_frames_folder(tmp_path / "frames", truth)
    depth = tmp_path / "depth_wrong"
    depth.mkdir()
    for i in range(VIDEO_FRAMES):
        np.save(depth / f"{i:03d}.npy", np.ones((24, 24), np.float32))
    depth8 = tmp_path / "depth8"
    depth8.mkdir()
    for i in range(VIDEO_FRAMES):
        Image.fromarray(np.full((24, 40), 7, np.uint8)).save(depth8 / f"{i:03d}.png")
    c2w = torch.eye(4).expand(VIDEO_FRAMES, 4, 4).tolist()
    K = [[30.0, 0, 20], [0, 30, 12], [0, 0, 1]]
    cameras = {"c2w": c2w, "K": K}
    for name, extra in {
        "fps_fast": {"fps": "fast"},
        "stretched": {"width": 40, "height": 40},
        "distorted": {"distortion": [0.1, 0, 0, 0]},
        "good": {},
    }.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({**cameras, **extra}))
    colmap = tmp_path / "colmap"
    colmap.mkdir()
    (colmap / "cameras.txt").write_text("1 SIMPLE_RADIAL 40 24 30 20 12 0.1\n")
    lines = [f"{i + 1} 1 0 0 0 0 0 0 1 {i:03d}.png\n\n" for i in range(VIDEO_FRAMES)]
    (colmap / "images.txt").write_text("".join(lines))
    missing = tmp_path / "colmap_missing"
    missing.mkdir()
    (missing / "cameras.txt").write_text("2 PINHOLE 40 24 30 30 20 12\n")
    (missing / "images.txt").write_text("".join(lines))
    grey16 = tmp_path / "grey16"
    grey16.mkdir()
    for i in range(3):
        Image.fromarray(np.full((24, 40), 40000, np.uint16)).save(grey16 / f"{i:03d}.png")
    return {"frames": folder, "tmp": tmp_path}


BAD = [
    (["missing.mp4"], "missing.mp4"),
    (["garbage.mp4"], "garbage.mp4"),
    (["VIDEO", "--task", ""], "--task is ''"),
    (["VIDEO", "--task", "rgb:0,x"], "frames must be 'all' or comma-separated integers"),
    (["VIDEO", "--task", "interpolate"], "pass --cameras"),
    (["VIDEO", "--task", "depth_to_video"], "pass --depth"),
    (["VIDEO", "--frames", "5:3"], "--frames '5:3'"),
    (["VIDEO", "--frames", "4:20"], "the input has 9 frames"),
    (["VIDEO", "--frames", "20:"], "--frames 20: asks"),
    (["FRAMES", "--depth", "TMP/nowhere", "--task", "depth_to_video"], "--depth "),
    (["FRAMES", "--cameras", "TMP/nowhere", "--task", "depth"], "--cameras "),
    (["VIDEO", "--intrinsics", "100,100,16"], "expected fx,fy,cx,cy"),
    (["VIDEO", "--candidates", "100000000000"], "--candidates 100000000000 needs"),
    (["VIDEO", "--text-encoder", "nowhere"], "--text-encoder nowhere does not exist"),
    (["VIDEO", "--out", "TMP/a_file"], "is an existing file"),
    (["VIDEO", "--out", "TMP/a_file/out"], "cannot be written"),
    (["VIDEO", "--start", "3"], "--start is now --frames"),
    (["FRAMES", "--depth", "TMP/depth_wrong", "--task", "depth_to_video"], "stretched"),
    (["FRAMES", "--depth", "TMP/depth8", "--task", "depth_to_video"], "8-bit PNG"),
    (["FRAMES", "--cameras", "TMP/fps_fast.json", "--task", "depth"], '"fps"'),
    (["FRAMES", "--cameras", "TMP/stretched.json", "--task", "depth"], "stretched unevenly"),
    (["FRAMES", "--cameras", "TMP/distorted.json", "--task", "depth"], "undistort"),
    (["FRAMES", "--cameras", "TMP/colmap", "--task", "depth"], "SIMPLE_RADIAL"),
    (["FRAMES", "--cameras", "TMP/colmap_missing", "--task", "depth"], "does not list"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_inputs_are_refused_before_the_model_loads(
    inputs, video, checkpoint, capsys, monkeypatch, args, message
):
    def no_model(*_, **__):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(Any4DPipeline, "from_pretrained", no_model)
    tmp = inputs["tmp"]
    names = {"VIDEO": str(video), "FRAMES": str(inputs["frames"])}
    args = [names.get(a, a.replace("TMP", str(tmp))) for a in args]
    if not args[0].startswith("/"):
        args[0] = str(tmp / args[0])
    if "--out" not in args:
        args += ["--out", str(tmp / "out")]
    assert run(*args, "--checkpoint", checkpoint) == 1
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp / "out").exists()
    assert not [p for p in tmp.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth-scale", "0"], "argument --depth-scale: 0.0 is not"),
        (["--depth-scale", "nan"], "argument --depth-scale: nan is not"),
        (["--guidance", "nan"], "argument --guidance: nan is not"),
        (["--candidates", "0"], "argument --candidates: 0 is not"),
        (["--fit", "stretch"], "--fit: invalid choice"),
        (["--overlap", "-1"], "argument --overlap: -1 is not"),
    ],
)
def test_bad_options_are_usage_errors(video, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        run(video, *args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_full_disk_is_refused_before_the_model_runs(
    tmp_path, video, checkpoint, monkeypatch, capsys
):
    from any4d import complete

    monkeypatch.setattr(complete.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(1, 1, 1))
    assert run(video, "--checkpoint", checkpoint, "--out", tmp_path / "out") == 1
    assert "the disk has 0 MiB free" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_untrained_model_without_cameras_still_writes_result_json(tmp_path, video, checkpoint):
    out = tmp_path / "out"
    assert run(video, "--task", "geometry", "--checkpoint", checkpoint, "--out", out) == 0
    record = json.loads((out / "result.json").read_text())
    if not (out / "cameras").exists():
        assert any(f.startswith("cameras:") for f in record["failures"])
    assert "result.json" in record["written"]


def test_16bit_grey_frames_are_read_from_their_bit_depth(inputs, checkpoint):
    out = inputs["tmp"] / "out"
    assert run(inputs["tmp"] / "grey16", "--checkpoint", checkpoint, "--out", out) == 0
    frame = np.asarray(Image.open(out / "frames" / "000000.png"))
    assert abs(int(frame[0, 0, 0]) - round(40000 / 65535 * 255)) <= 1  # not white


def test_predicted_skew_is_removed_for_the_exports():
    from any4d.complete_outputs import without_skew

    cameras = render_clip(1, num_frames=3, height=16, width=16).cameras
    same, skew = without_skew(cameras)
    assert same is cameras and skew == 0.0
    K = cameras.K.clone()
    K[1, 0, 1] = -2.5
    fixed, skew = without_skew(Cameras.unchecked(K, cameras.c2w))
    assert skew == 2.5 and (fixed.K[..., 0, 1] == 0).all()
    assert torch.equal(fixed.K[..., 1:, :], K[..., 1:, :])
    assert torch.equal(fixed.c2w, cameras.c2w)


def test_the_shipped_checkpoint_is_the_default():
    assert (shipped_checkpoint() / "pipeline.json").is_file()
