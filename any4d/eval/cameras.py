"""Cameras for evaluation from predicted ray maps.

A predicted Plücker ray map is turned into cameras by ``any4d.geometry.rays_to_cameras``
(weighted least squares over pixels); the model's per-pixel confidence, when it has one, is the
weight, so unreliable rays count less. The resulting ``c2w`` are the input of ``pose_metrics``.

Rays of a normalised clip (moments divided by the clip scale ``s``, DESIGN §1) give camera
centres in units of ``s``: the pose metrics do not care, because their Sim(3) alignment fits the
scale. Intrinsics come out for the ray map's own grid (a latent grid's, for latent rays); use
``Cameras.resized`` to go back to pixels.
"""

from __future__ import annotations

from torch import Tensor

from any4d.geometry import Cameras, rays_to_cameras


def cameras_from_rays(rays: Tensor, confidence: Tensor | None = None) -> Cameras:
    """Cameras that best explain predicted ray maps.

    rays:       (..., 6, H, W) Plücker rays ``(d, m)``, e.g. (T, 6, H, W) for one clip.
    confidence: optional (..., H, W) per-pixel weights ≥ 0, broadcastable to the rays' maps
                (e.g. (T, H, W), or (H, W) for one mask shared by every frame); at least 4
                positive pixels per map.

    Returns ``Cameras`` with batch shape (...): ``.c2w`` (..., 4, 4) camera-to-world poses
    (OpenCV axes) and ``.K`` (..., 3, 3) intrinsics on the ``H × W`` grid. Raises
    ``ValueError`` when a map does not determine a camera (see ``rays_to_cameras``).
    """
    if confidence is not None:
        if not isinstance(confidence, Tensor):
            raise ValueError(
                f"confidence is a {type(confidence).__name__} (expected a tensor (..., H, W))"
            )
        confidence = confidence.to(device=rays.device)
    return rays_to_cameras(rays, confidence)
