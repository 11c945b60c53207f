"""Predicted cameras against the truth, as the pose metrics see them (DESIGN §6).

A trajectory plot after Sim(3) alignment alone can look almost perfect while the camera turns
the wrong way: the alignment rotates, moves and scales the prediction onto the truth, and
frustums a few pixels wide hide orientation. So the figure shows four things:

* the clip frame: both trajectories relative to their first camera, unaligned (what the model
  produced, in its own units);
* the same after the Sim(3) of the centres that ATE uses (``align_cameras``);
* per frame, how far each camera has turned since the first frame (truth and prediction), and
  per step the angle between the predicted and the true relative rotation (RPE-r is their
  RMS; like it, free of any alignment — the Sim(3) of nearly collinear centres can turn the
  prediction's absolute orientation arbitrarily);
* per frame, the centre error after alignment (ATE is its RMS), with the ATE / RPE numbers, the
  total turn of both and the cosine between their directions of travel.

Matplotlib draws on its Agg canvas (no pyplot, no display, no global backend).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.io import atomic_path
from any4d.viz.frustums import align_cameras, draw_trajectories

# Frustums of the comparison are this fraction of the plotted trajectory's largest side: big
# enough to read the orientation, with fewer of them so they do not pile up.
_DEPTH_FRACTION = 0.3
_MAX_FRUSTUMS = 8


def rotation_angles(rotations: Tensor, reference: Tensor) -> Tensor:
    """Geodesic angles in degrees between rotations: (..., 3, 3) and (..., 3, 3) → (...)."""
    from any4d.eval.pose_metrics import rotation_angle  # RPE-r's own angle

    return torch.rad2deg(rotation_angle(reference.transpose(-1, -2) @ rotations))


@dataclass(frozen=True)
class CameraErrors:
    """Per-frame errors of predicted cameras against the truth, frame ``i`` against ``i``.

    turned_true, turned_predicted: (N,) degrees each camera has turned since its first frame.
    step_rotation_error: (N − 1,) degrees between the predicted and the true rotation from
    frame ``i`` to ``i + 1`` (RPE-r's terms: no alignment involved).
    centre_error: (N,) ``‖c_aligned − c_true‖`` in the truth's units (ATE is their RMS).
    travel_cosine: cosine between the first-to-last displacements of the two (None when
    either does not move). aligned: the predicted cameras after that alignment.
    """

    turned_true: Tensor
    turned_predicted: Tensor
    step_rotation_error: Tensor
    centre_error: Tensor
    travel_cosine: float | None
    aligned: Cameras

    @property
    def ate(self) -> float:
        return math.sqrt(float(self.centre_error.square().mean()))


def camera_errors(predicted: Cameras, truth: Cameras) -> CameraErrors:
    """The ``CameraErrors`` of ``predicted`` (N,) against ``truth`` (N,), after the Sim(3)
    alignment of the centres (``align_cameras``, as ATE)."""
    from any4d.eval.pose_metrics import relative_pose_errors, rotation_angle

    predicted = predicted.to(device="cpu", dtype=torch.float64)
    truth = truth.to(device="cpu", dtype=torch.float64)
    aligned = align_cameras(predicted, truth)
    travel = [c.centers[-1] - c.centers[0] for c in (predicted, truth)]
    lengths = [float(t.norm()) for t in travel]
    cosine = None
    if min(lengths) > 0:
        cosine = float(travel[0] @ travel[1]) / (lengths[0] * lengths[1])
    return CameraErrors(
        turned_true=rotation_angles(truth.R, truth.R[:1]),
        turned_predicted=rotation_angles(predicted.R, predicted.R[:1]),
        # RPE's own relative errors: their rotation parts' angles are RPE-r's terms.
        step_rotation_error=torch.rad2deg(
            rotation_angle(relative_pose_errors(predicted.c2w, truth.c2w)[:, :3, :3])
        ),
        centre_error=(aligned.centers - truth.centers).norm(dim=-1),
        travel_cosine=cosine,
        aligned=aligned,
    )


def plot_camera_comparison(
    path: str | os.PathLike,
    predicted: Cameras,
    truth: Cameras,
    *,
    image_size: tuple[int, int] | None = None,
    fps: float | None = None,
    labels: tuple[str, str] = ("predicted", "true"),
    title: str | None = None,
    width: int = 1400,
    height: int = 1050,
) -> Path:
    """A PNG of predicted against true cameras: clip frame, aligned, rotation and centre errors.

    predicted, truth: batch shape (N,), N ≥ 2, frame ``i`` against frame ``i``. image_size:
    ``(height, width)`` the intrinsics are for (default twice the principal point). fps: label
    the error curves' x axis in seconds instead of frames. The pose numbers in the corner are
    ``any4d.eval.pose_metrics`` (evo's) when the trajectories determine them. Written
    atomically; returns the path.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plotting cameras needs matplotlib: pip install "any4d[viz]"') from error
    for name, cameras in (("predicted", predicted), ("truth", truth)):
        if not isinstance(cameras, Cameras) or len(cameras.shape) != 1:
            raise ValueError(f"{name} must be Cameras of batch shape (N,), got {cameras!r}")
    if predicted.shape != truth.shape or predicted.shape[0] < 2:
        raise ValueError(
            f"predicted has {tuple(predicted.shape)} cameras and truth {tuple(truth.shape)} "
            "(expected the same N ≥ 2, frame i against frame i)"
        )
    predicted = predicted.to(device="cpu", dtype=torch.float64)
    truth = truth.to(device="cpu", dtype=torch.float64)
    errors = camera_errors(predicted, truth)

    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        2, 2, height_ratios=(1.5, 1), left=0.06, right=0.97, bottom=0.07, top=0.92, hspace=0.25
    )
    if title:
        figure.suptitle(title, fontsize=14)
    clip = figure.add_subplot(grid[0, 0], projection="3d")
    sets = [
        (predicted.relative_to_first(), labels[0], "tab:red"),
        (truth.relative_to_first(), labels[1], "tab:blue"),
    ]
    draw_trajectories(clip, sets, image_size, _DEPTH_FRACTION, _MAX_FRUSTUMS)
    clip.set_title("clip frame: relative to the first camera, unaligned", fontsize=11)
    aligned = figure.add_subplot(grid[0, 1], projection="3d")
    sets = [
        (errors.aligned, f"{labels[0]}, Sim(3)-aligned", "tab:red"),
        (truth, labels[1], "tab:blue"),
    ]
    draw_trajectories(aligned, sets, image_size, _DEPTH_FRACTION, _MAX_FRUSTUMS)
    aligned.set_title("after the Sim(3) of the centres (as ATE)", fontsize=11)

    count = predicted.shape[0]
    time = torch.arange(count, dtype=torch.float64)
    x_label = "frame"
    if fps:
        time, x_label = time / fps, "time (s)"
    turn = figure.add_subplot(grid[1, 0])
    turn.plot(
        time, errors.turned_true, color="tab:blue", label=f"{labels[1]}: turned since frame 0"
    )
    turn.plot(
        time, errors.turned_predicted, color="tab:red", label=f"{labels[0]}: turned since frame 0"
    )
    turn.plot(
        time[1:],
        errors.step_rotation_error,
        color="black",
        linestyle="--",
        marker=".",
        label="error of the step from the previous frame (RPE-r's terms)",
    )
    turn.set_xlabel(x_label)
    turn.set_ylabel("degrees")
    turn.set_title("rotation", fontsize=11)
    turn.legend(fontsize=9, loc="upper left")
    turn.grid(alpha=0.3)

    centre = figure.add_subplot(grid[1, 1])
    centre.plot(time, errors.centre_error, color="black", label="‖centre error‖ (aligned)")
    centre.axhline(errors.ate, color="grey", linestyle=":", label=f"ATE (RMS) {errors.ate:.3g}")
    centre.set_xlabel(x_label)
    centre.set_ylabel("truth's units (m)")
    centre.set_title("camera centre after alignment", fontsize=11)
    centre.legend(fontsize=9, loc="upper left")
    centre.grid(alpha=0.3)
    centre.text(
        0.98,
        0.97,
        _summary(predicted, truth, errors),
        transform=centre.transAxes,
        ha="right",
        va="top",
        fontsize=9,
        family="monospace",
        bbox={"facecolor": "white", "edgecolor": "grey", "alpha": 0.9},
    )

    path = Path(path)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    return path


def _summary(predicted: Cameras, truth: Cameras, errors: CameraErrors) -> str:
    """The numbers in the corner of the centre plot."""
    from any4d.eval.pose_metrics import pose_metrics

    lines = []
    try:
        metrics = pose_metrics(predicted.c2w, truth.c2w)
        lines.append(f"ATE   {metrics['ate']:.3g} m")
        lines.append(f"RPE-t {metrics['rpe_t']:.3g} m")
        lines.append(f"RPE-r {metrics['rpe_r']:.3g}°")
    except ValueError as error:  # too few frames, a static or straight trajectory
        lines.append(f"no ATE / RPE: {str(error).split(' (')[0]}")
    lines.append(
        f"turned {float(errors.turned_true[-1]):.1f}° (true) "
        f"vs {float(errors.turned_predicted[-1]):.1f}°"
    )
    if errors.travel_cosine is not None:
        lines.append(f"cos(travel directions) {errors.travel_cosine:+.2f}")
    return "\n".join(lines)
