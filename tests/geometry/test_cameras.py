import pytest
import torch
import torch.nn.functional as F

from any4d.geometry import Cameras, look_at, plucker_rays, ray_directions, rigid_inverse
from tests.cameras_factory import random_cameras


def _valid_parts(n=2):
    cams = random_cameras((n,), seed=0, dtype=torch.float32)
    return cams.K.clone(), cams.c2w.clone()


def test_w2c_inverts_c2w():
    cams = random_cameras((3, 4), seed=1)
    eye = torch.eye(4, dtype=torch.float64).expand(3, 4, 4, 4)
    torch.testing.assert_close(cams.w2c @ cams.c2w, eye)
    torch.testing.assert_close(rigid_inverse(cams.c2w), torch.linalg.inv(cams.c2w))


def test_centers_are_the_translation_and_map_to_the_camera_origin():
    cams = random_cameras((5,), seed=2)
    origin = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(cams.centers, (cams.c2w @ origin)[..., :3])


def test_k_inv_inverts_k_with_skew():
    cams = random_cameras((4,), seed=3, skew=True)
    torch.testing.assert_close(
        cams.K_inv @ cams.K, torch.eye(3, dtype=torch.float64).expand(4, 3, 3)
    )


def test_indexing_moves_and_stacking_keep_fields_together():
    cams = random_cameras((2, 5), seed=4)
    assert cams.shape == (2, 5) and len(cams) == 2
    sub = cams[1, ::2]
    assert sub.shape == (3,)
    torch.testing.assert_close(sub.c2w, cams.c2w[1, ::2])
    torch.testing.assert_close(sub.K, cams.K[1, ::2])
    moved = cams.to(dtype=torch.float32)
    assert moved.K.dtype == moved.c2w.dtype == torch.float32
    assert Cameras.stack([cams[0], cams[1]]).shape == (2, 5)
    assert Cameras.cat([cams, cams], dim=-1).shape == (2, 10)
    assert cams.reshape(10).shape == (10,)
    with pytest.raises(IndexError, match="too many indices"):
        cams[0, 0, 0]
    with pytest.raises(ValueError, match="floating"):
        cams.to(dtype=torch.int64)


def test_relative_to_first_makes_the_first_pose_identity():
    cams = random_cameras((2, 6), seed=5)
    rel = cams.relative_to_first()
    torch.testing.assert_close(rel.c2w[:, 0], torch.eye(4, dtype=torch.float64).expand(2, 4, 4))


def test_relative_to_first_is_invariant_to_a_rigid_world_transform():
    cams = random_cameras((6,), seed=6)
    world = random_cameras((), seed=7).c2w  # any rigid transform
    moved = cams.transform_world(world)
    torch.testing.assert_close(moved.relative_to_first().c2w, cams.relative_to_first().c2w)


def test_scaled_multiplies_centres_and_keeps_rotations():
    cams = random_cameras((4,), seed=8)
    big = cams.scaled(2.5)
    torch.testing.assert_close(big.centers, 2.5 * cams.centers)
    torch.testing.assert_close(big.R, cams.R)
    with pytest.raises(ValueError, match="positive"):
        cams.scaled(0.0)


def test_strided_intrinsics_match_average_pooled_rays():
    # Unnormalised directions R K⁻¹ x are linear in x, so the direction of a coarse pixel centre
    # equals the mean over the fine pixels it covers — exactly, for the +0.5 convention.
    cams = random_cameras((3,), seed=9, height=24, width=32)
    fine = ray_directions(cams, 24, 32, normalize=False)
    coarse = ray_directions(cams.strided(4), 6, 8, normalize=False)
    torch.testing.assert_close(coarse, F.avg_pool2d(fine, 4))
    tall = ray_directions(cams.strided((2, 4)), 12, 8, normalize=False)
    torch.testing.assert_close(tall, F.avg_pool2d(fine, (2, 4)))


def test_resized_to_equals_strided_for_an_integer_factor():
    cams = random_cameras((2,), seed=10)
    torch.testing.assert_close(cams.resized_to((24, 32), (12, 16)).K, cams.strided(2).K)


def test_cropped_intrinsics_give_the_cropped_ray_map():
    cams = random_cameras((2,), seed=11, height=24, width=32)
    full = plucker_rays(cams, 24, 32)
    crop = plucker_rays(cams.cropped(top=5, left=7), 10, 12)
    torch.testing.assert_close(crop, full[..., 5:15, 7:19])


def test_look_at_points_the_optical_axis_at_the_target():
    eye = torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.0, -4.0]], dtype=torch.float64)
    target = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.2, 0.0]], dtype=torch.float64)
    c2w = look_at(eye, target)
    cams = Cameras.from_intrinsics(30.0, 30.0, 16.0, 12.0, c2w)  # validates the rotation
    forward = (target - eye) / (target - eye).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(cams.R[..., :, 2], forward)
    # Level camera: image-down (+y) has no component along the default world up (−y) flipped.
    level = look_at(torch.tensor([0.0, 0.0, -1.0]), torch.zeros(3))
    torch.testing.assert_close(
        level,
        torch.eye(4) + torch.tensor([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, -1.0], [0, 0, 0, 0]]),
    )


