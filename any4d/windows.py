"""Clips of any length: completion window after window (DESIGN §5, "Long clips").

The model knows clips of one length (``L`` frames). A longer clip is completed in windows of
``L`` frames; each window after the first begins with ``context`` frames already completed —
its overlap with the previous window and optional keyframe ``anchors`` (e.g. frame 0) — and
**observes** them in every stream: their RGB, and the depth and cameras completed so far. Under
diffusion forcing that is just a mask (those groups are clean), so each window is completed in
the previous one's camera frame and scale, with history guidance on that context, and the whole
clip comes out in one frame (its first camera's) and one scale (the first window's).

    plan = plan_windows(250, WindowConfig(overlap=2, anchors=(0,)), length=5, temporal_stride=1)
    for part in roll(plan, read, mask, complete_window, fit):
        part.frames, part.scene  # the frames this window added, at the input's resolution

``stitch="sim3"`` is the strongest alternative that needs no such model — every window completed
on its own from what the user gave, then moved onto the previous ones by a robust (Huber IRLS)
Sim(3) fitted to the point maps of their shared frames, as VGGT-Long aligns its chunks — and the
baseline the native rollout is measured against (``benchmarks/long_clips.py``).

Frames are read per window (``read``) and results leave per window, so memory holds one window
and its context, never the clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data import Scene
from any4d.data.fit import FrameFit
from any4d.diffusion import Mask
from any4d.geometry import Cameras, robust_umeyama, unproject
from any4d.tokenize import STREAMS

STITCHES = ("context", "sim3")
# Points per overlap frame for the Sim(3) fit of stitched windows.
_STITCH_POINTS = 4096


@dataclass(frozen=True)
class WindowConfig:
    """How a long clip is split.

    length:  frames per window; None: the model's clip length.
    overlap: frames each window shares with the one before (its context, with the anchors);
             None: half a window. Rounded down so that the context fills whole latent frames
             (``1 + r·k`` frames under a temporal stride ``r``).
    anchors: frames kept as context in every window once completed (e.g. ``(0,)``: every window
             sees the first frame, its camera and depth); they take slots of the window.
    stitch:  "context" (each window observes its completed context) or "sim3" (independent
             windows aligned by a robust Sim(3) on their overlap: the baseline).
    """

    length: int | None = None
    overlap: int | None = None
    anchors: tuple[int, ...] = ()
    stitch: str = "context"

    def __post_init__(self) -> None:
        for name in ("length", "overlap"):
            value = getattr(self, name)
            low = 1 if name == "length" else 0
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < low
            ):
                raise ValueError(f"window {name} is {value!r} (expected an integer ≥ {low})")
        anchors = tuple(self.anchors)
        if any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in anchors):
            raise ValueError(f"window anchors are {self.anchors!r} (expected frame indices ≥ 0)")
        object.__setattr__(self, "anchors", tuple(sorted(set(anchors))))
        if self.stitch not in STITCHES:
            raise ValueError(f"window stitch is {self.stitch!r} (expected one of {STITCHES})")


@dataclass(frozen=True)
class Window:
    """One window of a plan.

    frames:  the clip frame of each window frame: anchors first, then a run of consecutive frames.
    context: how many leading frames are observed as already completed (0 in the first window).
    new:     the clip frames this window adds to the result (the rest were completed before).
    """

    frames: tuple[int, ...]
    context: int
    new: tuple[int, ...]


def plan_windows(
    num_frames: int, config: WindowConfig, length: int, temporal_stride: int = 1
) -> list[Window]:
    """The windows that cover ``num_frames`` frames, each ``length`` long (one window when the
    clip is no longer). Every frame is new in exactly one window, in order."""
    length = config.length or length
    if length < 2 and num_frames > length:
        raise ValueError(f"windows of {length} frame cannot share context (expected ≥ 2 frames)")
    if num_frames <= length:
        frames = tuple(range(num_frames))
        return [Window(frames, 0, frames)]
    anchors = tuple(a for a in config.anchors if a < num_frames)
    overlap = length // 2 if config.overlap is None else config.overlap
    if len(anchors) + overlap >= length:
        raise ValueError(
            f"window overlap {overlap} and {len(anchors)} anchors leave no new frame in windows "
            f"of {length} (expected overlap + anchors < length)"
        )
    if len(anchors) + overlap < 1:
        raise ValueError("windows need context: overlap or anchors must hold at least one frame")
    windows = [Window(tuple(range(length)), 0, tuple(range(length)))]
    done = length
    while done < num_frames:
        run = _run(done, num_frames, length, overlap, anchors)
        keep = tuple(a for a in anchors if a not in run)
        shared = sum(1 for f in run if f < done)
        context = _aligned(len(keep) + shared, temporal_stride)
        windows.append(Window(keep + run, context, tuple(f for f in run if f >= done)))
        done = run[-1] + 1
    return windows


def _run(done: int, num_frames: int, length: int, overlap: int, anchors) -> tuple[int, ...]:
    """The consecutive frames of the next window: ``overlap`` completed ones, then new ones."""
    start = done - overlap
    while True:
        keep = sum(1 for a in anchors if not start <= a < start + length)
        size = length - keep
        stop = min(start + size, num_frames)
        start = stop - size  # the last window reaches back for more context
        if sum(1 for a in anchors if not start <= a < stop) == keep:
            return tuple(range(start, stop))


def _aligned(count: int, stride: int) -> int:
    """The largest ``1 + stride·k ≤ count`` (whole latent frames under a causal VAE)."""
    return count if stride == 1 else 1 + (count - 1) // stride * stride


@dataclass(frozen=True, eq=False)
class WindowResult:
    """What one window adds.

    frames:   the clip frames (its ``Window.new``).
    scene:    those frames, completed, at the input's resolution.
    model:    those frames at the model's resolution (what later windows observe).
    window:   the window.
    failures: what its completion could not decode (``Completion.failures``).
    units:    where its scale came from (``any4d.geometry.UNITS``).
    scores:   its candidates' scores (None with one candidate).
    samples:  how many times it was sampled (``Completion.samples``).
    """

    frames: tuple[int, ...]
    scene: Scene
    model: Scene
    window: Window
    failures: list[str]
    units: str
    scores: Tensor | None = None
    samples: int = 1


def clean_sets(mask: Mask, num_frames: int) -> dict[str, frozenset[int]]:
    """The clean clip frames of every stream, resolved once per clip (not per window)."""
    return {stream: mask.clean_frames(stream, num_frames) for stream in STREAMS}


def window_mask(clean: dict[str, frozenset[int]], window: Window, context_streams) -> Mask:
    """The mask of one window: the clip's clean frames (``clean_sets``) that lie in it, and
    its context frames in ``context_streams`` (those the completed context holds)."""
    masked = {}
    for stream in STREAMS:
        frames = {i for i, f in enumerate(window.frames) if f in clean[stream]}
        if stream in context_streams:
            frames |= set(range(window.context))
        if frames:
            masked[stream] = tuple(sorted(frames))
    return Mask(masked)


def roll(
    windows: Sequence[Window],
    read: Callable[[list[int]], Scene],
    mask: Mask,
    complete: Callable[[Scene, Mask], object],
    fit: FrameFit,
    num_frames: int,
    stitch: str = "context",
) -> Iterator[WindowResult]:
    """Complete the windows in order and yield what each adds.

    read:     clip frame indices → those frames of the input (a ``Scene`` at its resolution);
              called once per window with that window's new frames.
    complete: (window scene at the model's size, window mask) → a ``Completion``.
    fit:      the input ↔ model resolution mapping.
    """
    if stitch not in STITCHES:
        raise ValueError(f"stitch is {stitch!r} (expected one of {STITCHES})")
    clean = clean_sets(mask, num_frames)
    done: dict[int, Scene] = {}  # clip frame → its completed single-frame scene (model size)
    inputs: dict[int, Scene] = {}  # clip frame → its input frame at the model's size
    for index, window in enumerate(windows):
        source = read(list(window.new))
        # Only what the task observes reaches the model (and the placeholders of _window_scene).
        small = fit.apply(
            dataclasses.replace(
                source,
                depth=source.depth if "depth" in mask.clean else None,
                cameras=source.cameras if "ray_d" in mask.clean else None,
            )
        )
        for i, frame in enumerate(window.new):
            inputs[frame] = small.frames([i])
        own = stitch == "sim3"
        context = 0 if own else window.context
        scene = _window_scene(window, context, done, inputs)
        streams = _context_streams(scene, context)
        result = complete(
            scene,
            window_mask(clean, dataclasses.replace(window, context=context), streams),
        )
        completed, failures = result.scene, list(result.failures)
        if own and index > 0:
            completed = _stitched(completed, window, done)
        if completed.cameras is None and scene.cameras is not None:
            # Rays that determine no camera: the window's frames keep the last known camera
            # (the placeholders it was given), so later windows stay in the clip's frame.
            completed = dataclasses.replace(completed, cameras=scene.cameras)
            failures.append(
                f"cameras: frames {window.new[0]}–{window.new[-1]} determined no camera and "
                "hold the last known one"
            )
        positions = [window.frames.index(f) for f in window.new]
        model = _without_padding(completed.frames(positions), fit)
        for i, frame in enumerate(window.new):
            done[frame] = model.frames([i])
        yield WindowResult(
            frames=window.new,
            scene=_restore(model, source, fit, clean, window.new),
            model=model,
            window=window,
            failures=failures,
            units=result.units,
            scores=getattr(result, "scores", None),
            samples=getattr(result, "samples", 1),
        )
        # Forget what no later window needs. The plan makes every frame a later window takes
        # again (anchors, its overlap, frames it completes anew) a frame of the next window.
        later = set(windows[index + 1].frames) if index + 1 < len(windows) else set()
        for cache in (done, inputs):
            for frame in [f for f in cache if f not in later]:
                del cache[frame]


def _without_padding(scene: Scene, fit: FrameFit) -> Scene:
    """Depth on the padding is invalid (0): it is no part of the input, and later windows must
    not observe it as context nor take its scale."""
    coverage = fit.coverage()
    if coverage is None or scene.depth is None:
        return scene
    return dataclasses.replace(scene, depth=scene.depth * coverage.to(scene.depth))


def _window_scene(window: Window, context: int, done: dict, inputs: dict) -> Scene:
    """The window at the model's size: completed values for its context frames, the input's
    for the others. Frames without cameras get the last known one as a placeholder (their rays
    are targets), without depth an invalid (0) map."""
    parts = [done[f] if i < context else inputs[f] for i, f in enumerate(window.frames)]
    rgb = torch.cat([p.rgb for p in parts])
    depth = None
    if any(p.depth is not None for p in parts):
        depth = torch.cat(
            [p.depth if p.depth is not None else torch.zeros_like(p.rgb[:, :1]) for p in parts]
        )
    cameras = None
    if all(p.cameras is not None for p in parts[:context]) and any(
        p.cameras is not None for p in parts
    ):
        known = [p.cameras for p in parts if p.cameras is not None]
        last, filled = known[0], []
        for p in parts:
            last = p.cameras if p.cameras is not None else last
            filled.append(last)
        cameras = Cameras.cat(filled)
    return Scene(rgb=rgb, depth=depth, cameras=cameras, text=parts[0].text, fps=parts[-1].fps)


def _context_streams(scene: Scene, context: int) -> tuple[str, ...]:
    """The streams a window's completed context holds."""
    if context == 0:
        return ()
    streams = ["rgb"]
    if scene.depth is not None and bool((scene.depth[:context] > 0).any()):
        streams.append("depth")
    if scene.cameras is not None:
        streams += ["ray_d", "ray_m"]
    return tuple(streams)


def _stitched(completed: Scene, window: Window, done: dict) -> Scene:
    """An independently completed window moved onto the completed frames it shares: the
    robust Sim(3) between their point maps (pixel to pixel), or the median depth ratio when
    there are no cameras; unchanged when there is nothing to align on."""
    shared = [i for i, f in enumerate(window.frames) if f in done]
    if not shared or completed.depth is None:
        return completed
    ours = completed.frames(shared)
    theirs = join([done[window.frames[i]] for i in shared])
    if theirs.depth is None:
        return completed
    valid = (ours.depth > 0) & (theirs.depth > 0)
    if ours.cameras is None or theirs.cameras is None:
        if not valid.any():
            return completed
        ratio = float((theirs.depth[valid] / ours.depth[valid]).median())
        return dataclasses.replace(completed, depth=completed.depth * ratio)
    source = unproject(ours.depth, ours.cameras).permute(0, 2, 3, 1)[valid[:, 0]]
    target = unproject(theirs.depth, theirs.cameras).permute(0, 2, 3, 1)[valid[:, 0]]
    if len(source) > _STITCH_POINTS * len(shared):
        pick = torch.linspace(0, len(source) - 1, _STITCH_POINTS * len(shared)).long()
        source, target = source[pick], target[pick]
    try:
        similarity = robust_umeyama(source, target)
    except ValueError:  # degenerate overlap (e.g. a plane seen edge-on): keep it as it came
        return completed
    c2w = similarity.apply_to_poses(completed.cameras.c2w.double()).to(completed.cameras.dtype)
    return dataclasses.replace(
        completed,
        depth=completed.depth * similarity.scale,
        cameras=Cameras.unchecked(completed.cameras.K, c2w),
    )


def join(scenes: Sequence[Scene]) -> Scene:
    """Frames of several scenes one after the other; depth or cameras only when every scene
    has them (a clip with cameras for some windows only has no consistent cameras)."""
    first = scenes[0]
    has_depth = all(s.depth is not None for s in scenes)
    has_cameras = all(s.cameras is not None for s in scenes)
    return Scene(
        rgb=torch.cat([s.rgb for s in scenes]),
        depth=torch.cat([s.depth for s in scenes]) if has_depth else None,
        cameras=Cameras.cat([s.cameras for s in scenes]) if has_cameras else None,
        text=first.text,
        fps=first.fps,
    )


def _restore(model: Scene, source: Scene, fit: FrameFit, clean: dict, frames) -> Scene:
    """Window frames at the model's size → at the input's, with every observed modality put
    back exactly as the input gave it."""
    rgb = fit.restore_rgb(model.rgb, source.rgb).clone()
    observed = [i for i, f in enumerate(frames) if f in clean["rgb"]]
    if observed:
        rgb[observed] = source.rgb[observed].to(rgb)
    depth = None if model.depth is None else fit.restore_depth(model.depth).clone()
    given = [i for i, f in enumerate(frames) if f in clean["depth"]]
    if depth is not None and source.depth is not None and given:
        depth[given] = source.depth[given].to(depth)
    cameras = None if model.cameras is None else fit.restore_cameras(model.cameras)
    posed = [i for i, f in enumerate(frames) if f in clean["ray_d"]]
    if cameras is not None and source.cameras is not None and posed:
        K, c2w = cameras.K.clone(), cameras.c2w.clone()
        K[posed] = source.cameras.K[posed].to(K)
        c2w[posed] = source.cameras.c2w[posed].to(c2w)
        cameras = Cameras.unchecked(K, c2w)
    return Scene(rgb=rgb, depth=depth, cameras=cameras, text=source.text, fps=source.fps)


def concatenate(parts: Sequence[WindowResult]) -> Scene:
    """The whole clip from its windows' results, in frame order (``join``)."""
    return join([p.scene for p in sorted(parts, key=lambda p: p.frames[0])])
