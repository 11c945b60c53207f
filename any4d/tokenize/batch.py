"""A batch of scenes: checks that they can share grids, and each clip's normalisation frame.

The frame of a clip (DESIGN §1): the reference is the scene's first camera (identity for a scene
without cameras: then the cameras are generated, and the first of them is the identity by
construction); the scale ``s`` follows the scale rule of ``any4d.geometry.observed_scale`` —
a function of what the sample **observes** (``Observed``): its observed depth, else its
observed moving cameras, else relative units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from any4d.data.scene import Scene
from any4d.geometry import ClipFrame, observed_scale

# Stream → the Scene modality that gives it (rays come from the cameras).
STREAM_MODALITY = {"rgb": "rgb", "depth": "depth", "ray_d": "cameras", "ray_m": "cameras"}


@dataclass(frozen=True)
class Observed:
    """Which pixel frames of a sample are observed (clean), per modality.

    depth:   frames whose depth is observed (a mask's clean depth frames).
    cameras: frames whose rays are observed (a mask's clean ``ray_d`` frames).
    ``Observed.everything(scene)``: all that a scene has (e.g. encoding ground truth to decode
    it again, where every rule gives an exact round trip).
    """

    depth: frozenset[int] = frozenset()
    cameras: frozenset[int] = frozenset()

    @classmethod
    def of(cls, mask, num_frames: int) -> Observed:
        """What a mask (``any4d.diffusion.Mask``: anything with ``clean_frames(stream, T)``)
        observes in a clip of ``num_frames`` frames: its clean depth and ``ray_d`` frames."""
        return cls(mask.clean_frames("depth", num_frames), mask.clean_frames("ray_d", num_frames))

    @classmethod
    def everything(cls, scene: Scene) -> Observed:
        frames = frozenset(range(scene.num_frames))
        return cls(
            depth=frames if scene.depth is not None else frozenset(),
            cameras=frames if scene.cameras is not None else frozenset(),
        )


def check_batch(scenes: Scene | Sequence[Scene]) -> list[Scene]:
    """One scene or a sequence → a non-empty list of scenes that share T, H, W, dtype, device."""
    scenes = [scenes] if isinstance(scenes, Scene) else list(scenes)
    if not scenes or not all(isinstance(s, Scene) for s in scenes):
        raise ValueError(
            f"scenes is {[type(s).__name__ for s in scenes]} (expected a Scene or a non-empty "
            "sequence of Scenes)"
        )
    first = scenes[0]
    for i, scene in enumerate(scenes[1:], start=1):
        if scene.rgb.shape != first.rgb.shape:
            raise ValueError(
                f"scenes[{i}] has rgb {tuple(scene.rgb.shape)} but scenes[0] has "
                f"{tuple(first.rgb.shape)} (expected the same (T, 3, H, W) across a batch)"
            )
        if (scene.rgb.dtype, scene.rgb.device) != (first.rgb.dtype, first.rgb.device):
            raise ValueError(
                f"scenes[{i}] is {scene.rgb.dtype} on {scene.rgb.device} but scenes[0] is "
                f"{first.rgb.dtype} on {first.rgb.device} (expected one dtype and device)"
            )
    return scenes


def fit_frames(
    scenes: list[Scene], observed: Sequence[Observed] | None = None, targets: bool = False
) -> tuple[ClipFrame, tuple[str, ...]]:
    """The ``ClipFrame`` of each scene, batch (B,), in the scenes' dtype, and its units.

    observed: per scene, what it observes (default: everything it has).
    targets:  the scenes' unobserved data is ground truth (training): relative units are then
              the target depth's median (else the camera rule on the target cameras). At
              inference (False) nothing unobserved is known and relative units have ``s = 1``.
    Returns the frame and, per scene, one of ``any4d.geometry.UNITS``.
    """
    if observed is not None and len(observed) != len(scenes):
        raise ValueError(f"observed has {len(observed)} entries for {len(scenes)} scenes")
    dtype, device = scenes[0].rgb.dtype, scenes[0].rgb.device
    references, scales, units = [], [], []
    for i, scene in enumerate(scenes):
        seen = Observed.everything(scene) if observed is None else observed[i]
        scale, unit = observed_scale(**_rule_inputs(scene, seen, targets))
        if scene.cameras is not None:
            reference = scene.cameras.c2w[0]
        else:
            reference = torch.eye(4, dtype=dtype, device=device)
        references.append(reference.to(dtype))
        scales.append(scale.to(dtype=dtype, device=device))
        units.append(unit)
    frame = ClipFrame(reference=torch.stack(references), scale=torch.stack(scales))
    return frame, tuple(units)


def _rule_inputs(scene: Scene, seen: Observed, targets: bool) -> dict:
    """``observed_scale``'s arguments for one scene: its observed and (in training) target data."""
    frames = range(scene.num_frames)
    depth_frames = [f for f in frames if f in seen.depth] if scene.depth is not None else []
    camera_frames = [f for f in frames if f in seen.cameras] if scene.cameras is not None else []
    inputs = {}
    if depth_frames:
        inputs["depth"] = scene.depth[depth_frames]
    if camera_frames:
        inputs["cameras"] = scene.cameras[camera_frames]
        inputs["seconds"] = (camera_frames[-1] - camera_frames[0]) / float(scene.fps)
    if targets:
        inputs["target_depth"] = scene.depth
        inputs["target_cameras"] = scene.cameras
        inputs["target_seconds"] = (scene.num_frames - 1) / float(scene.fps)
    return inputs


def frame_rows(frame: ClipFrame, rows: list[int]) -> ClipFrame:
    """The frames of some clips of a batch."""
    return ClipFrame(reference=frame.reference[rows], scale=frame.scale[rows])
