"""Task scores and their baselines (the runner: test_runner.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.eval.depth_metrics import depth_metrics
from any4d.eval.pose_metrics import rotation_angle
from any4d.eval.tasks import (
    aligned_pose_metrics,
    constant_velocity_ate,
    constant_velocity_path,
    cross_fade,
    geometry_baselines,
    geometry_scores,
    interpolation_baselines,
    interpolation_scores,
    static_camera_ate,
    static_camera_path,
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


# The camera baselines as trajectories (static_camera_path, constant_velocity_path), scored as
# the model's cameras are after their Sim(3) alignment (aligned_pose_metrics).


def _evo_unaligned(path: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """evo's ATE / RPE-t / RPE-r (EVAL.md §1's calls) of a path already aligned to ``gt``:
    align=False, since evo's Umeyama refuses a static or straight path."""
    from evo import main_ape, main_rpe
    from evo.core.metrics import PoseRelation, Unit

    from tests.eval.evo_reference import evo_trajectory

    est, ref = evo_trajectory(path), evo_trajectory(gt)
    kw = dict(align=False, correct_scale=False)
    rpe = dict(kw, delta=1, delta_unit=Unit.frames, rel_delta_tol=0.01, all_pairs=True)
    return {
        "ate": main_ape.ape(ref, est, PoseRelation.translation_part, **kw).stats["rmse"],
        "rpe_t": main_rpe.rpe(ref, est, PoseRelation.translation_part, **rpe).stats["rmse"],
        "rpe_r": main_rpe.rpe(ref, est, PoseRelation.rotation_angle_deg, **rpe).stats["rmse"],
    }


def _truths():
    """A handheld SLAM-like path and a clip of the procedural world (float32 rotations)."""
    from tests.eval.trajectories import handheld_trajectory

    return [torch.from_numpy(handheld_trajectory(30, 0)), truth().cameras.c2w]


@pytest.mark.parametrize("case", range(2))
@pytest.mark.parametrize("baseline", [static_camera_path, constant_velocity_path])
def test_camera_baselines_score_what_evo_scores_on_the_same_trajectories(case, baseline):
    gt = _truths()[case].double()
    path = baseline(gt)
    ours = aligned_pose_metrics(path, gt)
    reference = _evo_unaligned(path.numpy(), gt.numpy())
    assert ours == pytest.approx(reference, rel=1e-6), (ours, reference)
    assert ours["rpe_t"] > 0 and ours["rpe_r"] > 0


def test_a_static_camera_has_the_truths_own_relative_motion_as_its_rpe():
    gt = _truths()[0].double()
    motion = torch.linalg.inv(gt[:-1]) @ gt[1:]  # (T − 1, 4, 4) true relative motions
    steps = motion[:, :3, 3].norm(dim=-1)
    angles = torch.rad2deg(rotation_angle(motion[:, :3, :3]))
    identity = torch.eye(4, dtype=torch.float64).repeat(len(gt), 1, 1)
    for path in (identity, static_camera_path(gt)):  # anywhere, looking anywhere: the same RPE
        scores = aligned_pose_metrics(path, gt)
        assert scores["rpe_t"] == pytest.approx(steps.square().mean().sqrt().item(), rel=1e-12)
        assert scores["rpe_r"] == pytest.approx(angles.square().mean().sqrt().item(), rel=1e-12)


def test_the_baselines_ate_is_unchanged_by_scoring_them_as_trajectories():
    for gt in _truths():
        static = aligned_pose_metrics(static_camera_path(gt), gt)["ate"]
        velocity = aligned_pose_metrics(constant_velocity_path(gt), gt)["ate"]
        assert static == pytest.approx(static_camera_ate(gt), rel=1e-12)
        assert velocity == pytest.approx(constant_velocity_ate(gt), rel=1e-12)
    # The numbers of this clip before the baselines had an RPE (measured with the closed forms).
    floors = geometry_baselines(truth())
    assert floors["static camera"]["ate"] == pytest.approx(0.0959423433217671, rel=1e-12)
    assert floors["constant velocity"]["ate"] == pytest.approx(0.0028813064925123527, rel=1e-12)
    assert all(floors[m][k] is not None for m in ("static camera", "constant velocity")
               for k in ("rpe_t", "rpe_r"))  # fmt: skip


def test_aligned_pose_metrics_is_pose_metrics_after_its_alignment():
    from any4d.eval import pose_metrics, umeyama
    from tests.eval.trajectories import estimate_of, handheld_trajectory

    gt = torch.from_numpy(handheld_trajectory(40, 1))
    pred = torch.from_numpy(estimate_of(gt.numpy(), 1))
    aligned = umeyama(pred[:, :3, 3], gt[:, :3, 3], with_scale=True).apply_to_poses(pred)
    assert aligned_pose_metrics(aligned, gt) == pytest.approx(pose_metrics(pred, gt), rel=1e-9)


def test_the_camera_baselines_cannot_go_through_evos_alignment():
    # Why they are scored at their closed-form alignment: Umeyama needs centres off one line.
    from any4d.eval import pose_metrics

    gt = _truths()[0]
    for path in (static_camera_path(gt), constant_velocity_path(gt)):
        with pytest.raises(ValueError):
            pose_metrics(path, gt)


def test_constant_velocity_is_exact_on_a_uniform_straight_path_turning_at_a_constant_rate():
    from scipy.spatial.transform import Rotation

    frames = 8
    turn = Rotation.from_rotvec([0.02, -0.05, 0.03])
    rotations = Rotation.from_rotvec([0.3, 0.1, -0.2]) * Rotation.concatenate(
        [turn**i for i in range(frames)]
    )
    gt = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    gt[:, :3, :3] = torch.from_numpy(rotations.as_matrix())
    gt[:, :3, 3] = (
        torch.tensor([1.0, 2.0, 0.5]).double() + 0.1 * torch.arange(frames).double()[:, None]
    )
    scores = aligned_pose_metrics(constant_velocity_path(gt), gt)
    assert max(scores.values()) < 1e-9, scores
    still = aligned_pose_metrics(static_camera_path(gt), gt)
    assert still["rpe_r"] == pytest.approx(math.degrees(turn.magnitude()), rel=1e-9)


def test_the_oracle_baselines_are_named_in_one_place_and_labelled():
    from any4d.diffusion import PRESETS
    from any4d.eval.tasks import ORACLE_BASELINES, mask_baselines, method_label

    assert set(ORACLE_BASELINES) == {"constant depth", "constant velocity"}
    assert set(ORACLE_BASELINES) <= set(mask_baselines(PRESETS["video"], truth()))
    assert method_label("constant depth") == "constant depth (oracle: true median depth)"
    assert (
        method_label("constant velocity") == "constant velocity (oracle: fit to the true cameras)"
    )
    assert method_label("static camera") == "static camera" and method_label("any4d") == "any4d"
