"""Masks: the task is the noise pattern (DESIGN §3).

A **group** is one (stream, latent frame). Each group is ``CLEAN`` (observed: ``t = 0``, clamped
to the observation), ``TARGET`` (generated / predicted) or ``ABSENT`` (no data: a Gaussian
placeholder at ``t = 1``, no loss).

A ``Mask`` lists the **clean pixel frames** of each stream; every other group of a stream present
is a target. It is written in Python (``Mask({"rgb": [0, -1], "ray_d": "all", "ray_m": "all"})``),
as a short spec (``Mask.parse("rgb:0,-1 rays:all")``; ``rays`` = both ray streams, ``all`` =
every frame, negative indices count from the end, ``""`` = everything a target) or by a preset
name (``Mask.parse("interpolate")``).

Pixel frames map to latent groups through a **layout** — the pixel frames each latent frame
holds (a ``LatentClip`` is one; ``Layout.for_stride`` builds one). A latent group is clean when
all its pixel frames are clean. A clean pixel frame whose latent frame is not entirely clean
(e.g. the last frame at temporal stride 4) needs its own context group: ``context_frames`` lists
those, the tokenizer appends them, and ``states`` marks them clean in the streams that observe
them and absent elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import Tensor

from any4d.geometry import resolve_frames
from any4d.tokenize import STREAMS, causal_pixel_frames

ALL = "all"
# Spec names that stand for several streams.
_ALIASES = {"rays": ("ray_d", "ray_m")}


class State(IntEnum):
    """What a group is in a sample (DESIGN §3)."""

    CLEAN = 0
    TARGET = 1
    ABSENT = 2


@dataclass(frozen=True)
class Layout:
    """Which pixel frames each latent frame holds.

    pixel_frames: per latent frame, its pixel frames; the last ``num_context`` entries are extra
                  context groups holding one frame each.
    """

    pixel_frames: tuple[tuple[int, ...], ...]
    num_context: int = 0

    @classmethod
    def for_stride(cls, num_frames: int, temporal_stride: int = 1) -> Layout:
        """The causal layout (``any4d.tokenize.causal_pixel_frames``): latent 0 ↔ pixel 0,
        latent j ↔ pixels r(j−1)+1 … rj."""
        return cls(causal_pixel_frames(num_frames, temporal_stride))

    @property
    def num_frames(self) -> int:
        """Pixel frames of the clip (context groups repeat frames of it)."""
        return 1 + max(max(p) for p in self.pixel_frames)

    @property
    def num_latent(self) -> int:
        """Latent frames, context groups included."""
        return len(self.pixel_frames)


def as_layout(layout) -> Layout:
    """A ``Layout`` from a Layout or anything with ``pixel_frames`` and ``num_context``."""
    if isinstance(layout, Layout):
        return layout
    try:
        return Layout(tuple(tuple(p) for p in layout.pixel_frames), int(layout.num_context))
    except AttributeError:
        raise ValueError(
            f"layout is a {type(layout).__name__} (expected a Layout or an object with "
            "pixel_frames and num_context, such as a LatentClip)"
        ) from None


@dataclass(frozen=True)
class Mask:
    """Clean pixel frames per stream; every other group of a stream present is a target.

    clean: stream → ``"all"`` or a tuple of pixel frame indices (negative = from the end).
    """

    clean: Mapping[str, str | tuple[int, ...]]

    def __post_init__(self) -> None:
        clean = {}
        for name, frames in dict(self.clean).items():
            for stream in _ALIASES.get(name, (name,)):
                if stream not in STREAMS:
                    raise ValueError(
                        f"unknown stream {name!r} in the mask (expected {list(STREAMS)} or 'rays')"
                    )
                clean[stream] = _frames(frames, stream)
        object.__setattr__(self, "clean", {s: clean[s] for s in STREAMS if s in clean})

    # ------------------------------------------------------------------ construction

    @classmethod
    def parse(cls, spec: str | Mask) -> Mask:
        """A preset name or a spec such as ``"rgb:0,-1 rays:all"`` (module docstring)."""
        if isinstance(spec, Mask):
            return spec
        if not isinstance(spec, str):
            raise ValueError(f"mask spec must be a string or a Mask, got {type(spec).__name__}")
        text = spec.strip()
        if text in PRESETS:
            return PRESETS[text]
        clean: dict[str, str | tuple[int, ...]] = {}
        for item in text.split():
            name, sep, frames = item.partition(":")
            if not sep or not frames:
                raise ValueError(
                    f"mask spec item {item!r} (expected 'stream:frames' such as 'rgb:0,-1' or "
                    f"'rays:all', or a preset: {sorted(PRESETS)})"
                )
            if frames == ALL:
                clean[name] = ALL
            else:
                try:
                    clean[name] = tuple(int(f) for f in frames.split(","))
                except ValueError:
                    raise ValueError(
                        f"mask spec item {item!r}: frames must be 'all' or comma-separated integers"
                    ) from None
        return cls(clean)

    def __str__(self) -> str:
        parts = []
        for stream, frames in self.clean.items():
            parts.append(f"{stream}:{frames if frames == ALL else ','.join(map(str, frames))}")
        return " ".join(parts)

    # ------------------------------------------------------------------ resolution

    def clean_frames(self, stream: str, num_frames: int) -> frozenset[int]:
        """The clean pixel frames of ``stream`` in a clip of ``num_frames`` frames."""
        frames = self.clean.get(stream, ())
        if frames == ALL:
            return frozenset(range(num_frames))
        return frozenset(resolve_frames(frames, num_frames, f"the mask of stream {stream!r}"))

    def context_frames(self, layout) -> tuple[int, ...]:
        """Clean pixel frames whose latent frame is not entirely clean in that stream.

        These need their own context group (the tokenizer's ``context_frames``). ``layout``
        describes the clip *without* context groups (e.g. ``Layout.for_stride(T, 4)``).
        """
        layout = as_layout(layout)
        frames = set()
        for stream in self.clean:
            clean = self.clean_frames(stream, layout.num_frames)
            for pixel_frames in layout.pixel_frames[: layout.num_latent - layout.num_context]:
                if not set(pixel_frames) <= clean:
                    frames |= clean & set(pixel_frames)
        return tuple(sorted(frames))

    def states(
        self,
        layout,
        streams: Sequence[str],
        available: Mapping[str, Tensor | bool] | None = None,
        drop_unavailable: bool = False,
    ) -> dict[str, Tensor]:
        """Group states of every stream present.

        layout:    pixel frames per latent frame, context groups last (a ``LatentClip`` or
                   ``Layout``).
        streams:   the streams present (in the model input).
        available: stream → (B,) bool or bool, which samples have data for the stream (default:
                   all). A clean group of a sample without data is an error: the mask asks for
                   an observation the scene does not have.
        drop_unavailable: training — the target groups of a sample without data for the stream
                   become absent (no ground truth, no loss). At inference they stay targets
                   (generating what was not observed is the point).
        Returns stream → (B, T') ``State`` values as uint8 (B = 1 without ``available``).
        """
        layout = as_layout(layout)
        unknown = [s for s in self.clean if s not in streams]
        if unknown:
            raise ValueError(
                f"the mask makes {unknown} clean but the input has only the streams {list(streams)}"
            )
        num_frames = layout.num_frames
        first_context = layout.num_latent - layout.num_context
        states = {}
        for stream in streams:
            clean = self.clean_frames(stream, num_frames)
            row = []
            for j, pixel_frames in enumerate(layout.pixel_frames):
                if set(pixel_frames) <= clean:
                    row.append(State.CLEAN)
                else:
                    row.append(State.ABSENT if j >= first_context else State.TARGET)
            states[stream] = torch.tensor(row, dtype=torch.uint8)[None]
        if not any((s == State.TARGET).any() for s in states.values()):
            raise ValueError(f"the mask {str(self)!r} leaves no target group (nothing to generate)")
        if available is not None:
            states = _apply_availability(states, available, self, drop_unavailable)
        return states


def _frames(frames, stream: str) -> str | tuple[int, ...]:
    if frames == ALL:
        return ALL
    if isinstance(frames, int):
        frames = (frames,)
    if isinstance(frames, Iterable) and not isinstance(frames, str | bytes):
        frames = tuple(frames)
        if all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
            return frames
    raise ValueError(
        f"clean frames of {stream!r} are {frames!r} (expected 'all' or a sequence of ints)"
    )


def _apply_availability(states, available, mask, drop_unavailable) -> dict[str, Tensor]:
    """Per-sample states: clean groups need data; targets without data may become absent."""
    out = {}
    for stream, row in states.items():
        flags = torch.as_tensor(available.get(stream, True), dtype=torch.bool).reshape(-1).cpu()
        batch_states = row.expand(flags.shape[0], -1).clone()
        missing = ~flags
        if missing.any() and (row == State.CLEAN).any():
            sample = int(missing.nonzero()[0])
            raise ValueError(
                f"the mask {str(mask)!r} makes {stream!r} frames clean but sample {sample} has "
                f"no {stream} (a clean stream must be observed)"
            )
        if drop_unavailable:
            batch_states[missing] = State.ABSENT
        out[stream] = batch_states
    batch = {v.shape[0] for v in out.values()}
    if len(batch) > 1:
        sizes = max(batch)
        out = {k: v.expand(sizes, -1).clone() if v.shape[0] == 1 else v for k, v in out.items()}
    return out


# DESIGN §3's named presets: the clean frames of each.
PRESETS: dict[str, Mask] = {
    "video": Mask({"rgb": (0,)}),
    "geometry": Mask({"rgb": ALL}),
    "depth": Mask({"rgb": ALL, "rays": ALL}),
    "interpolate": Mask({"rgb": (0, -1), "rays": ALL}),
    "extrapolate": Mask({"rgb": (0,), "rays": ALL}),
    "depth_to_video": Mask({"rgb": (0,), "depth": ALL}),
    "sparse_geometry": Mask({"rgb": (0, -1)}),
}
# The five patterns training samples from (paper §3.3), in the paper's order.
TRAINING_PATTERNS = ("video", "geometry", "interpolate", "extrapolate", "depth_to_video")
