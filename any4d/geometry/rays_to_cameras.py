"""Cameras from Plücker ray maps: the inverse of ``plucker_rays``.

Predicted rays are noisy, so both steps are weighted least squares over all pixels:

1. **Centre.** Every ray ``(d, m)`` is the line ``{p + λd}`` with ``p = d × m`` (unit ``d``).
   The point ``c`` closest to all lines minimises ``Σ w ‖(I − d dᵀ)(c − p)‖²``, i.e.
   ``(Σ w (I − d dᵀ)) c = Σ w p`` (``p ⟂ d`` makes the right side simply ``Σ w p``).
2. **Rotation and intrinsics.** A pixel ``x = (u + ½, v + ½, 1)`` and its direction satisfy
   ``x ∝ K Rᵀ d``: the directions map to the pixels by the homography ``H = K Rᵀ``. ``H`` is
   found by the direct linear transform (DLT, with Hartley normalisation of the pixels) and split
   by an RQ decomposition into an upper-triangular ``K`` with positive focal lengths and a proper
   rotation ``Rᵀ``. The sign of ``H`` is fixed by cheirality (rays point forward, ``z > 0``).

All solves run in float64 and the result is cast back to the rays' dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.geometry.rays import check_ray_map, pixel_grid
from any4d.geometry.vectors import cross, norm

# Relative eigenvalue below which a least-squares system counts as singular.
_SINGULAR = 1e-10


def rays_to_cameras(rays: Tensor, weights: Tensor | None = None) -> Cameras:
    """Recover the pinhole cameras that produced ray maps.

    rays:    (..., 6, H, W) Plücker rays ``(d, m)`` on an ``H × W`` pixel grid. Directions need
             not be unit length (they are normalised first); moments are read as ``o × d`` of
             the unit direction, as ``plucker_rays`` writes them (a predicted ``m`` is not
             rescaled by a predicted ``|d|``).
    weights: optional (..., H, W) non-negative per-pixel confidence (broadcastable, e.g. (H, W)
             for one mask shared by every map), so that unreliable rays count less.

    Returns ``Cameras`` with batch shape (...) and intrinsics for the ``H × W`` grid (a latent
    grid's, for latent rays: ``Cameras.resized`` goes back to pixels). Rays of a normalised clip
    (moments ÷ clip scale ``s``, DESIGN §1) give centres in units of ``s``. Raises
    ``ValueError`` on non-finite rays, bad weights, or rays that do not determine a camera
    (zero directions, all rays parallel, fewer than 4 pixels with weight).
    """
    check_ray_map(rays)
    height, width = rays.shape[-2:]
    if height < 2 or width < 2:
        # a single row or column of pixels is collinear: it cannot determine K and R
        raise ValueError(f"rays has a {height}×{width} grid (expected at least 2 × 2 pixels)")
    if not torch.isfinite(rays).all():
        raise ValueError("rays contains NaN or inf (expected finite Plücker coordinates)")

    batch = rays.shape[:-3]
    x = rays.double().flatten(-2)  # (..., 6, N)
    d, m = x[..., :3, :], x[..., 3:, :]
    length = norm(d, dim=-2, keepdim=True)  # (..., 1, N)
    if (length < 1e-8).any():
        raise ValueError("rays has zero-length directions (expected unit or non-zero d)")
    d = d / length

    if weights is None:
        w = torch.ones(*batch, height * width, dtype=x.dtype, device=x.device)
    else:
        w = _check_weights(weights, batch, height, width, x.device).flatten(-2)  # (..., N)
    w = w / w.sum(-1, keepdim=True)

    center = _closest_point_to_lines(d, m, w)  # (..., 3)
    homography = _directions_to_pixels_homography(d, w, height, width)  # (..., 3, 3)
    K, w2c_rotation = _rq_positive(homography)

    c2w = torch.zeros(*batch, 4, 4, dtype=x.dtype, device=x.device)
    c2w[..., :3, :3] = w2c_rotation.transpose(-1, -2)
    c2w[..., :3, 3] = center
    c2w[..., 3, 3] = 1
    return Cameras(K.to(rays.dtype), c2w.to(rays.dtype))


def _check_weights(
    weights: Tensor, batch: torch.Size, height: int, width: int, device: torch.device
) -> Tensor:
    if not isinstance(weights, Tensor):
        raise ValueError(f"weights is a {type(weights).__name__} (expected a tensor (..., H, W))")
    try:
        w = torch.broadcast_to(weights.to(device), (*batch, height, width)).double()
    except RuntimeError:
        raise ValueError(
            f"weights has shape {tuple(weights.shape)} (expected broadcastable to "
            f"{(*batch, height, width)})"
        ) from None
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and ≥ 0")
    if ((w > 0).flatten(-2).sum(-1) < 4).any():
        raise ValueError("weights has fewer than 4 positive pixels in some map (expected ≥ 4)")
    return w


def _closest_point_to_lines(d: Tensor, m: Tensor, w: Tensor) -> Tensor:
    """Weighted least-squares point nearest to the lines ``(d, m)``.

    d: (..., 3, N) unit directions, m: (..., 3, N) moments, w: (..., N) weights summing to 1.
    Returns (..., 3).
    """
    points = cross(d, m, dim=-2)  # closest point of each line to the origin
    eye = torch.eye(3, dtype=d.dtype, device=d.device)
    # Σ w (I − d dᵀ) = I − Σ w d dᵀ because the weights sum to one.
    system = eye - (w[..., None, :] * d) @ d.transpose(-1, -2)
    rhs = (points @ w[..., :, None]).squeeze(-1)
    eigenvalues = torch.linalg.eigvalsh(system)  # ascending
    if (eigenvalues[..., 0] < 1e-9 * eigenvalues[..., -1].clamp_min(1e-300)).any():
        raise ValueError(
            "rays are (nearly) all parallel: the camera centre is undetermined "
            "(expected rays through a common centre in different directions)"
        )
    return torch.linalg.solve(system, rhs.unsqueeze(-1)).squeeze(-1)


def _directions_to_pixels_homography(d: Tensor, w: Tensor, height: int, width: int) -> Tensor:
    """Weighted DLT for ``H`` with ``x ∝ H d``.

    d: (..., 3, N) unit directions; w: (..., N). Returns (..., 3, 3) with an arbitrary positive
    scale, signed so that ``(H d)_z > 0`` (points in front of the camera).
    """
    pixels = pixel_grid(height, width, dtype=d.dtype, device=d.device).flatten(1)  # (3, N)
    # Hartley normalisation: centre the pixels and scale them to about unit size.
    scale = 2.0 / max(height, width)
    normalise = torch.tensor(
        [[scale, 0.0, -scale * width / 2], [0.0, scale, -scale * height / 2], [0.0, 0.0, 1.0]],
        dtype=d.dtype,
        device=d.device,
    )
    u, v = (normalise @ pixels)[:2]  # (N,) each

    # x × (H d) = 0 gives two rows per pixel in the 9 entries of H (row-major):
    #   a = [dᵀ, 0, −u dᵀ],  b = [0, dᵀ, −v dᵀ].
    # The normal matrix Σ w (a aᵀ + b bᵀ) is assembled from four weighted moment matrices
    # S(f) = Σ w f d dᵀ instead of materialising the (2N, 9) system.
    wd, dt = w[..., None, :] * d, d.transpose(-1, -2)  # (..., 3, N), (..., N, 3)
    s1, su, sv, suv = (wd * f @ dt for f in (1.0, u, v, u * u + v * v))  # (..., 3, 3) each
    zero = torch.zeros_like(s1)
    normal = torch.cat(
        [
            torch.cat([s1, zero, -su], -1),
            torch.cat([zero, s1, -sv], -1),
            torch.cat([-su, -sv, suv], -1),
        ],
        -2,
    )  # (..., 9, 9)
    eigenvalues, eigenvectors = torch.linalg.eigh(normal)
    if (eigenvalues[..., 1] < _SINGULAR * eigenvalues[..., -1].clamp_min(1e-300)).any():
        raise ValueError(
            "rays do not determine a homography (degenerate directions, e.g. all equal or "
            "coplanar); expected one ray per pixel of a pinhole camera"
        )
    h_norm = eigenvectors[..., :, 0].reshape(*d.shape[:-2], 3, 3)
    homography = torch.linalg.solve(normalise, h_norm)  # undo the pixel normalisation

    # Cheirality: with x = (u, v, 1), H d must equal +λ x with λ > 0 for rays in front.
    forward = ((homography[..., 2:, :] @ d) @ w[..., :, None])[..., 0, 0]  # (...)
    return homography * torch.where(forward < 0, -1.0, 1.0)[..., None, None]


def _rq_positive(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """RQ decomposition ``matrix = K Q`` with ``K`` upper triangular, positive diagonal,
    ``K[2, 2] = 1``, and ``Q`` a rotation.

    matrix: (..., 3, 3), signed so that a positive scale of ``K Q`` exists.
    Returns K (..., 3, 3) and Q (..., 3, 3).
    """
    # RQ from QR: with the row-reversal permutation P, (P A)ᵀ = Q' R' gives A = (P R'ᵀ P)(P Q'ᵀ).
    flip = torch.flip(torch.eye(3, dtype=matrix.dtype, device=matrix.device), dims=[0])
    q_prime, r_prime = torch.linalg.qr((flip @ matrix).transpose(-1, -2))
    upper = flip @ r_prime.transpose(-1, -2) @ flip
    ortho = flip @ q_prime.transpose(-1, -2)
    signs = torch.sign(torch.diagonal(upper, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    upper = upper * signs[..., None, :]  # K D
    ortho = ortho * signs[..., :, None]  # D Q  (D² = I keeps the product)
    det = torch.linalg.det(ortho)
    if (det < 0).any():
        # A positive-diagonal K with a reflection: the rays are mirrored, not a pinhole camera.
        raise ValueError(
            "rays imply a mirrored camera (rotation with det −1); expected rays of a pinhole "
            "camera in OpenCV axes"
        )
    K = upper / upper[..., 2:, 2:]
    return K, ortho
