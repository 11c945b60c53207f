"""Similarity transforms (Sim(3)) between point sets: Umeyama's least squares and a robust fit.

* ``umeyama``: the similarity (or rigid) transform that best maps one point set onto another in
  (weighted) least squares — Umeyama, "Least-squares estimation of transformation parameters
  between two point patterns", IEEE PAMI 1991, eqs. 34–43. Unweighted, it is the computation of
  evo's ``evo.core.geometry.umeyama_alignment``, which the pose benchmarks call (EVAL.md §1).
* ``robust_umeyama``: the same fit by iteratively reweighted least squares with Huber weights,
  so that a minority of bad correspondences (e.g. depth edges of two windows' point maps) does
  not pull the transform; as VGGT-Long's chunk alignment.

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
# Huber's threshold in robust standard deviations (1.4826 · median absolute residual): 95 %
# efficiency on Gaussian residuals.
_HUBER_K = 1.345


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


def umeyama(
    source: Tensor, target: Tensor, with_scale: bool = True, weights: Tensor | None = None
) -> Similarity:
    """The similarity transform ``T`` minimising ``Σ w_i ‖target_i − T(source_i)‖²``.

    source, target: (N, 3) corresponding points. with_scale: fit a scale (Sim(3)) or keep it
    at 1 (SE(3)). weights: (N,) ≥ 0, default all 1 (then the very computation of evo's
    ``umeyama_alignment``). Raises ``ValueError`` when the points do not determine a rotation:
    fewer than 3 points, or either set (nearly) on one line or one point (a static camera), i.e.
    a cross-covariance of rank < 2 — the cases where evo raises ``GeometryException``.
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
    if weights is None:  # evo's computation, operation for operation
        mean_x, mean_y = x.mean(0), y.mean(0)
        x_c, y_c = x - mean_x, y - mean_y
        variance_x = x_c.square().sum() / n  # eq. 36
        covariance = y_c.T @ x_c / n  # eq. 38, (3, 3)
    else:
        if weights.shape != (n,) or not bool((weights >= 0).all()) or not weights.sum() > 0:
            raise ValueError(
                f"weights has shape {tuple(weights.shape)} (expected ({n},) values ≥ 0, not all 0)"
            )
        w = (weights.double() / weights.double().sum())[:, None].to(x.device)  # Σ w = 1
        mean_x, mean_y = (w * x).sum(0), (w * y).sum(0)
        x_c, y_c = x - mean_x, y - mean_y
        variance_x = (w * x_c.square()).sum()
        covariance = (w * y_c).T @ x_c
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


def robust_umeyama(
    source: Tensor, target: Tensor, with_scale: bool = True, iterations: int = 10
) -> Similarity:
    """``umeyama`` by iteratively reweighted least squares with Huber weights.

    source, target: (N, 3) corresponding points (N ≥ 3). Each iteration weighs point i by
    ``min(1, k·σ / r_i)`` with ``r_i`` its residual under the current fit, ``σ`` = 1.4826 ×
    the median residual and ``k`` = 1.345, then refits. Returns the last fit.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations={iterations!r} (expected an integer ≥ 0)")
    fit = umeyama(source, target, with_scale)
    for _ in range(iterations):
        residual = (fit.apply_to_points(source.double()) - target.double()).norm(dim=-1)
        sigma = 1.4826 * float(residual.median())
        if sigma <= 0:  # an exact fit of at least half the points: nothing left to reweigh
            break
        weights = (_HUBER_K * sigma / residual.clamp_min(1e-300)).clamp(max=1.0)
        fit = umeyama(source, target, with_scale, weights)
    return fit
