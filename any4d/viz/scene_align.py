"""A scene moved onto a reference by the similarity of its camera centres (for the viewer).

The similarity is the one the pose metrics fit: Umeyama's Sim(3) least squares of the centres,
frame ``i`` against frame ``i`` (``any4d.geometry.umeyama``), with ``align_cameras``' fallback
when the centres do not fix a rotation. Moving a whole scene by ``x ↦ s·R·x + t`` keeps every
camera rigid (``R ↦ R_s·R``, centre ``c ↦ s·R_s·c + t``) and scales its depth by ``s``: a pixel's
world point ``c + R·(D·K⁻¹·u)`` then maps to ``c' + R'·(s·D·K⁻¹·u)``, so the point clouds move
with the cameras.
"""

from __future__ import annotations

import dataclasses

from any4d.data.scene import Scene
from any4d.geometry import Similarity, umeyama
from any4d.geometry.cameras import Cameras


def camera_similarity(cameras: Cameras, reference: Cameras) -> Similarity:
    """The similarity that best maps ``cameras``' centres onto ``reference``'s (float64).

    cameras, reference: batch shape (N,), the same N. Umeyama's Sim(3) fit of the centres;
    centres that do not fix a rotation (fewer than 3, a static camera, a straight line) fall
    back to turning the first camera onto the reference's first, scaling by the ratio of the
    centres' RMS spreads (1 when either is static) and matching the centroids — exactly
    ``any4d.viz.align_cameras``, which applies the same similarity to the poses.
    """
    if len(cameras.shape) != 1 or cameras.shape != reference.shape:
        raise ValueError(
            f"cameras have batch shape {tuple(cameras.shape)} and reference "
            f"{tuple(reference.shape)} (expected the same (N,) to align frame by frame)"
        )
    source, target = cameras.centers.double().cpu(), reference.centers.double().cpu()
    try:
        return umeyama(source, target, with_scale=True)
    except ValueError:
        rotation = reference.R[0].double().cpu() @ cameras.R[0].double().cpu().T
        spread_source = (source - source.mean(0)).square().sum(-1).mean().sqrt()
        spread_target = (target - target.mean(0)).square().sum(-1).mean().sqrt()
        scale = float(spread_target / spread_source) if spread_source * spread_target > 0 else 1.0
        translation = target.mean(0) - scale * rotation @ source.mean(0)
        return Similarity(rotation, translation, scale)


def align_scene(scene: Scene, reference: Scene) -> Scene:
    """``scene`` moved onto ``reference`` by ``camera_similarity`` of their cameras.

    Both need cameras and the same number of frames. Returns a new Scene: cameras moved (still
    rigid, intrinsics unchanged), depth multiplied by the similarity's scale (0 stays invalid),
    RGB, text and fps unchanged.
    """
    for name, value in (("scene", scene), ("reference", reference)):
        if not isinstance(value, Scene) or value.cameras is None:
            raise ValueError(f"align needs {name} with cameras (got {value!r})")
    if scene.num_frames != reference.num_frames:
        raise ValueError(
            f"align: scene has {scene.num_frames} frames but reference has "
            f"{reference.num_frames} (expected the same, to align frame by frame)"
        )
    cameras = scene.cameras
    similarity = camera_similarity(cameras, reference.cameras)
    c2w = similarity.apply_to_poses(cameras.c2w.double().cpu()).to(cameras.c2w)
    depth = None if scene.depth is None else scene.depth * similarity.scale
    return dataclasses.replace(scene, cameras=Cameras.unchecked(cameras.K, c2w), depth=depth)
