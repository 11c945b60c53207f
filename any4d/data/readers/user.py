"""Users' own data: one video file or one folder of frames, with optional cameras and depth —
the input of ``any4d complete``.

    scene = read_user_scene("walk.mp4", cameras="sparse/0", fps=30)

Frames: a video (any format PyAV reads) or a folder of images (.png/.jpg/.jpeg, sorted by name
with numbers compared as numbers). Cameras (optional), from one of:

- our JSON (a ``.json`` file with "c2w")::

      {"c2w": [one 4×4 per frame],      camera-to-world, OpenCV axes (x right, y down, z fwd)
       "K": 3×3 or [one 3×3 per frame], pixels (optional when ``intrinsics`` is given)
       "width": W, "height": H,          the size K refers to (optional: the frames' size)
       "fps": 30}                        (optional)

- a nerfstudio ``transforms.json`` (has "frames"): OpenGL axes, converted by
  ``opengl_to_opencv``; K from fl_x, fl_y, cx, cy at w × h;
- a COLMAP text model (a folder with cameras.txt and images.txt): w2c, converted by
  ``w2c_to_c2w``.

Frames of a folder are matched to nerfstudio / COLMAP entries by file name, a video's frames by
order. ``intrinsics=(fx, fy, cx, cy)`` (pixels of the frames) replaces the file's K. Depth
(optional), 0 = invalid: a folder of one file per frame, sorted like the frames — ``.npy`` float
metres, or 16-bit ``.png`` codes divided by ``depth_scale`` (default 1000: millimetres) — or one
``.npz`` holding the whole clip under ``"depth"``, (N, H, W) or (N, 1, H, W) float metres (the
``depth.npz`` that ``any4d complete`` writes).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence, VideoFrames
from any4d.data.readers.colmap import read_cameras_txt, read_images_txt
from any4d.data.readers.conversions import (
    intrinsics_matrix,
    invalid_to_zero,
    opengl_to_opencv,
    w2c_to_c2w,
)
from any4d.data.readers.decode import (
    CorruptFileError,
    read_depth_npz,
    read_json,
    read_uint16_png,
    video_info,
)
from any4d.data.readers.dl3dv import read_depth_npy
from any4d.data.scene import Scene

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".npy", ".png")


class UserClip(Reader):
    """One sequence from a video file or a folder of frames (see the module docstring)."""

    name = "user"
    layout = "a video file or a folder of .png / .jpg frames"

    def __init__(
        self,
        root: str | Path,
        *,
        cameras: str | Path | None = None,
        intrinsics: tuple[float, float, float, float] | None = None,
        depth: str | Path | None = None,
        depth_scale: float = 1000.0,
        fps: float | None = None,
        text: str | None = None,
        **options,
    ) -> None:
        super().__init__(root, **options)
        if intrinsics is not None and cameras is None:
            raise ValueError(
                "intrinsics were given without cameras (a Scene's cameras need poses too: "
                "pass cameras=<our JSON without K, transforms.json or a COLMAP folder>)"
            )
        self.cameras = None if cameras is None else Path(cameras)
        self.depth = None if depth is None else Path(depth)
        self.intrinsics, self.depth_scale, self.fps, self.text = intrinsics, depth_scale, fps, text
        self._clip_depth: Tensor | None = None  # the frames of a depth .npz, once read

    @property
    def provides(self) -> tuple[str, ...]:
        optional = {"cameras": self.cameras, "depth": self.depth, "text": self.text}
        return ("rgb",) + tuple(k for k, v in optional.items() if v is not None)

    def find_sequences(self) -> list[tuple[str, Path]]:
        return [(self.root.stem if self.root.is_file() else self.root.name, self.root)]

    def index_sequence(self, name: str, root: Path) -> Sequence:
        fps = self.fps
        if root.is_file():
            count, video_fps = video_info(root)
            rgb, names = VideoFrames(root, tuple(range(count))), None
            fps = fps or video_fps
        else:
            rgb = _sorted_files(root, IMAGE_SUFFIXES)
            if not rgb:
                raise FileNotFoundError(
                    f"{root} holds no .png / .jpg frames (expected {self.layout})"
                )
            names, count = [p.name for p in rgb], len(rgb)
        K = c2w = size = None
        if self.cameras is not None:
            K, c2w, size, file_fps = self._read_cameras(names, count)
            fps = fps or file_fps
        if self.intrinsics is not None and c2w is not None:
            K, size = intrinsics_matrix(*self.intrinsics).expand(count, 3, 3), None
        depth = None
        if self.depth is not None and self.depth.suffix.lower() == ".npz":
            self._clip_depth = _clip_depth(self.depth, count)
            depth = list(range(count))
        elif self.depth is not None:
            depth = _sorted_files(self.depth, DEPTH_SUFFIXES)
            if len(depth) != count:
                raise CorruptFileError(
                    self.depth, f"holds {len(depth)} depth files for {count} frames"
                )
        return Sequence(
            name=name,
            source=self.cameras or root,
            rgb=rgb,
            K=K,
            intrinsics_size=size,
            c2w=c2w,
            depth=depth,
            text=self.text,
            fps=fps or 30.0,
        )

    def decode_depth(self, handle: Path | int) -> Tensor:
        if isinstance(handle, int):  # a frame of the depth .npz
            return self._clip_depth[handle]
        if handle.suffix == ".npy":
            return read_depth_npy(handle)
        code = read_uint16_png(handle)
        return invalid_to_zero(code.double().div(self.depth_scale).float(), code == 0)

    def _read_cameras(self, names: list[str] | None, count: int):
        """(K (N, 3, 3), c2w (N, 4, 4), K's (H, W) or None, fps or None) from the camera file."""
        path = self.cameras
        if path.is_dir():
            cameras = read_cameras_txt(path / "cameras.txt")
            images = {Path(i.name).name: i for i in read_images_txt(path / "images.txt")}
            entries = _match(images, names, count, path / "images.txt")
            K = torch.stack([cameras[i.camera_id].K for i in entries])
            first = cameras[entries[0].camera_id]
            c2w = w2c_to_c2w(torch.stack([i.w2c for i in entries]))
            return K, c2w, (first.height, first.width), None
        data = read_json(path, "camera JSON (ours, or a nerfstudio transforms.json)")
        try:
            if isinstance(data, dict) and "frames" in data:
                frames = {Path(f["file_path"]).name: f for f in data["frames"]}
                entries = _match(frames, names, count, path)
                K = torch.stack([_nerfstudio_K({**data, **f}) for f in entries])
                c2w = torch.tensor([f["transform_matrix"] for f in entries], dtype=torch.float64)
                return K, opengl_to_opencv(c2w), (int(data["h"]), int(data["w"])), None
            c2w = torch.tensor(data["c2w"], dtype=torch.float64)
            if "K" in data:
                K = torch.tensor(data["K"], dtype=torch.float64).expand(len(c2w), 3, 3)
            elif self.intrinsics is not None:
                K = intrinsics_matrix(*self.intrinsics).expand(len(c2w), 3, 3)
            else:
                raise KeyError("K")
            size = (int(data["height"]), int(data["width"])) if "height" in data else None
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CorruptFileError(path, f"lacks or mangles {error} (see UserClip)") from None
        if len(c2w) != count:
            raise CorruptFileError(path, f"gives {len(c2w)} poses for {count} frames")
        return K, c2w, size, data.get("fps")


def read_user_scene(path: str | Path, **options) -> Scene:
    """The whole clip at ``path`` (a video or a frames folder) as a ``Scene``; options as in
    ``UserClip``."""
    return UserClip(path, **options)[0]


def _clip_depth(path: Path, count: int) -> Tensor:
    """(N, H, W) float32 metres from a depth ``.npz`` of (N, H, W) or (N, 1, H, W)."""
    depth = read_depth_npz(path)
    if depth.dim() == 4 and depth.shape[1] == 1:
        depth = depth[:, 0]
    if depth.dim() != 3:
        raise CorruptFileError(
            path, f"holds depth of shape {tuple(depth.shape)} (expected (N, H, W) or (N, 1, H, W))"
        )
    if len(depth) != count:
        raise CorruptFileError(path, f"holds {len(depth)} depth frames for {count} frames")
    if not torch.isfinite(depth).all() or (depth < 0).any():
        raise CorruptFileError(path, "holds negative or non-finite depth (expected metres ≥ 0)")
    return depth


def _nerfstudio_K(value: dict) -> Tensor:
    return intrinsics_matrix(value["fl_x"], value["fl_y"], value["cx"], value["cy"])


def _match(entries: dict, names: list[str] | None, count: int, path: Path) -> list:
    """Entries for the frames: by file name for a folder, in sorted-name order for a video."""
    if names is None:
        if len(entries) != count:
            raise CorruptFileError(path, f"has {len(entries)} entries for {count} video frames")
        return [entries[k] for k in _natural_sorted(entries)]
    missing = [n for n in names if n not in entries]
    if missing:
        raise CorruptFileError(path, f"has no entry for frame {missing[0]}")
    return [entries[n] for n in names]


def _sorted_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist (expected a folder of {suffixes} files)")
    files = [p for p in folder.iterdir() if p.suffix.lower() in suffixes]
    return [folder / n for n in _natural_sorted([p.name for p in files])]


def _natural_sorted(names) -> list[str]:
    """Names sorted with digit runs compared as numbers: frame2 before frame10."""
    return sorted(
        names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]
    )
