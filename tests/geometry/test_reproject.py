import pytest
import torch

from any4d.geometry import (
    Cameras,
    look_at,
    photometric_error,
    pixel_grid,
    project,
    unproject,
    warp,
)
from tests.cameras_factory import random_cameras


def test_project_inverts_unproject():
    cams = random_cameras((3,), seed=0, height=6, width=7)
    depth = 1 + torch.rand(
        3, 1, 6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    uv, z = project(unproject(depth, cams), cams)
    torch.testing.assert_close(z, depth)
    torch.testing.assert_close(uv, pixel_grid(6, 7, dtype=torch.float64)[:2].expand(3, 2, 6, 7))


def test_warp_into_the_same_camera_is_the_identity():
    cams = random_cameras((2,), seed=1, height=6, width=7)
    image = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    warped, valid = warp(image, torch.full((2, 1, 6, 7), 2.0, dtype=torch.float64), cams, cams)
    assert valid.all()
    torch.testing.assert_close(warped, image)


def _plane_pair(shift_px: int, width: int = 12, height: int = 8):
    """Two cameras facing a fronto-parallel plane at z = 4, the second moved sideways so the
    plane's image shifts by exactly ``shift_px`` pixels."""
    f, depth = 10.0, 4.0
    c2w = torch.eye(4, dtype=torch.float64).expand(2, 4, 4).clone()
    c2w[1, 0, 3] = shift_px * depth / f  # baseline giving a disparity of shift_px
    cams = Cameras.from_intrinsics(f, f, width / 2, height / 2, c2w)
    return cams, torch.full((1, height, width), depth, dtype=torch.float64)


def test_warp_of_a_fronto_parallel_plane_is_a_pixel_shift():
    cams, depth = _plane_pair(shift_px=3)
    image = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # Target = camera 1 (moved right): its pixel u sees what camera 0 saw at u + 3.
    warped, valid = warp(image, depth, cams[0], cams[1])
    assert valid[..., :-3].all() and not valid[..., -3:].any()
    torch.testing.assert_close(warped[..., :-3], image[..., 3:])
    assert (warped[..., -3:] == 0).all()


def test_photometric_error_is_masked_mean_l1():
    warped = torch.zeros(2, 3, 2, 2)
    target = torch.ones(2, 3, 2, 2)
    target[0, :, 0, 0] = 5.0  # ignored: masked out
    valid = torch.ones(2, 1, 2, 2, dtype=torch.bool)
    valid[0, :, 0, 0] = False
    valid[1] = False
    error = photometric_error(warped, target, valid)
    assert error[0].item() == pytest.approx(1.0)
    assert error[1].item() == float("inf")
    with pytest.raises(ValueError, match="same"):
        photometric_error(warped, target[..., :1], valid)


def test_warp_rejects_mismatched_inputs():
    cams = random_cameras((2,), seed=3, height=4, width=4)
    image, depth = (
        torch.rand(2, 3, 4, 4, dtype=torch.float64),
        torch.ones(2, 1, 4, 4, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="tgt_depth"):
        warp(image, depth[:1], cams, cams)
    with pytest.raises(ValueError, match="src_cameras"):
        warp(image, depth, cams[:1], cams)
    with pytest.raises(ValueError, match="tgt_depth"):
        warp(image, depth.expand(2, 2, 4, 4), cams, cams)


def test_warp_marks_points_behind_the_source_camera_invalid():
    c2w = look_at(
        torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 8.0]], dtype=torch.float64),
        torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 9.0]], dtype=torch.float64),
    )
    cams = Cameras.from_intrinsics(5.0, 5.0, 2.0, 2.0, c2w)
    # camera 1 sits 8 m ahead of camera 0 looking the same way: a plane at 4 m is behind it.
    depth = torch.full((1, 4, 4), 4.0, dtype=torch.float64)
    _, valid = warp(torch.rand(3, 4, 4, dtype=torch.float64), depth, cams[1], cams[0])
    assert not valid.any()


def test_warp_with_source_depth_masks_occluded_pixels():
    cams, depth = _plane_pair(shift_px=3)
    image = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    src_depth = depth.clone()
    src_depth[..., :, 6:9] = 1.0  # an occluder in front of the plane, seen by the source only
    _, plain = warp(image, depth, cams[0], cams[1])
    warped, valid = warp(image, depth, cams[0], cams[1], src_depth=src_depth)
    # target column u looks up source column u + 3: columns 3–5 now hit the occluder.
    expected = plain.clone()
    expected[..., 3:6] = False
    assert torch.equal(valid, expected)
    torch.testing.assert_close(warped[..., :3], image[..., 3:6])
    with pytest.raises(ValueError, match="src_depth"):
        warp(image, depth, cams[0], cams[1], src_depth=src_depth[..., :4, :])


def test_warp_promotes_mixed_geometry_dtypes():
    cams, depth = _plane_pair(shift_px=2)
    image = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(5))  # float32
    expected, _ = warp(
        image, depth.float(), cams[0].to(dtype=torch.float32), cams[1].to(dtype=torch.float32)
    )
    for src, tgt, d in [
        (cams[0].to(dtype=torch.float32), cams[1].to(dtype=torch.float32), depth),  # f64 depth
        (cams[0].to(dtype=torch.float32), cams[1], depth.float()),  # f64 target cameras
        (cams[0], cams[1].to(dtype=torch.float32), depth.float()),
    ]:
        warped, valid = warp(image, d, src, tgt)
        assert warped.dtype == image.dtype
        torch.testing.assert_close(warped, expected)


def test_unproject_and_photometric_error_reject_misshapen_inputs():
    cams = random_cameras((3,), seed=6, height=4, width=4)
    with pytest.raises(ValueError, match=r"depth has shape \(3, 4, 4\)"):
        unproject(torch.ones(3, 4, 4, dtype=torch.float64), cams)  # channel dim forgotten
    warped = torch.zeros(3, 3, 2, 2)
    with pytest.raises(ValueError, match=r"valid has shape \(3, 2, 2\)"):
        photometric_error(warped, warped, torch.ones(3, 2, 2, dtype=torch.bool))
