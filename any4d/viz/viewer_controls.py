"""The viewer's GUI and playback: what is shown for the chosen frame, and a thread that plays.

``add_controls`` builds the panel (frame caption, play / pause, frame slider, fps, loop, the
point controls, the legend) over scene nodes already drawn by ``any4d.viz.viewer`` and returns
the ``Viewer`` that ties them together. Playback is a daemon thread owned by the Viewer that
advances ``frame.value`` at the chosen fps; it ends on ``pause()``, ``close()``, at the last
frame without loop, or when the viser server stops.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LINE_PX, CURRENT_LINE_PX = 1.5, 4.0  # screen-space line widths: other frames, current frame
_FPS_RANGE = (0.1, 240.0)  # playback rates the GUI offers (and the thread clamps to)
_POLL_S = 0.1  # the playback thread looks for a stopped server at least this often
_JOIN_S = 5.0  # pause() waits this long for the thread; it only ever sleeps in short slices


@dataclass(eq=False)
class SceneNodes:
    """The viser scene nodes of one scene, frame ``i`` at index ``i``.

    colour: the scene's source colour (frustums, trajectory; its points under "colour by
    source"); label: its name in the legend; rgb: each cloud's own (N, 3) uint8 colours.
    """

    colour: tuple[int, int, int]
    label: str
    points: list[Any] = field(default_factory=list)  # PointCloudHandle; empty without depth
    rgb: list[np.ndarray] = field(default_factory=list)
    frustums: list[Any] = field(default_factory=list)  # CameraFrustumHandle
    trajectory: Any | None = None  # LineSegmentsHandle; None for a single frame


def frame_caption(index: int, num_frames: int, fps: float) -> str:
    """``"frame 3 / 48 · t = 0.30 s"``: the index from 0 (as the slider), the clip's length
    and the frame's time in the clip, ``index / fps`` at the scene's own fps."""
    return f"frame {index} / {num_frames} · t = {index / fps:.2f} s"


def legend_markdown(sources: list[SceneNodes]) -> str:
    """One line per source: a square in its colour and its label (raw HTML in viser's
    markdown), then what the colours mean for the points."""
    lines = [
        f'<span style="color: rgb{tuple(nodes.colour)}">■</span> **{nodes.label}** cameras'
        for nodes in sources
    ]
    if any(nodes.points for nodes in sources):
        lines.append("points: their RGB, or their source's colour with *colour by source*")
    return "\n\n".join(lines)


@dataclass(eq=False)
class Viewer:
    """A scene (and optional reference) drawn in a viser server, with its GUI controls.

    Handles (assigning ``.value`` from Python updates the view as a click would): ``frame``
    (slider) and ``cumulative`` (checkbox: every frame up to ``frame``) choose the clouds shown;
    ``reference_points`` (checkbox, present when the reference has depth) toggles the
    reference's clouds; ``colour_by_source`` paints each scene's clouds in its source colour;
    ``point_size`` (world units) sizes every cloud; ``play_button``, ``fps`` and ``loop`` drive
    playback; ``frame_text`` and ``legend`` are markdown. The point controls are None when no
    scene has depth. ``play()``, ``pause()``, ``playing`` drive playback from Python;
    ``close()`` ends it (and stops the server when the viewer started it, as ``show_scene``
    does). Also a context manager that closes.
    """

    server: Any  # viser.ViserServer
    scene: SceneNodes
    reference: SceneNodes | None
    scene_fps: float  # the clip's own rate: the frame's time t = index / scene_fps
    frame: Any  # GuiSliderHandle[int]
    cumulative: Any  # GuiCheckboxHandle
    play_button: Any  # GuiButtonHandle, labelled "play" or "pause"
    fps: Any  # GuiNumberHandle[float]
    loop: Any  # GuiCheckboxHandle
    frame_text: Any  # GuiMarkdownHandle
    legend: Any  # GuiMarkdownHandle
    reference_points: Any | None = None  # GuiCheckboxHandle
    colour_by_source: Any | None = None  # GuiCheckboxHandle
    point_size: Any | None = None  # GuiSliderHandle[float]
    owns_server: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _draw_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop: threading.Event | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __repr__(self) -> str:
        return (
            f"Viewer(frames={self.num_frames}, reference={self.reference is not None}, "
            f"frame={self.frame.value}, playing={self.playing})"
        )

    @property
    def num_frames(self) -> int:
        return len(self.scene.frustums)

    @property
    def playing(self) -> bool:
        """Whether the playback thread is advancing the frame."""
        with self._lock:
            return self._thread is not None

    # --------------------------------------------------------------------------- drawing

    def _sources(self) -> list[tuple[SceneNodes, bool]]:
        """Each drawn scene with whether its clouds are switched on."""
        sources = [(self.scene, True)]
        if self.reference is not None:
            on = self.reference_points is not None and bool(self.reference_points.value)
            sources.append((self.reference, on))
        return sources

    def update(self) -> None:
        """Show the clouds, highlight the frustums and caption the frame the GUI selects."""
        with self._draw_lock:  # the playback thread and clients' callbacks both draw
            current = int(self.frame.value)
            for nodes, clouds_on in self._sources():
                for index, cloud in enumerate(nodes.points):
                    shown = index == current or (self.cumulative.value and index < current)
                    cloud.visible = bool(clouds_on and shown)
                for index, frustum in enumerate(nodes.frustums):
                    frustum.thickness = CURRENT_LINE_PX if index == current else LINE_PX
            self.frame_text.content = frame_caption(current, self.num_frames, self.scene_fps)

    def recolour(self) -> None:
        """Paint every cloud in its RGB, or its source's colour under ``colour_by_source``."""
        by_source = self.colour_by_source is not None and bool(self.colour_by_source.value)
        with self._draw_lock:
            for nodes, _ in self._sources():
                for cloud, rgb in zip(nodes.points, nodes.rgb, strict=True):
                    # A (3,) colour is one colour for the whole cloud: 3 bytes on the wire.
                    cloud.colors = np.array(nodes.colour, np.uint8) if by_source else rgb

    def resize_points(self) -> None:
        """Give every cloud the ``point_size`` of the GUI (world units)."""
        if self.point_size is None:
            return
        size = float(self.point_size.value)
        if not 0 < size < math.inf:
            return  # a half-typed number in the browser: keep the last good size
        with self._draw_lock:
            for nodes, _ in self._sources():
                for cloud in nodes.points:
                    cloud.point_size = size

    # -------------------------------------------------------------------------- playback

    def play(self) -> None:
        """Start advancing the frame at ``fps.value`` (from frame 0 when at the last frame
        without loop). No-op while playing; RuntimeError once closed."""
        if self._closed:
            raise RuntimeError("the viewer is closed (expected play() before close())")
        at_end = not self.loop.value and int(self.frame.value) >= self.num_frames - 1
        if at_end and not self.playing:
            self.frame.value = 0  # outside the lock: the frame's callbacks may ask `playing`
        with self._lock:
            if self._closed:
                raise RuntimeError("the viewer is closed (expected play() before close())")
            if self._thread is not None:
                return
            stop = threading.Event()
            self._stop = stop
            self._thread = threading.Thread(
                target=self._run, args=(stop,), name="any4d-viewer-playback", daemon=True
            )
            self._label("pause")
            self._thread.start()

    def pause(self) -> None:
        """Stop advancing the frame (the current frame stays); waits for the thread to end."""
        with self._lock:
            thread, stop = self._thread, self._stop
            self._thread = self._stop = None
            if stop is not None:
                stop.set()
                self._label("play")
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)

    def toggle(self) -> None:
        """Pause when playing, else play (the play / pause button)."""
        if self.playing:
            self.pause()
        else:
            self.play()

    def close(self) -> None:
        """End playback for good and stop the server if the viewer started it. Idempotent."""
        self.pause()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.owns_server:
            self.server.stop()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self, stop: threading.Event) -> None:
        """Playback thread: one frame every 1 / fps seconds until told or bound to stop."""
        deadline = time.monotonic()
        try:
            while True:
                period = 1.0 / _clamped_fps(self.fps.value)
                now = time.monotonic()
                deadline = max(deadline + period, now)  # fell behind: no burst to catch up
                while (left := deadline - time.monotonic()) > 0:
                    if stop.wait(min(left, _POLL_S)) or _server_stopped(self.server):
                        return
                if stop.is_set() or _server_stopped(self.server) or not self._step():
                    return
        finally:
            with self._lock:
                if self._stop is stop:  # ended by itself, not by pause()
                    self._thread = self._stop = None
                    self._label("play")

    def _label(self, label: str) -> None:
        if not _server_stopped(self.server):  # viser warns of updates nobody will receive
            self.play_button.label = label

    def _step(self) -> bool:
        """Advance one frame (wrapping under loop); False when playback should end."""
        last = self.num_frames - 1
        index = int(self.frame.value) + 1
        if index > last:
            if not self.loop.value:
                return False
            index = 0
        self.frame.value = index
        return bool(self.loop.value) or index < last


