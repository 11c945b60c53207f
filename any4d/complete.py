"""``any4d complete``: run a task on a user's video (or folder of frames) and write every output.

    any4d complete walk.mp4 --task geometry --checkpoint DIR --out walk-4d

The clip is read with ``any4d.data.read_user_scene`` (optional cameras, intrinsics, depth),
``num_frames`` frames from ``start`` every ``stride``, resized and centre-cropped to the model's
clip shape (intrinsics follow), completed by the pipeline, and written as:

    scene.safetensors        the completed Scene (Scene.load reads it back)
    grid.png, video.mp4      RGB | depth | ray directions | ray moments per frame
    cameras.png              the camera frustums and trajectory
    depth.npz, depth/*.png   depth in metres (float32), and as 16-bit millimetre PNGs
    points.ply               the coloured point cloud of every frame
    cameras/                 COLMAP text, nerfstudio transforms.json, TUM trajectory, our JSON
    frames/*.png             the completed RGB frames (the images the camera files name)
    result.json              task, sampler settings, candidate scores, failures
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from any4d.data import Scene
from any4d.diffusion import SamplerConfig, SearchConfig


def take_frames(scene: Scene, start: int, stride: int, count: int) -> Scene:
    """``count`` frames of ``scene`` from ``start`` every ``stride`` (an error if too short)."""
    indices = list(range(start, start + stride * count, stride))
    if start < 0 or stride < 1 or not indices or indices[-1] >= scene.num_frames:
        raise ValueError(
            f"the clip has {scene.num_frames} frames but {count} frames from {start} every "
            f"{stride} were asked for (the model takes {count}: lower --stride or --start)"
        )
    return dataclasses.replace(scene.frames(indices), fps=scene.fps / stride)


def parse_intrinsics(text: str | None) -> tuple[float, float, float, float] | None:
    """ "fx,fy,cx,cy" (pixels of the input frames) → a tuple; clear errors otherwise."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or min(values[:2]) <= 0:
        raise ValueError(f"--intrinsics {text!r} (expected fx,fy,cx,cy in pixels, fx, fy > 0)")
    return values


def complete(
    path: str | Path,
    *,
    task: str,
    out: str | Path,
    checkpoint: str | Path | None = None,
    cameras: str | Path | None = None,
    intrinsics: str | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    start: int = 0,
    stride: int = 1,
    sampler: SamplerConfig | Mapping[str, Any] | None = None,
    search: SearchConfig | None = None,
    seed: int = 0,
    prompt: str | None = None,
    text_encoder: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Run ``task`` on the clip at ``path`` and write the outputs into ``out``; returns ``out``.
    sampler, search, seed: as for ``Any4DPipeline.__call__`` (a dict of sampler changes keeps the
    checkpoint's other settings). prompt / text_encoder: text for a model with text
    conditioning, and a local directory with umT5's ``text_encoder/`` + ``tokenizer/`` (e.g. the
    Wan2.1 diffusers release)."""
    from any4d.data import read_user_scene, resize_and_crop
    from any4d.demo import shipped_checkpoint
    from any4d.pipeline import Any4DPipeline
    from any4d.viz import plot_cameras, save_clip_grid, save_png, scene_video
    from any4d.viz.exports_cameras import (
        write_cameras_json,
        write_colmap_text,
        write_transforms_json,
        write_tum,
    )
    from any4d.viz.exports_geometry import (
        scene_point_cloud,
        write_depth_npz,
        write_depth_png16,
        write_ply,
    )

    pipe = Any4DPipeline.from_pretrained(
        checkpoint or shipped_checkpoint(), text_encoder=text_encoder
    )
    sampler = pipe.sampler_config(sampler)
    search = SearchConfig() if search is None else search
    source = read_user_scene(
        path,
        cameras=cameras,
        intrinsics=parse_intrinsics(intrinsics),
        depth=depth,
        depth_scale=depth_scale,
    )
    shape = pipe.defaults
    clip = take_frames(source, start, stride, int(shape["num_frames"]))
    clip = resize_and_crop(clip, int(shape["height"]), int(shape["width"]))
    pipe.check_task(clip, task)
    result = pipe(
        clip, task=task, sampler=sampler, search=search, seed=seed, prompt=prompt, progress=progress
    )
    scene, skew = without_skew(result.scene)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scene.save(out / "scene.safetensors")
    save_clip_grid(scene, out / "grid.png")
    scene_video(scene, out / "video.mp4")
    names = [f"{i:06d}.png" for i in range(scene.num_frames)]
    for name, frame in zip(names, scene.rgb, strict=True):
        save_png((frame + 1) / 2, out / "frames" / name)
    if scene.depth is not None:
        write_depth_npz(out / "depth.npz", scene.depth[:, 0])
        for name, frame in zip(names, scene.depth, strict=True):
            write_depth_png16(out / "depth" / name, frame[0])
        if scene.cameras is not None:
            points, colors = scene_point_cloud(scene)
            write_ply(out / "points.ply", points, colors)
    if scene.cameras is not None:
        plot_cameras(out / "cameras.png", scene.cameras, image_size=(scene.height, scene.width))
        size = (scene.height, scene.width)
        cams = out / "cameras"
        write_colmap_text(cams / "colmap", scene.cameras, size, image_names=names)
        frames = [f"../frames/{n}" for n in names]
        write_transforms_json(cams / "transforms.json", scene.cameras, size, frames)
        write_tum(
            cams / "trajectory.tum",
            scene.cameras,
            timestamps=torch.arange(scene.num_frames, dtype=torch.float64) / scene.fps,
        )
        write_cameras_json(cams / "cameras.json", scene.cameras, size, fps=scene.fps)
    record = {
        "input": str(path),
        "task": str(result.task),
        "frames": {"start": start, "stride": stride, "count": scene.num_frames},
        "size": [scene.height, scene.width],
        **dataclasses.asdict(sampler),
        **dataclasses.asdict(search),
        "seed": seed,
        "prompt": prompt,
        "scores": None if result.scores is None else result.scores.tolist(),
        "best": result.best,
        "failures": result.failures,
        "skew_removed_px": skew,
        "units": result.units,
        "depth_units": {
            "depth": "the input's units (the scale of its observed depth)",
            "cameras": "the input's units (the scale of its observed camera path)",
        }.get(result.units, "relative (median depth about 1): the task observed no scale"),
    }
    (out / "result.json").write_text(json.dumps(record, indent=2))
    return out


def without_skew(scene: Scene) -> tuple[Scene, float]:
    """The scene with the nearest zero-skew intrinsics (``K[0, 1] = 0``) and the largest skew
    removed, in pixels (0.0 when there was none). Cameras recovered from predicted rays have a
    general upper-triangular K; COLMAP's PINHOLE, nerfstudio and our own exports hold none."""
    from any4d.geometry import Cameras

    if scene.cameras is None:
        return scene, 0.0
    K = scene.cameras.K
    skew = float(K[..., 0, 1].abs().max())
    if skew == 0.0:
        return scene, 0.0
    K = K.clone()
    K[..., 0, 1] = 0.0
    cameras = Cameras.unchecked(K, scene.cameras.c2w)
    return dataclasses.replace(scene, cameras=cameras), skew
