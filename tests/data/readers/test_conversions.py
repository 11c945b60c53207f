"""Each unit and axis conversion on its own, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from any4d.data.readers.conversions import (
    centimetres_to_metres,
    homogeneous,
    intrinsics_matrix,
    invalid_to_zero,
    inverse_depth_to_metres,
    millimetres_to_metres,
    normalised_to_pixel_intrinsics,
    omniworld_depth_to_metres,
    opengl_to_opencv,
    pose_from_quaternion,
    quaternion_to_rotation,
    rescale_intrinsics,
    uint16_fraction_to_metres,
    w2c_to_c2w,
)
from tests.cameras_factory import random_cameras


def test_w2c_to_c2w_inverts_the_pose():
    c2w = random_cameras((4,), seed=0).c2w
    w2c = torch.linalg.inv(c2w)
    assert torch.allclose(w2c_to_c2w(w2c), c2w, atol=1e-12)
    # the camera centre is −Rᵀt of the w2c
    R, t = w2c[:, :3, :3], w2c[:, :3, 3:]
    assert torch.allclose(w2c_to_c2w(w2c)[:, :3, 3:], -R.transpose(1, 2) @ t, atol=1e-12)


def test_homogeneous_pads_3x4_poses():
    pose = torch.arange(12.0).reshape(3, 4)
    out = homogeneous(pose)
    assert out.shape == (4, 4) and torch.equal(out[3], torch.tensor([0, 0, 0, 1.0]).double())
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3, 4\)"):
        homogeneous(torch.zeros(4, 4))


def test_opengl_to_opencv_flips_camera_y_and_z_only():
    c2w_cv = random_cameras((3,), seed=1).c2w
    c2w_gl = c2w_cv.clone()
    c2w_gl[:, :3, 1:3] *= -1  # an OpenGL camera looks down −z with y up
    out = opengl_to_opencv(c2w_gl)
    assert torch.allclose(out, c2w_cv, atol=1e-12)
    assert torch.equal(out[:, :3, 3], c2w_gl[:, :3, 3])  # the centre does not move
    # a point in front of the OpenGL camera (z < 0) is in front of the OpenCV one (z > 0)
    point_gl = torch.tensor([0.1, 0.2, -2.0, 1.0], dtype=torch.float64)
    world = c2w_gl[0] @ point_gl
    assert (torch.linalg.inv(out[0]) @ world)[2] > 0


@pytest.mark.parametrize("scalar_first", [True, False])
def test_quaternion_to_rotation_matches_scipy_in_both_orders(scalar_first):
    rotations = Rotation.random(5, random_state=0)
    xyzw = rotations.as_quat()
    q = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1) if scalar_first else xyzw
    out = quaternion_to_rotation(torch.tensor(q) * 3.0, scalar_first)  # unnormalised input
    assert torch.allclose(out, torch.tensor(rotations.as_matrix()), atol=1e-12)


def test_pose_from_quaternion_places_translation_in_the_last_column():
    q = torch.tensor([math.cos(0.3), 0, 0, math.sin(0.3)], dtype=torch.float64)  # wxyz, about z
    pose = pose_from_quaternion(q, torch.tensor([1.0, 2.0, 3.0]), scalar_first=True)
    assert torch.allclose(pose[:3, 3], torch.tensor([1.0, 2.0, 3.0]).double())
    assert math.isclose(float(pose[0, 0]), math.cos(0.6), abs_tol=1e-12)


def test_normalised_to_pixel_intrinsics_scales_rows_by_width_and_height():
    K = intrinsics_matrix(0.9, 1.2, 0.5, 0.45)
    out = normalised_to_pixel_intrinsics(K, width=640, height=360)
    expected = intrinsics_matrix(0.9 * 640, 1.2 * 360, 0.5 * 640, 0.45 * 360)
    assert torch.allclose(out, expected)


def test_rescale_intrinsics_follows_the_image_size():
    K = intrinsics_matrix(500.0, 510.0, 480.0, 270.0)
    out = rescale_intrinsics(K, (540, 960), (270, 480))
    assert torch.allclose(out, intrinsics_matrix(250.0, 255.0, 240.0, 135.0))


def test_millimetres_to_metres():
    assert torch.allclose(
        millimetres_to_metres(torch.tensor([0, 1500, 65535])), torch.tensor([0.0, 1.5, 65.535])
    )


def test_centimetres_to_metres():
    assert torch.allclose(
        centimetres_to_metres(torch.tensor([0, 150, 8000])), torch.tensor([0.0, 1.5, 80.0])
    )


def test_uint16_fraction_to_metres_spans_the_full_scale():
    out = uint16_fraction_to_metres(torch.tensor([0, 65535, 6553]), full_scale=1000.0)
    assert torch.allclose(out, torch.tensor([0.0, 1000.0, 6553 / 65535 * 1000]))


def test_inverse_depth_to_metres_inverts_and_zeroes_invalid_codes():
    inverse = torch.tensor([0.5, 0.0, float("nan"), 0.005, -1.0, float("inf")])
    out = inverse_depth_to_metres(inverse, max_depth=100.0)
    assert torch.allclose(out, torch.tensor([2.0, 0.0, 0.0, 0.0, 0.0, 0.0]))


def test_omniworld_depth_to_metres_matches_their_formula_and_masks():
    code = torch.tensor([0, 50, 52000, 65535, 65501])
    out = omniworld_depth_to_metres(code)
    d = 52000 / 65535
    assert math.isclose(float(out[2]), d / (1000 - d * 999) / 0.004, rel_tol=1e-6)
    assert out[0] == 0 and out[1] == 0  # too close (d < 0.0015)
    assert out[3] == 0 and out[4] == 0  # sky (d > 65500 / 65535)


def test_invalid_to_zero_also_clears_non_finite_values():
    depth = torch.tensor([1.0, 2.0, float("nan"), float("inf")])
    out = invalid_to_zero(depth, torch.tensor([False, True, False, False]))
    assert torch.equal(out, torch.tensor([1.0, 0.0, 0.0, 0.0]))
