"""Figures of a completion: the prediction shown as it was scored, one colour scale for truth,
prediction, PNG and MP4, error rows that are the metric's per-pixel terms."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.eval.depth_metrics import depth_metrics
from any4d.geometry import Cameras
from any4d.viz.colormap import colorize_depth
from any4d.viz.figures import (
    DEPTH_ERROR_RANGE,
    compare,
    comparison_figure,
    comparison_video_figure,
    error_tiles,
    for_display,
    scales_of,
    scene_figure,
    scene_frame_figure,
    stream_tiles,
    watchable_fps,
    write_comparison,
)
from any4d.viz.layout import upscale

T, H, W = 5, 16, 20


@pytest.fixture(scope="module")
def truth() -> Scene:
    return render_clip(3, num_frames=T, height=H, width=W)


def _moved(cameras: Cameras, scale: float) -> Cameras:
    """cameras in another world: turned, shifted and scaled (a Sim(3) away)."""
    angle = torch.tensor(0.7, dtype=cameras.dtype)
    c, s = torch.cos(angle), torch.sin(angle)
    turn = torch.eye(4, dtype=cameras.dtype)
    turn[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=cameras.dtype)
    turn[:3, 3] = torch.tensor([1.0, -2.0, 0.5], dtype=cameras.dtype)
    return cameras.scaled(scale).transform_world(turn)


def _prediction(truth: Scene) -> Scene:
    """A completion whose depth is an affine map of the truth plus noise, cameras a Sim(3) of
    the truth's, RGB slightly off."""
    generator = torch.Generator().manual_seed(0)
    noise = 1 + 0.2 * torch.rand(truth.depth.shape, generator=generator)
    depth = (0.5 * truth.depth + 0.3) * noise * (truth.depth > 0)
    rgb = (truth.rgb + 0.1 * torch.randn(truth.rgb.shape, generator=generator)).clamp(-1, 1)
    return Scene(rgb, depth, _moved(truth.cameras, 0.4), fps=truth.fps)


def test_compare_aligns_depth_as_the_metric_does(truth):
    prediction = _prediction(truth)
    comparison = compare(truth, prediction)
    gt = truth.depth[:, 0]
    metrics = depth_metrics(prediction.depth[:, 0], gt, valid=gt > 0, protocol="geo4d")
    assert comparison.depth_fit == pytest.approx((metrics["scale"], metrics["shift"]))
    valid = gt > 0
    shown = comparison.prediction.depth[:, 0][valid]
    expected = metrics["scale"] * prediction.depth[:, 0][valid] + metrics["shift"]
    torch.testing.assert_close(shown, expected.clamp_min(0))
    # The AbsRel of the shown depth with no further alignment is the scored AbsRel.
    again = depth_metrics(comparison.prediction.depth[:, 0], gt, valid=valid, protocol="none")
    assert again["abs_rel"] == pytest.approx(metrics["abs_rel"], rel=1e-4)


def test_a_disparity_fit_is_undone_in_disparity(truth):
    """DepthCrafter's protocol fits scale and shift to inverse depth."""
    prediction = Scene(truth.rgb, truth.depth * 2, truth.cameras, fps=truth.fps)
    comparison = compare(truth, prediction, protocol="depthcrafter")
    valid = truth.depth > 0
    torch.testing.assert_close(
        comparison.prediction.depth[valid], truth.depth[valid], rtol=1e-4, atol=0
    )


def test_observed_depth_is_shown_as_given(truth):
    prediction = _prediction(truth)
    comparison = compare(truth, prediction, depth_generated=False, cameras_generated=False)
    assert comparison.depth_fit is None and not comparison.cameras_aligned
    assert torch.equal(comparison.prediction.depth, prediction.depth)
    assert "depth" not in error_tiles(comparison, range(T))


def test_aligned_cameras_give_the_truths_rays(truth):
    """A prediction a Sim(3) away from the truth is drawn with the truth's ray colours."""
    prediction = Scene(truth.rgb, truth.depth, _moved(truth.cameras, 0.4), fps=truth.fps)
    comparison = compare(truth, prediction)
    assert comparison.cameras_aligned
    true_tiles = stream_tiles(truth, comparison.scales, range(T))
    shown_tiles = stream_tiles(comparison.prediction, comparison.scales, range(T))
    for stream in ("rays", "moments"):
        difference = (true_tiles[stream].int() - shown_tiles[stream].int()).abs()
        assert int(difference.max()) <= 1, stream
    # Without the alignment the moments (in the prediction's units, 0.4×) look different.
    raw = compare(truth, prediction, cameras_generated=False)
    raw_tiles = stream_tiles(raw.prediction, raw.scales, range(T))
    assert (true_tiles["moments"].int() - raw_tiles["moments"].int()).abs().max() > 10


def test_one_depth_scale_covers_truth_and_prediction(truth):
    prediction = Scene(truth.rgb, 3 * truth.depth, truth.cameras, fps=truth.fps)
    comparison = compare(truth, prediction, protocol="none")
    near, far = comparison.scales.depth
    assert near <= float(truth.depth[truth.depth > 0].quantile(0.05))
    assert far >= float((3 * truth.depth)[truth.depth > 0].quantile(0.9))
    tiles = stream_tiles(comparison.prediction, comparison.scales, [0])
    expected = colorize_depth(3 * truth.depth[:1], near=near, far=far)
    assert torch.equal(tiles["depth"], (expected * 255).round().to(torch.uint8))
    # Prediction three times as far: its colours differ from the truth's on the shared scale.
    true_tiles = stream_tiles(truth, comparison.scales, [0])
    assert (tiles["depth"].int() - true_tiles["depth"].int()).abs().float().mean() > 20


