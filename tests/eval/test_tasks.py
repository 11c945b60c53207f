"""Task scores and their baselines (the runner: test_runner.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.eval.depth_metrics import depth_metrics
from any4d.eval.tasks import (
    constant_velocity_ate,
    cross_fade,
    geometry_baselines,
    geometry_scores,
    interpolation_baselines,
    interpolation_scores,
    static_camera_ate,
)
from any4d.geometry import Cameras


def truth(seed=0):
    return render_clip(seed, num_frames=5, height=24, width=32, trajectories=("orbit",))


def test_perfect_geometry_scores_zero_and_beats_every_baseline():
    scene = truth()
    scores = geometry_scores(scene, scene)
    assert scores["abs_rel"] < 1e-6 and scores["ate"] < 1e-6 and scores["rpe_r"] < 1e-3
    floors = geometry_baselines(scene)
    assert floors["constant depth"]["abs_rel"] > 0.05
    assert floors["static camera"]["ate"] > 0 and floors["constant velocity"]["ate"] >= 0


def test_geometry_scores_use_the_named_depth_protocol():
    scene = truth(4)
    pred = dataclasses.replace(scene, depth=2.0 * scene.depth + 0.5)  # right up to scale + shift
    assert geometry_scores(pred, scene)["abs_rel"] < 1e-6  # default: Geo4D's L1 scale + shift
    assert geometry_scores(pred, scene, "geo4d")["abs_rel"] < 1e-6
    scale_only = geometry_scores(pred, scene, "scale")["abs_rel"]
    metric = geometry_scores(pred, scene, "none")["abs_rel"]
    expected = depth_metrics(pred.depth, scene.depth, protocol="none")["abs_rel"]
    assert metric == pytest.approx(expected) and metric > 1.0  # unaligned: 2·D + 0.5 vs D
    assert 1e-3 < scale_only < metric  # a scale absorbs the 2, not the shift


def test_the_constant_depth_baseline_is_the_median_of_the_valid_true_depth():
    # Skewed depth with invalid pixels: the mean of the valid depth (≈ 4.5 m), its median
    # (≈ 1.3 m) and the median of every pixel, zeros included (≈ 1.2 m), all differ.
    scene = truth(5)
    depth = torch.zeros_like(scene.depth)  # (T, 1, 24, 32); columns 26 … 31 stay invalid
    depth[..., :16] = torch.linspace(0.5, 1.5, 16)  # near, graded
    depth[..., 16:26] = 10.0  # far
    scene = dataclasses.replace(scene, depth=depth)
    valid = depth[depth > 0]
    floor = geometry_baselines(scene)["constant depth"]

    def constant(value):
        metrics = depth_metrics(
            torch.full_like(depth, float(value)), depth, valid=depth > 0, protocol="none"
        )
        return {k: metrics[k] for k in ("abs_rel", "rmse", "delta1")}

    assert floor == pytest.approx(constant(valid.median()))
    assert floor["abs_rel"] < constant(valid.mean())["abs_rel"] - 0.5
    assert floor["rmse"] != pytest.approx(constant(depth.median())["rmse"])


def test_static_and_constant_velocity_ate_are_their_definitions():
    c2w = torch.eye(4, dtype=torch.float64).repeat(4, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert abs(static_camera_ate(c2w) - math.sqrt(1.25)) < 1e-12  # spread of 0, 1, 2, 3
    assert constant_velocity_ate(c2w) < 1e-12  # a uniform straight path is exact
    c2w[:, 1, 3] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # zig-zag: a line cannot follow
    assert constant_velocity_ate(c2w) > 0.4


def test_cross_fade_is_the_baseline_interpolation():
    scene = truth(1)
    fade = cross_fade(scene)
    assert torch.equal(fade[0], scene.rgb[0]) and torch.allclose(fade[-1], scene.rgb[-1])
    assert torch.allclose(fade[2], (scene.rgb[0] + scene.rgb[-1]) / 2)
    same = interpolation_scores(dataclasses.replace(scene, rgb=fade), scene)
    assert same == interpolation_baselines(scene)["cross-fade"]


def test_cameras_of_a_perfect_prediction_in_another_frame_still_score_zero():
    scene = truth(2)
    turn = torch.tensor([[0.0, -1, 0, 0.5], [1, 0, 0, -2], [0, 0, 1, 1], [0, 0, 0, 1]])
    moved = scene.cameras.transform_world(turn)
    scaled = Cameras(moved.K, moved.c2w.clone())
    scaled.c2w[:, :3, 3] *= 3.0
    scores = geometry_scores(dataclasses.replace(scene, cameras=scaled), scene)
    assert scores["ate"] < 1e-5


def test_mask_scores_only_what_the_task_generates():
    from any4d.diffusion import PRESETS
    from any4d.eval.tasks import mask_baselines, mask_scores

    scene = truth(3)
    depth_only = mask_scores(PRESETS["depth"], scene, scene)
    assert set(depth_only) == {"abs_rel", "rmse", "delta1"}  # cameras and RGB were given
    assert set(mask_baselines(PRESETS["depth"], scene)) == {"constant depth"}
    video = mask_baselines(PRESETS["video"], scene)
    assert set(video) == {"constant depth", "static camera", "constant velocity", "first frame"}
    interpolate = mask_baselines(PRESETS["interpolate"], scene)
    assert set(interpolate) == {"constant depth", "cross-fade"}
    assert mask_scores(PRESETS["interpolate"], scene, scene)["psnr_pooled"] == float("inf")


def test_the_plane_sweep_baseline_needs_a_depth_range_and_every_camera():
    from any4d.data import SyntheticClips, SyntheticConfig
    from any4d.diffusion import PRESETS, Mask
    from any4d.eval.tasks import mask_baselines, plane_sweep_frames, task_baselines

    clip = SyntheticClips(
        SyntheticConfig(num_frames=5, height=32, width=32, fps=4.0), split="heldout", size=1
    )[0]
    near_far = (0.9, 6.0)
    assert "plane sweep" not in mask_baselines(PRESETS["interpolate"], clip)
    with_sweep = mask_baselines(PRESETS["interpolate"], clip, near_far)
    assert set(with_sweep) == {"constant depth", "cross-fade", "plane sweep"}
    # Frames 0 and 4 come back as given; the sweep beats the fade on this clip (+6 dB measured).
    frames = plane_sweep_frames(clip, near_far)
    assert torch.equal(frames[[0, 4]], clip.rgb[[0, 4]])
    sweep, fade = with_sweep["plane sweep"], with_sweep["cross-fade"]
    assert sweep["psnr_pooled"] > fade["psnr_pooled"] + 2.0, (sweep, fade)
    assert task_baselines("interpolate", clip, near_far)["plane sweep"] == sweep
    # Without every camera (sparse geometry: first and last frame only) there is no sweep.
    assert "plane sweep" not in mask_baselines(PRESETS["sparse_geometry"], clip, near_far)
    some_rays = Mask({"rgb": (0, -1), "rays": (0, 1, 2, 3)})
    assert "plane sweep" not in mask_baselines(some_rays, clip, near_far)
    with pytest.raises(ValueError, match="needs the scene's cameras"):
        plane_sweep_frames(dataclasses.replace(clip, cameras=None), near_far)
