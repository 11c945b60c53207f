"""ScanNet++ iPhone captures: RGB + depth + pose, metric (aligned to the laser scan).

Layout (scannetpp ``common/scene_release.py``, ``iphone/prepare_iphone_data.py``)::

    <root>/<scene_id>/iphone/colmap/{cameras.txt, images.txt}   COLMAP w2c, OpenCV, pixels
    <root>/<scene_id>/iphone/rgb/frame_%06d.jpg                 from rgb.mkv (their script)
    <root>/<scene_id>/iphone/depth/frame_%06d.png               from depth.bin: uint16 mm,
                                                                256×192, 0 = invalid

``root`` is the release's ``data/`` folder. Run ScanNet++'s ``prepare_iphone_data.py``
(extract_rgb, extract_depth) first: this reader does not decode ``rgb.mkv`` / ``depth.bin``.
The frames are those registered in ``images.txt``, sorted by name. The DSLR images are fisheye
and have no sensor depth: they are not read here.

Conversions: COLMAP ``qw qx qy qz t`` (w2c) → c2w (``w2c_to_c2w``); millimetres → metres; depth
(lower resolution than RGB) is resized to the RGB with nearest neighbours by the base reader and
K is COLMAP's, for the RGB size in ``cameras.txt``. Distortion of an OPENCV camera model is
dropped (pinhole approximation) with a warning. fps = 60 (the capture rate implied by their
code) divided by the median step between registered frame numbers.
"""

from __future__ import annotations

import re
import statistics
import warnings
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.colmap import read_cameras_txt, read_images_txt
from any4d.data.readers.conversions import invalid_to_zero, millimetres_to_metres, w2c_to_c2w
from any4d.data.readers.decode import CorruptFileError, read_uint16_png, require_files

CAPTURE_FPS = 60.0


class ScanNetPP(Reader):
    """ScanNet++ iPhone sequences, one per scene, named by scene id."""

    name = "scannetpp"
    layout = "<scene_id>/iphone/{colmap/images.txt, rgb/frame_*.jpg, depth/frame_*.png}"
    provides = ("rgb", "depth", "cameras")

    def find_sequences(self) -> list[tuple[str, Path]]:
        scenes = sorted(p for p in self.root.iterdir() if (p / "iphone").is_dir())
        return [(scene.name, scene / "iphone") for scene in scenes]

    def index_sequence(self, name: str, iphone: Path) -> Sequence:
        colmap = iphone / "colmap"
        cameras = read_cameras_txt(colmap / "cameras.txt")
        images = sorted(read_images_txt(colmap / "images.txt"), key=lambda image: image.name)
        Ks = []
        for image in images:
            if image.camera_id not in cameras:
                raise CorruptFileError(
                    colmap / "images.txt", f"{image.name} uses unknown camera {image.camera_id}"
                )
            Ks.append(cameras[image.camera_id])
        sizes = {(c.height, c.width) for c in Ks}
        if len(sizes) != 1:
            raise CorruptFileError(colmap / "cameras.txt", f"has several image sizes {sizes}")
        if any(abs(k) > 1e-9 for c in Ks for k in c.distortion):
            warnings.warn(
                f"scannetpp {name}: {colmap / 'cameras.txt'} has distortion "
                f"{Ks[0].distortion}; it is ignored (pinhole approximation)",
                stacklevel=2,
            )
        stems = [Path(image.name).stem for image in images]
        rgb = [iphone / "rgb" / f"{stem}.jpg" for stem in stems]
        depth = [iphone / "depth" / f"{stem}.png" for stem in stems]
        return Sequence(
            name=name,
            source=colmap / "images.txt",
            rgb=require_files(rgb, "an iPhone frame (run prepare_iphone_data.py extract_rgb)"),
            K=torch.stack([c.K for c in Ks]),
            intrinsics_size=sizes.pop(),
            c2w=w2c_to_c2w(torch.stack([image.w2c for image in images])),
            depth=require_files(depth, "iPhone depth (run prepare_iphone_data.py extract_depth)"),
            fps=CAPTURE_FPS / _median_step(stems),
        )

    def decode_depth(self, handle: Path) -> Tensor:
        code = read_uint16_png(handle)
        return invalid_to_zero(millimetres_to_metres(code), code == 0)


def _median_step(stems: list[str]) -> float:
    numbers = [int(m.group()) for s in stems if (m := re.search(r"\d+", s))]
    steps = [b - a for a, b in zip(numbers, numbers[1:], strict=False) if b > a]
    return float(statistics.median(steps)) if steps else 1.0
