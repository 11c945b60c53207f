import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from any4d.geometry import (
    CAMERA_SECONDS,
    Cameras,
    ClipFrame,
    camera_scale,
    decode_depth,
    denormalize_rays,
    encode_depth,
    median_depth,
    normalize_rays,
    observed_scale,
    plucker_rays,
)
from tests.cameras_factory import random_cameras, random_rotations


@settings(max_examples=50, deadline=None)
@given(
    depth=st.floats(0.0, 1e4, allow_subnormal=False),
    scale=st.floats(1e-3, 1e3, allow_subnormal=False),
)
def test_depth_encoding_round_trips(depth, scale):
    d = torch.tensor(depth, dtype=torch.float64)
    encoded = encode_depth(d, scale)
    assert -1.0 < encoded <= 1.0
    torch.testing.assert_close(decode_depth(encoded, scale), d, rtol=1e-7, atol=1e-12)


def test_depth_encoding_anchors_and_order():
    s = 2.0
    depth = torch.tensor([0.0, 1.0, 2.0, 4.0, 1e9], dtype=torch.float64)
    encoded = encode_depth(depth, s)
    torch.testing.assert_close(encoded[[0, 2]], torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert (encoded.diff() < 0).all() and encoded[-1] > -1.0  # near → +1, far → −1
    # Out-of-range predictions decode to finite, non-negative depth.
    decoded = decode_depth(torch.tensor([-1.5, -1.0, 1.2]), s)
    assert torch.isfinite(decoded).all() and (decoded >= 0).all()


def test_median_depth_is_the_median_of_valid_depth():
    depth = torch.zeros(3, 3, 1, 4, 4)
    depth[0, :, :, :2] = torch.arange(1, 25, dtype=torch.float32).reshape(3, 1, 2, 4)
    depth[1] = 5.0
    scale = median_depth(depth)
    assert scale.shape == (3,)
    torch.testing.assert_close(scale[:2], torch.tensor([12.0, 5.0]))  # lower middle of 1..24
    assert torch.isnan(scale[2])  # no valid pixel


def test_camera_scale_is_the_calibrated_speed_of_the_path():
    cams = random_cameras((5,), seed=0)
    path = (cams.centers[1:] - cams.centers[:-1]).norm(dim=-1).sum()
    torch.testing.assert_close(camera_scale(cams, 2.0), CAMERA_SECONDS * path / 2.0)
    # Equivariant: a world scaled by λ has a λ times larger scale.
    torch.testing.assert_close(camera_scale(cams.scaled(3.0), 2.0), 3 * camera_scale(cams, 2.0))


def test_camera_scale_of_a_static_or_single_camera_is_undefined():
    cams = random_cameras((1,), seed=1)
    static = Cameras(cams.K.expand(4, 3, 3), cams.c2w.expand(4, 4, 4))
    assert torch.isnan(camera_scale(static, 1.0))
    assert torch.isnan(camera_scale(cams, 0.0))


def test_observed_scale_follows_the_rule_in_order():
    cams = random_cameras((5,), seed=2)
    depth = torch.full((5, 1, 2, 2), 3.0, dtype=torch.float64)
    by_cameras = camera_scale(cams, 1.0)
    # 1. observed depth → its median, whatever else is there
    scale, units = observed_scale(depth, cams, 1.0, target_depth=2 * depth)
    assert (float(scale), units) == (3.0, "depth")
    # 2. observed moving cameras → the camera rule (the target depth does not enter)
    scale, units = observed_scale(cameras=cams, seconds=1.0, target_depth=2 * depth)
    assert units == "cameras"
    torch.testing.assert_close(scale, by_cameras)
    # 3. nothing scale-bearing: the target depth's median (training) …
    static = Cameras(cams.K[:1].expand(5, 3, 3), cams.c2w[:1].expand(5, 4, 4))
    scale, units = observed_scale(cameras=static, seconds=1.0, target_depth=2 * depth)
    assert (float(scale), units) == (6.0, "relative")
    # … or the camera rule on target cameras without depth, or 1 at inference.
    scale, units = observed_scale(target_cameras=cams, target_seconds=1.0)
    assert units == "relative"
    torch.testing.assert_close(scale, by_cameras)
    assert observed_scale(cameras=static, seconds=1.0) == (1.0, "relative")


def test_observed_scale_falls_back_on_all_invalid_depth_and_is_never_nan():
    cams = random_cameras((1,), seed=3)
    static = Cameras(cams.K.expand(4, 3, 3), cams.c2w.expand(4, 4, 4))
    invalid = torch.zeros(4, 1, 2, 2, dtype=torch.float64)
    scale, units = observed_scale(invalid, static, 1.0, target_depth=invalid)
    assert (float(scale), units) == (1.0, "relative")
    moving = random_cameras((4,), seed=4)
    scale, units = observed_scale(invalid, moving, 1.0)
    assert units == "cameras" and torch.isfinite(scale)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), with_depth=st.booleans())
