"""Task scores of a completed scene against the truth, each beside trivial baselines.

Every number gets a floor next to it, so a table says what a model adds:

* ``geometry`` (depth + cameras from video): depth under a named protocol (default Geo4D's L1
  scale + shift) against a **constant depth** (the true median — the L1-optimal constant, which
  no alignment can improve); camera ATE / RPE against a **static camera** (every frame at one
  place: after the best alignment, the spread of the true centres) and a **constant-velocity**
  path (the best straight, uniform one, turning by the same rotation every frame). Both camera
  baselines are trajectories at their best alignment (``static_camera_path``,
  ``constant_velocity_path``) scored by ``aligned_pose_metrics``: ``pose_metrics`` without its
  Umeyama step, which a static or straight path does not determine.
* ``interpolate`` (frames between the first and last): PSNR / SSIM of the generated frames
  (0 and −1 excluded) against a **linear cross-fade** of the first and last frame, and — given a
  depth range to sweep — a **plane sweep** (classic two-view stereo from the first and last frame
  and the cameras, no learning: what geometry alone recovers from interpolate's inputs).

Baselines that use the truth beyond what the model is given are **oracles** (``ORACLE_BASELINES``);
every table names them so (``method_label``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from any4d.data import Scene
from any4d.eval.depth_metrics import depth_metrics
from any4d.eval.image_metrics import image_metrics
from any4d.eval.pose_metrics import aligned_pose_metrics, pose_metrics
from any4d.geometry import inverse_depth_planes, plane_sweep, rigid_inverse

TASKS = ("geometry", "interpolate")

# The baselines that are oracles — they use the truth beyond what the model is given — and what
# of it they use, as every table shows it beside the name (``method_label``). Result keys stay the
# plain names. Not oracles: the static camera (its ATE is the spread the Sim(3) alignment leaves,
# as for any method; a camera that never moves has the same RPE wherever it stands and looks),
# the cross-fade, the first frame and the plane sweep (they use observed frames and cameras and,
# for the sweep, a depth range of the training data, not of the clip).
ORACLE_BASELINES: dict[str, str] = {
    # The median of the clip's valid true depth, scored unaligned: the best constant in L1.
    # Under the L1 protocols (geo4d, scale) any constant prediction would align to it; what it
    # takes from the truth is that metric scale (its depth_scale would be exactly 1).
    "constant depth": "true median depth",
    # Centres on the least-squares line through the true centres, turning by the mean of the
    # true per-frame rotations (``constant_velocity_path``): its ATE is that of any uniform
    # straight path after alignment, but its RPE takes the direction of travel in the camera's
    # frame and the turn rate from the true trajectory.
    "constant velocity": "fit to the true cameras",
}
# The line under a table with oracle rows.
ORACLE_NOTE = (
    "oracle: a baseline that uses the truth beyond what the model is given (a reference, not a "
    "method that could run on the same input)"
)


def method_label(method: str) -> str:
    """``method`` as a table names it: an oracle says what it uses, e.g. ``'constant depth
    (oracle: true median depth)'``; any other method (``any4d``, …) is its own name."""
    if method in ORACLE_BASELINES:
        return f"{method} (oracle: {ORACLE_BASELINES[method]})"
    return method


def _depth(pred: Tensor, truth: Scene, protocol: str) -> dict[str, float]:
    metrics = depth_metrics(pred, truth.depth, valid=truth.depth > 0, protocol=protocol)
    return {k: float(metrics[k]) for k in ("abs_rel", "rmse", "delta1")}


def static_camera_ate(truth_c2w: Tensor) -> float:
    """ATE of a camera that never moves: with every predicted centre at one point, the best
    Sim(3) alignment puts it at the true centres' mean; what remains is their spread."""
    centres = truth_c2w[:, :3, 3].double()
    return math.sqrt(float((centres - centres.mean(0)).square().sum(-1).mean()))


