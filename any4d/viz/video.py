"""Clips as videos people watch: RGB | depth | ray directions | ray moments, frame by frame.

``save_video`` writes frames as an H.264 ``.mp4`` (PyAV) or an animated ``.gif`` (Pillow);
``scene_frames`` / ``scene_video`` lay out one clip's streams side by side; ``comparison_frames``
/ ``comparison_video`` stack several clips of one scene (input vs completed, prediction vs
truth) with shared colour scales, so equal colours mean equal values across rows (DESIGN §6).

PyAV and Pillow are imported only by the functions that write files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry.rays import plucker_rays
from any4d.geometry.vectors import norm
from any4d.io import atomic_path
from any4d.viz.colormap import colorize_depth, colorize_rays
from any4d.viz.colormap import depth_range as robust_depth_range
from any4d.viz.grid import tile_grid, to_uint8

VIDEO_SUFFIXES = (".mp4", ".gif")
# x264 constant-rate factor: 18 is the usual "visually lossless" setting (the default is 23);
# these clips are short and small, so the extra size (~1.7× here) is cheap. The largest errors
# sit at sharp colour edges and come from yuv420p's half-resolution colour, not from the CRF.
_CRF = 18
# Frame rates are stored as fractions; 1001 keeps NTSC rates (30000/1001) exact.
_MAX_FPS_DENOMINATOR = 1001
_LABEL_HEIGHT = 14  # pixels of the caption band above each row of a comparison


# ---------------------------------------------------------------------------- writing frames


def _check_frames(frames: Tensor) -> Tensor:
    """(T, 3, H, W) float in ``[0, 1]`` or uint8 → (T, H, W, 3) uint8 on the CPU."""
    if not isinstance(frames, Tensor):
        raise ValueError(f"frames must be a tensor (T, 3, H, W), got {type(frames).__name__}")
    if frames.dim() != 4 or frames.shape[1] != 3 or min(frames.shape) == 0:
        raise ValueError(
            f"frames has shape {tuple(frames.shape)} (expected (T, 3, H, W) with T, H, W ≥ 1)"
        )
    t, _, h, w = frames.shape
    # One (3, T·H, W) image, so to_uint8 checks range and dtype once for the whole clip.
    try:
        pixels = to_uint8(frames.detach().transpose(0, 1).reshape(3, t * h, w))
    except ValueError as error:
        raise ValueError(f"frames: {error}") from None
    return pixels.reshape(3, t, h, w).permute(1, 2, 3, 0).contiguous()  # (T, H, W, 3)


def _check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf"):
        raise ValueError(f"fps is {fps!r} (expected a positive finite number)")
    return float(fps)


def _pad_to_even(pixels: Tensor) -> Tensor:
    """(T, H, W, 3) → (T, H', W', 3) with H', W' even, repeating the last row / column.

    yuv420p stores colour at half resolution in both directions, so H.264 needs even sizes;
    repeating the edge (instead of a black or white line) keeps the picture's look.
    """
    if pixels.shape[1] % 2:
        pixels = torch.cat([pixels, pixels[:, -1:]], dim=1)
    if pixels.shape[2] % 2:
        pixels = torch.cat([pixels, pixels[:, :, -1:]], dim=2)
    return pixels


def _write_mp4(frames: Iterable[Tensor], path: str, fps: float) -> int:
    """Encode (H, W, 3) uint8 frames one at a time (memory does not grow with the clip); every
    frame must have the first one's size. Returns the number of frames."""
    try:
        import av
    except ImportError as error:
        raise ImportError(
            'writing MP4 videos needs PyAV: pip install "any4d[viz]" (or pip install av)'
        ) from error
    codec = "libx264" if "libx264" in av.codecs_available else "h264"
    rate = Fraction(fps).limit_denominator(_MAX_FPS_DENOMINATOR)
    count, size = 0, None
    with av.open(path, mode="w", format="mp4") as container:
        options = {"crf": str(_CRF)} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=rate, options=options)
        for frame in frames:
            frame = _pad_to_even(frame[None])[0]
            if size is None:
                size = tuple(frame.shape)
                stream.height, stream.width = size[:2]
                stream.pix_fmt = "yuv420p"
            elif tuple(frame.shape) != size:
                raise ValueError(
                    f"frame {count} is {tuple(frame.shape)} (expected the first frame's {size})"
                )
            image = av.VideoFrame.from_ndarray(frame.numpy(), format="rgb24")
            container.mux(stream.encode(image))
            count += 1
        if count == 0:
            raise ValueError("frames is empty (expected at least one frame)")
        container.mux(stream.encode())  # flush the encoder's delayed frames
    return count


