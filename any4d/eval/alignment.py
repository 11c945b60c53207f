"""Alignments that evaluation applies before measuring an error, kept apart from the metrics.

* ``umeyama`` (and its ``Similarity``, from ``any4d.geometry``, where the pipeline and the
  pictures use it too): the similarity (or rigid) transform that best maps one point set onto
  another in least squares, the computation of evo's ``umeyama_alignment`` (EVAL.md §1).
* ``fit_scale_shift_lstsq`` / ``fit_scale_shift_l1`` / ``fit_scale_l1``: the scale (and shift)
  that best map a predicted depth or disparity onto the truth, in L2 or L1 (EVAL.md §2).

Everything runs in float64 on the inputs' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from any4d.geometry import Similarity, umeyama

__all__ = ["Similarity", "umeyama", "fit_scale_shift_lstsq", "fit_scale_shift_l1", "fit_scale_l1"]

# The L1 fit stops when a pivot lowers the error by less than this fraction of it: a smaller
# "improvement" is round-off of the same line, and waiting for exact equality could cycle.
_L1_TOLERANCE = 1e-13
_L1_MAX_PIVOTS = 10_000


def _check_pair(pred: Tensor, target: Tensor, minimum: int) -> tuple[Tensor, Tensor]:
    if pred.shape != target.shape or pred.dim() != 1:
        raise ValueError(
            f"pred has shape {tuple(pred.shape)} and target {tuple(target.shape)} "
            "(expected the same (N,) values)"
        )
    if pred.shape[0] < minimum:
        raise ValueError(f"pred has {pred.shape[0]} values (expected ≥ {minimum} to fit)")
    pred, target = pred.double(), target.double()
    if not (torch.isfinite(pred).all() and torch.isfinite(target).all()):
        raise ValueError("pred and target must be finite (mask invalid values out first)")
    return pred, target


def fit_scale_shift_lstsq(pred: Tensor, target: Tensor) -> tuple[float, float]:
    """``(s, t)`` minimising ``Σ (s · pred + t − target)²`` — ``np.linalg.lstsq`` on ``[pred, 1]``.

    pred, target: (N,). Raises ``ValueError`` if ``pred`` is constant (no unique scale).
    """
    pred, target = _check_pair(pred, target, 2)
    p_c, g_c = pred - pred.mean(), target - target.mean()
    denominator = p_c.square().sum()
    if not denominator > 0:
        raise ValueError("pred is constant: a scale and shift cannot be fitted")
    scale = (p_c * g_c).sum() / denominator
    return float(scale), float(target.mean() - scale * pred.mean())


def weighted_median(values: Tensor, weights: Tensor) -> tuple[float, int]:
    """A minimiser of ``Σ wᵢ |values_i − x|`` and the index of the value it is.

    values, weights: (N,), weights ≥ 0 with a positive sum. Returns the lower weighted median
    (the smallest value whose cumulative weight reaches half the total) and its index.
    """
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order], 0)
    position = int(torch.searchsorted(cumulative, 0.5 * cumulative[-1]))
    index = int(order[min(position, values.shape[0] - 1)])
    return float(values[index]), index


def fit_scale_l1(pred: Tensor, target: Tensor) -> float:
    """``s`` minimising ``Σ |s · pred − target|``, exactly.

    ``|s pᵢ − gᵢ| = |pᵢ| · |s − gᵢ/pᵢ|``, so the optimum is the median of the ratios ``gᵢ/pᵢ``
    weighted by ``|pᵢ|``. (CUT3R's ``align_with_scale`` approaches it with 10 IRLS steps.)
    pred, target: (N,). Raises ``ValueError`` if ``pred`` is all zero.
    """
    pred, target = _check_pair(pred, target, 1)
    nonzero = pred != 0
    if not nonzero.any():
        raise ValueError("pred is all zero: a scale cannot be fitted")
    ratio = target[nonzero] / pred[nonzero]
    return weighted_median(ratio, pred[nonzero].abs())[0]


def fit_scale_shift_l1(pred: Tensor, target: Tensor) -> tuple[float, float]:
    """``(s, t)`` minimising ``Σ |s · pred + t − target|``, exactly (least absolute deviations).

    This is the optimum that Geo4D / MonST3R's ``align_with_lad2`` approaches with Adam.

    Method (Wesolowsky, "A new descent algorithm for the least absolute value regression
    problem", 1981): an optimal line passes through two data points. Among the lines through a
    pivot point ``k`` the best slope is a weighted median, ``Σ |Δgᵢ − s Δpᵢ| =
    Σ |Δpᵢ| · |Δgᵢ/Δpᵢ − s|``; that line meets a second point ``j``, which becomes the pivot. The
    error falls at every pivot, and a line through ``k`` and ``j`` that no pivot improves is
    optimal: the L1 error is convex and piecewise linear, and at such a vertex its directional
    derivatives along both lines through it are ≥ 0, hence in every direction.

    pred, target: (N,). Raises ``ValueError`` if ``pred`` is constant (no unique scale).
    """
    pred, target = _check_pair(pred, target, 2)
    if not (pred != pred[0]).any():
        raise ValueError("pred is constant: a scale and shift cannot be fitted")
    scale, shift = fit_scale_shift_lstsq(pred, target)
    residual = target - scale * pred
    pivot = int(torch.argsort(residual)[(residual.shape[0] - 1) // 2])  # a median residual
    shift = float(residual[pivot])  # the best shift for this scale: the line meets the pivot
    error = float((residual - shift).abs().sum())
    for _ in range(_L1_MAX_PIVOTS):
        dp, dg = pred - pred[pivot], target - target[pivot]
        moving = dp != 0  # points level with the pivot keep their error whatever the slope
        candidate, index = weighted_median(dg[moving] / dp[moving], dp[moving].abs())
        next_pivot = int(torch.nonzero(moving)[index])
        candidate_shift = float(target[pivot] - candidate * pred[pivot])
        candidate_error = float((target - candidate * pred - candidate_shift).abs().sum())
        if candidate_error >= error * (1 - _L1_TOLERANCE):
            return scale, shift
        scale, shift, error, pivot = candidate, candidate_shift, candidate_error, next_pivot
    raise RuntimeError(f"fit_scale_shift_l1 did not converge in {_L1_MAX_PIVOTS} pivots")
