import numpy as np
import pytest
import torch
from evo.tools import file_interface
from scipy.spatial.transform import Rotation

from any4d.eval import pose_metrics
from tests.eval.evo_reference import evo_pose_metrics, evo_trajectory
from tests.eval.trajectories import estimate_of, handheld_trajectory, poses, random_trajectory


def _assert_relative_close(ours: dict, reference: dict, rtol: float = 1e-6) -> None:
    assert ours.keys() == reference.keys()
    for key in ours:
        assert ours[key] == pytest.approx(reference[key], rel=rtol), (key, ours, reference)


@pytest.mark.parametrize("seed", range(6))
def test_pose_metrics_equal_evo_on_random_trajectories(seed):
    gt = random_trajectory(12 + 5 * seed, seed)
    pred = random_trajectory(12 + 5 * seed, 100 + seed)
    reference = evo_pose_metrics(evo_trajectory(pred), evo_trajectory(gt))
    _assert_relative_close(pose_metrics(pred, gt), reference)


@pytest.mark.parametrize("seed", range(3))
def test_pose_metrics_equal_evo_on_noisy_estimates_in_another_similarity_frame(seed):
    gt = handheld_trajectory(90, seed)
    pred = estimate_of(gt, seed)
    reference = evo_pose_metrics(evo_trajectory(pred), evo_trajectory(gt))
    _assert_relative_close(pose_metrics(torch.from_numpy(pred), torch.from_numpy(gt)), reference)


def _write_tum(path, stamps, c2w):
    # TUM RGB-D: "timestamp tx ty tz qx qy qz qw", the camera's pose in the world (c2w).
    xyzw = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()
    rows = np.concatenate([stamps[:, None], c2w[:, :3, 3], xyzw], 1)
    np.savetxt(path, rows, fmt="%.6f" + " %.12f" * 7, header="timestamp tx ty tz qx qy qz qw")


def _write_kitti(path, c2w):
    # KITTI odometry: the first three rows of the camera-to-world matrix, row-major, with the
    # 7 significant digits of KITTI's own files (rotations orthonormal to ~1e-6 only).
    np.savetxt(path, c2w[:, :3, :].reshape(len(c2w), 12), fmt="%.6e")


def test_evo_tum_files_hold_camera_to_world_poses(tmp_path):
    gt = handheld_trajectory(30, 0)
    _write_tum(tmp_path / "gt.txt", 1305031102.175304 + np.arange(30) / 30, gt)
    read = np.stack(file_interface.read_tum_trajectory_file(tmp_path / "gt.txt").poses_se3)
    np.testing.assert_allclose(read, gt, atol=1e-10)


def test_pose_metrics_equal_evo_on_slam_trajectories_in_tum_files(tmp_path):
    gt = handheld_trajectory(120, 1)
    pred = estimate_of(gt, 1, noise=0.005)
    stamps = 1305031102.175304 + np.arange(120) / 30
    _write_tum(tmp_path / "groundtruth.txt", stamps, gt)
    _write_tum(tmp_path / "estimate.txt", stamps, pred)
    gt_traj = file_interface.read_tum_trajectory_file(tmp_path / "groundtruth.txt")
    pred_traj = file_interface.read_tum_trajectory_file(tmp_path / "estimate.txt")
    ours = pose_metrics(np.stack(pred_traj.poses_se3), np.stack(gt_traj.poses_se3))
    _assert_relative_close(ours, evo_pose_metrics(pred_traj, gt_traj))


def test_pose_metrics_equal_evo_on_slam_trajectories_in_kitti_files(tmp_path):
    gt = handheld_trajectory(110, 2)
    gt[:, :3, 3] *= 20  # street scale: tens of metres
    pred = estimate_of(gt, 2, noise=0.1)
    _write_kitti(tmp_path / "00.txt", gt)
    _write_kitti(tmp_path / "00_pred.txt", pred)
    gt_path = file_interface.read_kitti_poses_file(tmp_path / "00.txt")
    pred_path = file_interface.read_kitti_poses_file(tmp_path / "00_pred.txt")
    ours = pose_metrics(np.stack(pred_path.poses_se3), np.stack(gt_path.poses_se3))
    _assert_relative_close(ours, evo_pose_metrics(pred_path, gt_path))


def test_pose_metrics_are_zero_for_a_similarity_transform_of_the_truth():
    gt = handheld_trajectory(40, 3)
    world = Rotation.random(random_state=3)
    pred = poses(world * Rotation.from_matrix(gt[:, :3, :3]), 0.3 * world.apply(gt[:, :3, 3]) + 7)
    metrics = pose_metrics(pred, gt)
    assert max(metrics.values()) < 1e-9, metrics


def test_pose_metrics_are_in_the_truths_units_and_degrees():
    gt = handheld_trajectory(40, 4)
    pred = estimate_of(gt, 4)
    metrics, scaled = pose_metrics(pred, gt), pose_metrics(pred, _scaled(gt, 10))
    assert scaled["ate"] == pytest.approx(10 * metrics["ate"], rel=1e-9)
    assert scaled["rpe_t"] == pytest.approx(10 * metrics["rpe_t"], rel=1e-9)
    assert scaled["rpe_r"] == pytest.approx(metrics["rpe_r"], rel=1e-9)


def _scaled(c2w, factor):
    out = c2w.copy()
    out[:, :3, 3] *= factor
    return out


def test_pose_metrics_accept_float32_poses():
    gt = handheld_trajectory(30, 5)
    pred = estimate_of(gt, 5)
    single = pose_metrics(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    double = pose_metrics(pred, gt)
    for key in double:
        assert single[key] == pytest.approx(double[key], rel=1e-4)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda c: _scaled(c, 0.0), "degenerate"),  # static camera: all centres equal
        (lambda c: _collinear(c), "degenerate"),  # centres on one line
        (lambda c: c[:2], "expected ≥ 3"),
    ],
)
def test_pose_metrics_reject_trajectories_that_do_not_determine_the_alignment(make, message):
    gt = handheld_trajectory(20, 6)
    bad = make(gt)
    with pytest.raises(ValueError, match=message):
        pose_metrics(bad, gt[: len(bad)])
    with pytest.raises(ValueError, match=message):
        pose_metrics(gt[: len(bad)], bad)


def _collinear(c2w):
    out = c2w.copy()
    out[:, :3, 3] = np.linspace(0, 1, len(c2w))[:, None] * np.array([1.0, 2.0, -0.5])
    return out


def test_pose_metrics_reject_malformed_poses():
    gt = handheld_trajectory(10, 7)
    with pytest.raises(ValueError, match=r"pred_c2w has 9 frames but gt_c2w has 10"):
        pose_metrics(gt[:9], gt)
    with pytest.raises(ValueError, match=r"expected \(T, 4, 4\)"):
        pose_metrics(gt[:, :3], gt)
    bad = gt.copy()
    bad[3, :3, :3] *= 2
    with pytest.raises(ValueError, match="not a proper rotation"):
        pose_metrics(bad, gt)
    bad = gt.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pose_metrics(gt, bad)
