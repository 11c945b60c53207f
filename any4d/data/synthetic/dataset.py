"""Synthetic clips as ``Scene`` objects, one per seed, and the seeded train / held-out data set.

Splits are disjoint seed ranges: ``train`` renders seeds ``0 … 10⁶ − 1`` and ``heldout`` seeds
``10⁶ … 2·10⁶ − 1``. Item ``i`` of a split is the clip of seed ``SPLITS[split] + i``, so a
data set is fully described by (config, split, size) and needs no files.
"""

from __future__ import annotations

import operator
from types import MappingProxyType

from torch.utils.data import Dataset

from any4d.data.scene import Scene
from any4d.data.synthetic.clip import ClipSpec, resolve_config, sample_clip
from any4d.data.synthetic.config import SyntheticConfig
from any4d.data.synthetic.render import render

SPLIT_SIZE = 10**6
SPLITS = MappingProxyType({"train": 0, "heldout": SPLIT_SIZE})  # split name -> first seed


def render_spec(spec: ClipSpec) -> Scene:
    """Render a sampled clip: exact RGB, z-depth, the cameras used, caption and fps."""
    config = spec.config
    rgb, depth = render(spec.world, spec.cameras, spec.times, config.height, config.width)
    return Scene(rgb=rgb, depth=depth, cameras=spec.cameras, text=spec.text, fps=float(config.fps))


def render_clip(seed: int, config: SyntheticConfig | None = None, **overrides) -> Scene:
    """The synthetic clip of ``seed``, e.g. ``render_clip(3, num_frames=5, dynamic=False)``.

    ``overrides`` replace fields of ``config`` (default ``SyntheticConfig()``). Returns a Scene
    with rgb (T, 3, H, W) float32 in [-1, 1], depth (T, 1, H, W) z-depth in metres (> 0
    everywhere), world-frame cameras (T,), a caption and ``config.fps``. Same seed and config →
    bit-identical tensors.
    """
    return render_spec(sample_clip(seed, resolve_config(config, overrides)))


class SyntheticClips(Dataset):
    """Map-style data set of synthetic clips (items are ``Scene``); rendering happens on access.

    split: "train" or "heldout" (disjoint seed ranges, see the module docstring).
    size:  number of clips, at most ``SPLIT_SIZE`` (default: all of them).
    """

    def __init__(
        self, config: SyntheticConfig | None = None, split: str = "train", size: int | None = None
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split is {split!r} (expected one of {tuple(SPLITS)})")
        size = SPLIT_SIZE if size is None else size
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= SPLIT_SIZE:
            raise ValueError(f"size is {size!r} (expected an integer in [1, {SPLIT_SIZE}])")
        self.config = resolve_config(config, {})
        self.split = split
        self.size = size

    def seed(self, index: int) -> int:
        """The seed of item ``index`` (negative indices count from the end)."""
        index = operator.index(index)  # numpy and 0-d tensor indices from samplers and Subset
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} is out of range for {self.size} clips")
        return SPLITS[self.split] + index % self.size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Scene:
        return render_clip(self.seed(index), self.config)

    def __repr__(self) -> str:
        return f"SyntheticClips(split={self.split!r}, size={self.size}, config={self.config})"