def test_depth_error_tiles_are_the_absrel_terms(truth):
    comparison = compare(truth, _prediction(truth))
    tiles = error_tiles(comparison, [1])
    gt = truth.depth[1, 0]
    relative = (comparison.prediction.depth[1, 0] - gt).abs() / gt.clamp_min(1e-9)
    from any4d.viz.colormap import colormap_table

    table = colormap_table("viridis", dtype=torch.float32, device="cpu")
    index = (relative / DEPTH_ERROR_RANGE).clamp(0, 1).mul(255).round().long()
    expected = (table[index].permute(2, 0, 1) * (gt > 0)).mul(255).round().to(torch.uint8)
    assert torch.equal(tiles["depth"][0], expected)
    assert "rgb" in tiles  # no frame was given: RGB was generated
    given = compare(truth, _prediction(truth), given=range(T))
    assert "rgb" not in error_tiles(given, [1])


def test_comparison_figure_is_legible_and_labelled(truth):
    comparison = compare(truth, _prediction(truth), given=[0])
    figure = comparison_figure(comparison, max_frames=3, title="t")
    assert max(figure.image.shape[1:]) >= 512
    for key in ("truth/rgb/0", "truth/depth/2", "prediction/moments/1", "error/depth/0"):
        assert key in figure.boxes
    box = figure.boxes["prediction/depth/1"]
    assert box.height >= 128  # 16 × 20 tiles upscaled ×8
    tiles = stream_tiles(comparison.prediction, comparison.scales, [2])  # frame 2: column 1
    factor = box.height // H
    assert torch.equal(box.crop(figure.image), upscale(tiles["depth"][0], factor))


def test_png_and_mp4_of_one_completion_share_the_depth_scale(truth, tmp_path):
    """On the written files: the MP4's prediction depth panel of frame t is the PNG's
    prediction depth tile of frame t (up to H.264), and not the truth's colours."""
    prediction = Scene(truth.rgb, 3 * truth.depth, truth.cameras, fps=truth.fps)
    comparison = compare(truth, prediction, protocol="none", given=range(T))
    png, mp4, gif = write_comparison(comparison, tmp_path / "clip", max_frames=T)
    assert gif.is_file()
    picture = torch.from_numpy(np.array(Image.open(png).convert("RGB"))).permute(2, 0, 1)
    with av.open(str(mp4)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == T
    layout = comparison_figure(comparison, max_frames=T)
    for t in (1, 3):
        video = torch.from_numpy(frames[t]).permute(2, 0, 1)
        box = comparison_video_figure(comparison, t).boxes["prediction/1"]
        panel = box.crop(video).float()
        tile = layout.boxes[f"prediction/depth/{t}"].crop(picture).float()
        truth_tile = layout.boxes[f"truth/depth/{t}"].crop(picture).float()
        assert panel.shape == tile.shape
        assert (panel - tile).abs().mean() < 6  # the same colours, but for compression
        assert (panel - truth_tile).abs().mean() > 20


def test_videos_are_slowed_to_be_watched():
    assert watchable_fps(5, 25.0) == pytest.approx(1.25)  # 5 frames last 4 s
    assert watchable_fps(250, 25.0) == 25.0  # 10 s already: never sped up or slowed
    with pytest.raises(ValueError):
        watchable_fps(0, 10.0)


def test_scene_figure_of_a_longer_clip_uses_the_clip_frame_numbers(truth):
    scales = scales_of([truth], unit="relative")
    figure = scene_figure(truth, scales, 3, frame_numbers=[10, 12, 14, 16, 18])
    assert {"scene/rgb/0", "scene/depth/2", "scene/moments/1"} <= set(figure.boxes)
    # A frame drawn alone with the clip's first camera as origin has the clip's ray colours.
    alone = scene_frame_figure(
        truth.frames([3]), scales, number=16, time=1.6, origin=truth.cameras.c2w[0]
    )
    together = stream_tiles(truth, scales, [3])
    moments = [k for k in alone.boxes if k.endswith("/3")]
    assert moments
    factor = alone.boxes[moments[0]].height // H
    assert torch.equal(
        alone.boxes[moments[0]].crop(alone.image), upscale(together["moments"][0], factor)
    )


def test_for_display_shrinks_without_blending_invalid_depth():
    scene = render_clip(1, num_frames=2, height=120, width=640)
    depth = scene.depth.clone()
    depth[:, :, :, :320] = 0  # the left half has no depth
    scene = Scene(scene.rgb, depth, scene.cameras, fps=scene.fps)
    shown = for_display(scene, 320)
    assert (shown.height, shown.width) == (60, 320)
    assert (shown.depth[..., :160] == 0).all() and (shown.depth[..., 160:] > 0).all()
    torch.testing.assert_close(shown.cameras.K[:, 0, 0], scene.cameras.K[:, 0, 0] / 2)
    assert (
        for_display(truth_sized := render_clip(0, num_frames=1, height=8, width=8)) is truth_sized
    )