def _line_fit(centres: Tensor) -> Tensor:
    """The least-squares uniform straight path ``p + i·v`` through centres (T, 3): (T, 3)."""
    time = torch.arange(len(centres), dtype=centres.dtype, device=centres.device)
    design = torch.stack([torch.ones_like(time), time], dim=1)  # (T, 2)
    solution = torch.linalg.lstsq(design, centres).solution  # (2, 3)
    return design @ solution


def constant_velocity_ate(truth_c2w: Tensor) -> float:
    """ATE of the best constant-velocity path ``c_i = p + i·v`` (any start, any velocity): the
    RMS residual of a line fit of the true centres against time. (A straight prediction cannot
    go through evo's Sim(3) Umeyama — collinear centres leave its rotation undetermined — but
    the best alignment of a uniform straight path is exactly this fit.)"""
    centres = truth_c2w[:, :3, 3].double()
    residual = centres - _line_fit(centres)
    return math.sqrt(float(residual.square().sum(-1).mean()))


def _mean_rotation(rotations: Tensor) -> Tensor:
    """The rotation nearest in least squares (Frobenius, the chordal L2 mean) to rotations
    (N, 3, 3): the projection of their mean onto SO(3). Returns (3, 3)."""
    u, _, vh = torch.linalg.svd(rotations.mean(0))
    sign = torch.ones(3, dtype=rotations.dtype, device=rotations.device)
    sign[-1] = torch.sign(torch.linalg.det(u @ vh))  # a proper rotation, never a reflection
    return u @ torch.diag(sign) @ vh


def static_camera_path(truth_c2w: Tensor) -> Tensor:
    """The static camera at its best alignment to the truth (T, 4, 4) camera-to-world: every
    pose the first true rotation at the true centres' mean (where Sim(3) puts a single point).
    Its RPE holds for any static camera — where it stands and which way it looks do not enter:
    its relative motion is the identity, so its errors are the truth's own relative motions."""
    c2w = truth_c2w.double()
    path = c2w[:1].repeat(len(c2w), 1, 1)
    path[:, :3, 3] = c2w[:, :3, 3].mean(0)
    return path


def constant_velocity_path(truth_c2w: Tensor) -> Tensor:
    """The best constant-velocity camera at its alignment to the truth (T, 4, 4) camera-to-world.

    Centres: the least-squares uniform straight path through the true centres (whose residual
    is ``constant_velocity_ate``; the best Sim(3) alignment of any uniform straight path).
    Rotations: a constant angular velocity — the same turn ``Ω`` every frame in the camera's own
    frame, ``R_i = R_0 Ω^i`` from the first true rotation ``R_0``, ``Ω`` the least-squares
    (chordal) mean of the true per-frame turns ``R_iᵀ R_{i+1}``. RPE-r only sees the turn, and
    this ``Ω`` minimises ``Σ ‖R_iᵀ R_{i+1} − Ω‖²_F = Σ 8 sin²(θ_i / 2)`` over the RPE-r angles
    ``θ_i``: the rotation's counterpart of the line fit of the centres, which minimises ATE.
    """
    c2w = truth_c2w.double()
    frames = len(c2w)
    path = torch.eye(4, dtype=c2w.dtype, device=c2w.device).repeat(frames, 1, 1)
    path[:, :3, 3] = _line_fit(c2w[:, :3, 3])
    rotation = c2w[0, :3, :3]
    path[0, :3, :3] = rotation
    if frames > 1:
        turns = rigid_inverse(c2w[:-1]) @ c2w[1:]  # (T − 1, 4, 4) true relative motions
        turn = _mean_rotation(turns[:, :3, :3])
        for i in range(1, frames):
            rotation = rotation @ turn
            path[i, :3, :3] = rotation
    return path


