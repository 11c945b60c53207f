"""A clip at a glance: RGB | depth | ray directions | ray moments as one picture (DESIGN §6).

Rows are the streams a scene provides, columns evenly spaced frames; tiles are separated by thin
white lines (white, not black, because black already means invalid depth).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry.rays import plucker_rays
from any4d.viz.colormap import colorize_depth, colorize_moments, colorize_rays, depth_range

# Slack for float images that reach [0, 1] through arithmetic (e.g. (x + 1) / 2 of a resampled
# frame); beyond it the input is in another convention and saving it would hide the mistake.
_RANGE_SLACK = 1e-3


def frame_indices(num_frames: int, max_frames: int) -> Tensor:
    """Up to ``max_frames`` evenly spaced frame indices of a ``num_frames`` clip.

    Returns (min(num_frames, max_frames),) long, increasing, always with the first frame and,
    when ``max_frames ≥ 2``, the last.
    """
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"max_frames is {max_frames!r} (expected an integer ≥ 1)")
    if num_frames < 1:
        raise ValueError(f"num_frames is {num_frames} (expected ≥ 1)")
    count = min(num_frames, max_frames)
    if count == 1:
        return torch.zeros(1, dtype=torch.long)
    # Spacing ≥ 1 whenever count ≤ num_frames, so rounding never repeats an index.
    return torch.linspace(0, num_frames - 1, count).round().long()


def tile_grid(rows: list[Tensor], separator: int = 2, fill: float = 1.0) -> Tensor:
    """Lay out tiles row by row with ``separator`` pixels of ``fill`` between them.

    rows: R tensors, each (C, 3, H, W) in ``[0, 1]`` with the same C, H, W.
    Returns (3, R·H + (R−1)·separator, C·W + (C−1)·separator).
    """
    if not rows:
        raise ValueError("tile_grid needs at least one row")
    if separator < 0:
        raise ValueError(f"separator is {separator} (expected ≥ 0 pixels)")
    shape = rows[0].shape
    for i, row in enumerate(rows):
        if row.dim() != 4 or row.shape[1] != 3 or row.shape != shape:
            raise ValueError(
                f"row {i} has shape {tuple(row.shape)} (expected {tuple(shape)}: (C, 3, H, W))"
            )
    cols, _, height, width = shape
    out = rows[0].new_full(
        (
            3,
            len(rows) * height + (len(rows) - 1) * separator,
            cols * width + (cols - 1) * separator,
        ),
        fill,
    )
    for r, row in enumerate(rows):
        top = r * (height + separator)
        for c in range(cols):
            left = c * (width + separator)
            out[:, top : top + height, left : left + width] = row[c]
    return out


def clip_grid(
    scene: Scene,
    max_frames: int = 8,
    rays: bool = True,
    *,
    cmap: str = "turbo",
    separator: int = 2,
) -> Tensor:
    """One picture of a clip: a row per stream, a column per shown frame.

    Rows, top to bottom: RGB; depth coloured by inverse depth (if ``scene.depth``); ray
    directions and ray moments (if ``scene.cameras`` and ``rays``). Rays are built as the
    project always builds them: cameras relative to the first camera of the clip, then
    ``plucker_rays`` at the image's pixel centres. Columns: up to ``max_frames`` evenly spaced
    frames including the first and last. The depth colour scale comes from the whole clip, the
    moment scale from the shown frames.

    Returns (3, R·H + (R−1)·separator, C·W + (C−1)·separator) float in ``[0, 1]`` on the scene's
    device (R rows, C columns).
    """
    if not isinstance(scene, Scene):
        raise ValueError(f"scene must be an any4d Scene, got {type(scene).__name__}")
    index = frame_indices(scene.num_frames, max_frames).to(scene.rgb.device)
    rows = [((scene.rgb[index] + 1) / 2).clamp(0, 1)]  # (C, 3, H, W)
    if scene.depth is not None:
        # Range over every frame, so the grid's colours match a depth video of the same clip.
        bounds = depth_range(scene.depth)
        shown = scene.depth[index]
        if bounds is None:
            rows.append(torch.zeros_like(rows[0]))
        else:
            rows.append(colorize_depth(shown, cmap=cmap, near=bounds[0], far=bounds[1]))
    if rays and scene.cameras is not None:
        cameras = scene.cameras.relative_to_first()[index]
        ray_map = plucker_rays(cameras, scene.height, scene.width)  # (C, 6, H, W)
        rows += [colorize_rays(ray_map), colorize_moments(ray_map)]
    rows = [row.to(scene.rgb.dtype) for row in rows]
    return tile_grid(rows, separator=separator)


def to_uint8(image: Tensor) -> Tensor:
    """(3, H, W) float in ``[0, 1]`` or uint8 → (3, H, W) uint8 on the CPU (rounded)."""
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image has shape {shape} (expected (3, H, W))")
    image = image.detach().cpu()
    if image.dtype == torch.uint8:
        return image
    if not image.is_floating_point():
        raise ValueError(f"image has dtype {image.dtype} (expected float in [0, 1] or uint8)")
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or inf (expected floats in [0, 1])")
    lo, hi = float(image.min()), float(image.max())
    if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        raise ValueError(
            f"image spans [{lo:.4g}, {hi:.4g}] (expected floats in [0, 1]; "
            "map RGB in [-1, 1] with (x + 1) / 2 first)"
        )
    return (image.float().clamp(0, 1) * 255).round().to(torch.uint8)


def save_png(image: Tensor, path: str | os.PathLike) -> Path:
    """Write a (3, H, W) float ``[0, 1]`` or uint8 image as a PNG, creating parent folders."""
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError('saving PNGs needs Pillow: pip install "any4d[viz]"') from error
    pixels = to_uint8(image).permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def save_clip_grid(scene: Scene, path: str | os.PathLike, **kwargs) -> Path:
    """``clip_grid(scene, **kwargs)`` written as a PNG at ``path``; returns the path."""
    return save_png(clip_grid(scene, **kwargs), path)
