"""Figures of a completion a researcher can read and trust (DESIGN §6).

A ``Comparison`` holds a true clip, the completion *as it was scored* and one set of colour
scales; every picture of it — the PNG grid, the MP4 and the GIF — is drawn from that one object,
so equal colours mean equal values in all of them:

* the predicted depth is shown after the alignment the depth metric applies (Geo4D's L1 scale +
  shift by default, ``any4d.eval.depth_metrics``), and the error row is ``|aligned − true| /
  true``, the per-pixel quantity AbsRel averages;
* truth and prediction share one depth range (robust, over both), with a colour bar in metres
  (or "relative" when the input carried no scale);
* ray directions and moments are built from cameras relative to the first one, the prediction's
  moved onto the truth's by the Sim(3) of their centres (what ATE aligns), so their moments are
  in the truth's units and share one scale.

A single completed scene (``any4d complete``, no truth) gets the same layout without the truth
and error rows (``scene_figure``, ``scene_video_frames``). Tiles are upscaled by an integer
factor (nearest neighbour) to a legible size, rows are labelled, columns carry frame numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry.cameras import Cameras, rigid_inverse
from any4d.geometry.rays import plucker_rays
from any4d.geometry.vectors import norm
from any4d.viz.colormap import (
    colorize_depth,
    colorize_moments,
    colorize_rays,
    colormap_table,
    lookup,
)
from any4d.viz.colormap import depth_range as robust_depth_range
from any4d.viz.frustums import align_cameras
from any4d.viz.layout import (
    Figure,
    GridRow,
    depth_bar,
    labelled_grid,
    linear_bar,
    stack,
    text_image,
    upscale_factor,
)

STREAM_LABELS = {"rgb": "RGB", "depth": "depth", "rays": "ray direction", "moments": "ray moment"}
# Error colours saturate here: half the true depth (AbsRel 0.5) and half the RGB range.
DEPTH_ERROR_RANGE = 0.5
RGB_ERROR_RANGE = 0.5
# Errors take a colormap whose low end is not black, because black means "no valid depth".
ERROR_CMAP = "viridis"
# Videos of short clips are slowed until they last this long (a 5-frame clip at 25 fps would
# be over in 0.2 s); GIFs loop, MP4 players usually can.
MIN_VIDEO_SECONDS = 4.0
# Frames larger than this (long side, pixels) are shown scaled down: four streams of a 640-wide
# video side by side would not fit a screen.
DISPLAY_SIDE = 320


@dataclass(frozen=True)
class Scales:
    """Colour scales shared by every picture of one completion.

    depth: ``(near, far)`` z-depths in scene units for ``colorize_depth`` (None: no valid depth).
    unit: the depth's unit as the colour bar names it: ``"m"`` or ``"relative"``.
    moments: the ray-moment norm at full colour (None: no cameras). cmap: depth's colormap.
    """

    depth: tuple[float, float] | None
    unit: str = "m"
    moments: float | None = None
    cmap: str = "turbo"


def _relative_rays(cameras, height: int, width: int, origin: Tensor | None = None) -> Tensor:
    """(T, 6, H, W) Plücker rays of cameras relative to the first (or to the camera-to-world
    ``origin`` (4, 4), the first camera of the clip these frames come from), as the model sees
    them."""
    if origin is None:
        return plucker_rays(cameras.relative_to_first(), height, width)
    inverse = rigid_inverse(origin.to(cameras.c2w))
    return plucker_rays(Cameras.unchecked(cameras.K, inverse @ cameras.c2w), height, width)


def scales_of(scenes: Sequence[Scene], unit: str = "m", cmap: str = "turbo") -> Scales:
    """One set of colour scales for ``scenes``: the robust depth range of all their valid depth
    together, and the largest ray-moment norm of any of them (so nothing saturates)."""
    if unit not in ("m", "relative"):
        raise ValueError(f"unit is {unit!r} (expected 'm' or 'relative')")
    depths = [s.depth.flatten()[None, None] for s in scenes if s.depth is not None]
    bounds = robust_depth_range(torch.cat(depths, dim=-1).float()) if depths else None
    moments = None
    for scene in scenes:
        if scene.cameras is not None:
            rays = _relative_rays(scene.cameras, scene.height, scene.width)
            largest = float(norm(rays[:, 3:], dim=1).amax())
            moments = largest if moments is None else max(moments, largest)
    return Scales(bounds, unit, moments, cmap)


@dataclass(frozen=True, eq=False)
class Comparison:
    """A true clip and its completion as scored, with the colour scales of every picture.

    truth: the true Scene. prediction: the completion as shown — depth aligned to the truth by
    ``depth_fit``, cameras moved onto the truth's by the Sim(3) of their centres. depth_fit:
    ``(scale, shift)`` applied to the predicted depth (None: depth was observed, not
    generated). given: the RGB frames the task observed (copied from the input).
    cameras_aligned: whether the predicted cameras were moved (they were generated).
    """

    truth: Scene
    prediction: Scene
    scales: Scales
    depth_fit: tuple[float, float] | None = None
    given: tuple[int, ...] = ()
    cameras_aligned: bool = False


def compare(
    truth: Scene,
    prediction: Scene,
    *,
    depth_generated: bool = True,
    cameras_generated: bool = True,
    given: Sequence[int] = (),
    protocol: str = "geo4d",
    unit: str = "m",
) -> Comparison:
    """The Comparison of a completion with the truth, aligned as the metrics align it.

    truth, prediction: Scenes of the same T, H, W (truth with depth and cameras to compare
    those). depth_generated: align the predicted depth with ``protocol``'s fit
    (``any4d.eval.depth_metrics``; "none" shows it as it came back). cameras_generated: move the
    predicted cameras onto the truth's (Sim(3) of the centres, as ATE). given: RGB frames the
    task observed. unit: of the truth's depth, for the colour bar.
    """
    from any4d.eval.depth_metrics import depth_metrics

    for name, scene in (("truth", truth), ("prediction", prediction)):
        if not isinstance(scene, Scene):
            raise ValueError(f"{name} must be a Scene, got {type(scene).__name__}")
    if prediction.rgb.shape != truth.rgb.shape:
        raise ValueError(
            f"prediction has rgb {tuple(prediction.rgb.shape)} but truth has "
            f"{tuple(truth.rgb.shape)} (expected the same T, H, W)"
        )
    depth, fit = prediction.depth, None
    if depth_generated and depth is not None and truth.depth is not None:
        gt = truth.depth[:, 0]
        metrics = depth_metrics(depth[:, 0], gt, valid=gt > 0, protocol=protocol)
        fit = (float(metrics["scale"]), float(metrics["shift"]))
        if protocol == "depthcrafter":  # the fit is in disparity
            disparity = fit[0] * torch.where(depth > 0, 1 / depth, 0.0) + fit[1]
            aligned = torch.where(disparity > 0, 1 / disparity, 0.0)
        else:
            aligned = fit[0] * depth + fit[1]
        depth = torch.where(aligned > 0, aligned, torch.zeros_like(aligned))
    cameras = prediction.cameras
    aligned = cameras_generated and cameras is not None and truth.cameras is not None
    if aligned:
        cameras = align_cameras(cameras, truth.cameras)
    shown = Scene(prediction.rgb, depth, cameras, prediction.text, prediction.fps)
    scales = scales_of([truth, shown], unit=unit)
    frames = tuple(sorted({int(i) % truth.num_frames for i in given}))
    return Comparison(truth, shown, scales, fit, frames, aligned)


def display_size(height: int, width: int, side: int = DISPLAY_SIDE) -> tuple[int, int]:
    """``(height, width)`` scaled down (never up) to a long side of ``side`` pixels, the aspect
    ratio kept (rounded, ≥ 1 pixel)."""
    factor = min(1.0, side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def for_display(scene: Scene, side: int = DISPLAY_SIDE) -> Scene:
    """``scene`` at ``display_size``: RGB area-averaged (antialiased), depth by nearest
    neighbour (so invalid pixels never blend into valid ones), intrinsics rescaled."""
    height, width = display_size(scene.height, scene.width, side)
    if (height, width) == (scene.height, scene.width):
        return scene
    rgb = F.interpolate(
        scene.rgb.float(), size=(height, width), mode="bilinear", antialias=True
    ).clamp(-1, 1)
    depth = None
    if scene.depth is not None:
        depth = F.interpolate(scene.depth.float(), size=(height, width), mode="nearest-exact")
    cameras = None
    if scene.cameras is not None:
        cameras = scene.cameras.resized(width / scene.width, height / scene.height)
    return Scene(rgb, depth, cameras, scene.text, scene.fps)


# ---------------------------------------------------------------------------------- tiles


def _uint8(image: Tensor) -> Tensor:
    return (image.float().clamp(0, 1) * 255).round().to(torch.uint8)


def stream_tiles(
    scene: Scene, scales: Scales, index: Sequence[int], origin: Tensor | None = None
) -> dict[str, Tensor]:
    """The frames ``index`` of each of the scene's streams, coloured on ``scales``.

    origin: camera-to-world (4, 4) the rays are relative to (default the scene's first camera;
    give the clip's first camera when ``scene`` holds some frames of a longer clip).
    Returns stream → (C, 3, H, W) uint8: ``"rgb"``; ``"depth"`` (inverse-depth colours, black =
    invalid) when the scene has depth; ``"rays"`` and ``"moments"`` when it has cameras.
    """
    index = torch.as_tensor(list(index), dtype=torch.long)
    tiles = {"rgb": _uint8((scene.rgb[index] + 1) / 2)}
    if scene.depth is not None:
        if scales.depth is None:
            tiles["depth"] = torch.zeros_like(tiles["rgb"])
        else:
            near, far = scales.depth
            coloured = colorize_depth(
                scene.depth[index].float(), cmap=scales.cmap, near=near, far=far
            )
            tiles["depth"] = _uint8(coloured)
    if scene.cameras is not None:
        if origin is None:  # relative to the scene's first camera, not the first one shown
            rays = _relative_rays(scene.cameras, scene.height, scene.width)[index]
        else:
            rays = _relative_rays(scene.cameras[index], scene.height, scene.width, origin)
        tiles["rays"] = _uint8(colorize_rays(rays))
        tiles["moments"] = _uint8(colorize_moments(rays, scale=scales.moments or 0.0))
    return tiles


def error_streams(comparison: Comparison) -> tuple[str, ...]:
    """The error rows a comparison has: ``"rgb"`` when some RGB frame was generated, ``"depth"``
    when the depth was (and aligned)."""
    rgb = len(comparison.given) < comparison.truth.num_frames
    return ("rgb",) * rgb + ("depth",) * (comparison.depth_fit is not None)


def error_tiles(comparison: Comparison, index: Sequence[int]) -> dict[str, Tensor]:
    """Per-pixel errors of the frames ``index`` as colours (``ERROR_CMAP``).

    ``"depth"``: ``|aligned − true| / true`` on ``[0, DEPTH_ERROR_RANGE]``, black where the truth
    has no valid depth (only when depth was generated); ``"rgb"``: the mean over channels of
    ``|predicted − true|`` in ``[0, 1]`` units on ``[0, RGB_ERROR_RANGE]`` (only when some RGB
    frame was generated).
    Returns name → (C, 3, H, W) uint8.
    """
    truth, shown = comparison.truth, comparison.prediction
    index = torch.as_tensor(list(index), dtype=torch.long)
    table = colormap_table(ERROR_CMAP, dtype=torch.float32, device="cpu")

    def colour(error: Tensor, top: float, valid: Tensor | None = None) -> Tensor:
        picked = lookup(error.float() / top, table)  # (C, 3, H, W)
        if valid is not None:
            picked = picked * valid[:, None].float()
        return _uint8(picked)

    tiles, streams = {}, error_streams(comparison)
    if "rgb" in streams:
        rgb_error = ((shown.rgb[index] - truth.rgb[index]).abs() / 2).mean(1)  # (C, H, W)
        tiles["rgb"] = colour(rgb_error, RGB_ERROR_RANGE)
    if "depth" in streams:
        gt = truth.depth[index, 0]
        valid = gt > 0
        safe = torch.where(valid, gt, torch.ones_like(gt))
        relative = torch.where(valid, (shown.depth[index, 0] - gt).abs() / safe, 0.0)
        tiles["depth"] = colour(relative, DEPTH_ERROR_RANGE, valid)
    return tiles


def colour_bars(scales: Scales, errors: Sequence[str] = (), *, height: int = 240) -> list[Tensor]:
    """The colour bars of ``scales`` (depth) and of the named error rows (``"depth"``,
    ``"rgb"``), each ``height`` pixels of gradient, as (3, h, w) uint8."""
    bars = []
    if scales.depth is not None:
        table = colormap_table(scales.cmap, dtype=torch.float32, device="cpu")
        bars.append(depth_bar(*scales.depth, table, scales.unit, height=height))
    errors_table = colormap_table(ERROR_CMAP, dtype=torch.float32, device="cpu")
    if "depth" in errors:
        bars.append(
            linear_bar(
                0.0,
                DEPTH_ERROR_RANGE,
                errors_table,
                "|Δdepth| / depth",
                percent=True,
                height=height,
            )
        )
    if "rgb" in errors:
        bars.append(linear_bar(0.0, RGB_ERROR_RANGE, errors_table, "RGB |error|", height=height))
    return bars


def _alignment_text(comparison: Comparison) -> str:
    """What was done to the prediction before it is shown, e.g. "depth aligned ×0.95 + 0.64
    (as scored); cameras Sim(3)-aligned"."""
    if comparison.depth_fit is None:
        depth = "depth as given"
    else:
        scale, shift = comparison.depth_fit
        sign = "+" if shift >= 0 else "−"
        depth = f"depth aligned ×{scale:.3g} {sign} {abs(shift):.3g} (as scored)"
    cameras = "cameras Sim(3)-aligned" if comparison.cameras_aligned else "cameras as given"
    return f"{depth}; {cameras}"


def _frame_names(count: int, frame_numbers: Sequence[int] | None) -> list[int]:
    if frame_numbers is None:
        return list(range(count))
    if len(frame_numbers) != count:
        raise ValueError(
            f"frame_numbers has {len(frame_numbers)} entries (expected one per frame: {count})"
        )
    return [int(n) for n in frame_numbers]


# ------------------------------------------------------------------------------- pictures


def _stream_rows(tiles: dict[str, Tensor], prefix: str, count: int) -> list[GridRow]:
    return [
        GridRow(STREAM_LABELS[name], [tiles[name][c] for c in range(count)], f"{prefix}/{name}")
        for name in STREAM_LABELS
        if name in tiles
    ]


def comparison_figure(
    comparison: Comparison,
    max_frames: int = 8,
    *,
    frame_numbers: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """One picture of a completion: truth, prediction and error rows over evenly spaced frames.

    Rows: "truth" (RGB, depth, ray direction, ray moment), "prediction" (the same, its heading
    naming the depth alignment), "error" (depth ``|Δ| / true`` when depth was generated, RGB);
    columns: up to ``max_frames`` frames with the first and last, headed by their numbers
    (``frame_numbers``: the clip's frame numbers, default 0 … T − 1), "given" marking observed
    RGB frames. Colour bars on the right. Box keys: ``"truth/depth/c"``, ``"prediction/…/c"``,
    ``"error/depth/c"``, ``"error/rgb/c"``.
    """
    from any4d.viz.grid import frame_indices

    truth = comparison.truth
    names = _frame_names(truth.num_frames, frame_numbers)
    index = frame_indices(truth.num_frames, max_frames).tolist()
    columns = [f"frame {names[i]}" + (" · given" if i in comparison.given else "") for i in index]
    errors = error_tiles(comparison, index)
    rows = [GridRow("truth")]
    rows += _stream_rows(stream_tiles(truth, comparison.scales, index), "truth", len(index))
    rows.append(GridRow(f"prediction ({_alignment_text(comparison)})"))
    shown = stream_tiles(comparison.prediction, comparison.scales, index)
    rows += _stream_rows(shown, "prediction", len(index))
    if errors:
        rows.append(GridRow("error"))
    for name, label in (("depth", "|Δdepth| / depth"), ("rgb", "RGB |error|")):
        if name in errors:
            rows.append(GridRow(label, list(errors[name]), f"error/{name}"))
    bars = colour_bars(comparison.scales, tuple(errors))
    return labelled_grid(rows, columns, title=title, side=bars)


def scene_figure(
    scene: Scene,
    scales: Scales | None = None,
    max_frames: int = 8,
    *,
    frame_numbers: Sequence[int] | None = None,
    title: str | None = None,
    origin: Tensor | None = None,
) -> Figure:
    """One picture of a scene: a row per stream, up to ``max_frames`` frames as columns.

    scales: default ``scales_of([scene])`` (depth in metres). frame_numbers: the frames' numbers
    in the video (column headers). origin: as ``stream_tiles``. Box keys:
    ``"scene/<stream>/c"``.
    """
    scales = scales_of([scene]) if scales is None else scales
    from any4d.viz.grid import frame_indices

    names = _frame_names(scene.num_frames, frame_numbers)
    index = frame_indices(scene.num_frames, max_frames).tolist()
    rows = _stream_rows(stream_tiles(scene, scales, index, origin), "scene", len(index))
    columns = [f"frame {names[i]}" for i in index]
    return labelled_grid(rows, columns, title=title, side=colour_bars(scales))


# --------------------------------------------------------------------------------- videos


def watchable_fps(num_frames: int, fps: float, min_seconds: float = MIN_VIDEO_SECONDS) -> float:
    """``fps``, slowed (never sped up) so that ``num_frames`` last at least ``min_seconds``."""
    if num_frames < 1 or not 0 < fps < float("inf"):
        raise ValueError(f"num_frames {num_frames}, fps {fps} (expected ≥ 1 and positive)")
    return min(float(fps), num_frames / min_seconds)


def _frame_title(title: str | None, number: int, time: float, given: bool) -> str:
    parts = [title] if title else []
    parts.append(f"frame {number}" + (" (given)" if given else ""))
    parts.append(f"t = {time:.2f} s")
    return " · ".join(parts)


def _times(count: int, fps: float, times: Sequence[float] | None) -> list[float]:
    if times is None:
        return [t / fps for t in range(count)]
    if len(times) != count:
        raise ValueError(f"times has {len(times)} entries (expected one per frame: {count})")
    return [float(t) for t in times]


def comparison_video_frames(
    comparison: Comparison,
    *,
    frame_numbers: Sequence[int] | None = None,
    title: str | None = None,
) -> Iterator[Tensor]:
    """The comparison frame by frame, for a video: rows truth / prediction / error, columns
    RGB | depth | ray direction | ray moment, the frame number and time in the title, the same
    colour scales and bars as ``comparison_figure``. Yields (3, H, W) uint8, all one size; box
    keys ``"truth/<column>"`` etc. are those of ``comparison_video_figure``."""
    errors = error_streams(comparison)
    bars = colour_bars(
        comparison.scales, errors, height=bar_height(comparison.truth.rgb.shape[-2:], 2)
    )
    for t in range(comparison.truth.num_frames):
        figure = comparison_video_figure(
            comparison, t, frame_numbers=frame_numbers, title=title, bars=bars
        )
        yield figure.image


def comparison_video_figure(
    comparison: Comparison,
    t: int,
    *,
    frame_numbers: Sequence[int] | None = None,
    title: str | None = None,
    bars: Sequence[Tensor] | None = None,
) -> Figure:
    """Frame ``t`` of ``comparison_video_frames`` as a Figure (boxes ``"truth/1"`` = truth's
    depth, columns in ``STREAM_LABELS`` order, ``"error/0"`` RGB error, ``"error/1"`` depth).
    bars: the colour bars (default ``colour_bars`` of the comparison, two rows tall)."""
    truth = comparison.truth
    names = _frame_names(truth.num_frames, frame_numbers)
    streams = list(STREAM_LABELS)
    truth_tiles = stream_tiles(truth, comparison.scales, [t])
    shown_tiles = stream_tiles(comparison.prediction, comparison.scales, [t])
    errors = error_tiles(comparison, [t])
    rows = [
        GridRow("truth", [truth_tiles[s][0] if s in truth_tiles else None for s in streams]),
        GridRow("prediction", [shown_tiles[s][0] if s in shown_tiles else None for s in streams]),
    ]
    if errors:  # under the RGB and depth columns
        rows.append(GridRow("error", [errors[s][0] if s in errors else None for s in streams]))
    heading = _frame_title(title, names[t], t / truth.fps, t in comparison.given)
    if bars is None:
        bars = colour_bars(
            comparison.scales, tuple(errors), height=bar_height(truth.rgb.shape[-2:], 2)
        )
    columns = [STREAM_LABELS[s] for s in streams]
    footer = f"prediction: {_alignment_text(comparison)}"
    figure = labelled_grid(rows, columns, title=heading, side=bars)
    image = stack([figure.image, text_image(footer, figure.image.shape[-1])], gap=0)
    return Figure(image, figure.boxes)


def scene_video_frames(
    scene: Scene,
    scales: Scales | None = None,
    *,
    frame_numbers: Sequence[int] | None = None,
    times: Sequence[float] | None = None,
    title: str | None = None,
) -> Iterator[Tensor]:
    """The scene frame by frame (``scene_frame_figure``); yields (3, H, W) uint8, all one size.
    frame_numbers / times: each frame's number and time (s) in the video (default 0 … T − 1 at
    ``scene.fps``)."""
    scales = scales_of([scene]) if scales is None else scales
    names = _frame_names(scene.num_frames, frame_numbers)
    seconds = _times(scene.num_frames, scene.fps, times)
    origin = None if scene.cameras is None else scene.cameras.c2w[0]
    bars = colour_bars(scales, height=bar_height(scene.rgb.shape[-2:], 1))
    for t in range(scene.num_frames):
        frame = scene.frames([t])
        yield scene_frame_figure(
            frame, scales, number=names[t], time=seconds[t], title=title, origin=origin, bars=bars
        ).image


def bar_height(size: tuple[int, int], rows: int) -> int:
    """Pixels of gradient for colour bars beside ``rows`` rows of tiles of ``size`` (H, W),
    upscaled as ``labelled_grid`` upscales them (their label and end ticks fit in the rest)."""
    height, width = size
    return max(96, rows * height * upscale_factor(height, width) - 40)


def scene_frame_figure(
    frame: Scene,
    scales: Scales,
    *,
    number: int = 0,
    time: float = 0.0,
    title: str | None = None,
    origin: Tensor | None = None,
    bars: Sequence[Tensor] | None = None,
) -> Figure:
    """One frame of a video of a scene: RGB | depth | ray direction | ray moment, the frame's
    ``number`` and ``time`` (s) in the title and the colour bar.

    frame: a one-frame Scene. origin: camera-to-world (4, 4) of the clip's first camera, which
    the rays are relative to (default the frame's own camera). bars: the colour bars (default
    ``colour_bars(scales)`` sized to the row). Box keys: ``"/c"``, c the column.
    """
    if frame.num_frames != 1:
        raise ValueError(f"frame has {frame.num_frames} frames (expected a one-frame Scene)")
    tiles = stream_tiles(frame, scales, [0], origin)
    streams = [s for s in STREAM_LABELS if s in tiles]
    row = GridRow("", [tiles[s][0] for s in streams])
    bars = colour_bars(scales, height=bar_height(frame.rgb.shape[-2:], 1)) if bars is None else bars
    heading = _frame_title(title, number, time, False)
    return labelled_grid([row], [STREAM_LABELS[s] for s in streams], title=heading, side=bars)


def write_comparison(
    comparison: Comparison,
    stem: str | os.PathLike,
    *,
    max_frames: int = 8,
    title: str | None = None,
    gif: bool = True,
) -> list[Path]:
    """Write ``<stem>.png`` (``comparison_figure``), ``<stem>.mp4`` and, with ``gif``,
    ``<stem>.gif`` (``comparison_video_frames`` at ``watchable_fps``); returns the paths."""
    from any4d.viz.grid import save_png
    from any4d.viz.video import save_video

    stem = Path(stem)
    figure = comparison_figure(comparison, max_frames, title=title)
    paths = [save_png(figure.image, stem.with_suffix(".png"))]
    frames = torch.stack(list(comparison_video_frames(comparison, title=title)))
    fps = watchable_fps(len(frames), comparison.truth.fps)
    paths.append(save_video(stem.with_suffix(".mp4"), frames, fps))
    if gif:
        paths.append(save_video(stem.with_suffix(".gif"), frames, fps))
    return paths


def depth_unit(units: str) -> str:
    """The colour bar's unit for a completion's ``units`` (``Completion.units``): the input's
    metres when depth or cameras carried them, else "relative"."""
    return "relative" if units == "relative" else "m"


__all__ = [
    "Comparison",
    "Scales",
    "colour_bars",
    "compare",
    "comparison_figure",
    "comparison_video_figure",
    "comparison_video_frames",
    "bar_height",
    "depth_unit",
    "display_size",
    "for_display",
    "error_streams",
    "error_tiles",
    "scales_of",
    "scene_figure",
    "scene_frame_figure",
    "scene_video_frames",
    "stream_tiles",
    "watchable_fps",
    "write_comparison",
]
