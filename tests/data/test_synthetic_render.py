"""The synthetic renderer is exact: analytic depths of known geometry, back-projected depth
lands on a surface, and a static world's colours do not depend on the camera."""

from __future__ import annotations

import math

import pytest
import torch

from any4d.data.synthetic import render, sample_clip
from any4d.data.synthetic.motion import Motion, axis_angle
from any4d.data.synthetic.sampling import Sampler
from any4d.data.synthetic.textures import Materials, sample_lattice, sample_material
from any4d.data.synthetic.world import Primitive, Room, World
from any4d.geometry import Cameras, look_at, ray_directions

# ---------------------------------------------------------------------------------- helpers


def _world(*objects: Primitive, half=(3.0, 1.5, 4.0)) -> World:
    """A room with corners ±``half`` and the given objects, all with material 0."""
    sampler = Sampler(0)
    materials = Materials.stack([sample_material(sampler)], sample_lattice(sampler))
    half = torch.tensor(half)
    room = Room(low=-half, high=half, materials=(0,) * 6)
    return World(room, objects, materials, light=torch.tensor([0.5, -1.2, 0.3]), ambient=0.35)


def _camera(eye, target, fx=20.0, fy=20.0, size=(9, 9)) -> Cameras:
    """One camera (batch (1,)) with the principal point at the image centre."""
    h, w = size
    c2w = look_at(torch.tensor([eye]), torch.tensor([target]))
    return Cameras.from_intrinsics(fx, fy, w / 2, h / 2, c2w)


def _render(world: World, cameras: Cameras, size=(9, 9)):
    return render(world, cameras, torch.zeros(len(cameras)), *size)


def _primitive(shape: str, size, center, rotation=None) -> Primitive:
    rotation = torch.eye(3) if rotation is None else rotation
    return Primitive(
        shape, torch.tensor(size), 0, Motion.fixed(torch.tensor(center), rotation), shape
    )


def _surface_distance(world: World, time: float, points) -> torch.Tensor:
    """Distance (K,) from world points (K, 3) to the nearest surface of ``world`` at ``time``."""
    room = world.room
    distances = [torch.minimum(points - room.low, room.high - points).abs().amin(-1)]
    for obj in world.objects:
        rotation, center = obj.motion.pose(torch.tensor([time]))
        local = (points - center) @ rotation[0]  # Rᵀ (p − c), row vectors
        if obj.shape == "sphere":
            d = (local.norm(dim=-1) - obj.size[0]).abs()
        elif obj.shape == "box":
            q = local.abs() - obj.size
            d = (q.clamp_min(0).norm(dim=-1) + q.amax(-1).clamp_max(0)).abs()
        else:
            outside = (local[:, :2].abs() - obj.size[:2]).clamp_min(0).norm(dim=-1)
            d = local[:, 2].abs() + outside
        distances.append(d)
    return torch.stack(distances).amin(0)


# ---------------------------------------------------------------------------------- exact depth


def test_depth_of_a_fronto_parallel_wall_is_its_distance_at_every_pixel():
    # z-depth, not ray length: corner pixels of a fronto-parallel wall have the same depth
    cameras = _camera([0.3, -0.2, -1.0], [0.3, -0.2, 1.0], fx=20.0, fy=22.0)
    rgb, depth = _render(_world(), cameras)
    assert depth.shape == (1, 1, 9, 9)
    torch.testing.assert_close(depth, torch.full_like(depth, 5.0), atol=1e-4, rtol=0)


