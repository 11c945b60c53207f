"""Video-depth metrics — AbsRel, RMSE, δ < 1.25 — under the field's named protocols (EVAL.md §2).

Two protocols differ in where the prediction is aligned and how pixels are averaged, and the
numbers of one cannot be compared with the other:

``"depthcrafter"`` (DepthCrafter ``benchmark/eval/eval.py``, ``--domain depth``)
    valid = ``1e-3 < gt < cap``. The prediction's disparity ``1 / pred`` (clipped ≥ 1e-3) gets
    one least-squares scale and shift per video onto ``1 / gt``; the result is clipped ≥ 1e-3,
    inverted to depth and clipped to ``[1e-3, cap]``. Metrics per frame (frames without valid
    pixels are dropped), then the mean over frames.
``"geo4d"`` (Geo4D / MonST3R / CUT3R ``depth_evaluation(..., align_with_lad2=True)``)
    valid = ``0 < gt < cap`` (``gt > 0`` without a cap). One L1 scale and shift per sequence in
    depth — the exact optimum, which their Adam fit approaches; the aligned depth is clipped
    ≤ cap (their ``post_clip_max``). Metrics pooled over every valid pixel of the sequence.
``"scale"``
    As ``"geo4d"`` with an L1 scale only (CUT3R ``--align scale``, exact instead of IRLS).
``"none"``
    As ``"geo4d"`` without alignment: metric depth (CUT3R ``--align metric``).

Across sequences DepthCrafter takes the plain mean over videos and the Geo4D family weights
each sequence by its valid-pixel count: ``mean_over_sequences(results, keys, weight="n_valid")``.
Resizing the prediction to the truth's resolution and choosing frames is the caller's job.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from any4d.eval.alignment import fit_scale_l1, fit_scale_shift_l1, fit_scale_shift_lstsq

PROTOCOLS = ("depthcrafter", "geo4d", "scale", "none")
DEPTH_KEYS = ("abs_rel", "rmse", "delta1")

# Depth caps in metres (None: no cap) per protocol and dataset. A cap bounds the valid
# ground truth and clips the aligned prediction. "scale" and "none" use the "geo4d" row.
DEPTH_CAPS: dict[str, dict[str, float | None]] = {
    # DepthCrafter benchmark/eval/eval.sh --dataset_max_depth.
    "depthcrafter": {
        "sintel": 70.0,
        "scannet": 10.0,
        "kitti": 80.0,
        "bonn": 10.0,
        "nyu": 10.0,
        # CHOSEN, not found in any source (EVAL.md: UNCONFIRMED). 7-Scenes is indoor Kinect
        # depth like ScanNet, NYU and Bonn, which use 10 m.
        "7scenes": 10.0,
        # CHOSEN, UNCONFIRMED for video depth. VKITTI 2 stores depth in cm in 16 bits, the sky at
        # the 655.35 m ceiling, so it needs a cap: KITTI's 80 m, also the valid range of
        # Depth-Anything-V2's metric_depth/dataset/vkitti2.py (depth <= 80).
        "vkitti2": 80.0,
    },
    # Geo4D / MonST3R / CUT3R max_depth (and post_clip_max) of their depth evaluation.
    "geo4d": {
        "sintel": 70.0,
        "bonn": 70.0,
        "kitti": None,
        # CHOSEN, UNCONFIRMED: the family's indoor cap (Bonn).
        "7scenes": 70.0,
        # CHOSEN, UNCONFIRMED: unlike KITTI's lidar, VKITTI 2's sky (655.35 m) must be cut.
        "vkitti2": 80.0,
    },
}

_DISPARITY_MIN = 1e-3  # DepthCrafter's clip of (aligned) disparity and of depth
_DELTA_CLAMP = 1e-5  # Geo4D clamps the prediction before its ratio and log metrics


def depth_cap(protocol: str, dataset: str) -> float | None:
    """The cap ``DEPTH_CAPS`` gives ``dataset`` under ``protocol`` (metres, None = no cap)."""
    _check_protocol(protocol)
    table = DEPTH_CAPS["depthcrafter" if protocol == "depthcrafter" else "geo4d"]
    key = dataset.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in table:
        raise ValueError(
            f"dataset {dataset!r} has no depth cap for protocol {protocol!r} (expected one of "
            f"{sorted(table)}, or pass max_depth)"
        )
    return table[key]


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol is {protocol!r} (expected one of {PROTOCOLS})")


def _as_depth(value: Tensor | np.ndarray, name: str) -> Tensor:
    value = torch.as_tensor(value)
    if value.dim() == 4 and value.shape[1] == 1:  # a Scene's (T, 1, H, W)
        value = value[:, 0]
    if value.dim() != 3:
        raise ValueError(
            f"{name} has shape {tuple(value.shape)} (expected (T, H, W) or (T, 1, H, W); a "
            "single image is depth[None])"
        )
    return value.double()


def depth_metrics(
    pred: Tensor | np.ndarray,
    gt: Tensor | np.ndarray,
    valid: Tensor | np.ndarray | None = None,
    protocol: str = "geo4d",
    *,
    dataset: str | None = None,
    max_depth: float | None = None,
) -> dict:
    """AbsRel, RMSE and δ < 1.25 of one predicted depth video under a named protocol.

    pred:      (T, H, W) predicted depth, any scale for the aligning protocols (metres for
               ``"none"``), at the truth's resolution. Non-positive depth counts as infinitely
               far (zero disparity) under ``"depthcrafter"``.
    gt:        (T, H, W) true depth in metres, 0 = invalid (DESIGN §1).
    valid:     optional (T, H, W) bool; pixels outside it are neither fitted nor scored.
    protocol:  ``"depthcrafter"``, ``"geo4d"``, ``"scale"`` or ``"none"`` (module docstring).
    dataset:   take the cap from ``DEPTH_CAPS`` (e.g. ``"sintel"``); or give ``max_depth``
               (metres); neither means no cap.

    Returns ``abs_rel``, ``rmse`` (metres), ``delta1`` (fraction), and what produced them:
    ``protocol``, ``max_depth`` (the cap used), ``scale`` and ``shift`` of the alignment
    (in disparity for ``"depthcrafter"``), ``n_valid`` (valid pixels) and ``n_frames`` (frames
    scored). Raises ``ValueError`` on malformed input or a video without valid pixels.
    """
    _check_protocol(protocol)
    if dataset is not None and max_depth is not None:
        raise ValueError(
            f"dataset={dataset!r} and max_depth={max_depth} both set (expected one: the "
            "dataset's cap comes from DEPTH_CAPS)"
        )
    cap = depth_cap(protocol, dataset) if dataset is not None else max_depth
    if cap is not None and not (math.isfinite(cap) and cap > 0):
        raise ValueError(f"max_depth is {cap} (expected a positive number of metres or None)")
    pred, gt = _as_depth(pred, "pred"), _as_depth(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred has shape {tuple(pred.shape)} but gt has {tuple(gt.shape)} (expected the "
            "same (T, H, W): resize the prediction to the truth's resolution first)"
        )
    gt = gt.to(pred.device)
    mask = torch.ones_like(gt, dtype=torch.bool)
    if valid is not None:
        valid = torch.as_tensor(valid, device=pred.device)
        if valid.dim() == 4 and valid.shape[1] == 1:  # a Scene's (T, 1, H, W)
            valid = valid[:, 0]
        if valid.shape != gt.shape or valid.dtype != torch.bool:
            raise ValueError(
                f"valid is {valid.dtype} of shape {tuple(valid.shape)} (expected bool of "
                f"shape {tuple(gt.shape)})"
            )
        mask = valid
    if not torch.isfinite(gt[mask]).all():
        raise ValueError("gt has NaN or inf inside valid (expected finite depth, 0 = invalid)")
    mask = mask & (gt > (_DISPARITY_MIN if protocol == "depthcrafter" else 0.0))
    if cap is not None:
        mask = mask & (gt < cap)
    n_valid = int(mask.sum())
    if n_valid == 0:
        raise ValueError("gt has no valid pixel (0 < depth < cap inside valid) to score")
    if not torch.isfinite(pred[mask]).all():
        raise ValueError("pred has NaN or inf at valid pixels (expected finite depth)")

    if protocol == "depthcrafter":
        result = _depthcrafter(pred, gt, mask, cap)
    else:
        result = _pooled(pred[mask], gt[mask], protocol, cap)
    n_frames = int(mask.flatten(1).any(1).sum())
    return {
        **result,
        "protocol": protocol,
        "max_depth": cap,
        "n_valid": n_valid,
        "n_frames": n_frames,
    }


def _depthcrafter(pred: Tensor, gt: Tensor, mask: Tensor, cap: float | None) -> dict:
    """DepthCrafter: LSQ in disparity per video, metrics per frame, mean over frames."""
    disparity = torch.where(pred > 0, 1.0 / pred, torch.zeros_like(pred))
    disparity = disparity.clamp(min=_DISPARITY_MIN)
    # DepthCrafter inverts the truth as 1 / (gt + 1e-8); kept for the same digits.
    scale, shift = fit_scale_shift_lstsq(disparity[mask], 1.0 / (gt[mask] + 1e-8))
    aligned = (scale * disparity + shift).clamp(min=_DISPARITY_MIN)
    depth = (1.0 / aligned).clamp(min=_DISPARITY_MIN, max=cap)

    frames = mask.flatten(1).any(1)  # frames without a valid pixel are dropped
    depth, gt, mask = depth[frames], gt[frames], mask[frames]
    gt_safe = torch.where(mask, gt, torch.ones_like(gt))  # no 0/0 outside the mask
    count = mask.sum((-1, -2))  # (T',)
    difference = torch.where(mask, depth - gt, torch.zeros_like(gt))
    ratio = torch.maximum(depth / gt_safe, gt_safe / depth)
    per_frame = {
        "abs_rel": (difference.abs() / gt_safe).sum((-1, -2)) / count,
        "rmse": (difference.square().sum((-1, -2)) / count).sqrt(),
        "delta1": ((ratio < 1.25) & mask).sum((-1, -2)).double() / count,
    }
    metrics = {key: float(value.mean()) for key, value in per_frame.items()}
    return {**metrics, "scale": scale, "shift": shift}


def _pooled(pred: Tensor, gt: Tensor, protocol: str, cap: float | None) -> dict:
    """Geo4D family: one L1 fit over the sequence in depth, metrics pooled over pixels.

    pred, gt: (N,) values at the valid pixels.
    """
    if protocol == "geo4d":
        scale, shift = fit_scale_shift_l1(pred, gt)
    elif protocol == "scale":
        scale, shift = fit_scale_l1(pred, gt), 0.0
    else:
        scale, shift = 1.0, 0.0
    depth = scale * pred + shift
    if cap is not None:
        depth = depth.clamp(max=cap)
    clamped = depth.clamp(min=_DELTA_CLAMP)
    ratio = torch.maximum(clamped / gt, gt / clamped)
    return {
        "abs_rel": float(((depth - gt).abs() / gt).mean()),
        "rmse": math.sqrt(float((depth - gt).square().mean())),
        "delta1": float((ratio < 1.25).double().mean()),
        "scale": scale,
        "shift": shift,
    }
