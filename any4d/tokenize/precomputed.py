"""Precomputed codec latents: encode a clip once, assemble its ``LatentClip`` many times.

Training draws a pattern per sample, and the pattern sets the clip scale ``s`` (DESIGN §1), which
enters the depth channel ``D̃`` non-linearly: so a clip's depth latents depend on what the drawn
pattern observes. A clip has few distinct scales, though (its depth median, its camera rule,
relative units), so ``precompute`` encodes its RGB once and its depth once per distinct scale of
the observations it is given. ``PrecomputedTokenizer.encode_precomputed`` then assembles, for the
observation drawn, exactly the ``LatentClip`` that ``Tokenizer.encode`` of the scene would give,
without the codec: a training process that reads a latent cache never loads the Wan VAE.

Rays are not stored: they are computed again from the stored cameras (they are cheap and exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry import Cameras, ClipFrame
from any4d.tokenize.base import Tokenizer
from any4d.tokenize.batch import Observed, fit_frames
from any4d.tokenize.clip import LatentClip


@dataclass(frozen=True, eq=False)
class PrecomputedClip:
    """One clip's codec latents and what is needed to assemble its ``LatentClip``.

    rgb:          (C, T' + k, H', W') latents of the RGB video, the k context groups appended.
    depth:        per distinct scale, (C, T' + k, H', W') latents of ``D̃`` at that scale; empty
                  for a clip without depth.
    depth_valid:  (T' + k, H', W') valid fraction of depth per latent cell, or None.
    cameras:      the clip's cameras (batch (T,)) in its own world, or None.
    scales:       (S,) the distinct clip scales; reference: (4, 4) the first camera (identity
                  without cameras).
    observations: the observations precomputed for; ``scale_index[i]`` and ``units[i]`` are the
                  scale (an index into ``scales``) and units of ``observations[i]``.
    num_frames, image_size, context: the clip's T, (H, W) and context pixel frames.
    text: its caption; fps: its frame rate; text_features: (L, D) its caption's encoder
    features without the trailing padding rows, or None (no caption, or not encoded).
    """

    rgb: Tensor
    depth: tuple[Tensor, ...]
    depth_valid: Tensor | None
    cameras: Cameras | None
    scales: Tensor
    reference: Tensor
    observations: tuple[Observed, ...]
    scale_index: tuple[int, ...]
    units: tuple[str, ...]
    num_frames: int
    image_size: tuple[int, int]
    context: tuple[int, ...]
    text: str | None = None
    fps: float = 10.0
    text_features: Tensor | None = None

    @property
    def has_depth(self) -> bool:
        return bool(self.depth)

    @property
    def has_cameras(self) -> bool:
        return self.cameras is not None

    def scale_for(self, observed: Observed) -> tuple[int, str]:
        """(index into ``scales``, units) of an observation this clip was precomputed for."""
        for i, known in enumerate(self.observations):
            if known == observed:
                return self.scale_index[i], self.units[i]
        raise ValueError(
            f"this clip was precomputed for {len(self.observations)} observations, not for "
            f"depth frames {sorted(observed.depth)} and camera frames {sorted(observed.cameras)}"
        )


@torch.no_grad()
def precompute(
    tokenizer: Tokenizer,
    scene: Scene,
    observations: Sequence[Observed],
    context_frames: Sequence[int] = (),
    targets: bool = True,
) -> PrecomputedClip:
    """Encode ``scene`` once for every observation in ``observations`` (module docstring).

    tokenizer: the codec (e.g. the Wan VAE) — the latents are its ``encode``'s, on its device.
    observations: what training may observe of the clip (one per training pattern).
    context_frames, targets: as for ``Tokenizer.encode``.
    """
    if not observations:
        raise ValueError("observations is empty (expected what training may observe of the clip)")
    num_frames = scene.num_frames
    tokenizer.latent_size(num_frames, scene.height, scene.width)
    context = tokenizer._context(context_frames, num_frames)
    frames, units = [], []
    for observed in observations:
        frame, unit = fit_frames([scene], [observed], targets)
        frames.append(frame)
        units.append(unit[0])
    scales: list[Tensor] = []
    index = []
    for frame in frames:
        value = frame.scale[0]
        found = next((i for i, s in enumerate(scales) if bool(s == value)), None)
        if found is None:
            scales.append(value)
            found = len(scales) - 1
        index.append(found)
    reference = frames[0].reference[0]

    def codec(video: Tensor) -> Tensor:  # (T, 3, H, W) → (C, T' + k, H', W')
        grid = tokenizer.encode_images(video[None])
        if context:
            alone = video[list(context)][:, None]  # (k, 1, 3, H, W)
            extra = tokenizer.encode_images(alone)[:, :, 0]  # (k, C, H', W')
            grid = torch.cat([grid, extra.permute(1, 0, 2, 3)[None]], dim=2)
        return grid[0]

    depth, depth_valid = (), None
    if scene.depth is not None:
        values = scene.depth.to(scene.rgb.dtype)
        latents = []
        for scale in scales:
            one = ClipFrame(reference=reference[None], scale=scale[None])
            encoded = one.encode_depth(values[None])[0]  # (T, 1, H, W)
            latents.append(codec(encoded.expand(-1, 3, -1, -1)))
        depth = tuple(latents)
        depth_valid = tokenizer.valid_fraction(values[None], context)[0]
    return PrecomputedClip(
        rgb=codec(scene.rgb),
        depth=depth,
        depth_valid=depth_valid,
        cameras=scene.cameras,
        scales=torch.stack(scales),
        reference=reference,
        observations=tuple(observations),
        scale_index=tuple(index),
        units=tuple(units),
        num_frames=num_frames,
        image_size=(scene.height, scene.width),
        context=tuple(context),
        text=scene.text,
        fps=float(scene.fps),
    )


class PrecomputedTokenizer(Tokenizer):
    """The strides, channels and stream scales of a tokenizer, without its codec: assembles
    ``LatentClip``s from ``PrecomputedClip``s (module docstring). ``encode_images`` /
    ``decode_images`` are errors: a cache holds no way back to pixels."""

    def __init__(
        self,
        temporal_stride: int,
        spatial_stride: int,
        latent_channels: int,
        stream_scales: dict[str, float] | None = None,
    ) -> None:
        for name, value in (
            ("temporal_stride", temporal_stride),
            ("spatial_stride", spatial_stride),
            ("latent_channels", latent_channels),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} (expected an integer ≥ 1)")
        self.temporal_stride = temporal_stride
        self.spatial_stride = spatial_stride
        self.latent_channels = latent_channels
        self.set_stream_scales(stream_scales)

    def encode_images(self, images: Tensor) -> Tensor:
        raise ValueError("a PrecomputedTokenizer has no codec: encode with the tokenizer itself")

    def decode_images(self, latents: Tensor) -> Tensor:
        raise ValueError("a PrecomputedTokenizer has no codec: decode with the tokenizer itself")

    def encode_precomputed(
        self,
        clips: Sequence[PrecomputedClip],
        observed: Sequence[Observed],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> LatentClip:
        """B precomputed clips and what each observes → the ``LatentClip`` ``encode`` gives
        for them (same T, H, W and context across the batch), on ``device`` in ``dtype``."""
        clips = list(clips)
        if not clips or len(observed) != len(clips):
            raise ValueError(
                f"{len(clips)} clips and {len(observed)} observations (expected one each, ≥ 1)"
            )
        first = clips[0]
        for i, clip in enumerate(clips[1:], start=1):
            if (clip.num_frames, clip.image_size, clip.context) != (
                first.num_frames,
                first.image_size,
                first.context,
            ):
                raise ValueError(
                    f"clips[{i}] has {clip.num_frames} frames of {clip.image_size} and context "
                    f"{clip.context} but clips[0] {first.num_frames} of {first.image_size} and "
                    f"{first.context} (expected one clip shape across a batch)"
                )
        picked = [clip.scale_for(seen) for clip, seen in zip(clips, observed, strict=True)]
        frame = ClipFrame(
            reference=torch.stack([c.reference for c in clips]).to(device, dtype),
            scale=torch.stack([c.scales[i] for c, (i, _) in zip(clips, picked, strict=True)]).to(
                device, dtype
            ),
        )
        rgb = torch.stack([c.rgb for c in clips]).to(device, dtype)
        images = {"rgb": rgb}
        available = {"rgb": torch.ones(len(clips), dtype=torch.bool, device=device)}
        depth_valid = None
        if any(c.has_depth for c in clips):
            zeros = torch.zeros_like(rgb[0])
            images["depth"] = torch.stack(
                [c.depth[i].to(device, dtype) if c.has_depth else zeros for c, (i, _) in
                 zip(clips, picked, strict=True)]
            )  # fmt: skip
            available["depth"] = torch.tensor([c.has_depth for c in clips], device=device)
            empty = torch.zeros(rgb.shape[2:], dtype=dtype, device=device)
            depth_valid = torch.stack(
                [c.depth_valid.to(device, dtype) if c.has_depth else empty for c in clips]
            )
        cameras = [None if c.cameras is None else c.cameras.to(device=device) for c in clips]
        return self.assemble(
            images,
            available,
            cameras,
            frame,
            tuple(unit for _, unit in picked),
            num_frames=first.num_frames,
            image_size=first.image_size,
            context=first.context,
            depth_valid=depth_valid,
            text=tuple(c.text for c in clips),
            fps=tuple(c.fps for c in clips),
        )

    def __repr__(self) -> str:
        return (
            f"PrecomputedTokenizer(temporal_stride={self.temporal_stride}, spatial_stride="
            f"{self.spatial_stride}, latent_channels={self.latent_channels})"
        )
