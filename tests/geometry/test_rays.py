import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from any4d.geometry import Cameras, pixel_grid, plucker_rays
from tests.cameras_factory import random_cameras


def test_pixel_grid_samples_pixel_centres():
    grid = pixel_grid(2, 3, dtype=torch.float64)
    assert grid.shape == (3, 2, 3)
    torch.testing.assert_close(grid[:, 1, 2], torch.tensor([2.5, 1.5, 1.0], dtype=torch.float64))


def test_plucker_rays_of_a_known_camera():
    # Camera at (1, 2, 3) rotated 90° about y: camera z (forward) = world +x.
    c2w = torch.tensor(
        [[0.0, 0, 1, 1], [0, 1, 0, 2], [-1, 0, 0, 3], [0, 0, 0, 1]], dtype=torch.float64
    )
    cams = Cameras.from_intrinsics(2.0, 4.0, 1.5, 1.0, c2w)
    rays = plucker_rays(cams, 2, 3)  # (6, 2, 3)
    # Pixel (u=0, v=1): centre (0.5, 1.5) → camera (−0.5, 0.125, 1) → world (1, 0.125, 0.5).
    d = torch.tensor([1.0, 0.125, 0.5], dtype=torch.float64)
    d = d / d.norm()
    torch.testing.assert_close(rays[:3, 1, 0], d)
    torch.testing.assert_close(rays[3:, 1, 0], torch.linalg.cross(c2w[:3, 3], d))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(1, 9), width=st.integers(1, 9))
def test_plucker_rays_are_unit_and_orthogonal_for_any_grid(seed, height, width):
    cams = random_cameras((2, 3), seed=seed, height=height, width=width)
    rays = plucker_rays(cams, height, width)
    assert rays.shape == (2, 3, 6, height, width)
    d, m = rays[..., :3, :, :], rays[..., 3:, :, :]
    torch.testing.assert_close(d.norm(dim=-3), torch.ones_like(d[..., 0, :, :]))
    torch.testing.assert_close((d * m).sum(-3), torch.zeros_like(d[..., 0, :, :]))
    # Every ray passes through its camera centre: o × d = m.
    o = cams.centers[..., :, None, None].expand_as(d)
    torch.testing.assert_close(torch.linalg.cross(o, d, dim=-3), m)


def test_plucker_moments_move_with_the_origin():
    cams = random_cameras((2,), seed=3)
    shifted = Cameras(cams.K, cams.c2w.clone())
    shifted.c2w[..., :3, 3] += torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    a, b = plucker_rays(cams, 4, 5), plucker_rays(shifted, 4, 5)
    torch.testing.assert_close(a[..., :3, :, :], b[..., :3, :, :])
    assert (a[..., 3:, :, :] - b[..., 3:, :, :]).abs().max() > 0.1
