"""Frame metrics of generated video against the truth — PSNR, SSIM, LPIPS — as DFoT scores them.

DFoT (EVAL.md §3): images in ``[0, 1]`` (NaN → 0, clamped, float32), torchmetrics' PSNR and SSIM
with ``data_range=1``, LPIPS with the VGG backbone; context frames are not scored (prediction:
the first ``n_context`` frames; interpolation: frames 0 and −1).

Our RGB is in ``[−1, 1]`` (DESIGN §1) and is mapped to ``[0, 1]`` by ``(x + 1) / 2`` first.

PSNR comes two ways, labelled, because they differ:

* ``psnr_pooled`` — DFoT's number: torchmetrics' PSNR with ``dim=None`` pools the squared error
  over every scored frame, i.e. ``10 log₁₀(1 / MSE)`` of the global MSE. Over a whole dataset
  DFoT pools over all videos too: average ``mse`` weighted by ``n_frames`` and take
  ``psnr_from_mse`` of that.
* ``psnr_frame_mean`` — the mean over frames of each frame's PSNR, what most papers describe.
  By Jensen's inequality it is ≥ the pooled one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from any4d.eval.lpips import LpipsVGG
from any4d.geometry import resolve_frames

IMAGE_KEYS = ("psnr_pooled", "psnr_frame_mean", "ssim")


def to_unit_range(rgb: Tensor) -> Tensor:
    """Our ``[−1, 1]`` RGB → DFoT's metric input: ``(x + 1) / 2``, NaN → 0, clamped to
    ``[0, 1]``, float32. Any shape."""
    return torch.nan_to_num((rgb.float() + 1) / 2, nan=0.0).clamp(0.0, 1.0)


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in ``[0, 1]`` (``data_range = 1``): ``10 log₁₀(1 / mse)``."""
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def scored_frames(num_frames: int, context: Sequence[int]) -> list[int]:
    """Indices of the frames that are scored: all but ``context`` (negative indices count from
    the end, so ``(0, -1)`` is interpolation's context)."""
    excluded = set(resolve_frames(context, num_frames, "context"))
    frames = [t for t in range(num_frames) if t not in excluded]
    if not frames:
        raise ValueError(f"context {list(context)} excludes all {num_frames} frames")
    return frames


def image_metrics(
    pred: Tensor,
    target: Tensor,
    context: Sequence[int] = (),
    *,
    lpips: LpipsVGG | None = None,
) -> dict:
    """PSNR (pooled and per-frame mean), SSIM and optionally LPIPS of the non-context frames.

    pred, target: (B, T, 3, H, W) or (T, 3, H, W) RGB in ``[−1, 1]``; H, W ≥ 11 (SSIM's window).
    context:      frame indices not scored, e.g. ``(0, -1)`` for interpolation or
                  ``range(n_context)`` for prediction.
    lpips:        an ``LpipsVGG`` (``LpipsVGG.from_files(path)``) to add ``"lpips"``; None
                  leaves it out.

    Returns ``psnr_pooled`` (DFoT), ``psnr_frame_mean``, ``ssim`` (mean over frames), ``mse``
    (pooled, in ``[0, 1]`` units), ``n_frames`` (frames scored) and, with ``lpips``, ``lpips``
    (mean over frames). A perfect frame has infinite PSNR.
    """
    try:
        from torchmetrics.functional.image import (
            peak_signal_noise_ratio,
            structural_similarity_index_measure,
        )
    except ImportError as error:
        raise ImportError(
            "image_metrics computes PSNR and SSIM with torchmetrics: pip install torchmetrics"
        ) from error

    if pred.shape != target.shape:
        raise ValueError(
            f"pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)} "
            "(expected the same)"
        )
    if pred.dim() == 4:
        pred, target = pred[None], target[None]
    if pred.dim() != 5 or pred.shape[2] != 3:
        raise ValueError(
            f"pred has shape {tuple(pred.shape)} (expected (B, T, 3, H, W) or (T, 3, H, W) RGB)"
        )
    frames = scored_frames(pred.shape[1], context)
    # (B·T', 3, H, W) in [0, 1], context frames dropped
    preds, targets = (to_unit_range(x[:, frames]).flatten(0, 1) for x in (pred, target.to(pred)))

    mse = float((preds - targets).double().square().mean())
    per_frame = peak_signal_noise_ratio(
        preds, targets, data_range=1.0, dim=(1, 2, 3), reduction="none"
    )
    result = {
        "psnr_pooled": float(peak_signal_noise_ratio(preds, targets, data_range=1.0)),
        "psnr_frame_mean": float(per_frame.double().mean()),
        "ssim": float(structural_similarity_index_measure(preds, targets, data_range=1.0)),
        "mse": mse,
        "n_frames": preds.shape[0],
    }
    if lpips is not None:
        lpips = lpips.to(preds.device)
        with torch.no_grad():
            result["lpips"] = float(lpips(2 * preds - 1, 2 * targets - 1).double().mean())
    return result
