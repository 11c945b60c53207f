"""Task scores and their baselines; the benchmark runner's outputs."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.eval.runner import run_benchmark
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


class Perfect:
    """A stand-in pipeline that returns the truth it is asked about (and fails on one clip)."""

    defaults = {"num_frames": 5, "height": 24, "width": 32}

    def __init__(self, scenes):
        self.scenes = scenes

    def observed(self, scene, task):
        return scene

    def __call__(self, scene, task, **kwargs):
        if scene is self.scenes[-1]:
            raise ValueError("rays determine no camera")
        return type("R", (), {"scene": scene, "failures": []})()


def test_runner_writes_clips_tables_and_counts_failures(tmp_path):
    scenes = [truth(s) for s in range(3)]
    clips = [("synthetic", f"clip_{i}", s) for i, s in enumerate(scenes)]
    table = run_benchmark(Perfect(scenes), clips, "geometry", tmp_path, progress=False)
    assert table.counts[("synthetic", "any4d")] == 2
    assert table.counts[("synthetic", "static camera")] == 3
    assert table.failed == {"synthetic": {"clip_2": "rays determine no camera"}}
    assert table.rows[("synthetic", "any4d")]["abs_rel"] < 1e-6
    record = json.loads((tmp_path / "clips" / "synthetic" / "clip_2.json").read_text())
    assert record["error"] == "rays determine no camera" and record["ours"] is None
    rows = list(csv.reader((tmp_path / "table.csv").open()))
    assert rows[0][:3] == ["dataset", "method", "clips"] and rows[1][1] == "any4d"
    assert "failed: synthetic/clip_2" in (tmp_path / "table.md").read_text()


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

    clip = SyntheticClips(SyntheticConfig(num_frames=5, height=32, width=32, fps=4.0),
                          split="heldout", size=1)[0]  # fmt: skip
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


def test_run_benchmark_checks_the_depth_range_first(tmp_path):
    for bad in ((2.0, 1.0), (0.0, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match=r"depth_range=.*expected 0 < near < far"):
            run_benchmark(None, [], "interpolate", tmp_path, depth_range=bad)
