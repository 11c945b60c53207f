"""Virtual KITTI 2: RGB + depth + pose, synthetic and metric.

Layout (facebookresearch/vggt ``training/data/datasets/vkitti.py``)::

    <root>/Scene{01,02,06,18,20}/<variation>/extrinsic.txt      header, then "frame cameraID"
                                                                + 16 values: 4×4 w2c row-major
    <root>/Scene*/<variation>/intrinsic.txt                     header, then "frame cameraID
                                                                fx fy cx cy" in pixels
    <root>/Scene*/<variation>/frames/rgb/Camera_<c>/rgb_%05d.jpg
    <root>/Scene*/<variation>/frames/depth/Camera_<c>/depth_%05d.png   uint16 centimetres

One sequence per (scene, variation, camera), named "Scene01/clone/Camera_0".
Conversions: w2c → c2w (``w2c_to_c2w``); centimetres → metres; 65535 (sky, per the official
docs — UNCONFIRMED here) → 0, and optionally depths beyond ``max_depth`` (VGGT uses 80 m) → 0.
fps = 10 (UNCONFIRMED).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import (
    centimetres_to_metres,
    intrinsics_matrix,
    invalid_to_zero,
    w2c_to_c2w,
)
from any4d.data.readers.decode import CorruptFileError, read_uint16_png, require_file, require_files
from any4d.data.readers.tables import read_table

SKY = 65535
FPS = 10.0


class VirtualKitti2(Reader):
    """Virtual KITTI 2. ``cameras``: which of Camera_0 / Camera_1 to read; ``variations``:
    e.g. ("clone",) (default: all found); ``max_depth``: metres beyond which depth is invalid."""

    name = "vkitti2"
    layout = "Scene*/<variation>/{extrinsic.txt, intrinsic.txt, frames/rgb/Camera_*/rgb_*.jpg}"
    provides = ("rgb", "depth", "cameras")

    def __init__(
        self,
        root: str | Path,
        *,
        cameras: tuple[int, ...] = (0, 1),
        variations: tuple[str, ...] | None = None,
        max_depth: float | None = None,
        **options,
    ) -> None:
        super().__init__(root, **options)
        self.cameras, self.variations, self.max_depth = tuple(cameras), variations, max_depth

    def find_sequences(self) -> list[tuple[str, tuple[Path, int]]]:
        found = []
        for variation in sorted(self.root.glob("Scene*/*/")):
            if self.variations is not None and variation.name not in self.variations:
                continue
            if not (variation / "frames").is_dir() and not (variation / "extrinsic.txt").exists():
                continue
            for camera in self.cameras:
                name = f"{variation.parent.name}/{variation.name}/Camera_{camera}"
                found.append((name, (variation, camera)))
        return found

    def index_sequence(self, name: str, location: tuple[Path, int]) -> Sequence:
        folder, camera = location
        extrinsic = _rows_of_camera(require_file(folder / "extrinsic.txt", "VKITTI2 poses"), camera)
        intrinsic = _rows_of_camera(require_file(folder / "intrinsic.txt", "VKITTI2 K"), camera)
        if extrinsic.shape[1] != 18 or intrinsic.shape[1] != 6:
            raise CorruptFileError(folder, "extrinsic.txt needs 18 columns, intrinsic.txt 6")
        frames = extrinsic[:, 0].long().tolist()
        if intrinsic[:, 0].long().tolist() != frames:
            raise CorruptFileError(
                folder / "intrinsic.txt", f"lists other frames than extrinsic.txt for {name}"
            )
        w2c = extrinsic[:, 2:].reshape(-1, 4, 4)
        fx, fy, cx, cy = intrinsic[:, 2:].unbind(-1)
        rgb_dir = folder / "frames" / "rgb" / f"Camera_{camera}"
        depth_dir = folder / "frames" / "depth" / f"Camera_{camera}"
        rgb = require_files([rgb_dir / f"rgb_{f:05d}.jpg" for f in frames], "a VKITTI2 RGB frame")
        depth = [depth_dir / f"depth_{f:05d}.png" for f in frames]
        return Sequence(
            name=name,
            source=folder / "extrinsic.txt",
            rgb=rgb,
            K=intrinsics_matrix(fx, fy, cx, cy),
            c2w=w2c_to_c2w(w2c),
            depth=require_files(depth, "a VKITTI2 depth PNG (uint16 centimetres)"),
            fps=FPS,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        code = read_uint16_png(handle)
        metres = centimetres_to_metres(code)
        invalid = code >= SKY
        if self.max_depth is not None:
            invalid |= metres > self.max_depth
        return invalid_to_zero(metres, invalid)


def _rows_of_camera(path: Path, camera: int) -> Tensor:
    """Rows of a VKITTI2 table whose column 1 (cameraID) is ``camera``, as float64."""
    table = read_table(path, header=True)
    rows = table[table[:, 1] == camera] if len(table) else table
    if len(rows) == 0:
        raise CorruptFileError(path, f"has no rows for camera {camera}")
    return torch.as_tensor(rows, dtype=torch.float64)
