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

Cameras must be pinhole: lens distortion (COLMAP SIMPLE_RADIAL … FOV with a nonzero
coefficient, any fisheye model; nerfstudio fisheye / equirectangular or a nonzero k1…k4, p1, p2;
a nonzero "distortion" in our JSON) is refused — undistort the frames first (``colmap
image_undistorter``). A cameras file's image size may differ from the frames' only by scale (K
is rescaled); another aspect ratio is refused, and so is depth of another aspect ratio.

Frames of a folder are matched to nerfstudio / COLMAP entries by file name, a video's frames by
order. ``intrinsics=(fx, fy, cx, cy)`` (pixels of the frames) replaces the file's K. Depth
(optional), 0 = invalid: a folder of one file per frame, sorted like the frames — ``.npy`` float
metres, or 16-bit ``.png`` codes divided by ``depth_scale`` (default 1000: millimetres; 8-bit
PNGs are refused) — or one ``.npz`` holding the whole clip under ``"depth"``, (N, H, W) or
(N, 1, H, W) float metres (the ``depth.npz`` that ``any4d complete`` writes).

A long video read window by window decodes each frame once inside ``with clip.streaming():``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence, VideoFrames
from any4d.data.readers.colmap import (
    UNDISTORT,
    read_cameras_txt,
    read_images_txt,
    require_undistorted,
)
from any4d.data.readers.conversions import (
    intrinsics_matrix,
    invalid_to_zero,
    opengl_to_opencv,
    same_aspect_ratio,
    w2c_to_c2w,
)
from any4d.data.readers.decode import (
    CorruptFileError,
    VideoDecoder,
    image_size,
    read_depth_npz,
    read_json,
    read_uint16_png,
    video_info,
    video_size,
)
from any4d.data.readers.dl3dv import DISTORTION_KEYS, read_depth_npy
from any4d.data.scene import Scene

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".npy", ".png")
DEPTH_PNG = "a 16-bit PNG of depth codes (depth_scale codes per metre) — or give .npy metres"
# (gives, otherwise) of ``UserClip._require_frames_aspect`` for depth maps.
DEPTH_SIZE = ("holds depth of", "depth would be stretched unevenly onto them")
# nerfstudio camera_model values that are a pinhole once the k / p coefficients are zero.
NERFSTUDIO_PINHOLE = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


