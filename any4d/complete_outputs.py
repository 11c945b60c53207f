"""The outputs of ``any4d complete``, written window by window (see ``any4d.complete``).

Per-frame files (frames, depth PNGs, depth.npz, points) are written as each window arrives;
cameras, ``scene.safetensors`` and the pictures at the end. The pictures show the input's own
frames (scaled down to ``DISPLAY_SIDE`` for the screen): display-size copies are spilled to
two memory-mapped scratch files as windows arrive, so that the grid and the video take one
colour scale from the whole clip without the clip ever being in memory.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from any4d.data import Scene

# Frames shown in grid.png (spread over the clip).
GRID_FRAMES = 8


class DisplayFrames:
    """Display-size copies (``any4d.viz.figures.for_display``) of a clip's completed frames.

    RGB (uint8) and depth (float32) live in two memory-mapped ``.npy`` scratch files in
    ``folder``, filled as windows arrive and read back for the pictures, so memory does not grow
    with the clip; ``close`` removes them. size: (H, W) of the input frames.
    """

    def __init__(self, folder: Path, count: int, size: tuple[int, int]) -> None:
        from any4d.viz.figures import display_size

        self.input_size = size
        self.size = display_size(*size)
        height, width = self.size
        self._paths = [folder / ".display-rgb.npy", folder / ".display-depth.npy"]
        self.rgb = np.lib.format.open_memmap(
            self._paths[0], mode="w+", dtype=np.uint8, shape=(count, 3, height, width)
        )
        self.depth = np.lib.format.open_memmap(
            self._paths[1], mode="w+", dtype=np.float32, shape=(count, height, width)
        )
        self.has_depth = False

    def add(self, scene: Scene, positions: list[int]) -> None:
        """The frames of a window (input size) at their positions in the clip."""
        from any4d.viz.figures import for_display

        shown = for_display(scene.to(dtype=torch.float32), max(self.size))
        rgb = ((shown.rgb + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self.rgb[positions] = rgb.numpy()
        if shown.depth is not None:
            self.depth[positions] = shown.depth[:, 0].numpy()
            self.has_depth = True

    def scene(self, positions: list[int], cameras, fps: float) -> Scene:
        """The display-size Scene of ``positions``; cameras: the clip's (input-size intrinsics)
        or None."""
        height, width = self.size
        rgb = torch.from_numpy(np.array(self.rgb[positions])).float() / 127.5 - 1
        depth = None
        if self.has_depth:
            depth = torch.from_numpy(np.array(self.depth[positions]))[:, None]
        shown = None
        if cameras is not None:
            H, W = self.input_size
            shown = cameras[torch.as_tensor(positions)].resized(width / W, height / H)
            shown = shown.to(dtype=torch.float32)
        return Scene(rgb, depth, shown, fps=fps)

    def close(self) -> None:
        self.rgb = self.depth = None  # drops the maps before their files go
        for path in self._paths:
            path.unlink(missing_ok=True)


class CompletionWriter:
    """Writes a completion window by window into ``folder``.

    indices: the clip's video frame numbers (names of the per-frame files). size: (H, W) of the
    input. fps: of the clip (after the stride); video_fps: of the input (TUM timestamps are the
    frames' times in the video)."""

    def __init__(
        self, folder, indices, size, fps, video_fps, points_per_frame, *, title: str = ""
    ) -> None:
        self.folder, self.indices, self.size, self.title = folder, indices, size, title
        self.fps, self.video_fps, self.points_per_frame = fps, video_fps, points_per_frame
        self.names = [f"{i:06d}.png" for i in indices]
        self.written: list[str] = []
        self.failures: list[str] = []
        self.units: str | None = None
        self.skew = 0.0
        self.scores: list = []
        self.samples: list[int] = []  # per window: 1, or more when its rays gave no camera
        self.unstorable = 0  # depth pixels a millimetre PNG cannot hold
        self._depth = self._points = None
        self._cameras: list = []
        self._model: list[Scene] = []
        self._generator = torch.Generator().manual_seed(0)
        self._display = DisplayFrames(folder, len(indices), size)

    def __enter__(self) -> CompletionWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        for writer in (self._depth, self._points):
            if writer is not None:
                writer.__exit__(kind, error, trace)
        try:
            if kind is None:
                self._finish()
        finally:
            self._display.close()

    def add(self, part) -> None:
        """One window's ``WindowResult``."""
        from any4d.viz import save_png
        from any4d.viz.exports_geometry import (
            DepthNpzWriter,
            PlyWriter,
            unstorable_in_png16,
            write_depth_png16,
        )

        scene = part.scene
        self.units = self.units or part.units
        self.failures += [f for f in part.failures if f not in self.failures]
        self.scores.append(None if part.scores is None else part.scores.tolist())
        self.samples.append(part.samples)
        names = [self.names[f] for f in part.frames]
        for name, frame in zip(names, scene.rgb, strict=True):
            save_png((frame + 1) / 2, self.folder / "frames" / name)
        if scene.depth is not None:
            if self._depth is None:
                path = self.folder / "depth.npz"
                self._depth = DepthNpzWriter(path, len(self.indices), *self.size).__enter__()
            self._depth.write(scene.depth)
            self.unstorable += int(unstorable_in_png16(scene.depth).sum())
            with warnings.catch_warnings():  # counted above, reported once in result.json
                warnings.simplefilter("ignore", UserWarning)
                for name, frame in zip(names, scene.depth, strict=True):
                    write_depth_png16(self.folder / "depth" / name, frame[0])
        if scene.depth is not None and scene.cameras is not None:
            if self._points is None:
                self._points = PlyWriter(self.folder / "points.ply").__enter__()
            for i in range(scene.num_frames):
                self._points.add(*self._frame_points(scene, i))
        self._cameras.append(scene.cameras)
        self._model.append(part.model)
        self._display.add(scene, list(part.frames))

    def _frame_points(self, scene: Scene, i: int):
        from any4d.geometry import unproject
        from any4d.viz.exports_geometry import subsample_points

        depth = scene.depth[i]  # (1, H, W)
        valid = depth[0] > 0
        xyz = unproject(depth, scene.cameras[i]).permute(1, 2, 0)[valid]  # (N, 3)
        rgb = ((scene.rgb[i] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0)[valid]
        return subsample_points(xyz.float(), rgb, self.points_per_frame, generator=self._generator)

    def _finish(self) -> None:
        from any4d.geometry import Cameras
        from any4d.viz import plot_cameras
        from any4d.windows import join

        if self.unstorable:
            self.failures.append(
                f"depth/*.png: {self.unstorable} pixels outside [0.5 mm, 65.5 m) are written as "
                "0 (invalid) there; depth.npz holds their values"
            )
        if self._depth is not None:
            self.written += ["frames/", "depth/", "depth.npz"]
        else:
            self.written.append("frames/")
        if self._points is not None:
            self.written.append("points.ply")
        model = join(self._model)
        cameras = None
        if all(c is not None for c in self._cameras):
            cameras = Cameras.cat(self._cameras)
            cameras, self.skew = without_skew(cameras)
            self._write_cameras(cameras)
            plot_cameras(
                self.folder / "cameras.png",
                cameras,
                labels=("predicted", "true"),
                image_size=self.size,
                title=f"any4d complete · predicted cameras of {len(self.indices)} frames",
            )
            self.written += ["cameras/", "cameras.png"]
            model = dataclasses.replace(model, cameras=without_skew(model.cameras)[0])
        elif self._points is not None:
            self.failures.append(
                "points.ply: some windows determined no camera, so the point cloud holds only "
                "the windows that did"
            )
        model = dataclasses.replace(model, fps=self.fps)
        model.save(self.folder / "scene.safetensors")
        self._pictures(model, cameras)
        self.written += ["scene.safetensors", "grid.png", "video.mp4"]

    def _pictures(self, model: Scene, cameras) -> None:
        """grid.png and video.mp4 of the input's frames (display size), on one colour scale
        taken from the whole completed clip at the model's size (``model``)."""
        from any4d.viz import save_png
        from any4d.viz.figures import (
            bar_height,
            colour_bars,
            depth_unit,
            scales_of,
            scene_figure,
            scene_frame_figure,
            watchable_fps,
        )
        from any4d.viz.grid import frame_indices
        from any4d.viz.video import stream_video

        scales = scales_of([model], unit=depth_unit(self.units or "relative"))
        count = len(self.indices)
        # Rays relative to the clip's first camera (resizing for display keeps the poses).
        origin = None if cameras is None else cameras.c2w[0].to(torch.float32)
        shown = frame_indices(count, GRID_FRAMES).tolist()
        grid = scene_figure(
            self._display.scene(shown, cameras, self.fps),
            scales,
            GRID_FRAMES,
            frame_numbers=[self.indices[i] for i in shown],
            title=self.title,
            origin=origin,
        )
        save_png(grid.image, self.folder / "grid.png")
        bars = colour_bars(scales, height=bar_height(self._display.size, 1))

        def frames():
            for t in range(count):
                yield scene_frame_figure(
                    self._display.scene([t], cameras, self.fps),
                    scales,
                    number=self.indices[t],
                    time=self.indices[t] / self.video_fps,
                    title=self.title,
                    origin=origin,
                    bars=bars,
                ).image

        stream_video(self.folder / "video.mp4", frames(), watchable_fps(count, self.fps))

    def _write_cameras(self, cameras) -> None:
        from any4d.viz.exports_cameras import (
            write_cameras_json,
            write_colmap_text,
            write_transforms_json,
            write_tum,
        )

        folder = self.folder / "cameras"
        write_colmap_text(folder / "colmap", cameras, self.size, image_names=self.names)
        images = [f"../frames/{n}" for n in self.names]
        write_transforms_json(folder / "transforms.json", cameras, self.size, images)
        times = torch.tensor(self.indices, dtype=torch.float64) / self.video_fps
        write_tum(folder / "trajectory.tum", cameras, timestamps=times)
        write_cameras_json(folder / "cameras.json", cameras, self.size, fps=self.fps)

    def record(self) -> dict[str, Any]:
        units = self.units or "relative"
        return {
            "failures": self.failures,
            "scores": self.scores,
            "samples": self.samples,
            "skew_removed_px": self.skew,
            "units": units,
            "depth_units": {
                "depth": "the input's units (the scale of its observed depth)",
                "cameras": "the input's units (the scale of its observed camera path)",
            }.get(units, "relative (median depth about 1): the task observed no scale"),
            "written": self.written + ["result.json"],
        }

    def write_json(self, name: str, record: dict) -> None:
        (self.folder / name).write_text(json.dumps(record, indent=2))


def without_skew(cameras):
    """The nearest zero-skew intrinsics (``K[0, 1] = 0``) and the largest skew removed, in
    pixels (0.0 when there was none). Cameras recovered from predicted rays have a general
    upper-triangular K; COLMAP's PINHOLE, nerfstudio and our own exports hold none."""
    from any4d.geometry import Cameras

    if cameras is None:
        return None, 0.0
    skew = float(cameras.K[..., 0, 1].abs().max())
    if skew == 0.0:
        return cameras, 0.0
    K = cameras.K.clone()
    K[..., 0, 1] = 0.0
    return Cameras.unchecked(K, cameras.c2w), skew
