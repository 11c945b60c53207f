"""What every reported metric is: its display name, its unit and which way is better.

One table (``METRICS``) for every score key that ``any4d.eval`` reports — depth
(``depth_metrics``), pose (``pose_metrics``), image (``image_metrics``, ``lpips``) and scale
(``scale``) — so that every table a person reads says the same thing in its header::

    column_header("ate")          # 'ATE (scene units) ↓'
    column_header("ate", "m")     # 'ATE (m) ↓' — where the truth is known to be metric
    column_header("depth_scale")  # 'depth scale (→ 1)'
    units(("ate", "psnr_pooled")) # JSON-ready: {"ate": {"name": "ATE", "unit": ..., ...}, ...}

Lengths of the pose metrics (ATE, RPE-t) are in the **truth's** units (``pose_metrics``: the
Sim(3) alignment maps the prediction into them): metres for the procedural world and metric
data sets, the SfM scale of RealEstate10K. They say ``SCENE_UNITS`` unless the caller knows
the truth's unit and names it. Depth is metric by convention (DESIGN §1), so depth RMSE is in
metres. A key missing from the table is an error, not a bare column: a new metric must say
what it is before a table can show it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOWER, HIGHER, ONE = "lower", "higher", "closest to 1"
BETTER = (LOWER, HIGHER, ONE)
ARROWS = {LOWER: "↓", HIGHER: "↑", ONE: "(→ 1)"}
# The unit of a length in the truth's own units (see the module docstring).
SCENE_UNITS = "scene units"


@dataclass(frozen=True)
class Metric:
    """name: as a table shows it; unit: "" for a dimensionless number; better: ``LOWER``,
    ``HIGHER`` or ``ONE`` (a ratio, right at 1); about: what it measures, in one line."""

    name: str
    unit: str
    better: str
    about: str

    def __post_init__(self):
        if self.better not in BETTER:
            raise ValueError(f"better={self.better!r} (expected one of {BETTER})")


METRICS: dict[str, Metric] = {
    # Depth (depth_metrics, EVAL.md §2), after the protocol's alignment.
    "abs_rel": Metric("AbsRel", "", LOWER, "mean |pred − true| / true depth"),
    "rmse": Metric("RMSE", "m", LOWER, "root mean squared depth error, metres"),
    "delta1": Metric("δ1", "", HIGHER, "fraction of pixels with max(pred/true, true/pred) < 1.25"),
    # Cameras (pose_metrics, EVAL.md §1), after evo's Sim(3) alignment of the centres.
    "ate": Metric("ATE", SCENE_UNITS, LOWER, "RMSE of the aligned camera centres, truth's units"),
    "rpe_t": Metric(
        "RPE-t", SCENE_UNITS, LOWER, "RMSE of the relative translation error, truth's units"
    ),
    "rpe_r": Metric("RPE-r", "°", LOWER, "RMSE of the relative rotation error, degrees"),
    # Frames (image_metrics, EVAL.md §3), images in [0, 1].
    "psnr_pooled": Metric("PSNR pooled", "dB", HIGHER, "PSNR of the MSE over all frames (DFoT)"),
    "psnr_frame_mean": Metric("PSNR frame mean", "dB", HIGHER, "mean over frames of each PSNR"),
    "ssim": Metric("SSIM", "", HIGHER, "structural similarity, mean over frames"),
    "mse": Metric("MSE", "", LOWER, "mean squared error of images in [0, 1], pooled"),
    "lpips": Metric("LPIPS", "", LOWER, "learned perceptual distance (VGG), mean over frames"),
    # Scale (scale.py), no alignment: does the completion come back in the input's units?
    "depth_scale": Metric("depth scale", "", ONE, "median predicted / median true depth"),
    "path_scale": Metric("path scale", "", ONE, "predicted / true camera path length"),
}


def metric(key: str) -> Metric:
    """The ``Metric`` of a score key, or a ``ValueError`` naming the keys there are."""
    if key not in METRICS:
        raise ValueError(
            f"metric {key!r} has no entry in any4d.eval.metric_units.METRICS (expected one of "
            f"{tuple(METRICS)}; a new metric needs its name, unit and direction there)"
        )
    return METRICS[key]


def _unit(entry: Metric, length_unit: str | None) -> str:
    return length_unit if entry.unit == SCENE_UNITS and length_unit else entry.unit


def column_header(key: str, length_unit: str | None = None) -> str:
    """A table's header of ``key``: name, unit in brackets (none if dimensionless) and the
    arrow of the better direction, e.g. ``'AbsRel ↓'``, ``'RPE-r (°) ↓'``, ``'PSNR pooled (dB)
    ↑'``, ``'depth scale (→ 1)'``. length_unit: the truth's length unit where it is known (e.g.
    ``"m"``), shown for ATE and RPE-t instead of ``SCENE_UNITS``."""
    entry = metric(key)
    unit = _unit(entry, length_unit)
    return " ".join([entry.name, *([f"({unit})"] if unit else []), ARROWS[entry.better]])


def units(keys: Iterable[str], length_unit: str | None = None) -> dict[str, dict[str, str]]:
    """JSON-ready legend of ``keys``: key → ``{"name", "unit", "better", "about"}`` (better:
    ``"lower"``, ``"higher"`` or ``"closest to 1"``; unit ``""`` for a dimensionless number).
    length_unit: as for ``column_header``."""
    legend = {}
    for key in keys:
        entry = metric(key)
        legend[key] = {
            "name": entry.name,
            "unit": _unit(entry, length_unit),
            "better": entry.better,
            "about": entry.about,
        }
    return legend