class UserClip(Reader):
    """One sequence from a video file or a folder of frames (see the module docstring).

    Sizes are checked when the clip is indexed: a cameras file's image size and the depth maps
    must have the frames' aspect ratio (any resolution: K is rescaled, depth resized), so that
    nothing is stretched unevenly. Frames, depth and cameras must be pinhole (undistorted).
    """

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
        if not _positive_number(depth_scale):
            raise ValueError(
                f"depth_scale (--depth-scale) is {depth_scale!r} (expected a positive finite "
                "number of PNG codes per metre)"
            )
        if fps is not None and not _positive_number(fps):
            raise ValueError(f"fps is {fps!r} (expected a positive number of frames per second)")
        self.cameras = None if cameras is None else Path(cameras)
        self.depth = None if depth is None else Path(depth)
        self.intrinsics, self.depth_scale, self.fps, self.text = intrinsics, depth_scale, fps, text
        self._clip_depth: Tensor | None = None  # the frames of a depth .npz, once read
        self._frame_size: tuple[int, int] | None = None  # (H, W) of the frames, once indexed
        self._decoders: dict[Path, VideoDecoder] | None = None  # open inside ``streaming()``

    @property
    def provides(self) -> tuple[str, ...]:
        optional = {"cameras": self.cameras, "depth": self.depth, "text": self.text}
        return ("rgb",) + tuple(k for k, v in optional.items() if v is not None)

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Inside ``with reader.streaming():`` a video's frames are decoded through one open
        ``VideoDecoder``, so reading a long video window by window (``read_frames`` /
        ``read_clip`` in increasing frame order) decodes each frame once; a window that starts
        before the last frame read decodes from the start again. Outside, every read decodes
        from the start. Frame folders read the same either way."""
        if self._decoders is not None:  # already streaming
            yield
            return
        self._decoders = {}
        try:
            yield
        finally:
            for decoder in self._decoders.values():
                decoder.close()
            self._decoders = None

    def find_sequences(self) -> list[tuple[str, Path]]:
        return [(self.root.stem if self.root.is_file() else self.root.name, self.root)]

    def index_sequence(self, name: str, root: Path) -> Sequence:
        fps = self.fps
        if root.is_file():
            count, video_fps = video_info(root)
            rgb, names = VideoFrames(root, tuple(range(count))), None
            fps = fps or video_fps
            self._frame_size = video_size(root)
        else:
            rgb = _sorted_files(root, IMAGE_SUFFIXES)
            if not rgb:
                raise FileNotFoundError(
                    f"{root} holds no .png / .jpg frames (expected {self.layout})"
                )
            names, count = [p.name for p in rgb], len(rgb)
            self._frame_size = image_size(rgb[0])
        K = c2w = size = None
        if self.cameras is not None:
            K, c2w, size, file_fps = self._read_cameras(names, count)
            fps = fps or file_fps
        if self.intrinsics is not None and c2w is not None:
            K, size = intrinsics_matrix(*self.intrinsics).expand(count, 3, 3), None
        if size is not None:
            cameras_file = self.cameras / "cameras.txt" if self.cameras.is_dir() else self.cameras
            self._require_frames_aspect(
                cameras_file, size, "gives K for images of", "K would be stretched unevenly"
            )
        depth = None
        if self.depth is not None and self.depth.suffix.lower() == ".npz":
            self._clip_depth = _clip_depth(self.depth, count)
            self._require_frames_aspect(self.depth, tuple(self._clip_depth.shape[1:]), *DEPTH_SIZE)
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
        if isinstance(handle, int):  # a frame of the depth .npz (its size checked when indexed)
            return self._clip_depth[handle]
        if handle.suffix.lower() == ".npy":
            depth = read_depth_npy(handle)
        else:
            code = read_uint16_png(handle, DEPTH_PNG)
            depth = invalid_to_zero(code.double().div(self.depth_scale).float(), code == 0)
        self._require_frames_aspect(handle, tuple(depth.shape), *DEPTH_SIZE)
        return depth

    def _read_rgb(self, sequence: Sequence, indices: list[int]) -> Tensor:
        video = sequence.rgb
        if self._decoders is None or not isinstance(video, VideoFrames):
            return super()._read_rgb(sequence, indices)
        if video.path not in self._decoders:
            self._decoders[video.path] = VideoDecoder(video.path)
        return self._decoders[video.path].frames([video.indices[i] for i in indices])

    def _require_frames_aspect(
        self, path: Path, size: tuple[int, int], gives: str, otherwise: str
    ) -> None:
        """CorruptFileError naming ``path`` unless ``size`` (H, W) has the frames' aspect ratio
        (to one pixel of rounding)."""
        (height, width), (frame_height, frame_width) = size, self._frame_size
        if not same_aspect_ratio(size, self._frame_size):
            raise CorruptFileError(
                path,
                f"{gives} {width}×{height} but the frames are {frame_width}×{frame_height} "
                f"(width×height): {otherwise} (expected the frames' aspect ratio, at any size)",
            )

    def _read_cameras(self, names: list[str] | None, count: int):
        """(K (N, 3, 3), c2w (N, 4, 4), K's (H, W) or None, fps or None) from the camera file."""
        path = self.cameras
        if path.is_dir():
            return self._read_colmap(path, names, count)
        data = read_json(path, "camera JSON (ours, or a nerfstudio transforms.json)")
        if not isinstance(data, dict):
            raise CorruptFileError(
                path, f"holds a JSON {type(data).__name__} (expected an object; see UserClip)"
            )
        try:
            if "frames" in data:
                frames = {Path(f["file_path"]).name: f for f in data["frames"]}
                entries = [{**data, **f} for f in _match(frames, names, count, path)]
                for entry in entries:  # per-frame keys override shared ones
                    _require_nerfstudio_pinhole(entry, path)
                K = torch.stack([_nerfstudio_K(f) for f in entries])
                c2w = torch.tensor([f["transform_matrix"] for f in entries], dtype=torch.float64)
                return K, opengl_to_opencv(c2w), (int(data["h"]), int(data["w"])), None
            if _nonzero(data.get("distortion")):
                raise CorruptFileError(
                    path,
                    f'gives "distortion" {data["distortion"]} (expected none or zeros: pinhole '
                    f"frames; {UNDISTORT})",
                )
            c2w = torch.tensor(data["c2w"], dtype=torch.float64)
            if "K" in data:
                K = torch.tensor(data["K"], dtype=torch.float64).expand(len(c2w), 3, 3)
            elif self.intrinsics is not None:
                K = intrinsics_matrix(*self.intrinsics).expand(len(c2w), 3, 3)
            else:
                raise KeyError("K")
            size = (int(data["height"]), int(data["width"])) if "height" in data else None
        except CorruptFileError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CorruptFileError(path, f"lacks or mangles {error} (see UserClip)") from None
        if len(c2w) != count:
            raise CorruptFileError(path, f"gives {len(c2w)} poses for {count} frames")
        fps = data.get("fps")
        if fps is not None and not _positive_number(fps):
            raise CorruptFileError(
                path, f'gives "fps" {fps!r} (expected a positive number of frames per second)'
            )
        return K, c2w, size, fps

    def _read_colmap(self, folder: Path, names: list[str] | None, count: int):
        """As ``_read_cameras``, from a COLMAP text model; its cameras must be undistorted."""
        cameras_txt, images_txt = folder / "cameras.txt", folder / "images.txt"
        cameras = read_cameras_txt(cameras_txt)
        images = {Path(i.name).name: i for i in read_images_txt(images_txt)}
        entries = _match(images, names, count, images_txt)
        for image in entries:
            if image.camera_id not in cameras:
                raise CorruptFileError(
                    images_txt,
                    f"image {image.name} uses camera {image.camera_id}, which {cameras_txt} "
                    f"does not list (it lists cameras {sorted(cameras)})",
                )
        used = {i.camera_id: cameras[i.camera_id] for i in entries}
        require_undistorted(used, cameras_txt)
        sizes = {(c.height, c.width) for c in used.values()}
        if len(sizes) != 1:
            raise CorruptFileError(
                cameras_txt, f"gives the frames several image sizes {sorted(sizes)} (expected one)"
            )
        K = torch.stack([cameras[i.camera_id].K for i in entries])
        c2w = w2c_to_c2w(torch.stack([i.w2c for i in entries]))
        return K, c2w, sizes.pop(), None


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


def _require_nerfstudio_pinhole(frame: dict, path: Path) -> None:
    """Refuse a transforms.json frame (shared keys merged in) that is not a pinhole image: a
    camera_model other than the perspective ones, or a nonzero k1…k4, p1, p2."""
    model = frame.get("camera_model")
    if model is not None and model not in NERFSTUDIO_PINHOLE:
        raise CorruptFileError(
            path,
            f"gives camera_model {model} (expected a pinhole one of {NERFSTUDIO_PINHOLE}; "
            f"{UNDISTORT})",
        )
    distortion = {k: float(frame[k]) for k in DISTORTION_KEYS if _nonzero(frame.get(k))}
    if distortion:
        coefficients = " ".join(f"{k}={v:g}" for k, v in distortion.items())
        raise CorruptFileError(
            path,
            f"gives frame {frame['file_path']} lens distortion {coefficients} (expected none or "
            f"zeros: pinhole frames; {UNDISTORT})",
        )


def _nonzero(value) -> bool:
    """Whether a JSON value (None, a number, or lists / objects of them) holds a number ≠ 0."""
    if isinstance(value, dict):
        return any(_nonzero(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonzero(v) for v in value)
    return value is not None and float(value) != 0


def _positive_number(value) -> bool:
    """Whether ``value`` is a real number (not a bool), finite and > 0."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


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