def test_look_at_rejects_degenerate_input():
    with pytest.raises(ValueError, match="coincide"):
        look_at(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="parallel to up"):
        look_at(torch.zeros(3), torch.tensor([0.0, 5.0, 0.0]))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda K, c2w: (K[..., :2, :], c2w), r"K has shape .*expected \(\.\.\., 3, 3\)"),
        (lambda K, c2w: (K, c2w[..., :3, :]), r"c2w has shape .*expected \(\.\.\., 4, 4\)"),
        (lambda K, c2w: (K[:1], c2w), "same leading dimensions"),
        (lambda K, c2w: (K.double(), c2w), "same floating dtype"),
        (lambda K, c2w: (K.long(), c2w.long()), "floating dtype"),
    ],
)
def test_cameras_reject_malformed_tensors(edit, message):
    K, c2w = _valid_parts()
    with pytest.raises(ValueError, match=message):
        Cameras(*edit(K, c2w))


def test_cameras_reject_non_finite_values():
    K, c2w = _valid_parts()
    K[0, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="K contains NaN or inf"):
        Cameras(K, c2w)
    K, c2w = _valid_parts()
    c2w[1, 0, 3] = float("inf")
    with pytest.raises(ValueError, match="c2w contains NaN or inf"):
        Cameras(K, c2w)


def test_cameras_reject_singular_or_malformed_intrinsics():
    K, c2w = _valid_parts()
    K[0, 1, 1] = 0.0
    with pytest.raises(ValueError, match="focal length"):
        Cameras(K, c2w)
    K, c2w = _valid_parts()
    K[0, 0, 0] = -K[0, 0, 0]
    with pytest.raises(ValueError, match="focal length"):
        Cameras(K, c2w)
    K, c2w = _valid_parts()
    K[1, 2, 0] = 0.3
    with pytest.raises(ValueError, match=r"K at index \(1,\) is .*expected the form"):
        Cameras(K, c2w)


def test_cameras_reject_non_rotation_poses():
    K, c2w = _valid_parts()
    c2w[0, :3, :3] *= 1.1
    with pytest.raises(ValueError, match="not a proper rotation"):
        Cameras(K, c2w)
    K, c2w = _valid_parts()
    c2w[1, :3, 0] *= -1  # a reflection: orthonormal, det −1
    with pytest.raises(ValueError, match=r"index \(1,\) is not a proper rotation"):
        Cameras(K, c2w)
    K, c2w = _valid_parts()
    c2w[0, 3, 0] = 0.5
    with pytest.raises(
        ValueError, match=r"c2w at index \(0,\) has bottom row \[0.5, 0.0, 0.0, 1.0\]"
    ):
        Cameras(K, c2w)


def test_stack_and_cat_reject_bad_dims_and_mismatched_cameras():
    cams = random_cameras((4,), seed=12)
    with pytest.raises(IndexError, match="dim 2"):
        Cameras.stack([cams, cams], dim=2)
    with pytest.raises(IndexError, match="dim 1"):
        Cameras.cat([cams, cams], dim=1)
    with pytest.raises(ValueError, match="batch shapes"):
        Cameras.stack([cams, cams[:2]])
    with pytest.raises(ValueError, match="differ outside"):
        Cameras.cat([random_cameras((2, 3), seed=0), random_cameras((2, 4), seed=1)])
    with pytest.raises(ValueError, match="one dtype and device"):
        Cameras.cat([cams, cams.to(dtype=torch.float32)])
    with pytest.raises(ValueError, match="at least one"):
        Cameras.cat([])


def test_scaled_and_resized_broadcast_per_clip_factors_from_the_right():
    cams = random_cameras((3, 3), seed=13)
    per_clip = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    scaled = cams.scaled(per_clip[:, None])
    for b in range(3):
        torch.testing.assert_close(scaled.centers[b], per_clip[b] * cams.centers[b])
    resized = cams.resized(per_clip[:, None])
    torch.testing.assert_close(resized.focal[1], 2 * cams.focal[1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_cameras_give_ray_maps(dtype):
    cams = random_cameras((2,), seed=14, height=6, width=7)
    half = plucker_rays(cams.to(dtype=dtype), 6, 7)
    assert half.dtype == dtype
    torch.testing.assert_close(half.double(), plucker_rays(cams, 6, 7), rtol=0, atol=0.05)
    torch.testing.assert_close(
        cams.to(dtype=dtype).K_inv.double(), cams.K_inv, rtol=0.01, atol=1e-3
    )


def test_plucker_rays_names_a_wrong_argument_type():
    with pytest.raises(TypeError, match="cameras must be a Cameras"):
        plucker_rays(torch.eye(4), 2, 2)
