"""Evaluation: camera-pose, video-depth and image metrics under the field's protocols.

Each metric reproduces a named protocol (described in its module's docstring) and is tested
against its reference implementation (evo, torchmetrics) or a direct computation. Alignment
(Umeyama, depth scale and shift) lives apart from the metrics in ``alignment``. A dataset's
number comes from ``mean_over_sequences``, which counts and names failed sequences.

Imports only ``any4d.geometry``; evo is never needed at run time, torchmetrics only for the
image metrics.
"""

from any4d.eval.aggregate import SequenceMean, mean_over_sequences
from any4d.eval.alignment import (
    Similarity,
    fit_scale_l1,
    fit_scale_shift_l1,
    fit_scale_shift_lstsq,
    umeyama,
)
from any4d.eval.depth_metrics import DEPTH_CAPS, DEPTH_KEYS, PROTOCOLS, depth_cap, depth_metrics
from any4d.eval.image_metrics import (
    IMAGE_KEYS,
    image_metrics,
    psnr_from_mse,
    scored_frames,
    to_unit_range,
)
from any4d.eval.lpips import LpipsVGG
from any4d.eval.metric_units import METRICS, column_header, units
from any4d.eval.pose_metrics import POSE_KEYS, aligned_pose_metrics, pose_metrics

__all__ = [
    "METRICS",
    "aligned_pose_metrics",
    "column_header",
    "units",
    "DEPTH_CAPS",
    "DEPTH_KEYS",
    "IMAGE_KEYS",
    "POSE_KEYS",
    "PROTOCOLS",
    "LpipsVGG",
    "SequenceMean",
    "Similarity",
    "depth_cap",
    "depth_metrics",
    "fit_scale_l1",
    "fit_scale_shift_l1",
    "fit_scale_shift_lstsq",
    "image_metrics",
    "mean_over_sequences",
    "pose_metrics",
    "psnr_from_mse",
    "scored_frames",
    "to_unit_range",
    "umeyama",
]
