"""evo as the reference of the pose metrics: the exact calls of Geo4D / MonST3R / CUT3R's
``eval_metrics`` (EVAL.md §1), minus the ``est_name`` keyword that evo 1.38 dropped."""

from __future__ import annotations

import copy

import numpy as np
from evo import main_ape, main_rpe
from evo.core.metrics import PoseRelation, Unit
from evo.core.trajectory import PosePath3D, PoseTrajectory3D
from scipy.spatial.transform import Rotation


def evo_trajectory(c2w: np.ndarray, timestamps: np.ndarray | None = None) -> PoseTrajectory3D:
    """A (T, 4, 4) camera-to-world array as evo's trajectory, the way ``vo_eval.py`` builds it:
    positions and wxyz quaternions (scipy gives xyzw)."""
    xyzw = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()
    stamps = np.arange(len(c2w), dtype=float) if timestamps is None else timestamps
    return PoseTrajectory3D(
        positions_xyz=c2w[:, :3, 3], orientations_quat_wxyz=xyzw[:, [3, 0, 1, 2]], timestamps=stamps
    )


def evo_pose_metrics(pred: PosePath3D, gt: PosePath3D) -> dict[str, float]:
    """ATE, RPE-trans and RPE-rot (degrees), each ``stats["rmse"]``, as evo computes them.

    evo aligns ``pred`` in place, so every call gets its own copy.
    """
    rpe = dict(
        align=True,
        correct_scale=True,
        delta=1,
        delta_unit=Unit.frames,
        rel_delta_tol=0.01,
        all_pairs=True,
    )
    ate = main_ape.ape(
        copy.deepcopy(gt),
        copy.deepcopy(pred),
        pose_relation=PoseRelation.translation_part,
        align=True,
        correct_scale=True,
    ).stats["rmse"]
    rpe_r = main_rpe.rpe(
        copy.deepcopy(gt), copy.deepcopy(pred), pose_relation=PoseRelation.rotation_angle_deg, **rpe
    ).stats["rmse"]
    rpe_t = main_rpe.rpe(
        copy.deepcopy(gt), copy.deepcopy(pred), pose_relation=PoseRelation.translation_part, **rpe
    ).stats["rmse"]
    return {"ate": ate, "rpe_t": rpe_t, "rpe_r": rpe_r}
