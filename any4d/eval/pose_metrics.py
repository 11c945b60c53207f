"""Camera-pose metrics of one sequence: ATE, RPE translation, RPE rotation (EVAL.md §1).

The protocol of Geo4D, MonST3R and CUT3R, which all call evo as

    main_ape.ape(gt, est, PoseRelation.translation_part, align=True, correct_scale=True)
    main_rpe.rpe(gt, est, PoseRelation.translation_part | rotation_angle_deg,
                 align=True, correct_scale=True, delta=1, delta_unit=Unit.frames,
                 rel_delta_tol=0.01, all_pairs=True)

and report ``.stats["rmse"]`` of each. Written here in torch so that evo is no runtime
dependency; the tests compare with evo itself.

1. One Sim(3) Umeyama alignment of the predicted camera **centres** onto the true ones
   (orientations play no part in it); the predicted poses move with it: ``R ↦ Rₐ R``,
   ``c ↦ s Rₐ c + tₐ``.
2. ATE: RMSE over frames of ``‖c_pred − c_gt‖`` after alignment, in the truth's units.
3. RPE over consecutive frames ``(i, i+1)``: with relative motions ``Q = gtᵢ⁻¹ gtᵢ₊₁`` and
   ``P = predᵢ⁻¹ predᵢ₊₁`` (aligned), the error ``E = Q⁻¹ P``; RPE-trans is the RMSE of
   ``‖t(E)‖`` (truth's units, so the Sim(3) scale matters), RPE-rot the RMSE of the rotation
   angle of ``E`` in degrees.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from any4d.eval.alignment import umeyama
from any4d.geometry import check_rotations, rigid_inverse

POSE_KEYS = ("ate", "rpe_t", "rpe_r")

# How far from orthonormal (max |R Rᵀ − I|, |det R − 1|) a pose's rotation may be, whatever its
# dtype (geometry's float64 default, 1e-6, is for poses any4d computed). Trajectory files carry
# ~6 significant digits (KITTI's "%e"), which leaves R Rᵀ off by a few 1e-6; a scaled, sheared
# or mirrored matrix is off by far more. evo accepts 1e-6 to ~1e-5 (allclose).
_ROTATION_TOLERANCE = 1e-4


def _check_poses(c2w: Tensor | np.ndarray, name: str) -> Tensor:
    """``c2w`` as a float64 (T, 4, 4) tensor of rigid poses, or a ``ValueError``."""
    c2w = torch.as_tensor(c2w)
    if c2w.dim() != 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(
            f"{name} has shape {tuple(c2w.shape)} (expected (T, 4, 4) camera-to-world poses)"
        )
    if not c2w.is_floating_point():
        raise ValueError(f"{name} has dtype {c2w.dtype} (expected a floating dtype)")
    if not torch.isfinite(c2w).all():
        raise ValueError(f"{name} contains NaN or inf (expected finite poses)")
    c2w = c2w.double()
    check_rotations(c2w[:, :3, :3], f"{name} rotation", tolerance=_ROTATION_TOLERANCE)
    return c2w


def rotation_angle(rotation: Tensor) -> Tensor:
    """Angle in radians of rotations (..., 3, 3): the norm of their axis-angle vector.

    ``atan2(sin θ, cos θ)`` from the skew part and the trace is accurate for small and large
    angles alike, where ``arccos((tr R − 1) / 2)`` loses half the digits near 0.
    """
    skew = rotation - rotation.transpose(-1, -2)
    sin = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1).norm(dim=-1) / 2
    cos = (rotation.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.atan2(sin, cos)


def _rmse(errors: Tensor) -> float:
    return math.sqrt(float(errors.square().mean()))


def relative_pose_errors(pred_c2w: Tensor, gt_c2w: Tensor) -> Tensor:
    """Relative pose errors ``E = Q⁻¹ P`` of consecutive frames (evo's ``RPE.rpe_base``).

    pred_c2w, gt_c2w: (T, 4, 4) rigid poses, pred already aligned. Returns (T − 1, 4, 4).
    """
    gt_motion = rigid_inverse(gt_c2w[:-1]) @ gt_c2w[1:]
    pred_motion = rigid_inverse(pred_c2w[:-1]) @ pred_c2w[1:]
    return rigid_inverse(gt_motion) @ pred_motion


def pose_metrics(pred_c2w: Tensor | np.ndarray, gt_c2w: Tensor | np.ndarray) -> dict[str, float]:
    """ATE and RPE of one predicted camera trajectory after Sim(3) alignment to the truth.

    pred_c2w, gt_c2w: (T, 4, 4) camera-to-world poses (OpenCV axes, though the metrics do not
    depend on the camera axes as long as both use the same), frame ``i`` of one matched with
    frame ``i`` of the other. Any units: the errors are in the truth's units (predicted rays
    give ``pred_c2w`` through ``any4d.geometry.rays_to_cameras``, in units of the clip scale,
    which the Sim(3) alignment absorbs).

    Returns ``{"ate": …, "rpe_t": …, "rpe_r": …}``: ATE (RMSE of aligned camera centres),
    RPE translation (RMSE, truth's units) and RPE rotation (RMSE, degrees) over consecutive
    frames — what evo's ``ape`` / ``rpe`` return with ``align=True, correct_scale=True``.

    Raises ``ValueError`` on mismatched or malformed poses and on trajectories that do not
    determine the alignment: fewer than 3 frames, a static camera (all centres equal) or
    centres on one line, in either trajectory. evo raises there too; the benchmark counts such
    a sequence as failed (``mean_over_sequences``) instead of writing a number for it.
    """
    pred = _check_poses(pred_c2w, "pred_c2w")
    gt = _check_poses(gt_c2w, "gt_c2w")
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred_c2w has {pred.shape[0]} frames but gt_c2w has {gt.shape[0]} "
            "(expected the same T)"
        )
    if pred.shape[0] < 3:
        raise ValueError(
            f"pred_c2w has {pred.shape[0]} frames (expected ≥ 3: a Sim(3) alignment needs "
            "three centres not on one line)"
        )
    gt = gt.to(pred.device)
    similarity = umeyama(pred[:, :3, 3], gt[:, :3, 3], with_scale=True)
    aligned = similarity.apply_to_poses(pred)
    errors = relative_pose_errors(aligned, gt)
    return {
        "ate": _rmse((aligned[:, :3, 3] - gt[:, :3, 3]).norm(dim=-1)),
        "rpe_t": _rmse(errors[:, :3, 3].norm(dim=-1)),
        "rpe_r": _rmse(torch.rad2deg(rotation_angle(errors[:, :3, :3]))),
    }


def aligned_pose_metrics(aligned_c2w: Tensor, truth_c2w: Tensor) -> dict[str, float | None]:
    """``pose_metrics`` of a trajectory already at its best Sim(3) alignment to the truth: the
    same ATE and RPE (``relative_pose_errors``, ``rotation_angle``), without the Umeyama fit.

    For trajectories whose alignment evo cannot fit but is known in closed form: the camera
    baselines (``static_camera_path``, ``constant_velocity_path``). On an aligned trajectory
    RPE depends on the alignment only through its scale (relative motions ``Pᵢ⁻¹Pᵢ₊₁`` are
    blind to the rotation and translation of the world), which these paths carry already.
    aligned_c2w, truth_c2w: (T, 4, 4) camera-to-world. RPE is None with fewer than 2 frames.
    """
    aligned, truth = aligned_c2w.double().cpu(), truth_c2w.double().cpu()
    if aligned.shape != truth.shape:
        raise ValueError(
            f"aligned_c2w has shape {tuple(aligned.shape)} but truth_c2w {tuple(truth.shape)} "
            "(expected the same (T, 4, 4))"
        )
    scores = {"ate": _rmse((aligned[:, :3, 3] - truth[:, :3, 3]).norm(dim=-1))}
    if len(truth) < 2:
        return {**scores, "rpe_t": None, "rpe_r": None}
    errors = relative_pose_errors(aligned, truth)
    scores["rpe_t"] = _rmse(errors[:, :3, 3].norm(dim=-1))
    scores["rpe_r"] = _rmse(torch.rad2deg(rotation_angle(errors[:, :3, :3])))
    return scores
