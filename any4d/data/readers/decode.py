"""Decoding of the files readers meet — images, 16-bit PNGs, EXR channels, zip members, video
frames — with errors that name the file.

A missing file is a ``FileNotFoundError``; a file that exists but cannot be decoded (truncated,
wrong format) is a ``CorruptFileError``. Both name the path and what was expected there.
Pillow decodes images; PyAV (the ``av`` package, extra ``data``) decodes videos; OpenEXR (extra
``data``) decodes EXR.
"""

from __future__ import annotations

import importlib
import io
import json
import operator
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


class CorruptFileError(ValueError):
    """A file inside a data set exists but cannot be decoded (truncated, malformed, wrong kind)."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = Path(path)


def optional_import(module: str, purpose: str):
    """Import an optional dependency of the "data" extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{purpose} needs the {module!r} package: pip install 'any4d[data]'"
        ) from None


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else ``FileNotFoundError`` naming it and ``what`` it holds."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected {what})")
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else ``FileNotFoundError`` naming it and ``what`` it holds."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist (expected {what})")
    return path


def require_files(paths: Sequence[Path], what: str) -> tuple[Path, ...]:
    """``paths`` if every one is a file, else ``FileNotFoundError`` naming the first missing."""
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (expected {what})")
    return tuple(paths)


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON of ``path``; missing → FileNotFoundError, malformed → CorruptFileError."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (expected {what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"is not valid JSON ({error}); expected {what}") from None


