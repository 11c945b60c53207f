"""The shared shape of every data-set reader: sequences indexed once, clips decoded on demand.

A reader is a map-style data set over the sequences found under its root (item ``i`` is the
whole sequence ``i`` as a ``Scene``); training reads clips through ``read_clip`` (see
``any4d.data.clips`` for windows, resizing and splits). Subclasses say where sequences are
(``find_sequences``), what each holds (``index_sequence``, parsing the small metadata files:
poses, intrinsics, frame lists) and how a depth file decodes (``decode_depth``); this class
turns that into ``Scene``s in our conventions (DESIGN §1).

Skip-corrupt policy: by default a missing, truncated or malformed file is an error that names
it. With ``skip_corrupt=True`` the sequence holding it is skipped instead, with one
``SkippedSequenceWarning`` per sequence; ``reader.skipped`` maps each skipped sequence to the
reason and ``reader.num_skipped`` counts them. Nothing is ever skipped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from any4d.data.readers.conversions import (
    NORMALISED,
    normalised_to_pixel_intrinsics,
    rescale_intrinsics,
)
from any4d.data.readers.decode import (
    CorruptFileError,
    read_json,
    read_rgb,
    read_video_frames,
)
from any4d.data.scene import MODALITIES, Scene
from any4d.geometry.cameras import Cameras

# What the skip-corrupt policy catches: data problems, never programming errors.
DATA_ERRORS = (FileNotFoundError, CorruptFileError)


class SkippedSequenceWarning(UserWarning):
    """A sequence was skipped because one of its files is missing or corrupt."""


@dataclass(frozen=True)
class VideoFrames:
    """RGB frames stored in a video: frame ``i`` of the sequence is decoded frame ``indices[i]``."""

    path: Path
    indices: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Sequence:
    """One sequence of a data set, indexed (metadata parsed, files listed) but not decoded.

    name:            unique within the reader, "/"-separated (e.g. "Scene01/clone/Camera_0").
    source:          the file or folder that describes it (named in errors).
    rgb:             one image file per frame, or ``VideoFrames``.
    K:               (N, 3, 3) float64 intrinsics for ``intrinsics_size``; or None.
    intrinsics_size: (H, W) the K refers to; ``NORMALISED`` for fractions of W and H; None for
                     the size of the decoded RGB. K is rescaled to the decoded RGB on read.
    c2w:             (N, 4, 4) float64 camera-to-world, OpenCV axes, already converted.
    depth:           one handle per frame for the reader's ``decode_depth``; or None.
    text:            caption of the sequence; or None.
    fps:             frames per second of the sequence's frames (stride 1).
    """

    name: str
    source: Path
    rgb: tuple[Path, ...] | VideoFrames
    K: Tensor | None = None
    intrinsics_size: tuple[int, int] | None = None
    c2w: Tensor | None = None
    depth: tuple[Any, ...] | None = None
    text: str | None = None
    fps: float = 30.0

    def __post_init__(self) -> None:
        n = self.num_frames
        if n == 0:
            raise CorruptFileError(self.source, "describes a sequence with no frames")
        if (self.K is None) != (self.c2w is None):
            raise ValueError(f"sequence {self.name!r} has only one of K / c2w")
        for field, value, shape in (("K", self.K, (n, 3, 3)), ("c2w", self.c2w, (n, 4, 4))):
            if value is not None and tuple(value.shape) != shape:
                raise CorruptFileError(
                    self.source, f"gives {field} of shape {tuple(value.shape)} (expected {shape})"
                )
        if self.depth is not None and len(self.depth) != n:
            raise CorruptFileError(
                self.source, f"lists {len(self.depth)} depth frames for {n} RGB frames"
            )
        if not self.fps > 0:
            raise CorruptFileError(self.source, f"gives fps {self.fps} (expected > 0)")
        if self.K is not None:
            try:  # float32 tolerance: poses are stored to a few digits in text files
                Cameras(self.K.float(), self.c2w.float())
            except ValueError as error:
                raise CorruptFileError(self.source, f"holds invalid cameras: {error}") from None

    @property
    def num_frames(self) -> int:
        return len(self.rgb.indices if isinstance(self.rgb, VideoFrames) else self.rgb)


class Reader(Dataset):
    """Base class of the data-set readers; item ``i`` is sequence ``i`` as a whole ``Scene``.

    root:         the data set's root folder (see the subclass's ``layout``).
    skip_corrupt: skip (with a warning) sequences whose files are missing or corrupt.
    captions:     optional JSON file mapping sequence name → caption; gives every clip text.
    """

    name: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    provides: ClassVar[tuple[str, ...]] = ("rgb",)

    def __init__(
        self,
        root: str | Path,
        *,
        skip_corrupt: bool = False,
        captions: str | Path | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(
                f"{self.name} root {self.root} does not exist (expected {self.layout})"
            )
        self.skip_corrupt = bool(skip_corrupt)
        self.skipped: dict[str, str] = {}
        self.captions = None if captions is None else _load_captions(Path(captions))
        self._sequences: tuple[Sequence, ...] | None = None

    # ---------------------------------------------------------------- subclass interface

    def find_sequences(self) -> list[tuple[str, Any]]:
        """(name, location) of every sequence under ``root``, sorted; cheap (listing only)."""
        raise NotImplementedError

    def index_sequence(self, name: str, location: Any) -> Sequence:
        """Parse one sequence's metadata and list its files (no image decoding)."""
        raise NotImplementedError

    def decode_depth(self, handle: Any) -> Tensor:
        """Depth of one frame, (H, W) float32 metres with 0 = invalid."""
        raise NotImplementedError(f"{self.name} has no depth")

    def clip_text(self, sequence: Sequence, indices: list[int]) -> str | None:
        """Text of a clip: the caption file's entry if given, else the sequence's own text."""
        if self.captions is not None and sequence.name in self.captions:
            return self.captions[sequence.name]
        return sequence.text

    # ---------------------------------------------------------------- public API

    @property
    def modalities(self) -> tuple[str, ...]:
        """What this reader's clips hold, in ``MODALITIES`` order."""
        found = set(self.provides) | ({"text"} if self.captions is not None else set())
        return tuple(m for m in MODALITIES if m in found)

    def sequences(self) -> tuple[Sequence, ...]:
        """Every usable sequence, sorted by name (indexed on the first call, then cached)."""
        if self._sequences is None:
            candidates = self.find_sequences()
            if not candidates:
                raise ValueError(
                    f"{self.root} holds no {self.name} sequences (expected {self.layout})"
                )
            found = []
            for name, location in candidates:
                try:
                    found.append(self.index_sequence(name, location))
                except DATA_ERRORS as error:
                    self.skip(name, error)
            self._sequences = tuple(found)
        return tuple(s for s in self._sequences if s.name not in self.skipped)

    def sequence(self, name: str) -> Sequence:
        for sequence in self.sequences():
            if sequence.name == name:
                return sequence
        raise KeyError(f"{self.name} has no sequence {name!r} under {self.root}")

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def skip(self, name: str, error: Exception) -> None:
        """Record sequence ``name`` as skipped for ``error`` and warn; re-raise ``error`` unless
        the reader was built with ``skip_corrupt=True``."""
        if not self.skip_corrupt:
            raise error
        if name not in self.skipped:
            self.skipped[name] = str(error)
            warnings.warn(
                f"{self.name}: skipping sequence {name!r} ({len(self.skipped)} skipped so far): "
                f"{error}",
                SkippedSequenceWarning,
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self.sequences())

    def __getitem__(self, index: int) -> Scene:
        sequence = self.sequences()[index]
        return self.read_clip(sequence, 0, sequence.num_frames)

    def read_clip(
        self, sequence: Sequence | str, start: int, length: int, stride: int = 1
    ) -> Scene:
        """Frames ``start, start + stride, …`` (``length`` of them) at native resolution;
        ``fps`` is the sequence's divided by ``stride``."""
        sequence = self.sequence(sequence) if isinstance(sequence, str) else sequence
        checks = (("start", start, 0), ("length", length, 1), ("stride", stride, 1))
        for label, value, low in checks:
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{label} is {value!r} (expected an integer ≥ {low})")
        last = start + (length - 1) * stride
        if last >= sequence.num_frames:
            raise ValueError(
                f"clip start={start} length={length} stride={stride} ends at frame {last} but "
                f"sequence {sequence.name!r} has {sequence.num_frames} frames"
            )
        indices = list(range(start, last + 1, stride))
        return self.read_frames(sequence, indices, fps=sequence.fps / stride)

    def read_frames(
        self, sequence: Sequence, indices: SequenceOf[int], fps: float | None = None
    ) -> Scene:
        """The given frames of ``sequence`` as a ``Scene`` at the RGB files' resolution."""
        indices = list(indices)
        rgb = self._read_rgb(sequence, indices)  # (T, 3, H, W)
        height, width = rgb.shape[-2:]
        depth = None
        if sequence.depth is not None:
            maps = [self.decode_depth(sequence.depth[i]) for i in indices]
            if any(m.shape != maps[0].shape for m in maps):
                raise CorruptFileError(sequence.source, "has depth maps of different sizes")
            depth = torch.stack(maps)[:, None].float()  # (T, 1, H_d, W_d)
            if depth.shape[-2:] != (height, width):
                # nearest keeps 0 = invalid from bleeding into valid depths
                depth = F.interpolate(depth, size=(height, width), mode="nearest-exact")
        cameras = None
        if sequence.K is not None:
            K, size = sequence.K[indices], sequence.intrinsics_size
            if size == NORMALISED:
                K = normalised_to_pixel_intrinsics(K, width, height)
            elif size is not None and tuple(size) != (height, width):
                K = rescale_intrinsics(K, tuple(size), (height, width))
            cameras = Cameras(K.float(), sequence.c2w[indices].float())
        text = self.clip_text(sequence, indices)
        return Scene(rgb, depth, cameras, text, float(fps or sequence.fps))

    def _read_rgb(self, sequence: Sequence, indices: list[int]) -> Tensor:
        if isinstance(sequence.rgb, VideoFrames):
            video = sequence.rgb
            return read_video_frames(video.path, [video.indices[i] for i in indices])
        frames = [read_rgb(sequence.rgb[i]) for i in indices]
        for i, frame in zip(indices, frames, strict=True):
            if frame.shape != frames[0].shape:
                raise CorruptFileError(
                    sequence.rgb[i],
                    f"is {tuple(frame.shape[1:])} but frame {indices[0]} is "
                    f"{tuple(frames[0].shape[1:])} (expected one size per sequence)",
                )
        return torch.stack(frames)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, modalities={self.modalities})"


def _load_captions(path: Path) -> dict[str, str]:
    captions = read_json(path, "a JSON object mapping sequence name to caption")
    if not isinstance(captions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in captions.items()
    ):
        raise ValueError(f"{path} must map sequence names to caption strings")
    return captions