def _write_gif(pixels: Tensor, path: str, fps: float) -> None:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError('writing GIFs needs Pillow: pip install "any4d[viz]"') from error
    images = [Image.fromarray(frame) for frame in pixels.numpy()]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=1000 / fps,  # milliseconds; GIF stores hundredths of a second
        loop=0,
    )


def save_video(path: str | os.PathLike, frames: Tensor, fps: float = 10) -> Path:
    """Write frames as a video, atomically (a temporary file beside ``path``, then a rename).

    frames: (T, 3, H, W) float in ``[0, 1]`` or uint8. fps: frames per second.
    The suffix of ``path`` picks the format:

    * ``.mp4``: H.264 (libx264, CRF 18) in yuv420p through PyAV. yuv420p needs even sizes, so an
      odd H (W) gets one copy of the last row (column) appended: the video is then H + 1 (W + 1).
    * ``.gif``: Pillow, looping, one adaptive 256-colour palette per frame. GIF delays are
      hundredths of a second, so the rate is approximate (30 fps plays at 1/0.03 s); Pillow
      merges consecutive identical frames into one longer frame.

    Parent folders are created. Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(
            f"path {path} has suffix {path.suffix!r} (expected one of {VIDEO_SUFFIXES})"
        )
    fps = _check_fps(fps)
    pixels = _check_frames(frames)
    with atomic_path(path, suffix=suffix) as temporary:
        if suffix == ".mp4":
            _write_mp4(iter(pixels), str(temporary), fps)
        else:
            _write_gif(pixels, str(temporary), fps)
    return path


def stream_video(path: str | os.PathLike, frames: Iterable[Tensor], fps: float) -> int:
    """Write an ``.mp4`` from frames produced one at a time, atomically, as ``save_video``.

    frames: an iterable of (3, H, W) uint8 (or float in ``[0, 1]``) images of one size — a long
    clip never has to be in memory at once. Returns the number of frames written.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"path {path} has suffix {path.suffix!r} (expected '.mp4')")
    fps = _check_fps(fps)
    pixels = (_check_frames(frame[None])[0] for frame in frames)
    with atomic_path(path, suffix=".mp4") as temporary:
        return _write_mp4(pixels, str(temporary), fps)


# ---------------------------------------------------------------------------- one clip


def _clip_depth_range(scene: Scene) -> tuple[float, float] | None:
    """Robust ``(near, far)`` of the clip's depth (``None``: no depth, or none valid)."""
    return None if scene.depth is None else robust_depth_range(scene.depth)


