"""Alignments that evaluation applies before measuring an error, kept apart from the metrics.

* ``umeyama``: the similarity (or rigid) transform that best maps one point set onto another in
  least squares — Umeyama, "Least-squares estimation of transformation parameters between two
  point patterns", IEEE PAMI 1991, eqs. 34–43. It is the same computation as evo's
  ``evo.core.geometry.umeyama_alignment``, which the pose benchmarks call (EVAL.md §1).
* ``fit_scale_shift_lstsq`` / ``fit_scale_shift_l1`` / ``fit_scale_l1``: the scale (and shift)
  that best map a predicted depth or disparity onto the truth, in L2 or L1 (EVAL.md §2).

Everything runs in float64 on the inputs' device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Umeyama needs a cross-covariance of rank ≥ 2 (points not all on one line): a second singular
# value below this fraction of the first counts as rank 1. evo tests ``d > machine ε`` in
# absolute terms, which calls the same centres degenerate or not depending on their units.
_RANK_TOLERANCE = 1e-10

# The L1 fit stops when a pivot lowers the error by less than this fraction of it: a smaller
# "improvement" is round-off of the same line, and waiting for exact equality could cycle.
_L1_TOLERANCE = 1e-13
_L1_MAX_PIVOTS = 10_000


@dataclass(frozen=True, eq=False)
class Similarity:
    """``x ↦ scale · rotation · x + translation``.

    rotation: (3, 3) proper rotation. translation: (3,). scale: positive float (1 for SE(3)).
    """

    rotation: Tensor
    translation: Tensor
    scale: float

    def apply_to_points(self, points: Tensor) -> Tensor:
        """points: (..., 3). Returns (..., 3) transformed points."""
        rotation = self.rotation.to(points)
        return self.scale * points @ rotation.T + self.translation.to(points)

    def apply_to_poses(self, c2w: Tensor) -> Tensor:
        """Move camera-to-world poses (..., 4, 4) with the world: ``R ↦ rotation · R``, centre
        ``c ↦ scale · rotation · c + translation``. The result is rigid again (the scale acts on
        positions only), which is what evo's ``PosePath3D.align`` does.
        """
        out = c2w.clone()
        out[..., :3, :3] = self.rotation.to(c2w) @ c2w[..., :3, :3]
        out[..., :3, 3] = self.apply_to_points(c2w[..., :3, 3])
        return out


def umeyama(source: Tensor, target: Tensor, with_scale: bool = True) -> Similarity:
    """The similarity transform ``T`` minimising ``Σ ‖target_i − T(source_i)‖²``.

    source, target: (N, 3) corresponding points. with_scale: fit a scale (Sim(3)) or keep it
    at 1 (SE(3)). Raises ``ValueError`` when the points do not determine a rotation: fewer than
    3 points, or either set (nearly) on one line or one point (a static camera), i.e. a
    cross-covariance of rank < 2 — the cases where evo raises ``GeometryException``.
    """
    if source.shape != target.shape or source.dim() != 2 or source.shape[-1] != 3:
        raise ValueError(
            f"source has shape {tuple(source.shape)} and target {tuple(target.shape)} "
            "(expected the same (N, 3))"
        )
    n = source.shape[0]
    if n < 3:
        raise ValueError(f"umeyama got {n} points (expected ≥ 3 points, not all on one line)")
    x, y = source.double(), target.double()
    mean_x, mean_y = x.mean(0), y.mean(0)
    x_c, y_c = x - mean_x, y - mean_y
    variance_x = x_c.square().sum() / n  # eq. 36
    covariance = y_c.T @ x_c / n  # eq. 38, (3, 3)
    u, d, vh = torch.linalg.svd(covariance)
    if not d[0] > 0 or d[1] <= _RANK_TOLERANCE * d[0]:
        raise ValueError(
            f"umeyama: the points are degenerate (cross-covariance singular values "
            f"{[float(v) for v in d]}, expected rank ≥ 2): a static camera or centres on one "
            "line do not determine a rotation"
        )
    s = torch.ones(3, dtype=x.dtype, device=x.device)
    if torch.linalg.det(u) * torch.linalg.det(vh) < 0:
        s[2] = -1  # eq. 43: a rotation, not a reflection
    rotation = u @ torch.diag(s) @ vh  # eq. 40
    scale = float((d * s).sum() / variance_x) if with_scale else 1.0  # eq. 42
    translation = mean_y - scale * rotation @ mean_x  # eq. 41
    return Similarity(rotation, translation, scale)


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
