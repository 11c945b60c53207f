"""DL3DV-10K (nerfstudio release): RGB + pose (COLMAP scale, not metric); depth where annotated.

Layout (DL3DV-10K ``README.md``; depthsplat ``convert_dl3dv_train.py``)::

    <root>/<subset e.g. 1K>/<hash>/transforms.json    fl_x fl_y cx cy w h (pixels at w × h),
                                                      frames[i].{file_path, transform_matrix}
    <root>/<subset>/<hash>/images_4/<frame>.png       960P release (images_8 for 480P)

``transform_matrix`` is camera-to-world with OpenGL/Blender camera axes; frame files are found
by the base name of ``file_path`` inside ``images``. Optional depth (DL3DV ships none; e.g. from
an annotation tool): ``<depth_root>/<subset>/<hash>/<frame stem>.npy``, float metres along the
optical axis, 0 or non-finite = invalid — a layout of ours.

Conversions: OpenGL → OpenCV axes (``opengl_to_opencv``); K at the JSON's ``w × h`` is
rescaled to the loaded images (as depthsplat does). Distortion keys are ignored (UNCONFIRMED
whether the release has any). fps: ``fps`` argument, default 30 (UNCONFIRMED: captured at 30 or
60 fps, the released subsampling is unknown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import intrinsics_matrix, invalid_to_zero, opengl_to_opencv
from any4d.data.readers.decode import CorruptFileError, read_json, require_files


class DL3DV(Reader):
    """DL3DV-10K scenes named "<subset>/<hash>". ``images``: "images_4" (960P) or "images_8"."""

    name = "dl3dv"
    layout = "<subset>/<hash>/{transforms.json, images_4/*.png}"

    def __init__(
        self,
        root: str | Path,
        *,
        images: str = "images_4",
        depth_root: str | Path | None = None,
        fps: float = 30.0,
        **options,
    ) -> None:
        super().__init__(root, **options)
        self.images, self.fps = images, fps
        self.depth_root = None if depth_root is None else Path(depth_root)

    @property
    def provides(self) -> tuple[str, ...]:
        return ("rgb", "cameras") + (("depth",) if self.depth_root is not None else ())

    def find_sequences(self) -> list[tuple[str, Path]]:
        scenes = sorted(p.parent for p in self.root.glob("*/*/transforms.json"))
        return [(f"{p.parent.name}/{p.name}", p) for p in scenes]

    def index_sequence(self, name: str, scene: Path) -> Sequence:
        path = scene / "transforms.json"
        meta = read_json(path, "a nerfstudio transforms.json")
        try:
            frames = sorted(meta["frames"], key=lambda f: Path(f["file_path"]).name)
            K, c2w = [], []
            for frame in frames:
                value = {**meta, **frame}.get  # per-frame intrinsics override shared ones
                K.append(intrinsics_matrix(value("fl_x"), value("fl_y"), value("cx"), value("cy")))
                c2w.append(torch.tensor(frame["transform_matrix"], dtype=torch.float64))
            size = (int(meta["h"]), int(meta["w"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptFileError(
                path, f"lacks or mangles {error} (expected nerfstudio keys)"
            ) from None
        stems = [Path(frame["file_path"]) for frame in frames]
        rgb = [scene / self.images / stem.name for stem in stems]
        depth = None
        if self.depth_root is not None:
            folder = self.depth_root / name
            depth = require_files([folder / f"{s.stem}.npy" for s in stems], "a depth .npy")
        return Sequence(
            name=name,
            source=path,
            rgb=require_files(rgb, f"a DL3DV frame in {self.images}/"),
            K=torch.stack(K),
            intrinsics_size=size,
            c2w=opengl_to_opencv(torch.stack(c2w)),
            depth=depth,
            fps=self.fps,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        return read_depth_npy(handle)


def read_depth_npy(path: Path) -> Tensor:
    """A (H, W) float array of metres from ``.npy``; non-finite or ≤ 0 → 0."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise CorruptFileError(path, f"not a readable .npy ({error})") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise CorruptFileError(path, f"holds {array.dtype} {array.shape} (expected (H, W) floats)")
    depth = torch.from_numpy(array.astype(np.float32))
    return invalid_to_zero(depth, depth <= 0)