def _panels(
    scene: Scene,
    streams: tuple[str, ...],
    bounds: tuple[float, float] | None,
    moment_scale: float | None,
    cmap: str,
    separator: int,
) -> tuple[Tensor, float | None]:
    """The ``streams`` of every frame side by side; absent ones (or all-invalid depth) black.

    moment_scale: the norm that maps to full colour; ``None``: the clip's own largest norm.
    Returns (T, H, W', 3) uint8 on the CPU and the moment scale used (``None`` if no moments).
    """
    cameras = None if scene.cameras is None else scene.cameras.relative_to_first()
    draw_rays = cameras is not None and "rays" in streams
    black = torch.zeros(3, scene.height, scene.width, dtype=torch.uint8)
    tiles, moments, largest = [], [], 0.0
    for t in range(scene.num_frames):
        tile = {"rgb": to_uint8(((scene.rgb[t] + 1) / 2).clamp(0, 1))}
        if scene.depth is not None and bounds is not None:
            near, far = bounds
            tile["depth"] = to_uint8(colorize_depth(scene.depth[t], cmap=cmap, near=near, far=far))
        if draw_rays:
            ray_map = plucker_rays(cameras[t], scene.height, scene.width)  # (6, H, W)
            tile["rays"] = to_uint8(colorize_rays(ray_map))
            largest = max(largest, float(norm(ray_map[3:], dim=0).amax()))
            # Kept until the clip's scale is known; half precision is ample for 8-bit colour.
            moments.append(ray_map[3:].to(torch.float16))
        tiles.append(tile)
    if draw_rays and moment_scale is None:
        moment_scale = largest
    frames = []
    for t, tile in enumerate(tiles):
        if draw_rays:
            # colorize_moments with one scale for the clip rather than one per frame, so the
            # colours do not flicker; zero scale (a static camera) is mid-grey, as there.
            m = moments[t].float() / moment_scale if moment_scale > 0 else moments[t].float() * 0
            tile["moments"] = to_uint8(((m + 1) / 2).clamp(0, 1))
        row = torch.stack([tile.get(name, black) for name in streams])  # (C, 3, H, W)
        frames.append(tile_grid([row], separator=separator, fill=255).permute(1, 2, 0))
    return torch.stack(frames), (moment_scale if draw_rays else None)


def _streams(scene: Scene, rays: bool) -> tuple[str, ...]:
    names = ["rgb"]
    if scene.depth is not None:
        names.append("depth")
    if rays and scene.cameras is not None:
        names += ["rays", "moments"]
    return tuple(names)


def scene_frames(
    scene: Scene,
    depth_range: tuple[float, float] | None = None,
    rays: bool = True,
    *,
    cmap: str = "turbo",
    separator: int = 2,
) -> Tensor:
    """Every frame of a clip as RGB | depth | ray directions | ray moments, side by side.

    Panels, left to right: RGB; depth coloured by inverse depth (if ``scene.depth``); ray
    directions and ray moments (if ``scene.cameras`` and ``rays``), built as ``clip_grid``
    builds them (cameras relative to the first, ``plucker_rays`` at the pixel centres).
    depth_range: ``(near, far)`` metres for the depth colours; default: the robust range of the
    whole clip, so one depth has one colour in every frame. Moments are divided by their
    largest norm over the whole clip. Panels are separated by ``separator`` white pixels.

    Returns (T, 3, H, C·W + (C−1)·separator) uint8 on the CPU, C the number of panels.
    """
    if not isinstance(scene, Scene):
        raise ValueError(f"scene must be an any4d Scene, got {type(scene).__name__}")
    bounds = _clip_depth_range(scene) if depth_range is None else _check_range(depth_range)
    pixels, _ = _panels(scene, _streams(scene, rays), bounds, None, cmap, separator)
    return pixels.permute(0, 3, 1, 2).contiguous()


def scene_video(
    scene: Scene,
    path: str | os.PathLike,
    fps: float | None = None,
    depth_range: tuple[float, float] | None = None,
    **kwargs,
) -> Path:
    """``scene_frames(scene, depth_range, **kwargs)`` written by ``save_video`` at ``path``.

    fps: default ``scene.fps``. Returns the path.
    """
    frames = scene_frames(scene, depth_range, **kwargs)
    return save_video(path, frames, scene.fps if fps is None else fps)


# ---------------------------------------------------------------------------- several clips


