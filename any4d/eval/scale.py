"""Scale scores: does a completion come back in the input's units? No alignment of any kind.

Depth and pose metrics of the field align first (AbsRel after a per-clip scale and shift, ATE
after Sim(3)), which hides a completion whose depth is 5× too small. These scores do not:

* ``depth_scale``: median predicted depth / median true depth, over pixels valid in both;
* ``path_scale``: length of the predicted camera path / that of the true path (the summed
  distances between consecutive centres: invariant to the rigid motion between the two worlds).

1 is right. Both are ratios, so average them over clips geometrically (``geometric_mean``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import Tensor

from any4d.data import Scene
from any4d.diffusion import Mask
from any4d.geometry import Cameras, path_length


def depth_scale(predicted: Tensor, truth: Tensor) -> float | None:
    """Median predicted / median true depth over pixels valid (> 0) in both; None if none are.

    predicted, truth: (T, 1, H, W) metres, 0 = invalid.
    """
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted depth has shape {tuple(predicted.shape)} but the truth "
            f"{tuple(truth.shape)} (expected the same (T, 1, H, W))"
        )
    valid = (predicted > 0) & (truth > 0)
    if not valid.any():
        return None
    return float(predicted[valid].double().median() / truth[valid].double().median())


def path_scale(predicted: Cameras, truth: Cameras) -> float | None:
    """Predicted / true camera path length (batch (T,) each); None for a static true camera."""
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted cameras have batch shape {tuple(predicted.shape)} but the truth "
            f"{tuple(truth.shape)} (expected the same (T,))"
        )
    true = float(path_length(truth.to(dtype=predicted.dtype)))
    return None if true < 1e-9 else float(path_length(predicted)) / true


def scale_scores(mask: Mask, completion: Scene, truth: Scene) -> dict[str, float]:
    """The scale scores of what ``mask`` generates: ``depth_scale`` when it generates depth,
    ``path_scale`` when it generates cameras (and the truth has them)."""
    frames = truth.num_frames
    scores = {}
    generates_depth = len(mask.clean_frames("depth", frames)) < frames
    if generates_depth and completion.depth is not None and truth.depth is not None:
        value = depth_scale(completion.depth, truth.depth.to(completion.depth.dtype))
        if value is not None:
            scores["depth_scale"] = value
    generates_cameras = len(mask.clean_frames("ray_d", frames)) < frames
    if generates_cameras and completion.cameras is not None and truth.cameras is not None:
        value = path_scale(completion.cameras, truth.cameras)
        if value is not None:
            scores["path_scale"] = value
    return scores


def geometric_mean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive finite values (None if there are none): for ratios."""
    logs = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None