def _pose(pred_c2w: Tensor, truth_c2w: Tensor) -> dict[str, float]:
    try:
        return pose_metrics(pred_c2w.double().cpu(), truth_c2w.double().cpu())
    except ValueError:  # a degenerate trajectory (e.g. static truth): no number, not NaN
        return {"ate": None, "rpe_t": None, "rpe_r": None}


def geometry_scores(pred: Scene, truth: Scene, protocol: str = "geo4d") -> dict[str, float]:
    """Depth (under ``protocol``, ``depth_metrics``' names) and pose of ``pred`` against
    ``truth``, both Scenes of the same T, H, W, over every frame."""
    scores = {}
    if pred.depth is not None:
        scores.update(_depth(pred.depth, truth, protocol))
    if pred.cameras is not None:
        scores.update(_pose(pred.cameras.c2w, truth.cameras.c2w))
    return scores


def geometry_baselines(truth: Scene, protocol: str = "geo4d") -> dict[str, dict[str, float]]:
    """The floors: best constant depth, static camera, constant-velocity camera (ATE and RPE
    of the paths at their best alignment, ``aligned_pose_metrics``)."""
    constant = torch.ones_like(truth.depth)
    valid = truth.depth[truth.depth > 0]
    constant = constant * (valid.median() if valid.numel() else 1.0)
    c2w = truth.cameras.c2w.double().cpu()
    return {
        # A constant cannot be scale-aligned: the true median is the best L1 constant itself.
        "constant depth": _depth(constant, truth, "none"),
        "static camera": aligned_pose_metrics(static_camera_path(c2w), c2w),
        "constant velocity": aligned_pose_metrics(constant_velocity_path(c2w), c2w),
    }


def cross_fade(truth: Scene) -> Tensor:
    """Linear blend of the first and last frame over the clip: (T, 3, H, W)."""
    weights = torch.linspace(0, 1, truth.num_frames, dtype=truth.rgb.dtype)[:, None, None, None]
    return (1 - weights) * truth.rgb[:1] + weights * truth.rgb[-1:]


def interpolation_scores(pred: Scene, truth: Scene) -> dict[str, float]:
    """PSNR (pooled as DFoT, and per-frame mean) and SSIM of frames 1 … T−2."""
    metrics = image_metrics(pred.rgb, truth.rgb, context=(0, -1))
    return {k: float(metrics[k]) for k in ("psnr_pooled", "psnr_frame_mean", "ssim")}


def plane_sweep_frames(truth: Scene, depth_range: tuple[float, float], planes: int = 48) -> Tensor:
    """The frames between the first and last rendered from those two and the cameras alone
    (``any4d.geometry.plane_sweep``, blend weights of a cross-fade): (T, 3, H, W), frames 0 and
    T − 1 as given, pixels neither sees from the cross-fade.

    depth_range: (near, far) z-depths to sweep, in the scene's units — a prior of the data set,
    not the clip's true depth. planes: how many, even in inverse depth."""
    if truth.cameras is None:
        raise ValueError("a plane sweep needs the scene's cameras (truth.cameras is None)")
    frames = truth.num_frames
    fade = cross_fade(truth)
    if frames < 3:
        return fade
    a = torch.linspace(0, 1, frames, dtype=truth.rgb.dtype)[1:-1]
    images, _, views = plane_sweep(
        truth.rgb[[0, frames - 1]],
        truth.cameras[[0, frames - 1]],
        truth.cameras[1:-1],
        inverse_depth_planes(*depth_range, planes),
        weights=torch.stack([1 - a, a], dim=1),
    )
    fade[1:-1] = torch.where(views > 0, images, fade[1:-1])
    return fade


def interpolation_baselines(
    truth: Scene, depth_range: tuple[float, float] | None = None
) -> dict[str, dict[str, float]]:
    """Scores of the cross-fade, and of the plane sweep when ``depth_range`` is given and the
    scene has cameras."""
    baselines = {"cross-fade": _frames(cross_fade(truth), truth, [0, -1])}
    if depth_range is not None and truth.cameras is not None:
        baselines["plane sweep"] = _frames(plane_sweep_frames(truth, depth_range), truth, [0, -1])
    return baselines


