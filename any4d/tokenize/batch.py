"""A batch of scenes: checks that they can share grids, and each clip's normalisation frame.

The frame of a clip (DESIGN §1): with cameras, ``ClipFrame.fit`` — reference = the first camera,
``s`` = the median valid depth, or the trajectory rule without depth. A clip without cameras has
no pose to be relative to, so its reference is the identity; ``s`` is then the median valid
depth, or 1 without depth either (nothing to scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from any4d.data.scene import Scene
from any4d.geometry import ClipFrame, clip_scale


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


def fit_frames(scenes: list[Scene]) -> ClipFrame:
    """The ``ClipFrame`` of each scene, batch (B,), in the scenes' dtype (module docstring)."""
    dtype, device = scenes[0].rgb.dtype, scenes[0].rgb.device
    references, scales = [], []
    for scene in scenes:
        if scene.cameras is not None:
            frame = ClipFrame.fit(scene.cameras, scene.depth)
            reference, scale = frame.reference, frame.scale
        else:
            reference = torch.eye(4, dtype=dtype, device=device)
            if scene.depth is not None:
                scale = clip_scale(scene.depth)  # median valid depth (1 when none is valid)
            else:
                scale = torch.ones((), dtype=dtype, device=device)
        references.append(reference.to(dtype))
        scales.append(scale.to(dtype))
    return ClipFrame(reference=torch.stack(references), scale=torch.stack(scales))


def frame_rows(frame: ClipFrame, rows: list[int]) -> ClipFrame:
    """The frames of some clips of a batch."""
    return ClipFrame(reference=frame.reference[rows], scale=frame.scale[rows])
