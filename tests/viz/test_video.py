"""Videos: MP4 / GIF round trips, odd sizes, panel layout and shared scales, clear errors."""

import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.viz import clip_grid, to_uint8
from any4d.viz.video import (
    comparison_frames,
    comparison_video,
    save_video,
    scene_frames,
    scene_video,
)

T, H, W = 6, 32, 48


@pytest.fixture(scope="module")
def scene() -> Scene:
    return render_clip(0, num_frames=T, height=H, width=W)


def _decode(path) -> tuple[np.ndarray, Fraction]:
    """(T, H, W, 3) uint8 frames and the stream's average rate of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return np.stack(frames), stream.average_rate


def test_mp4_round_trip_keeps_frame_count_size_fps_and_colour(scene, tmp_path):
    written = scene_frames(scene)  # (T, 3, H, 4·W + 6) uint8
    path = scene_video(scene, tmp_path / "clip.mp4")
    decoded, rate = _decode(path)
    assert decoded.shape == (T, H, 4 * W + 6, 3)
    assert rate == scene.fps == 10
    expected = written.permute(0, 2, 3, 1).double()  # (T, H, W', 3)
    got = torch.from_numpy(decoded).double()
    # H.264 is lossy: per-frame mean colours agree to a few levels, pixels on average to ~10.
    mean_error = (got.mean(dim=(1, 2)) - expected.mean(dim=(1, 2))).abs()
    assert float(mean_error.max()) < 3, mean_error
    assert float((got - expected).abs().mean()) < 10


def test_float_frames_odd_sizes_and_fractional_fps(tmp_path):
    colour = torch.tensor([0.2, 0.6, 0.9])
    frames = colour[None, :, None, None].expand(3, 3, 5, 7).clone()
    path = save_video(tmp_path / "odd.mp4", frames, fps=12.5)
    decoded, rate = _decode(path)
    # padded by repeating the last row and column: 5 × 7 → 6 × 8, same colour throughout
    assert decoded.shape == (3, 6, 8, 3)
    assert rate == Fraction(25, 2)
    np.testing.assert_allclose(decoded.mean(axis=(0, 1, 2)), colour.numpy() * 255, atol=4)


def test_gif_round_trip_through_pillow(scene, tmp_path):
    written = scene_frames(scene)
    path = scene_video(scene, tmp_path / "clip.gif", fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == T
        assert gif.size == (4 * W + 6, H)  # Pillow reports (width, height)
        assert gif.info["duration"] == 200  # milliseconds per frame at 5 fps
        for t in range(T):
            gif.seek(t)
            frame = torch.from_numpy(np.array(gif.convert("RGB"))).double()
            expected = written[t].permute(1, 2, 0).double()
            # a 256-colour palette per frame: mean colour within a few levels
            assert float((frame.mean((0, 1)) - expected.mean((0, 1))).abs().max()) < 3


def test_panels_match_the_clip_grid_tiles(scene):
    # The video's panels are the grid's tiles: clip_grid of every frame uses the same depth
    # range (whole clip) and moment scale (shown frames = whole clip).
    frames = scene_frames(scene, separator=2)
    grid = to_uint8(clip_grid(scene, max_frames=T, separator=2))  # rows: streams, cols: frames
    for t in (0, 3, T - 1):
        for panel in range(4):
            left, top, column = panel * (W + 2), panel * (H + 2), t * (W + 2)
            video_tile = frames[t, :, :, left : left + W]
            grid_tile = grid[:, top : top + H, column : column + W]
            assert (video_tile.int() - grid_tile.int()).abs().max() <= 1  # rounding only


def test_streams_the_scene_lacks_are_left_out(scene):
    rgb_only = Scene(rgb=scene.rgb)
    assert scene_frames(rgb_only).shape == (T, 3, H, W)
    assert scene_frames(Scene(rgb=scene.rgb, depth=scene.depth)).shape == (T, 3, H, 2 * W + 2)
    assert scene_frames(scene, rays=False, separator=0).shape == (T, 3, H, 2 * W)
    expected = torch.stack([to_uint8((frame + 1) / 2) for frame in scene.rgb])
    assert torch.equal(scene_frames(rgb_only), expected)


def test_depth_range_sets_the_depth_colours(scene):
    near = scene_frames(scene, depth_range=(0.1, 0.2), rays=False, separator=0)
    far = scene_frames(scene, depth_range=(100.0, 200.0), rays=False, separator=0)
    # every pixel is beyond 0.2 m (far end of the colormap) and nearer than 100 m (near end)
    assert not torch.equal(near[..., W:], far[..., W:])
    assert torch.equal(near[..., :W], far[..., :W])  # RGB untouched
    assert (near[..., W:] == near[0, :, 0, W][None, :, None, None]).all()


def test_comparison_lines_up_columns_and_shares_scales(scene, tmp_path):
    rows = {"input": Scene(rgb=scene.rgb, fps=scene.fps), "completed": scene, "again": scene}
    frames = comparison_frames(rows, labels=False, separator=2)
    assert frames.shape == (T, 3, 3 * H + 2 * 2, 4 * W + 3 * 2)
    top, middle, bottom = (frames[:, :, r * (H + 2) : r * (H + 2) + H] for r in range(3))
    assert torch.equal(middle, bottom)  # one scale for every row
    assert torch.equal(top[..., :W], middle[..., :W])  # same RGB
    assert (top[..., W + 2 :] == 255 * (top[..., W + 2 :] > 0)).all()  # black panels, white gaps
    assert int(top[..., W + 2 : 2 * W + 2].max()) == 0  # depth absent: black
    labelled = comparison_frames(rows)
    assert labelled.shape[2] == frames.shape[2] + 3 * 14
    decoded, rate = _decode(comparison_video(rows, tmp_path / "compare.mp4"))
    assert decoded.shape[:3] == (T, labelled.shape[2], labelled.shape[3]) and rate == 10


def test_comparison_rejects_rows_of_different_clips(scene):
    shorter = scene.frames(slice(0, 3))
    with pytest.raises(ValueError, match=r"rows\['b'\] has rgb \(3, 3, 32, 48\)"):
        comparison_frames({"a": scene, "b": shorter})
    with pytest.raises(ValueError, match="non-empty mapping"):
        comparison_frames({})
    with pytest.raises(ValueError, match=r"rows\['b'\] is a Tensor"):
        comparison_frames({"a": scene, "b": scene.rgb})


@pytest.mark.parametrize(
    "frames, message",
    [
        (torch.zeros(3, 8, 8), r"expected \(T, 3, H, W\)"),
        (torch.zeros(2, 4, 8, 8), r"expected \(T, 3, H, W\)"),
        (torch.zeros(0, 3, 8, 8), r"T, H, W ≥ 1"),
        (torch.full((2, 3, 8, 8), -1.0), r"expected floats in \[0, 1\]"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.int32), "expected float in"),
        (np.zeros((2, 3, 8, 8)), "must be a tensor"),
    ],
)
def test_bad_frames_are_clear_errors(frames, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        save_video(tmp_path / "bad.mp4", frames)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left behind


def test_bad_suffix_and_fps_are_clear_errors(tmp_path):
    frames = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"suffix '\.avi' \(expected one of"):
        save_video(tmp_path / "clip.avi", frames)
    with pytest.raises(ValueError, match="fps is 0"):
        save_video(tmp_path / "clip.mp4", frames, fps=0)


def test_failed_write_keeps_the_old_file(monkeypatch, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(ImportError, match=r"pip install \"any4d\[viz\]\" \(or pip install av\)"):
        save_video(path, torch.zeros(2, 3, 8, 8))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_importing_video_and_frustums_does_not_import_av_matplotlib_or_pillow():
    code = (
        "import sys, any4d.viz.video, any4d.viz.frustums; "
        "print(*(m in sys.modules for m in ('av', 'matplotlib', 'PIL')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False"]
