"""Clips from readers: windows of a requested length and frame stride, resize + centre-crop to
the training resolution with the intrinsics adjusted, and deterministic train / eval splits.

    reader = VirtualKitti2("/data/vkitti2")
    clips = Clips(reader, length=49, stride=2, size=(240, 320), split="train", eval_fraction=0.05)
    scene = clips[0]  # Scene (49, 3, 240, 320)
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import torch.nn.functional as F
from torch.utils.data import Dataset

from any4d.data.readers.base import DATA_ERRORS, Reader, Sequence
from any4d.data.scene import Scene

SPLITS = ("train", "eval", "all")


def check_clip_length(length: int, temporal_stride: int = 4) -> int:
    """``length`` if it is ``1 + temporal_stride·k`` (the causal Wan VAE needs ``1 + 4k``)."""
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError(f"length is {length!r} (expected an integer ≥ 1)")
    if not isinstance(temporal_stride, int) or temporal_stride < 1:
        raise ValueError(f"temporal_stride is {temporal_stride!r} (expected an integer ≥ 1)")
    if (length - 1) % temporal_stride:
        below = length - (length - 1) % temporal_stride
        raise ValueError(
            f"length is {length} (expected 1 + {temporal_stride}·k frames for temporal stride "
            f"{temporal_stride}, e.g. {below} or {below + temporal_stride})"
        )
    return length


def clip_starts(num_frames: int, length: int, stride: int, hop: int) -> list[int]:
    """First frames of the windows of ``length`` frames ``stride`` apart that fit in a
    sequence of ``num_frames``, one every ``hop`` frames from frame 0."""
    span = (length - 1) * stride + 1
    return list(range(0, num_frames - span + 1, hop))


def split_of(name: str, eval_fraction: float, salt: str = "") -> str:
    """``"eval"`` or ``"train"`` for a sequence name, from a hash: the same on every machine,
    Python version and ordering of the data, and stable when sequences are added."""
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction is {eval_fraction!r} (expected a number in [0, 1])")
    digest = hashlib.sha256(f"{salt}/{name}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2.0**64  # uniform in [0, 1)
    return "eval" if unit < eval_fraction else "train"


def resize_and_crop(scene: Scene, height: int, width: int) -> Scene:
    """Resize (keeping the aspect ratio) so the frame covers ``height × width``, then crop the
    centre; intrinsics follow both steps exactly. RGB: bilinear with antialiasing; depth:
    nearest, so invalid (0) pixels never blend into valid ones."""
    if height < 1 or width < 1:
        raise ValueError(f"target size is {height}x{width} (expected positive sizes)")
    h, w = scene.height, scene.width
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    rgb, depth, cameras = scene.rgb, scene.depth, scene.cameras
    if (new_h, new_w) != (h, w):
        rgb = F.interpolate(rgb, size=(new_h, new_w), mode="bilinear", antialias=True)
        rgb = rgb.clamp(-1.0, 1.0)
        if depth is not None:
            depth = F.interpolate(depth, size=(new_h, new_w), mode="nearest-exact")
        if cameras is not None:
            cameras = cameras.resized_to((h, w), (new_h, new_w))
    rgb = rgb[..., top : top + height, left : left + width]
    if depth is not None:
        depth = depth[..., top : top + height, left : left + width]
    if cameras is not None:
        cameras = cameras.cropped(top, left)
    return replace(scene, rgb=rgb.contiguous(), depth=depth, cameras=cameras)


class Clips(Dataset):
    """Map-style data set of fixed-length clips over a reader's sequences (items are ``Scene``).

    length:          frames per clip; must be ``1 + temporal_stride·k``.
    stride:          frame step inside a clip (fps is divided by it).
    size:            (H, W) after resize + centre crop; None keeps the native resolution.
    split:           "train", "eval" (by ``split_of`` on the sequence name) or "all".
    eval_fraction:   share of sequences in "eval".
    hop:             frames between consecutive clip starts (default: non-overlapping clips).
    temporal_stride: 4 for the Wan VAE, 1 for the pixel tokenizer.

    Windows are enumerated in sequence-name order, so item ``i`` is the same clip on every
    machine. When a read fails and the reader skips corrupt data, the sequence is skipped (the
    reader warns and counts) and the next clip of another sequence is returned instead.
    """

    def __init__(
        self,
        reader: Reader,
        length: int,
        stride: int = 1,
        size: tuple[int, int] | None = (240, 320),
        split: str = "all",
        eval_fraction: float = 0.0,
        hop: int | None = None,
        temporal_stride: int = 4,
        salt: str = "",
    ) -> None:
        check_clip_length(length, temporal_stride)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride is {stride!r} (expected an integer ≥ 1)")
        if split not in SPLITS:
            raise ValueError(f"split is {split!r} (expected one of {SPLITS})")
        hop = (length - 1) * stride + 1 if hop is None else hop
        if not isinstance(hop, int) or hop < 1:
            raise ValueError(f"hop is {hop!r} (expected an integer ≥ 1)")
        self.reader, self.length, self.stride, self.size = reader, length, stride, size
        self.windows: list[tuple[Sequence, int]] = []
        for sequence in reader.sequences():
            if split != "all" and split_of(sequence.name, eval_fraction, salt) != split:
                continue
            for start in clip_starts(sequence.num_frames, length, stride, hop):
                self.windows.append((sequence, start))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> Scene:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} clips")
        index %= len(self)
        for offset in range(len(self)):
            sequence, start = self.windows[(index + offset) % len(self)]
            if sequence.name in self.reader.skipped:
                continue
            try:
                scene = self.reader.read_clip(sequence, start, self.length, self.stride)
            except DATA_ERRORS as error:
                self.reader.skip(sequence.name, error)  # re-raises unless skip_corrupt
                continue
            return scene if self.size is None else resize_and_crop(scene, *self.size)
        raise RuntimeError(
            f"every sequence of {self.reader.name} under {self.reader.root} was skipped as "
            f"corrupt ({self.reader.num_skipped} sequences)"
        )
