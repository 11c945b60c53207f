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


def _open_image(path: Path, what: str) -> np.ndarray:
    from PIL import Image  # here, so that importing any4d stays light

    require_file(path, what)
    try:
        with Image.open(path) as image:
            image.load()  # decodes now, so a truncated file fails here and not later
            array = np.array(image.convert("RGB") if what == "rgb" else image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptFileError(path, f"not a readable image ({error}); expected {what}") from None
    return array


def rgb_to_tensor(array: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 → (3, H, W) float32 in [−1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 127.5 - 1.0


def read_rgb(path: Path) -> Tensor:
    """An 8-bit colour image (PNG, JPEG, …) as (3, H, W) float32 in [−1, 1]."""
    return rgb_to_tensor(_open_image(path, "rgb"))


def read_uint16_png(path: Path) -> Tensor:
    """A single-channel 16-bit PNG as (H, W) int32 holding the raw uint16 codes."""
    array = _open_image(path, "a 16-bit single-channel depth PNG")
    if array.ndim != 2 or array.dtype not in (np.uint16, np.int32, np.uint8):
        raise CorruptFileError(
            path, f"holds {array.dtype} of shape {array.shape} (expected a 16-bit 1-channel PNG)"
        )
    return torch.from_numpy(array.astype(np.int32))


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


def read_video_frames(path: Path, indices: Sequence[int]) -> Tensor:
    """Frames ``indices`` (0-based decode order, any order, repeats allowed) of a video as
    (N, 3, H, W) float32 in [−1, 1]. Decodes from the start up to the last index requested."""
    av = optional_import("av", "reading videos")

    require_file(path, "a video file")
    wanted = sorted(set(indices))
    frames: dict[int, Tensor] = {}
    number = -1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for number, frame in enumerate(container.decode(stream)):
                if number in wanted:
                    frames[number] = rgb_to_tensor(frame.to_ndarray(format="rgb24"))
                if number >= wanted[-1]:
                    break
    except (av.error.FFmpegError, OSError, IndexError) as error:
        raise CorruptFileError(path, f"not a readable video ({error})") from None
    missing = [i for i in wanted if i not in frames]
    if missing:
        raise CorruptFileError(
            path, f"has only {number + 1} frames (expected at least {missing[-1] + 1})"
        )
    return torch.stack([frames[i] for i in indices])
