"""DL3DV-10K (nerfstudio release): RGB + pose (COLMAP scale, not metric); depth where annotated.

Layout (DL3DV-10K ``README.md``; depthsplat ``convert_dl3dv_train.py``)::

    <root>/<subset e.g. 1K>/<hash>/transforms.json    fl_x fl_y cx cy w h (pixels at w × h),
                                                      k1 k2 p1 p2 (OPENCV), frames[i].{
                                                      file_path, transform_matrix}
    <root>/<subset>/<hash>/images_4/<frame>.png       960P release (images_8 for 480P)

``transform_matrix`` is camera-to-world with OpenGL/Blender camera axes; frame files are found
by the base name of ``file_path`` inside ``images``.

Conversions: OpenGL → OpenCV axes (``opengl_to_opencv``); K at the JSON's ``w × h`` is
rescaled to the loaded images (as depthsplat does). Distortion (nerfstudio's keys; that the
release carries OPENCV ``k1 k2 p1 p2`` is reported in issue 17, not checked on a downloaded
file here: UNCONFIRMED): the frames are read as they are and K is used as a pinhole camera;
non-zero ``k1 k2 k3 k4 p1 p2`` are *not* undistorted (no image-warping dependency in the core
install, and depth from ``depth_root`` would have to follow) but reported by one
``UserWarning`` per sequence that names the scene and the coefficients. fps: ``fps``
argument, default 30 (UNCONFIRMED: captured at 30 or 60 fps, the released subsampling is
unknown).

Depth (DL3DV ships none): ``depth_root`` holds ``<depth_root>/<subset>/<hash>/<frame stem>.npy``,
float metres along the optical axis, 0 or non-finite = invalid — a layout of ours. Such depth
and the COLMAP-scale poses disagree by an unknown factor per scene, so ``depth_root`` needs
``depth_scales``: a JSON object ``{"<subset>/<hash>": s}`` or a two-column CSV
``<subset>/<hash>,s`` (optional header row) whose ``s`` multiplies every pose translation of
that scene to give metres (the depth is used as it is); without it the reader refuses to start.
Depth and poses from one source need no such factor: read ViPE's outputs with the ``vipe``
reader. ``depth_scales`` may also be given alone, to make the poses metric.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import intrinsics_matrix, invalid_to_zero, opengl_to_opencv
from any4d.data.readers.decode import CorruptFileError, read_json, require_file, require_files

# nerfstudio's distortion keys (OPENCV: k1 k2 p1 p2; OPENCV_FISHEYE: k1..k4; k3 for FULL_OPENCV)
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")


class DL3DV(Reader):
    """DL3DV-10K scenes named "<subset>/<hash>". ``images``: "images_4" (960P) or "images_8".

    depth_root:   folder of per-frame depth ``.npy`` in metres (a layout of ours, see above).
    depth_scales: JSON / CSV file mapping scene name → factor that multiplies the COLMAP-scale
                  pose translations to metres; required with ``depth_root``.
    """

    name = "dl3dv"
    layout = "<subset>/<hash>/{transforms.json, images_4/*.png}"

    def __init__(
        self,
        root: str | Path,
        *,
        images: str = "images_4",
        depth_root: str | Path | None = None,
        depth_scales: str | Path | None = None,
        fps: float = 30.0,
        **options,
    ) -> None:
        if depth_root is not None and depth_scales is None:
            raise ValueError(
                f"dl3dv: depth_root={str(depth_root)!r} needs depth_scales: depth given in "
                "metres and DL3DV's COLMAP-scale poses (arbitrary per scene) have no common "
                "scale. Read ViPE's outputs with the 'vipe' reader (depth and poses from one "
                "run), or pass depth_scales=<JSON or CSV of scene name → factor that multiplies "
                "the pose translations to metres>"
            )
        super().__init__(root, **options)
        self.images, self.fps = images, fps
        self.depth_root = None if depth_root is None else Path(depth_root)
        self.scales_path = None if depth_scales is None else Path(depth_scales)
        self.scales = None if depth_scales is None else read_scales(Path(depth_scales))

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
            K, c2w, distortion = [], [], {}
            for frame in frames:
                value = {**meta, **frame}.get  # per-frame intrinsics override shared ones
                K.append(intrinsics_matrix(value("fl_x"), value("fl_y"), value("cx"), value("cy")))
                c2w.append(torch.tensor(frame["transform_matrix"], dtype=torch.float64))
                for key in DISTORTION_KEYS:
                    if float(value(key) or 0.0) != 0.0:
                        distortion.setdefault(key, float(value(key)))
            size = (int(meta["h"]), int(meta["w"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptFileError(
                path, f"lacks or mangles {error} (expected nerfstudio keys)"
            ) from None
        if distortion:
            coefficients = " ".join(f"{k}={v:g}" for k, v in distortion.items())
            warnings.warn(
                f"dl3dv {name}: {path} has {meta.get('camera_model', 'a')} distortion "
                f"{coefficients}; it is ignored (frames read as they are, pinhole K)",
                stacklevel=2,
            )
        stems = [Path(frame["file_path"]) for frame in frames]
        rgb = [scene / self.images / stem.name for stem in stems]
        c2w = opengl_to_opencv(torch.stack(c2w))
        if self.scales is not None:
            if name not in self.scales:
                raise CorruptFileError(
                    self.scales_path,
                    f"has no scale for scene {name!r} (expected an entry per scene read)",
                )
            c2w[:, :3, 3] *= self.scales[name]
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
            c2w=c2w,
            depth=depth,
            fps=self.fps,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        return read_depth_npy(handle)


def read_scales(path: Path) -> dict[str, float]:
    """Scene name → factor (finite, > 0) from a JSON object or a two-column CSV (the first row
    may be a header)."""
    what = "per-scene scales: scene name → factor that multiplies pose translations to metres"
    if path.suffix.lower() == ".json":
        entries = read_json(path, f"a JSON object of {what}")
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: holds a JSON {type(entries).__name__} (expected {what})")
        rows = list(entries.items())
    elif path.suffix.lower() == ".csv":
        require_file(path, f"a CSV of {what}")
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and any(c.strip() for c in row)]
        if rows and len(rows[0]) == 2 and not _is_number(rows[0][1]):
            rows = rows[1:]  # a header such as "scene,scale"
        for number, row in enumerate(rows, start=1):
            if len(row) != 2:
                raise ValueError(f"{path}: row {number} is {row} (expected 'scene,factor')")
        rows = [(scene.strip(), factor.strip()) for scene, factor in rows]
    else:
        raise ValueError(f"depth_scales is {str(path)!r} (expected a .json or .csv file of {what})")
    scales = {}
    for scene, factor in rows:
        value = float(factor) if _is_number(factor) else math.nan
        if not isinstance(scene, str) or not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"{path}: scene {scene!r} has scale {factor!r} (expected a finite number > 0)"
            )
        scales[scene] = value
    return scales


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


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
