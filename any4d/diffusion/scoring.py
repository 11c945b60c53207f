"""Scores of a 4D hypothesis: does its RGB, depth and cameras agree under reprojection?

Lower is better. Each score averages over **anchor pairs** ``(i, j)``: frame ``i`` seen from
frame ``j`` through the hypothesis's *own* depth of frame ``j`` and its own cameras.

* ``photometric_score`` — masked L1 between ``I_i`` warped into view ``j`` and ``I_j`` (paper
  §4, DESIGN §5). Fails where colour carries no evidence (textureless or specular surfaces).
* ``geometric_score`` — relative disagreement between the depth of frame ``i`` found at the
  projection of frame ``j``'s points and those points' own depth in camera ``i``. Needs no
  texture, and is invariant to the scale of the scene.
* ``combined_score`` — their sum with a weight on the geometric term.

A pair where no pixel lands in the other view scores ``inf`` (no overlap is no evidence of
agreement); a hypothesis whose every pair is ``inf`` scores ``inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from any4d.geometry import Cameras, photometric_error, project, resolve_frames, unproject, warp

SCORES = ("photometric", "geometric", "combined")


def anchor_pairs(
    num_frames: int, anchors: Sequence[int] = (0,), max_pairs: int = 16
) -> list[tuple[int, int]]:
    """Pairs ``(anchor i, frame j ≠ i)``, at most ``max_pairs``, spread evenly over the clip.

    anchors: frames to warp from (usually the observed RGB frames); negative = from the end.
    """
    if num_frames < 2:
        raise ValueError(f"num_frames={num_frames} (expected ≥ 2 frames to form pairs)")
    if not anchors:
        raise ValueError(
            f"anchors={list(anchors)} (expected frame indices of a {num_frames}-frame clip)"
        )
    resolved = sorted(set(resolve_frames(anchors, num_frames, "anchors")))
    pairs = [(i, j) for i in resolved for j in range(num_frames) if j != i]
    if len(pairs) <= max_pairs:
        return pairs
    picks = torch.linspace(0, len(pairs) - 1, max_pairs).round().long().tolist()
    return [pairs[k] for k in picks]


def _split(cameras: Cameras, pairs, depth: Tensor):
    """Frame indices (P,) of each side of the pairs and their cameras, batch (N, P)."""
    i = [p[0] for p in pairs]
    j = [p[1] for p in pairs]
    return i, j, cameras[:, i], cameras[:, j]


def _mean_over_pairs(errors: Tensor) -> Tensor:
    """(N, P) per-pair errors → (N,) mean over the finite ones, inf if none is finite."""
    finite = torch.isfinite(errors)
    total = torch.where(finite, errors, 0.0).sum(-1)
    count = finite.sum(-1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.inf)


def photometric_score(
    rgb: Tensor, depth: Tensor, cameras: Cameras, pairs: Sequence[tuple[int, int]]
) -> Tensor:
    """Mean over pairs of the masked L1 between ``warp(I_i → j)`` and ``I_j``.

    rgb: (N, T, 3, H, W); depth: (N, T, 1, H, W) metres (0 = invalid); cameras: batch (N, T).
    Returns (N,).
    """
    i, j, cams_i, cams_j = _split(cameras, pairs, depth)
    warped, valid = warp(rgb[:, i], depth[:, j], cams_i, cams_j)
    return _mean_over_pairs(photometric_error(warped, rgb[:, j], valid))


def geometric_score(depth: Tensor, cameras: Cameras, pairs: Sequence[tuple[int, int]]) -> Tensor:
    """Mean over pairs of ``|D_i(π_i(X_j)) − z_i(X_j)| / z_i(X_j)`` over the valid pixels.

    ``X_j`` are frame ``j``'s points (its depth and camera), ``π_i`` / ``z_i`` their pixel and
    depth in camera ``i``, ``D_i`` frame ``i``'s depth map sampled there.
    depth: (N, T, 1, H, W); cameras: batch (N, T). Returns (N,).
    """
    i, j, cams_i, cams_j = _split(cameras, pairs, depth)
    seen, valid = warp(depth[:, i], depth[:, j], cams_i, cams_j)
    _, z = project(unproject(depth[:, j], cams_j), cams_i)
    valid = valid & (seen > 0)
    relative = ((seen - z).abs() / z.clamp_min(1e-6)) * valid
    count = valid.sum(dim=(-3, -2, -1))
    errors = torch.where(count > 0, relative.sum(dim=(-3, -2, -1)) / count.clamp_min(1), torch.inf)
    return _mean_over_pairs(errors)


def combined_score(
    rgb: Tensor,
    depth: Tensor,
    cameras: Cameras,
    pairs: Sequence[tuple[int, int]],
    geometric_weight: float = 1.0,
) -> Tensor:
    """``photometric + geometric_weight · geometric``, each as above. Returns (N,)."""
    return photometric_score(rgb, depth, cameras, pairs) + geometric_weight * geometric_score(
        depth, cameras, pairs
    )


def score(
    kind: str, rgb: Tensor, depth: Tensor, cameras: Cameras, pairs: Sequence[tuple[int, int]]
) -> Tensor:
    """The score named ``kind`` (one of ``SCORES``). Returns (N,)."""
    if kind == "photometric":
        return photometric_score(rgb, depth, cameras, pairs)
    if kind == "geometric":
        return geometric_score(depth, cameras, pairs)
    if kind == "combined":
        return combined_score(rgb, depth, cameras, pairs)
    raise ValueError(f"score={kind!r} (expected one of {SCORES})")