def test_clip_frame_normalize_round_trips(seed, with_depth):
    cams = random_cameras((2, 4), seed=seed)
    g = torch.Generator().manual_seed(seed)
    depth = 0.5 + 10 * torch.rand(2, 4, 1, 3, 5, generator=g, dtype=torch.float64)
    frame = ClipFrame.fit(cams, depth if with_depth else None)
    normalized = frame.normalize_cameras(cams)
    torch.testing.assert_close(
        normalized.c2w[:, 0], torch.eye(4, dtype=torch.float64).expand(2, 4, 4)
    )
    torch.testing.assert_close(frame.denormalize_cameras(normalized).c2w, cams.c2w)
    torch.testing.assert_close(frame.decode_depth(frame.encode_depth(depth)), depth)
    rays = plucker_rays(cams.relative_to_first(), 3, 5)
    torch.testing.assert_close(frame.denormalize_rays(frame.normalize_rays(rays)), rays)
    if not with_depth:  # camera rule over 1 s: the normalised path is 1 / CAMERA_SECONDS long
        steps = (normalized.centers[:, 1:] - normalized.centers[:, :-1]).norm(dim=-1).sum(-1)
        torch.testing.assert_close(steps, torch.full_like(steps, 1 / CAMERA_SECONDS))


def test_normalized_rays_are_the_rays_of_the_normalized_cameras():
    cams = random_cameras((6,), seed=2)
    depth = torch.full((6, 1, 4, 4), 3.0, dtype=torch.float64)
    frame = ClipFrame.fit(cams, depth)
    from_cameras = plucker_rays(frame.normalize_cameras(cams), 4, 4)
    from_metric = frame.normalize_rays(plucker_rays(cams.relative_to_first(), 4, 4))
    torch.testing.assert_close(from_cameras, from_metric)
    torch.testing.assert_close(
        normalize_rays(denormalize_rays(from_cameras, 3.0), 3.0), from_cameras
    )


def test_normalized_clip_is_invariant_to_a_similarity_of_the_world():
    cams = random_cameras((5,), seed=3)
    depth = 1 + torch.rand(
        5, 1, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    similarity_scale = 7.0
    world = torch.eye(4, dtype=torch.float64)
    world[:3, :3] = random_rotations((), torch.Generator().manual_seed(1))
    world[:3, 3] = torch.tensor([1.0, -4.0, 2.0], dtype=torch.float64)
    moved = cams.transform_world(world).scaled(similarity_scale)
    a = ClipFrame.fit(cams, depth)
    b = ClipFrame.fit(moved, depth * similarity_scale)
    torch.testing.assert_close(b.normalize_cameras(moved).c2w, a.normalize_cameras(cams).c2w)
    torch.testing.assert_close(b.encode_depth(depth * similarity_scale), a.encode_depth(depth))


def test_clip_frame_rejects_mismatched_depth():
    cams = random_cameras((5,), seed=4)
    with pytest.raises(ValueError, match="same"):
        ClipFrame.fit(cams, torch.ones(4, 1, 2, 2, dtype=torch.float64))


def test_clip_frame_rejects_cameras_or_maps_of_another_batch():
    cams = random_cameras((2, 4), seed=5)
    frame = ClipFrame.fit(cams)
    with pytest.raises(ValueError, match=r"cameras has batch shape \(4,\)"):
        frame.normalize_cameras(cams[0])
    with pytest.raises(ValueError, match=r"cameras has batch shape \(3, 4\)"):
        frame.denormalize_cameras(random_cameras((3, 4), seed=6))
    with pytest.raises(ValueError, match=r"depth has shape \(4, 1, 2, 2\)"):
        frame.encode_depth(torch.ones(4, 1, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"rays has shape"):
        frame.normalize_rays(torch.ones(2, 4, 6, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive and finite"):
        ClipFrame(reference=cams.c2w[:, 0], scale=torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 4, 4\) and \(\.\.\.\)"):
        ClipFrame(reference=cams.c2w[:, 0], scale=torch.ones(3, dtype=torch.float64))


def test_encoders_reject_bad_scales_and_ray_shapes():
    depth = torch.ones(2, 1, 2, 2)
    for bad in (0.0, -1.0, float("nan"), torch.tensor([1.0, -2.0])):
        with pytest.raises(ValueError, match="scale must be positive and finite"):
            encode_depth(depth, bad)
        with pytest.raises(ValueError, match="scale must be positive and finite"):
            decode_depth(depth, bad)
    with pytest.raises(ValueError, match=r"rays has shape \(2, 3, 4, 4\)"):
        normalize_rays(torch.ones(2, 3, 4, 4), 1.0)
    with pytest.raises(ValueError, match="rays has shape"):
        denormalize_rays(torch.ones(3, 4, 4), 1.0)