# Pillow modes of a 16-bit grey PNG ("I" where an older Pillow widens it to 32 bits).
GREY_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def _open_image(path: Path, what: str) -> tuple[np.ndarray, str]:
    """The decoded image and its Pillow mode; ``what == "rgb"`` gives (H, W, 3) uint8 or
    uint16 (16-bit grey, replicated), any other ``what`` the array as stored."""
    from PIL import Image  # here, so that importing any4d stays light

    require_file(path, what)
    try:
        with Image.open(path) as image:
            image.load()  # decodes now, so a truncated file fails here and not later
            mode = image.mode
            if what != "rgb":
                array = np.array(image)
            elif mode in GREY_16BIT_MODES:
                array = np.repeat(_uint16(np.array(image))[..., None], 3, axis=-1)
            else:  # grey, palette, RGBA (alpha dropped), and 16-bit colour (see read_rgb)
                array = np.array(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptFileError(path, f"not a readable image ({error}); expected {what}") from None
    return array, mode


def _uint16(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint16 and (array.min() < 0 or array.max() > 65535):
        raise ValueError(f"values {array.min()}..{array.max()} (expected 16-bit codes)")
    return array.astype(np.uint16)


def rgb_to_tensor(array: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 or uint16 → (3, H, W) float32 in [−1, 1] (0 → −1, the type's max → 1)."""
    half = np.iinfo(array.dtype).max / 2  # 127.5 for uint8
    return torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1) / half - 1.0


def read_rgb(path: Path) -> Tensor:
    """An image (PNG, JPEG, …) as (3, H, W) float32 in [−1, 1] from its own bit depth: 8-bit
    and 16-bit grey (replicated to 3 channels), 8-bit RGB, RGBA (alpha dropped), palette.
    16-bit colour PNGs come at 8-bit precision: Pillow keeps only their high bytes."""
    return rgb_to_tensor(_open_image(path, "rgb")[0])


def read_uint16_png(path: Path, what: str = "a 16-bit single-channel PNG") -> Tensor:
    """A single-channel 16-bit PNG as (H, W) int32 holding the raw uint16 codes. An 8-bit PNG
    is refused: its codes are not the 16-bit codes a depth scale refers to."""
    array, mode = _open_image(path, what)
    if array.dtype == np.uint8:
        raise CorruptFileError(path, f"is an 8-bit PNG (Pillow mode {mode}); expected {what}")
    if array.ndim != 2 or array.dtype not in (np.uint16, np.int32):
        raise CorruptFileError(path, f"holds {array.dtype} of shape {array.shape}; expected {what}")
    return torch.from_numpy(array.astype(np.int32))


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, from its header (nothing decoded)."""
    from PIL import Image

    require_file(path, "an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptFileError(path, f"not a readable image ({error})") from None
    return height, width


def read_depth_npz(path: str | Path) -> Tensor:
    """The float32 array under the key ``"depth"`` of an ``.npz`` (as ``write_depth_npz`` of
    ``any4d.viz`` writes it: same shape, exact). Never unpickles."""
    path = require_file(Path(path), "a depth .npz")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive.files
            depth = archive["depth"] if "depth" in names else None
    except (OSError, ValueError, EOFError) as error:
        raise CorruptFileError(path, f"not a readable .npz ({error})") from None
    if depth is None:
        raise CorruptFileError(path, f"holds arrays {names} (expected one named 'depth')")
    return torch.from_numpy(depth.astype(np.float32, copy=False))


def read_exr_channel(source: Path | bytes, channel: str, name: str | None = None) -> Tensor:
    """Channel ``channel`` of an EXR file (a path, or its bytes with ``name`` for errors) as
    (H, W) float32."""
    OpenEXR = optional_import("OpenEXR", "reading EXR depth")

    label = name or str(source)
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
        channels = OpenEXR.File(handle).channels()
    except (RuntimeError, OSError, ValueError) as error:
        raise CorruptFileError(label, f"not a readable EXR file ({error})") from None
    if channel not in channels:
        raise CorruptFileError(
            label, f"has EXR channels {sorted(channels)} (expected a channel {channel!r})"
        )
    return torch.from_numpy(np.asarray(channels[channel].pixels, dtype=np.float32))


def zip_names(archive: Path, what: str) -> list[str]:
    """Sorted member names of a zip archive that holds ``what``; missing → FileNotFoundError,
    unreadable → CorruptFileError, both naming the archive."""
    require_file(archive, f"a zip of {what}")
    try:
        with zipfile.ZipFile(archive) as opened:
            return sorted(opened.namelist())
    except (OSError, zipfile.BadZipFile) as error:
        raise CorruptFileError(archive, f"not a readable zip ({error}); expected {what}") from None


def read_zip_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` inside ``archive``, with errors that name both."""
    try:
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    except (OSError, zipfile.BadZipFile, zlib.error, KeyError, EOFError) as error:
        raise CorruptFileError(archive, f"cannot read {member} ({error})") from None


def video_info(path: Path) -> tuple[int, float]:
    """(number of frames, frames per second) of a video file, decoding it if the container
    does not state the frame count."""
    av = optional_import("av", "reading videos")

    require_file(path, "a video file")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            count = stream.frames or sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, OSError, IndexError) as error:
        raise CorruptFileError(path, f"not a readable video ({error})") from None
    if count <= 0 or fps <= 0:
        raise CorruptFileError(path, f"has {count} frames at {fps} fps (expected a video)")
    return count, fps


def video_size(path: Path) -> tuple[int, int]:
    """(H, W) of a video's frames, from the stream header (or, where the header does not say,
    from the first frame decoded)."""
    av = optional_import("av", "reading videos")

    require_file(path, "a video file")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            height, width = stream.codec_context.height, stream.codec_context.width
            if height <= 0 or width <= 0:
                frame = next(container.decode(stream))
                height, width = frame.height, frame.width
    except (av.error.FFmpegError, OSError, IndexError, StopIteration) as error:
        raise CorruptFileError(path, f"not a readable video ({error or 'no frames'})") from None
    return height, width


def read_video_frames(path: Path, indices: Sequence[int]) -> Tensor:
    """Frames ``indices`` (0-based decode order, any order, repeats allowed) of a video as
    (N, 3, H, W) float32 in [−1, 1]. Decodes from the start up to the last index requested;
    to read a long video in windows, use one ``VideoDecoder``."""
    with VideoDecoder(path) as video:
        return video.frames(indices)


class VideoDecoder:
    """Frames of one video, decoded forward through one open container, each frame once::

        with VideoDecoder("walk.mp4") as video:
            first = video.frames([0, 1, 2])   # (3, 3, H, W)
            second = video.frames([3, 4])     # continues at frame 3

    Reading a long video window by window is linear while the windows move forward: each
    call's frames must not come before the last frame decoded (that one is kept, so it may be
    asked again). An earlier frame reopens the video and decodes from the start again —
    correct, only slower.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = require_file(Path(path), "a video file")
        self._container = None
        self._decoded = None  # iterator over the stream's decoded frames
        self._last = -1  # number of the last frame decoded
        self._last_frame: Tensor | None = None  # (3, H, W) of that frame, if it was asked for

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._decoded = None  # first: the decode generator must end before its container
        if self._container is not None:
            self._container.close()
        self._container = self._last_frame = None
        self._last = -1

    def frames(self, indices: Sequence[int]) -> Tensor:
        """Frames ``indices`` (0-based decode order; any order and repeats within one call) as
        (N, 3, H, W) float32 in [−1, 1]."""
        indices = [operator.index(i) for i in indices]
        if not indices or min(indices) < 0:
            raise ValueError(f"video frame indices are {indices} (expected integers ≥ 0)")
        wanted = set(indices)
        first, last = min(wanted), max(wanted)
        if first < self._last or (first == self._last and self._last_frame is None):
            self.close()  # a frame already passed: start over
        frames = {self._last: self._last_frame} if first == self._last else {}
        av = optional_import("av", "reading videos")
        try:
            if self._container is None:
                self._open(av)
            while self._last < last:
                frame = next(self._decoded, None)
                if frame is None:
                    break
                self._last += 1
                if self._last in wanted:
                    frames[self._last] = rgb_to_tensor(frame.to_ndarray(format="rgb24"))
        except (av.error.FFmpegError, OSError, IndexError) as error:
            self.close()
            raise CorruptFileError(self.path, f"not a readable video ({error})") from None
        self._last_frame = frames.get(self._last)
        if last not in frames:
            raise CorruptFileError(
                self.path, f"has only {self._last + 1} frames (expected at least {last + 1})"
            )
        return torch.stack([frames[i] for i in indices])

    def _open(self, av) -> None:
        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._decoded = iter(self._container.decode(stream))
