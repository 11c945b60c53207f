"""Fitting a clip of any resolution to the model's and bringing the results back.

    fit = FrameFit.plan((272, 640), (32, 32), mode="pad")
    small = fit.apply(scene)               # (T, 3, 32, 32): the whole frame, resized and padded
    depth = fit.restore_depth(result.depth) # (T, 1, 272, 640): depth for every input pixel
    cameras = fit.restore_cameras(result.cameras)  # K for the input's pixel grid

Modes:

* ``"pad"`` (the default: nothing of the frame is lost): resize keeping the aspect ratio until the
  frame fits inside the model's size, then pad the rest by repeating the border pixels (closer to
  what the model saw in training than a constant colour). The padding's outputs are discarded.
* ``"crop"``: resize until the frame covers the model's size and keep the centre
  (``resize_and_crop``, the training clips' transform); outputs outside the crop are invalid
  (depth 0) and generated RGB there is the resized input.

Intrinsics follow both steps exactly (pixel centres at +0.5, DESIGN §1), so restored cameras
describe the input's pixel grid. Depth is upsampled bilinearly over valid pixels only (weights of
invalid, 0, pixels are dropped), so invalid depth never blends into valid depth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry import Cameras

FIT_MODES = ("pad", "crop")


@dataclass(frozen=True)
class FrameFit:
    """How an input frame of ``source`` (H, W) maps onto the model's ``target`` (H, W).

    resized: the input's size after the aspect-preserving resize.
    offset:  (top, left) of the resized frame inside the target (≥ 0 when padded, ≤ 0 when
             cropped: the crop's corner then lies at (−top, −left) of the resized frame).
    """

    source: tuple[int, int]
    target: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]
    mode: str = "pad"

    @classmethod
    def plan(cls, source: tuple[int, int], target: tuple[int, int], mode: str = "pad") -> FrameFit:
        if mode not in FIT_MODES:
            raise ValueError(f"fit is {mode!r} (expected one of {FIT_MODES})")
        (h, w), (height, width) = source, target
        if min(h, w, height, width) < 1:
            raise ValueError(f"frame sizes must be positive, got {source} -> {target}")
        if mode == "pad":
            scale = min(height / h, width / w)
            new_h, new_w = (
                min(height, max(1, round(h * scale))),
                min(width, max(1, round(w * scale))),
            )
        else:
            scale = max(height / h, width / w)
            new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
        offset = ((height - new_h) // 2, (width - new_w) // 2)
        return cls((h, w), (height, width), (new_h, new_w), offset, mode)

    @property
    def identity(self) -> bool:
        return self.source == self.target

    @property
    def covered(self) -> tuple[slice, slice]:
        """Rows and columns of the target that hold the input (all of it for a crop)."""
        (top, left), (h, w) = self.offset, self.resized
        if self.mode == "crop":
            return slice(0, self.target[0]), slice(0, self.target[1])
        return slice(top, top + h), slice(left, left + w)

    def coverage(self) -> Tensor | None:
        """(H, W) float of the target: 1 where the input lies, 0 on padding (None: all input)."""
        if self.mode == "crop" or self.resized == self.target:
            return None
        covered = torch.zeros(self.target)
        covered[self.covered] = 1.0
        return covered

    # ------------------------------------------------------------------ input → model

    def apply(self, scene: Scene) -> Scene:
        """The scene at the model's size: (T, 3, H, W) RGB, depth and cameras to match."""
        self._check_size(scene.height, scene.width, "scene")
        if self.identity:
            return scene
        rgb = _resize(scene.rgb, self.resized, "bilinear").clamp(-1.0, 1.0)
        depth = None if scene.depth is None else _resize(scene.depth, self.resized, "nearest")
        cameras = scene.cameras
        if cameras is not None:
            cameras = cameras.resized_to(self.source, self.resized).cropped(
                -self.offset[0], -self.offset[1]
            )
        rgb = self._place(rgb, mode="replicate")
        depth = None if depth is None else self._place(depth, mode="constant")
        return dataclasses.replace(scene, rgb=rgb.contiguous(), depth=depth, cameras=cameras)

    def _place(self, image: Tensor, mode: str) -> Tensor:
        """(T, C, *resized) → (T, C, *target): padded (pad) or cropped (crop)."""
        (top, left), (h, w), (height, width) = self.offset, self.resized, self.target
        if self.mode == "crop":
            return image[..., -top : -top + height, -left : -left + width]
        padding = (left, width - w - left, top, height - h - top)
        if mode == "replicate":
            return F.pad(image, padding, mode="replicate")
        return F.pad(image, padding)  # depth: 0 = invalid in the padding

    # ------------------------------------------------------------------ model → input

    def _unplace(self, image: Tensor) -> Tensor:
        """(T, C, *target) → (T, C, *resized); a crop's outside is 0."""
        (top, left), (h, w) = self.offset, self.resized
        if self.mode == "pad":
            return image[..., top : top + h, left : left + w]
        full = image.new_zeros(*image.shape[:-2], h, w)
        full[..., -top : -top + self.target[0], -left : -left + self.target[1]] = image
        return full

    def restore_rgb(self, rgb: Tensor, source: Tensor | None = None) -> Tensor:
        """(T, 3, H, W) model-size RGB → (T, 3, h, w); ``source`` (the input frames) fills what
        a crop left out."""
        self._check_size(*rgb.shape[-2:], "rgb", self.target)
        if self.identity:
            return rgb
        restored = _resize(self._unplace(rgb), self.source, "bilinear").clamp(-1.0, 1.0)
        if self.mode == "crop" and source is not None:
            inside = self._inside(rgb.device)
            restored = torch.where(inside, restored, source.to(restored))
        return restored

    def restore_depth(
        self, depth: Tensor, guide: Tensor | None = None, model_rgb: Tensor | None = None
    ) -> Tensor:
        """(T, 1, H, W) model-size depth → (T, 1, h, w) over valid (> 0) pixels: bilinear, or
        edge-aware given the input frames ``guide`` (T, 3, h, w) and the model-size RGB
        ``model_rgb`` (T, 3, H, W) the depth belongs to (``joint_bilateral_upsample``)."""
        self._check_size(*depth.shape[-2:], "depth", self.target)
        if self.identity:
            return depth
        low = self._unplace(depth)
        if guide is not None and model_rgb is not None:
            restored = joint_bilateral_upsample(low, self._unplace(model_rgb), guide)
        else:
            valid = (low > 0).to(low.dtype)
            total = _resize(low * valid, self.source, "bilinear")
            weight = _resize(valid, self.source, "bilinear")
            restored = torch.where(weight > 1e-3, total / weight.clamp_min(1e-3), 0.0)
        if self.mode == "crop":
            restored = torch.where(self._inside(depth.device), restored, 0.0)
        return restored

    def restore_cameras(self, cameras: Cameras) -> Cameras:
        """Cameras of the model's grid → the same cameras with K for the input's pixel grid."""
        if self.identity:
            return cameras
        return cameras.cropped(self.offset[0], self.offset[1]).resized_to(self.resized, self.source)

    def _inside(self, device) -> Tensor:
        """(h, w) bool: input pixels whose centre lies in the crop."""
        (top, left), (h, w) = self.offset, self.resized
        height, width = self.target
        rows = (torch.arange(self.source[0], device=device) + 0.5) * h / self.source[0]
        cols = (torch.arange(self.source[1], device=device) + 0.5) * w / self.source[1]
        inside_rows = (rows >= -top) & (rows < -top + height)
        inside_cols = (cols >= -left) & (cols < -left + width)
        return inside_rows[:, None] & inside_cols[None, :]

    def _check_size(self, height: int, width: int, name: str, size=None) -> None:
        expected = self.source if size is None else size
        if (height, width) != tuple(expected):
            raise ValueError(f"{name} is {height}x{width} (expected {expected[0]}x{expected[1]})")


def joint_bilateral_upsample(
    depth: Tensor, guide_low: Tensor, guide: Tensor, sigma: float = 0.1
) -> Tensor:
    """Edge-aware upsampling (Kopf et al., "Joint bilateral upsampling", 2007), on the four
    nearest low-resolution samples: each output pixel weighs them by the bilinear weight times
    ``exp(−‖guide − guide_low‖² / 2σ²)``, so depth follows the input's colour edges instead of
    blurring across them; invalid (0) samples get no weight.

    depth: (T, 1, h, w); guide_low: (T, 3, h, w) the colours the depth belongs to, in [−1, 1];
    guide: (T, 3, H, W) the full-resolution frames. Returns (T, 1, H, W), 0 where no valid
    sample is near. One frame at a time (memory ~ 4 × the output)."""
    (height, width), (h, w) = guide.shape[-2:], depth.shape[-2:]

    def taps(size_out: int, size_in: int):
        centre = (torch.arange(size_out, device=depth.device) + 0.5) * size_in / size_out - 0.5
        below = centre.floor().clamp(0, size_in - 1)
        fraction = (centre - below).clamp(0, 1)
        above = (below + 1).clamp(max=size_in - 1)
        return ((below.long(), 1 - fraction), (above.long(), fraction))

    rows, cols = taps(height, h), taps(width, w)
    out = []
    for frame in range(depth.shape[0]):
        total = depth.new_zeros(1, height, width)
        norm = depth.new_zeros(1, height, width)
        for row, row_weight in rows:
            for col, col_weight in cols:
                d = depth[frame][:, row[:, None], col[None, :]]  # (1, H, W)
                colour = guide_low[frame][:, row[:, None], col[None, :]]  # (3, H, W)
                distance = (colour - guide[frame].to(colour)).square().sum(0, keepdim=True)
                similar = torch.exp(-distance / (2 * sigma**2)) + 1e-4  # never all zero
                weight = row_weight[:, None] * col_weight[None, :] * similar * (d > 0)
                total += weight * d
                norm += weight
        out.append(torch.where(norm > 1e-8, total / norm.clamp_min(1e-8), 0.0))
    return torch.stack(out)


def _resize(image: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """(T, C, h, w) → (T, C, *size); bilinear with antialiasing when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if mode == "nearest":
        return F.interpolate(image, size=size, mode="nearest-exact")
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(image, size=size, mode="bilinear", antialias=shrink, align_corners=False)