def test_depth_of_a_tilted_camera_matches_the_analytic_plane_intersection():
    eye = torch.tensor([0.4, 0.1, -2.0], dtype=torch.float64)
    target = eye + torch.tensor([0.2, 0.1, 1.0], dtype=torch.float64)
    c2w = look_at(eye[None], target[None])
    fx, fy, cx, cy = 18.0, 16.5, 6.3, 4.1
    cameras = Cameras.from_intrinsics(fx, fy, cx, cy, c2w)
    world = _world(half=(4.0, 3.0, 4.0))  # every pixel sees the wall z = 4
    _, depth = render(world, cameras.to(dtype=torch.float32), torch.zeros(1), 8, 12)
    # pixel (u, v) looks along R · ((u + ½ − cx)/fx, (v + ½ − cy)/fy, 1)
    v, u = torch.meshgrid(torch.arange(8.0), torch.arange(12.0), indexing="ij")
    ray = torch.stack([(u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, torch.ones_like(u)])
    world_ray = torch.einsum("ij,jhw->ihw", c2w[0, :3, :3], ray.double())
    expected = (4.0 - eye[2]) / world_ray[2]
    torch.testing.assert_close(depth[0, 0].double(), expected, atol=1e-4, rtol=0)


def test_depth_of_a_sphere_on_the_optical_axis_is_distance_minus_radius():
    world = _world(_primitive("sphere", [0.5, 0.5, 0.5], [0.2, 0.1, 1.0]))
    cameras = _camera([0.2, 0.1, -1.5], [0.2, 0.1, 1.0])
    _, depth = _render(world, cameras)
    assert abs(float(depth[0, 0, 4, 4]) - 2.0) < 1e-4  # the centre pixel's ray is the axis


def test_depth_of_a_rotated_box_is_the_entry_point_in_its_own_frame():
    angle = math.radians(30.0)
    rotation = axis_angle(torch.tensor([0.0, -1.0, 0.0]), torch.tensor([angle]))[0]
    half = [0.3, 0.4, 0.5]
    world = _world(_primitive("box", half, [0.0, 0.0, 1.0], rotation))
    _, depth = _render(world, _camera([0.0, 0.0, -1.0], [0.0, 0.0, 1.0]))
    # the axis ray through the centre leaves the centre along u (unit, local frame) and
    # crosses the first slab at s = min_i h_i / |u_i|
    u = rotation.T @ torch.tensor([0.0, 0.0, 1.0])
    s = min(h / abs(float(c)) for h, c in zip(half, u, strict=True) if abs(float(c)) > 1e-9)
    assert abs(float(depth[0, 0, 4, 4]) - (2.0 - s)) < 1e-4


@pytest.mark.parametrize("eye_z", [-1.0, 3.0])
def test_a_quad_is_hit_from_both_sides(eye_z):
    world = _world(_primitive("quad", [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]))
    _, depth = _render(world, _camera([0.0, 0.0, eye_z], [0.0, 0.0, 1.0]))
    assert abs(float(depth[0, 0, 4, 4]) - abs(1.0 - eye_z)) < 1e-4


def test_the_nearest_of_overlapping_objects_is_seen():
    box = _primitive("box", [0.4, 0.4, 0.4], [0.0, 0.0, 2.0])
    sphere = _primitive("sphere", [0.3, 0.3, 0.3], [0.0, 0.0, 0.8])
    for objects in [(box, sphere), (sphere, box)]:  # independent of the object order
        _, depth = _render(_world(*objects), _camera([0.0, 0.0, -1.0], [0.0, 0.0, 1.0]))
        assert abs(float(depth[0, 0, 4, 4]) - 1.5) < 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_back_projected_depth_lies_on_a_surface_of_the_world(seed):
    spec = sample_clip(seed, num_frames=3, height=20, width=28)
    rgb, depth = render(spec.world, spec.cameras, spec.times, 20, 28)
    rays = ray_directions(spec.cameras, 20, 28, normalize=False)  # camera z = 1
    points = spec.cameras.centers[:, :, None, None] + depth * rays  # (T, 3, H, W)
    for k in range(3):
        flat = points[k].reshape(3, -1).T
        distance = _surface_distance(spec.world, float(spec.times[k]), flat)
        assert float(distance.max()) < 1e-3


# ---------------------------------------------------------------------------------- colour


def _reprojection_colours(seed: int, dynamic: bool):
    """Colours of frame-0 surface points seen again through the last camera of the clip.

    Each frame-0 pixel is back-projected; for its 3D point X a 1×1 camera with the last frame's
    pose and its principal point shifted so that the one pixel centre's ray passes exactly
    through X renders it again at the last frame's time. Returns the colours in both views and
    whether X is visible (not occluded) from the second view.
    """
    h, w = 18, 24
    spec = sample_clip(seed, num_frames=4, height=h, width=w, dynamic=dynamic)
    rgb, depth = render(spec.world, spec.cameras[:1], spec.times[:1], h, w)
    rays = ray_directions(spec.cameras[:1], h, w, normalize=False)
    points = (spec.cameras.centers[0, :, None, None] + depth[0] * rays[0]).reshape(3, -1).T
    last = spec.cameras[-1]
    camera_points = (points - last.centers) @ last.R  # (K, 3) in the last camera's frame
    fx, fy = float(last.K[0, 0]), float(last.K[1, 1])
    k = len(points)
    c2w = last.c2w.expand(k, 4, 4)
    cx = 0.5 - fx * camera_points[:, 0] / camera_points[:, 2]
    cy = 0.5 - fy * camera_points[:, 1] / camera_points[:, 2]
    single = Cameras.from_intrinsics(fx, fy, cx, cy, c2w)
    colour, depth_again = render(spec.world, single, spec.times[-1].expand(k), 1, 1)
    visible = (camera_points[:, 2] > 0.1) & (
        (depth_again[:, 0, 0, 0] - camera_points[:, 2]).abs() < 1e-3
    )
    return rgb[0].reshape(3, -1).T, colour[:, :, 0, 0], visible, spec


@pytest.mark.parametrize("seed", [0, 5])
def test_static_world_point_has_the_same_colour_from_another_camera(seed):
    first, again, visible, spec = _reprojection_colours(seed, dynamic=False)
    assert not spec.world.dynamic
    assert float(visible.float().mean()) > 0.25  # enough of the view overlaps
    error = (first - again).abs().amax(-1)[visible]
    assert float((error < 1e-3).float().mean()) > 0.99


def test_a_dynamic_world_changes_over_time_seen_from_a_fixed_camera():
    changed = 0
    for seed in range(3):
        spec = sample_clip(seed, num_frames=5, height=12, width=16, dynamic=True)
        assert spec.world.dynamic
        rgb, _ = render(spec.world, spec.cameras[[0, 0]], spec.times[[0, -1]], 12, 16)
        changed += int((rgb[0] != rgb[1]).any(0).sum())
    assert changed > 0


def test_a_static_world_renders_identically_at_every_time():
    """One frame per call: within a batch, a multi-threaded reduction may round two identical
    rows differently in the last bit (seen with 2 threads), which says nothing about the world."""
    spec = sample_clip(2, num_frames=5, height=12, width=16, dynamic=False)
    first, last = (render(spec.world, spec.cameras[[0]], spec.times[[i]], 12, 16) for i in (0, -1))
    assert torch.equal(first[0], last[0]) and torch.equal(first[1], last[1])


def test_render_rejects_mismatched_times():
    spec = sample_clip(0, num_frames=2, height=4, width=4)
    with pytest.raises(ValueError, match="times"):
        render(spec.world, spec.cameras, torch.zeros(3), 4, 4)