def task_scores(
    task: str, pred: Scene, truth: Scene, depth_protocol: str = "geo4d"
) -> dict[str, float]:
    """The scores of ``task``; depth_protocol: geometry's (``depth_metrics``' protocols)."""
    if task == "geometry":
        return geometry_scores(pred, truth, depth_protocol)
    if task == "interpolate":
        return interpolation_scores(pred, truth)
    raise ValueError(f"task={task!r} (expected one of {TASKS})")


def task_baselines(
    task: str, truth: Scene, depth_range: tuple[float, float] | None = None
) -> dict[str, dict[str, float]]:
    """The baselines of ``task``; depth_range: adds interpolation's plane sweep."""
    if task == "geometry":
        return geometry_baselines(truth)
    if task == "interpolate":
        return interpolation_baselines(truth, depth_range)
    raise ValueError(f"task={task!r} (expected one of {TASKS})")


def generated_by(mask, truth: Scene) -> tuple[bool, bool, list[int]]:
    """What a mask generates: depth (bool), cameras (rays; bool), and the RGB frames it observes
    (sorted; every other frame is generated)."""
    clean_rgb = mask.clean_frames("rgb", truth.num_frames)
    context = sorted(clean_rgb)
    return "depth" not in mask.clean, "ray_d" not in mask.clean, context


def first_frame_copy(truth: Scene) -> Tensor:
    """The clip as frame 0 repeated: the floor of generating later frames from the first."""
    return truth.rgb[:1].expand_as(truth.rgb)


def _frames(pred_rgb: Tensor, truth: Scene, context: list[int]) -> dict[str, float]:
    metrics = image_metrics(pred_rgb, truth.rgb, context=context)
    return {k: float(metrics[k]) for k in ("psnr_pooled", "psnr_frame_mean", "ssim")}


def mask_scores(mask, pred: Scene, truth: Scene) -> dict[str, float]:
    """Scores of what ``mask`` generated (depth, cameras, unobserved RGB frames) — observed
    modalities come back as given and are not scored."""
    depth, cameras, context = generated_by(mask, truth)
    scores = {}
    if depth and pred.depth is not None:
        scores.update(_depth(pred.depth, truth, "geo4d"))
    if cameras and pred.cameras is not None:
        scores.update(_pose(pred.cameras.c2w, truth.cameras.c2w))
    if len(context) < truth.num_frames:
        scores.update(_frames(pred.rgb, truth, context))
    return scores


def mask_baselines(
    mask, truth: Scene, depth_range: tuple[float, float] | None = None
) -> dict[str, dict[str, float]]:
    """The floors of what ``mask`` generates: constant depth; static and constant-velocity
    cameras; a cross-fade (first and last frame observed) or the first frame repeated. With
    ``depth_range``, a mask that observes the first and last frame and every camera also gets
    the plane sweep between them."""
    depth, cameras, context = generated_by(mask, truth)
    floors = geometry_baselines(truth)
    out = {}
    if depth:
        out["constant depth"] = floors["constant depth"]
    if cameras:
        out["static camera"] = floors["static camera"]
        out["constant velocity"] = floors["constant velocity"]
    if len(context) < truth.num_frames and context:
        last = truth.num_frames - 1
        if 0 in context and last in context:
            out["cross-fade"] = _frames(cross_fade(truth), truth, context)
            rays = mask.clean_frames("ray_d", truth.num_frames)
            if depth_range is not None and truth.cameras is not None and len(rays) == last + 1:
                sweep = plane_sweep_frames(truth, depth_range)
                out["plane sweep"] = _frames(sweep, truth, context)
        else:
            out["first frame"] = _frames(first_frame_copy(truth), truth, context)
    return out
