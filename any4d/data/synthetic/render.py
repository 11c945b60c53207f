"""Exact ray casting of a synthetic world: one ray per pixel centre, no anti-aliasing.

Rays come from ``any4d.geometry.ray_directions(..., normalize=False)``, whose camera-frame z is
exactly 1, so the ray parameter of a hit *is* its z-depth (distance along the optical axis) and
the pixel-centre convention is the project's. Objects are intersected in their own frames (the
ray is moved, never the object); all pixels of all frames are cast at once and the only Python
loop is over the handful of objects. Tensors are laid out (N, 3, P) — frames, xyz, pixels — so
per-frame transforms are batched matrix products and xyz reductions run over contiguous planes.

Shading is view-independent: ``albedo · (ambient + (1 − ambient) · max(0, n · l))`` with ``l``
the direction to the world's point light (``|n · l|`` for two-sided panels). No shadows and no
specular term, so a static 3D point has the same colour in every camera.
"""

from __future__ import annotations

import torch
from torch import Tensor

from any4d.data.synthetic.textures import albedo, gather_columns
from any4d.data.synthetic.world import Room, World
from any4d.geometry import Cameras, ray_directions
from any4d.geometry.vectors import norm


def render(
    world: World, cameras: Cameras, times: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Render ``world`` at ``times`` (N,) seconds from ``cameras`` (batch shape (N,)).

    Returns rgb (N, 3, height, width) float32 in [-1, 1] and depth (N, 1, height, width) z-depth
    in metres (> 0 for every pixel: the room is closed). Cameras must be inside the room.
    """
    if len(cameras.shape) != 1:
        raise ValueError(f"cameras has batch shape {tuple(cameras.shape)} (expected (N,))")
    if times.shape != cameras.shape:
        raise ValueError(
            f"times has shape {tuple(times.shape)} but cameras {tuple(cameras.shape)} "
            "(expected one time per camera)"
        )
    cameras = cameras.to(dtype=torch.float32)
    times = times.to(torch.float32)
    n = len(times)
    directions = ray_directions(cameras, height, width, normalize=False).reshape(n, 3, -1)
    origins = cameras.centers  # (N, 3)

    # 1. nearest hit: depth and which surface (-1 = the room, k = object k)
    depth, face = _room_exit(world.room, origins, directions)  # (N, P), (N, P)
    owner = torch.full_like(face, -1)
    poses = [obj.motion.pose(times) for obj in world.objects]  # (N, 3, 3), (N, 3) each
    ray_sq = (directions * directions).sum(1)  # (N, P), rotation-invariant
    for k, (obj, (rotation, center)) in enumerate(zip(world.objects, poses, strict=True)):
        hit = _INTERSECT[obj.shape](rotation, center, obj.size, origins, directions, ray_sq)
        closer = hit < depth
        depth = torch.where(closer, hit, depth)
        owner = owner.masked_fill(closer, k)
    points = origins[:, :, None] + depth[:, None, :] * directions  # (N, 3, P) world

    # 2. per pixel: texture frame point, world normal, material (room first, then objects)
    room = world.room
    local = points.clone()
    normal = gather_columns(torch.tensor(_ROOM_NORMALS), face).transpose(0, 1)  # (N, 3, P)
    material = torch.tensor(room.materials)[face]
    two_sided = torch.zeros_like(depth, dtype=torch.bool)
    for k, (obj, (rotation, center)) in enumerate(zip(world.objects, poses, strict=True)):
        frames, pixels = (owner == k).nonzero(as_tuple=True)
        if len(frames) == 0:
            continue
        rot = rotation[frames]  # (M, 3, 3)
        obj_local = ((points[frames, :, pixels] - center[frames])[:, None, :] @ rot)[:, 0]
        local[frames, :, pixels] = obj_local
        obj_normal = _local_normal(obj.shape, obj_local, obj.size)  # (M, 3)
        normal[frames, :, pixels] = (rot @ obj_normal[:, :, None])[:, :, 0]
        material[frames, pixels] = obj.material
        two_sided[frames, pixels] = obj.shape == "quad"

    # 3. view-independent shading
    color = albedo(world.materials, local, material)  # (N, 3, P)
    to_light = world.light[None, :, None] - points
    cosine = (normal * to_light).sum(1) / norm(to_light, dim=1)
    cosine = torch.where(two_sided, cosine.abs(), cosine.clamp_min(0.0))
    shade = world.ambient + (1.0 - world.ambient) * cosine
    rgb = (color * shade[:, None, :]) * 2.0 - 1.0
    return rgb.clamp(-1.0, 1.0).reshape(n, 3, height, width), depth.reshape(n, 1, height, width)


# Inward normals of the room faces, in the order of ``world.FACES``; columns are faces.
_ROOM_NORMALS = ((1.0, -1.0, 0, 0, 0, 0), (0, 0, 1.0, -1.0, 0, 0), (0, 0, 0, 0, 1.0, -1.0))


def _room_exit(room: Room, origins: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
    """Where every ray leaves the room box (the camera is inside).

    Returns depth (N, P) and face index (N, P) = 2·axis + (direction along the axis ≥ +0).
    """
    # Pick the wall by the sign bit, not by ``> 0``: a zero component (±0.0) then divides into
    # +inf, never −inf, and that axis is correctly never the exit.
    forward = ~torch.signbit(directions)
    bound = torch.where(forward, room.high[None, :, None], room.low[None, :, None])
    distance = (bound - origins[:, :, None]) / directions  # (N, 3, P)
    depth, axis = distance.min(1)
    return depth, 2 * axis + forward.gather(1, axis[:, None])[:, 0]


def _to_local(rotation: Tensor, center: Tensor, origins: Tensor, directions: Tensor):
    """Rays in an object's frame: origin Rᵀ(o − c) (N, 3, 1), direction Rᵀ d (N, 3, P)."""
    transposed = rotation.transpose(1, 2)
    return transposed @ (origins - center)[:, :, None], transposed @ directions


def _sphere(rotation, center, size, origins, directions, ray_sq) -> Tensor:
    """Depth (N, P) of the near hit of the sphere of radius ``size[0]``; inf where missed.

    A sphere about its centre is rotation-invariant: solved in the world frame.
    """
    offset = origins - center  # (N, 3)
    b = (offset[:, None, :] @ directions)[:, 0]  # (N, P), half the usual b
    c = (offset * offset).sum(-1, keepdim=True) - size[0] * size[0]  # (N, 1), > 0 outside
    disc = b * b - ray_sq * c
    # near root as c / (−b + √disc): no cancellation when −b ≈ √disc (a distant sphere)
    depth = c / (torch.sqrt(disc.clamp_min(0.0)) - b)
    return torch.where((disc >= 0) & (b < 0) & (c > 0), depth, torch.inf)


def _box(rotation, center, size, origins, directions, ray_sq) -> Tensor:
    """Depth (N, P) of the entry hit of the box ``|x_i| ≤ size_i`` (slab method); inf if missed.

    A zero direction component divides into ±inf, which the slab test handles exactly.
    """
    origin, direction = _to_local(rotation, center, origins, directions)
    inverse = 1.0 / direction
    t1 = (-size[None, :, None] - origin) * inverse
    t2 = (size[None, :, None] - origin) * inverse
    near = torch.minimum(t1, t2).amax(1)
    far = torch.maximum(t1, t2).amin(1)
    return torch.where((near <= far) & (near > 0), near, torch.inf)


def _quad(rotation, center, size, origins, directions, ray_sq) -> Tensor:
    """Depth (N, P) of the hit of the rectangle ``|x| ≤ size[0], |y| ≤ size[1]`` in the local
    plane z = 0 (two-sided); inf where missed."""
    origin, direction = _to_local(rotation, center, origins, directions)
    depth = -origin[:, 2] / direction[:, 2]
    x = origin[:, 0] + depth * direction[:, 0]
    y = origin[:, 1] + depth * direction[:, 1]
    inside = (depth > 0) & (x.abs() <= size[0]) & (y.abs() <= size[1])
    return torch.where(inside, depth, torch.inf)


def _local_normal(shape: str, local: Tensor, size: Tensor) -> Tensor:
    """Outward unit normal (M, 3) at surface points ``local`` (M, 3) in the object frame."""
    if shape == "sphere":
        return local / size[0]
    if shape == "box":
        axis = (local.abs() / size).argmax(-1, keepdim=True)  # the face the point lies on
        return torch.zeros_like(local).scatter_(-1, axis, local.gather(-1, axis).sign())
    normal = torch.zeros_like(local)
    normal[:, 2] = 1.0
    return normal


_INTERSECT = {"sphere": _sphere, "box": _box, "quad": _quad}
