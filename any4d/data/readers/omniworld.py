"""OmniWorld-Game: RGB + depth + pose (synthetic; metric assumed).

Layout (OmniWorld ``README.md``, ``scripts/utils.py``)::

    <root>/<scene_id>/split_info.json          {"split": [[frame indices of split 0], …]}
    <root>/<scene_id>/camera/split_<k>.json    focals (fx = fy, pixels), cx, cy,
                                               quats (S, 4) w x y z, trans (S, 3): OpenCV w2c
    <root>/<scene_id>/color/%06d.png           1280×720
    <root>/<scene_id>/depth/%06d.png           uint16, see ``omniworld_depth_to_metres``
    <root>/<scene_id>/fps.txt

One sequence per (scene, split), named "<scene_id>/split_<k>".
Conversions: ``[R(q_wxyz) | t]`` (``pose_from_quaternion``, scalar first) → c2w
(``w2c_to_c2w``); depth by their nonlinear formula with near 1, far 1000, invalid (too close,
sky) → 0; units after the formula assumed metres (UNCONFIRMED). fps from ``fps.txt``, else 24
(README). The structured captions under ``text/`` (schema UNCONFIRMED) are not read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import (
    intrinsics_matrix,
    omniworld_depth_to_metres,
    pose_from_quaternion,
    w2c_to_c2w,
)
from any4d.data.readers.decode import CorruptFileError, read_json, read_uint16_png, require_files

DEFAULT_FPS = 24.0


class OmniWorld(Reader):
    """OmniWorld-Game splits named "<scene_id>/split_<k>"."""

    name = "omniworld"
    layout = "<scene_id>/{split_info.json, camera/split_<k>.json, color/*.png, depth/*.png}"
    provides = ("rgb", "depth", "cameras")

    def find_sequences(self) -> list[tuple[str, tuple[Path, int]]]:
        found = []
        for scene in sorted(p.parent for p in self.root.glob("*/split_info.json")):
            for camera in sorted(scene.glob("camera/split_*.json")):
                k = camera.stem.removeprefix("split_")
                if k.isdigit():
                    found.append((f"{scene.name}/split_{k}", (scene, int(k))))
        return sorted(found)

    def index_sequence(self, name: str, location: tuple[Path, int]) -> Sequence:
        scene, k = location
        info = read_json(scene / "split_info.json", "OmniWorld split_info.json")
        path = scene / "camera" / f"split_{k}.json"
        camera = read_json(path, "an OmniWorld camera file")
        try:
            frames = [int(i) for i in info["split"][k]]
            w2c = pose_from_quaternion(
                torch.tensor(camera["quats"], dtype=torch.float64),
                torch.tensor(camera["trans"], dtype=torch.float64),
                scalar_first=True,
            )
            focal = torch.tensor(camera["focals"], dtype=torch.float64)
            K = intrinsics_matrix(focal, focal, camera["cx"], camera["cy"])
            K = K.expand(len(frames), 3, 3) if K.dim() == 2 else K
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            raise CorruptFileError(
                path, f"lacks or mangles {error} (with split_info.json)"
            ) from None
        fps_file = scene / "fps.txt"
        fps = float(fps_file.read_text().strip()) if fps_file.is_file() else DEFAULT_FPS
        rgb = [scene / "color" / f"{i:06d}.png" for i in frames]
        depth = [scene / "depth" / f"{i:06d}.png" for i in frames]
        return Sequence(
            name=name,
            source=path,
            rgb=require_files(rgb, "an OmniWorld colour frame"),
            K=K,
            c2w=w2c_to_c2w(w2c),
            depth=require_files(depth, "an OmniWorld depth PNG"),
            fps=fps,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        return omniworld_depth_to_metres(read_uint16_png(handle))
