import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from any4d.geometry import plucker_rays, rays_to_cameras
from tests.cameras_factory import random_cameras


def _rotation_error_deg(a, b):
    cos = ((a.transpose(-1, -2) @ b).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    height=st.integers(3, 20),
    width=st.integers(3, 20),
    skew=st.booleans(),
)
def test_rays_to_cameras_inverts_plucker_rays(seed, height, width, skew):
    cams = random_cameras((2, 2), seed=seed, height=height, width=width, skew=skew)
    recovered = rays_to_cameras(plucker_rays(cams, height, width))
    assert recovered.shape == (2, 2)
    torch.testing.assert_close(recovered.K, cams.K, rtol=1e-7, atol=1e-6)
    torch.testing.assert_close(recovered.c2w, cams.c2w, rtol=1e-7, atol=1e-7)
    # ... and the recovered cameras give back the same rays.
    torch.testing.assert_close(
        plucker_rays(recovered, height, width), plucker_rays(cams, height, width)
    )


def test_rays_to_cameras_float32_recovers_k_and_pose_to_1e5():
    cams = random_cameras((16,), seed=0, height=30, width=40, dtype=torch.float32)
    recovered = rays_to_cameras(plucker_rays(cams, 30, 40))
    assert recovered.dtype == torch.float32
    torch.testing.assert_close(recovered.K, cams.K, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(recovered.c2w, cams.c2w, rtol=1e-5, atol=1e-5)


def test_rays_to_cameras_degrades_smoothly_with_noise():
    cams = random_cameras((32,), seed=1, height=24, width=32)
    rays = plucker_rays(cams, 24, 32)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(rays.shape, generator=g, dtype=rays.dtype)
    errors = []
    for sigma in (1e-4, 1e-3, 1e-2):
        rec = rays_to_cameras(rays + sigma * noise)
        errors.append(
            torch.stack(
                [
                    _rotation_error_deg(rec.R, cams.R).mean(),
                    (rec.centers - cams.centers).norm(dim=-1).mean(),
                    ((rec.focal - cams.focal).abs() / cams.focal).mean(),
                ]
            )
        )
    errors = torch.stack(errors)  # (noise level, metric)
    # Each tenfold increase of the noise raises every error by roughly tenfold (linear regime) …
    ratios = errors[1:] / errors[:-1]
    assert ((ratios > 3) & (ratios < 30)).all(), ratios
    # … and at σ = 1e-2 (≈0.6° of direction noise) the cameras are still close.
    rotation_deg, center, focal = errors[-1]
    assert rotation_deg < 0.5 and center < 0.05 and focal < 0.02, errors[-1]


def test_rays_to_cameras_weights_ignore_corrupted_pixels():
    cams = random_cameras((3,), seed=2, height=16, width=16)
    rays = plucker_rays(cams, 16, 16)
    corrupted = rays.clone()
    g = torch.Generator().manual_seed(1)
    corrupted[..., :8, :] += 0.3 * torch.randn(
        corrupted[..., :8, :].shape, generator=g, dtype=rays.dtype
    )
    weights = torch.ones(16, 16, dtype=rays.dtype)
    weights[:8] = 0
    clean = rays_to_cameras(corrupted, weights)
    torch.testing.assert_close(clean.c2w, cams.c2w)
    torch.testing.assert_close(clean.K, cams.K)
    naive = rays_to_cameras(corrupted)
    assert (naive.c2w - cams.c2w).abs().max() > 0.05


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: r[..., :5, :, :], r"expected \(\.\.\., 6, H, W\)"),
        (lambda r: r[..., :1, :3], r"at least 2 × 2 pixels"),
        (lambda r: r[..., :1, :], r"1×6 grid \(expected at least 2 × 2 pixels\)"),
        (lambda r: r.index_fill(-1, torch.tensor([2]), float("nan")), "NaN or inf"),
        (
            lambda r: torch.cat([torch.zeros_like(r[..., :3, :, :]), r[..., 3:, :, :]], -3),
            "zero-length",
        ),
    ],
)
def test_rays_to_cameras_rejects_malformed_rays(make, message):
    rays = plucker_rays(random_cameras((2,), seed=3, height=6, width=6), 6, 6)
    with pytest.raises(ValueError, match=message):
        rays_to_cameras(make(rays))


def test_rays_to_cameras_rejects_parallel_rays():
    rays = plucker_rays(random_cameras((), seed=4, height=6, width=6), 6, 6)
    parallel = rays.clone()
    parallel[:3] = torch.tensor([0.0, 0.0, 1.0], dtype=rays.dtype)[:, None, None]
    with pytest.raises(ValueError, match="parallel"):
        rays_to_cameras(parallel)


def test_rays_to_cameras_rejects_coplanar_directions():
    rays = plucker_rays(random_cameras((), seed=5, height=6, width=6), 6, 6)
    flat = rays.clone()
    flat[2] = 0.0  # every direction in the xy plane: no pinhole camera sees that
    flat[:3] = flat[:3] / flat[:3].norm(dim=0, keepdim=True)
    flat[3:] = 0.0
    with pytest.raises(ValueError, match="homography"):
        rays_to_cameras(flat)


def test_rays_to_cameras_rejects_a_mirrored_ray_map():
    rays = plucker_rays(random_cameras((), seed=6, height=8, width=8), 8, 8)
    with pytest.raises(ValueError, match="mirrored"):
        rays_to_cameras(rays.flip(-1))


def test_rays_to_cameras_rejects_bad_weights():
    rays = plucker_rays(random_cameras((2,), seed=7, height=6, width=6), 6, 6)
    with pytest.raises(ValueError, match="broadcastable"):
        rays_to_cameras(rays, torch.ones(5, 6))
    with pytest.raises(ValueError, match="≥ 0"):
        rays_to_cameras(rays, -torch.ones(6, 6))
    with pytest.raises(ValueError, match="fewer than 4 positive"):
        rays_to_cameras(rays, torch.zeros(6, 6))
    with pytest.raises(ValueError, match="weights is a ndarray"):
        rays_to_cameras(rays, np.ones((6, 6)))


def test_rays_on_a_latent_grid_give_back_the_strided_intrinsics():
    # The paper's shape: 240 × 320 pixels, Wan VAE stride 8 → rays on a 30 × 40 latent grid.
    cams = random_cameras((4,), seed=8, height=240, width=320, dtype=torch.float32)
    latent = cams.strided(8)
    recovered = rays_to_cameras(plucker_rays(latent, 30, 40))
    torch.testing.assert_close(recovered.K, latent.K, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(recovered.c2w, cams.c2w, rtol=1e-5, atol=1e-5)
    # Back on the pixel grid: stride the recovered intrinsics up again.
    torch.testing.assert_close(recovered.resized(8.0).K, cams.K, rtol=1e-5, atol=1e-4)