def add_controls(
    server,
    scene: SceneNodes,
    reference: SceneNodes | None,
    *,
    scene_fps: float,
    fps: float,
    loop: bool,
    point_size: float,
    colour_by_source: bool,
) -> Viewer:
    """The GUI panel over drawn nodes, wired to a new ``Viewer`` (which it returns, updated).

    scene_fps: the clip's rate (for the frame's time); fps: the initial playback rate.
    point_size: initial size of every cloud (world units); the slider spans 1/10 to 10 times it.
    """
    has_points = bool(scene.points) or (reference is not None and bool(reference.points))
    sources = [scene] if reference is None else [scene, reference]
    gui = server.gui
    with gui.add_folder("any4d"):
        frame_text = gui.add_markdown(frame_caption(0, len(scene.frustums), scene_fps))
        play_button = gui.add_button("play", hint="play / pause the frames")
        frame = gui.add_slider("frame", min=0, max=len(scene.frustums) - 1, step=1, initial_value=0)
        fps_number = gui.add_number(
            "fps", initial_value=float(fps), min=_FPS_RANGE[0], max=_FPS_RANGE[1], step=0.1
        )
        loop_box = gui.add_checkbox("loop", initial_value=bool(loop))
        cumulative = gui.add_checkbox(
            "frames up to it", initial_value=False, hint="show every frame's points up to it"
        )
        reference_points = by_source = size = None
        if reference is not None and reference.points:
            reference_points = gui.add_checkbox("reference points", initial_value=False)
        if has_points:
            by_source = gui.add_checkbox(
                "colour by source",
                initial_value=bool(colour_by_source),
                hint="points in their source's colour (legend) instead of their RGB",
            )
            size = gui.add_slider(
                "point size",
                min=point_size / 10,
                max=point_size * 10,
                step=point_size / 100,
                initial_value=point_size,
                hint="world units",
            )
    with gui.add_folder("legend"):
        legend = gui.add_markdown(legend_markdown(sources))
    viewer = Viewer(
        server,
        scene,
        reference,
        float(scene_fps),
        frame,
        cumulative,
        play_button,
        fps_number,
        loop_box,
        frame_text,
        legend,
        reference_points=reference_points,
        colour_by_source=by_source,
        point_size=size,
    )
    for control in (frame, cumulative, reference_points):
        if control is not None:
            control.on_update(lambda _event: viewer.update())
    if by_source is not None:
        by_source.on_update(lambda _event: viewer.recolour())
    if size is not None:
        size.on_update(lambda _event: viewer.resize_points())
    play_button.on_click(lambda _event: viewer.toggle())
    viewer.update()
    if colour_by_source:
        viewer.recolour()
    return viewer


def _clamped_fps(value) -> float:
    try:
        fps = float(value)
    except (TypeError, ValueError):
        return 1.0
    if not math.isfinite(fps):
        return _FPS_RANGE[1] if fps > 0 else _FPS_RANGE[0]
    return min(max(fps, _FPS_RANGE[0]), _FPS_RANGE[1])


def _server_stopped(server) -> bool:
    """Whether ``server.stop()`` was called. Viser 1.1 has no public hook for it, so this reads
    its websocket server's stop event (a missing attribute reads as still running)."""
    event = getattr(getattr(server, "_websock_server", None), "_stop_event", None)
    return event is not None and event.is_set()
