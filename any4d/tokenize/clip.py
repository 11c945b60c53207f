"""``LatentClip``: a batch of scenes as aligned latent grids, plus what is needed to go back.

The grids are what the model sees; the rest is bookkeeping that masks (pixel frame → latent
frame), RoPE (``frame_index``), losses (``available``, ``depth_valid``) and decoding (``frame``,
sizes) need. Decoding takes this metadata from the clip and the grids from the caller, so a
prediction decodes with the metadata of the clip it was predicted for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from any4d.geometry import ClipFrame

STREAMS = ("rgb", "depth", "ray_d", "ray_m")


# eq=False: fields are tensors, so a generated == would compare element-wise and fail.
@dataclass(frozen=True, eq=False)
class LatentClip:
    """Latent grids of a batch of B clips of T pixel frames (H × W), and their metadata.

    grids:        stream → (B, C, T', H', W'), in ``STREAMS`` order, for every stream at least
                  one scene provides (rgb always; depth; ray_d and ray_m with cameras). The last
                  ``num_context`` latent frames are extra context groups (DESIGN §3).
    available:    stream → (B,) bool; a scene without that modality has zeros in the grid and
                  False here (a batch may mix modalities).
    frame_index:  (T',) int64 RoPE time index of each latent frame: ``0 … T'−1 − num_context``,
                  then for each context group the index of the latent frame holding its frame.
    pixel_frames: per latent frame, the pixel frames it holds (a context group: its one frame).
    num_frames:   T, pixel frames per clip.
    image_size:   (H, W) of the pixel frames.
    frame:        ``ClipFrame`` of batch shape (B,): reference pose and clip scale ``s``.
    num_context:  how many extra context latent frames are appended at the end.
    depth_valid:  (B, T', H', W') fraction of valid depth pixels under each latent cell (0 for
                  scenes without depth), for weighting a depth loss; None without any depth.
    text:         per clip caption or None.
    fps:          per clip frames per second (given back by decoding).
    units:        per clip, where its scale ``s`` came from (``any4d.geometry.UNITS``):
                  "depth" or "cameras" — depth and cameras decode in the input's units —, or
                  "relative" (nothing scale-bearing was observed).
    """

    grids: dict[str, Tensor]
    available: dict[str, Tensor]
    frame_index: Tensor
    pixel_frames: tuple[tuple[int, ...], ...]
    num_frames: int
    image_size: tuple[int, int]
    frame: ClipFrame
    num_context: int = 0
    depth_valid: Tensor | None = None
    text: tuple[str | None, ...] = ()
    fps: tuple[float, ...] = ()
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        streams = tuple(self.grids)
        if (
            not streams
            or streams[0] != "rgb"
            or streams != tuple(s for s in STREAMS if s in streams)
        ):
            raise ValueError(
                f"grids has streams {streams} (expected 'rgb' first and the order {STREAMS})"
            )
        if ("ray_d" in streams) != ("ray_m" in streams):
            raise ValueError(f"grids has streams {streams} (expected both ray_d and ray_m or none)")
        if set(self.available) != set(streams):
            raise ValueError(
                f"available has streams {tuple(self.available)} (expected those of grids, "
                f"{streams})"
            )
        shape = self.grid_shape
        for name, grid in self.grids.items():
            if grid.dim() != 5 or (grid.shape[0], *grid.shape[2:]) != shape:
                raise ValueError(
                    f"grids[{name!r}] has shape {tuple(grid.shape)} (expected (B, C, T', H', W') "
                    f"with (B, T', H', W') = {shape}, as the rgb grid)"
                )
            if self.available[name].shape != (shape[0],):
                raise ValueError(
                    f"available[{name!r}] has shape {tuple(self.available[name].shape)} "
                    f"(expected ({shape[0]},))"
                )
        if self.frame_index.shape != (shape[1],) or len(self.pixel_frames) != shape[1]:
            raise ValueError(
                f"frame_index has shape {tuple(self.frame_index.shape)} and pixel_frames "
                f"{len(self.pixel_frames)} entries (expected {shape[1]}, one per latent frame)"
            )
        if not 0 <= self.num_context < shape[1]:
            raise ValueError(
                f"num_context is {self.num_context} (expected 0 ≤ num_context < T' = {shape[1]})"
            )
        if self.depth_valid is not None and self.depth_valid.shape != shape:
            raise ValueError(
                f"depth_valid has shape {tuple(self.depth_valid.shape)} (expected {shape})"
            )

    @property
    def streams(self) -> tuple[str, ...]:
        """Names of the streams with a grid, in ``STREAMS`` order."""
        return tuple(self.grids)

    @property
    def grid_shape(self) -> tuple[int, int, int, int]:
        """(B, T', H', W') shared by every grid (T' includes the context groups)."""
        b, _, t, h, w = self.grids["rgb"].shape
        return (b, t, h, w)

    @property
    def batch_size(self) -> int:
        return self.grid_shape[0]

    @property
    def num_clip_latents(self) -> int:
        """Latent frames of the clip itself, without the extra context groups."""
        return self.grid_shape[1] - self.num_context

    def with_streams(self, streams: tuple[str, ...] | list[str]) -> LatentClip:
        """The clip with a grid for each of ``streams``: zeros and ``available`` False where it
        has none (groups to generate, or absent placeholders in training)."""
        reference = self.grids["rgb"]
        missing = torch.zeros(reference.shape[0], dtype=torch.bool, device=reference.device)
        return replace(
            self,
            grids={s: self.grids.get(s, torch.zeros_like(reference)) for s in streams},
            available={s: self.available.get(s, missing) for s in streams},
        )

    def repeat(self, count: int) -> LatentClip:
        """The batch ``count`` times over, (count·B, …): clip ``k·B + b`` is clip ``b`` (e.g. to
        decode ``count`` candidates of each clip in one batch)."""
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count={count!r} (expected an integer ≥ 1)")
        if count == 1:
            return self

        def tiled(x: Tensor) -> Tensor:
            return x.repeat(count, *([1] * (x.dim() - 1)))

        return replace(
            self,
            grids={k: tiled(v) for k, v in self.grids.items()},
            available={k: tiled(v) for k, v in self.available.items()},
            frame=ClipFrame(tiled(self.frame.reference), tiled(self.frame.scale)),
            depth_valid=None if self.depth_valid is None else tiled(self.depth_valid),
            text=self.text * count,
            fps=self.fps * count,
            units=self.units * count,
        )

    def to(self, device=None, dtype: torch.dtype | None = None) -> LatentClip:
        """Move every tensor to ``device``; cast the grids (and depth_valid) to ``dtype``."""

        def move(x: Tensor) -> Tensor:
            return x.to(device=device, dtype=dtype)

        return replace(
            self,
            grids={k: move(v) for k, v in self.grids.items()},
            available={k: v.to(device) for k, v in self.available.items()},
            frame_index=self.frame_index.to(device),
            frame=ClipFrame(self.frame.reference.to(device), self.frame.scale.to(device)),
            depth_valid=None if self.depth_valid is None else move(self.depth_valid),
        )
