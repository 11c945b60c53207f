"""PointOdyssey (v1.2+): RGB + depth + pose, synthetic and metric.

Layout (point_odyssey ``README.md``, ``utils/reprojection.py``; CUT3R
``preprocess_point_odyssey.py``)::

    <root>/<train|val|test>/<seq>/rgbs/rgb_%05d.jpg
    <root>/<split>/<seq>/depths/depth_%05d.png      uint16, metres = v / 65535 · 1000
    <root>/<split>/<seq>/anno.npz                   (or annot.npz) intrinsics (N, 3, 3) pixels,
                                                    extrinsics (N, 4, 4) world-to-camera

Conversions: w2c → c2w (``w2c_to_c2w``); ``uint16_fraction_to_metres(v, 1000)``; the
saturated code 65535 (1000 m, the top of the range: depth clipped there, e.g. sky, is no
measurement) → 0, as are values above 1000 m or non-finite (CUT3R), and 0 stays 0 (whether 0
is an invalid code: UNCONFIRMED). v1.0 used a flipped camera convention: use v1.2 or later.
fps = 30 (UNCONFIRMED).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import (
    invalid_to_zero,
    uint16_fraction_to_metres,
    w2c_to_c2w,
)
from any4d.data.readers.decode import CorruptFileError, read_uint16_png, require_files

FULL_SCALE, FPS = 1000.0, 30.0
SATURATED = 65535  # the largest uint16 code: at or beyond the far clip, not a measured depth
ANNOTATIONS = ("anno.npz", "annot.npz")


class PointOdyssey(Reader):
    """PointOdyssey sequences of one ``split`` ("train", "val" or "test"), named by folder."""

    name = "pointodyssey"
    layout = "<split>/<seq>/{rgbs/rgb_*.jpg, depths/depth_*.png, anno.npz}"
    provides = ("rgb", "depth", "cameras")

    def __init__(self, root: str | Path, *, split: str = "train", **options) -> None:
        super().__init__(root, **options)
        self.split = split

    def find_sequences(self) -> list[tuple[str, Path]]:
        folders = sorted(p for p in (self.root / self.split).glob("*/") if (p / "rgbs").is_dir())
        return [(f"{self.split}/{p.name}", p) for p in folders]

    def index_sequence(self, name: str, folder: Path) -> Sequence:
        found = [folder / a for a in ANNOTATIONS if (folder / a).is_file()]
        if not found:
            raise FileNotFoundError(
                f"{folder / ANNOTATIONS[0]} does not exist (expected "
                "PointOdyssey annotations, anno.npz or annot.npz)"
            )
        path = found[0]
        try:
            with np.load(path, allow_pickle=False) as annotations:
                K = torch.as_tensor(annotations["intrinsics"], dtype=torch.float64)
                w2c = torch.as_tensor(annotations["extrinsics"], dtype=torch.float64)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise CorruptFileError(path, f"not readable annotations ({error})") from None
        n = len(K)
        if K.shape != (n, 3, 3) or w2c.shape != (n, 4, 4):
            raise CorruptFileError(
                path,
                f"holds intrinsics {tuple(K.shape)} and extrinsics {tuple(w2c.shape)} "
                "(expected (N, 3, 3) and (N, 4, 4))",
            )
        rgb = [folder / "rgbs" / f"rgb_{i:05d}.jpg" for i in range(n)]
        depth = [folder / "depths" / f"depth_{i:05d}.png" for i in range(n)]
        return Sequence(
            name=name,
            source=path,
            rgb=require_files(rgb, "a PointOdyssey RGB frame"),
            K=K,
            c2w=w2c_to_c2w(w2c),
            depth=require_files(depth, "a PointOdyssey depth PNG"),
            fps=FPS,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        code = read_uint16_png(handle)
        metres = uint16_fraction_to_metres(code, FULL_SCALE)
        return invalid_to_zero(metres, (code >= SATURATED) | (metres > FULL_SCALE))