def _check_range(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        near, far = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"depth_range is {bounds!r} (expected (near, far) in metres)") from None
    if not 0 < near <= far < float("inf"):
        raise ValueError(f"depth_range is {bounds!r} (expected 0 < near ≤ far < inf metres)")
    return near, far


def _label_band(text: str, width: int) -> Tensor:
    """(_LABEL_HEIGHT, width, 3) uint8: ``text`` in black on white, left-aligned."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as error:
        raise ImportError('labelling rows needs Pillow: pip install "any4d[viz]"') from error
    band = Image.new("RGB", (width, _LABEL_HEIGHT), (255, 255, 255))
    ImageDraw.Draw(band).text((2, 1), text, fill=(0, 0, 0))
    return torch.from_numpy(np.array(band))


def comparison_frames(
    rows: Mapping[str, Scene],
    depth_range: tuple[float, float] | None = None,
    rays: bool = True,
    *,
    labels: bool = True,
    cmap: str = "turbo",
    separator: int = 2,
) -> Tensor:
    """Clips of one scene stacked top to bottom, e.g. ``{"input": x, "completed": y}``.

    rows: name → Scene, all with the same number of frames and image size, shown in order.
    Every row has the same columns, RGB | depth | ray directions | ray moments (those that any
    row provides); a stream a row lacks is a black panel, so columns line up. Colour scales are
    shared: depth colours use ``depth_range`` (default: the robust range of the first row that
    has depth) and moments the largest norm of the first row that has cameras — put the
    reference first. With ``labels`` each row has its name written in a white band above it.

    Returns (T, 3, H', W') uint8 on the CPU.
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty mapping of name → Scene")
    scenes = list(rows.values())
    for name, scene in rows.items():
        if not isinstance(scene, Scene):
            raise ValueError(f"rows[{name!r}] is a {type(scene).__name__} (expected a Scene)")
    first = scenes[0]
    for name, scene in rows.items():
        if scene.rgb.shape != first.rgb.shape:
            raise ValueError(
                f"rows[{name!r}] has rgb {tuple(scene.rgb.shape)} but the first row has "
                f"{tuple(first.rgb.shape)} (expected the same frames and size)"
            )
    streams = tuple(
        name
        for name in ("rgb", "depth", "rays", "moments")
        if any(name in _streams(scene, rays) for scene in scenes)
    )
    if depth_range is not None:
        bounds = _check_range(depth_range)
    else:
        bounds = next((_clip_depth_range(s) for s in scenes if s.depth is not None), None)
    # The first row with cameras sets the moment scale, so it is drawn first.
    order = sorted(rows, key=lambda name: rows[name].cameras is None)
    blocks, moment_scale = {}, None
    for name in order:
        blocks[name], scale = _panels(rows[name], streams, bounds, moment_scale, cmap, separator)
        moment_scale = scale if moment_scale is None else moment_scale
    if labels:
        for name, block in blocks.items():
            band = _label_band(str(name), block.shape[2]).expand(block.shape[0], -1, -1, -1)
            blocks[name] = torch.cat([band, block], dim=1)
    blocks = [blocks[name] for name in rows]  # (T, H', W', 3) each, in the rows' order
    gap = blocks[0].new_full((blocks[0].shape[0], separator, blocks[0].shape[2], 3), 255)
    stacked = [part for block in blocks for part in (block, gap)][:-1]
    return torch.cat(stacked, dim=1).permute(0, 3, 1, 2).contiguous()


def comparison_video(
    rows: Mapping[str, Scene],
    path: str | os.PathLike,
    fps: float | None = None,
    depth_range: tuple[float, float] | None = None,
    **kwargs,
) -> Path:
    """``comparison_frames(rows, depth_range, **kwargs)`` written by ``save_video`` at ``path``.

    fps: default the first row's ``fps``. Returns the path.
    """
    frames = comparison_frames(rows, depth_range, **kwargs)
    if fps is None:
        fps = next(iter(rows.values())).fps
    return save_video(path, frames, fps)
