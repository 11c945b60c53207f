"""The description of a synthetic world: a textured room, primitives inside it, one light.

World frame: metres, y points down (OpenCV-style, so ``look_at``'s default up ``-y`` is the room's
up), the room is an axis-aligned box around the origin. Objects are placed after the camera path
is known, so that no object ever comes within ``CAMERA_CLEARANCE`` of a camera centre.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from any4d.data.synthetic.motion import Motion, axis_angle, sample_motion
from any4d.data.synthetic.sampling import Sampler
from any4d.data.synthetic.textures import Material, Materials, sample_material

# Faces of the room in the order of the ray caster's face index: 2·axis + (ray along +axis).
FACES = ("left wall", "right wall", "ceiling", "floor", "back wall", "front wall")
SHAPES = ("sphere", "box", "quad")
CAMERA_CLEARANCE = 0.5  # metres between an object's bounding sphere and any camera centre
_WALL_GAP = 0.05  # metres between a floating object's bounding box and the room
_PLACEMENT_TRIES = 40
_IN_VIEW_PROBABILITY = 0.7


@dataclass(frozen=True)
class Room:
    """Axis-aligned box seen from inside.

    low, high: (3,) corners in metres; the floor is ``y = high[1]``, the ceiling ``y = low[1]``.
    materials: one material id per face, in ``FACES`` order.
    """

    low: Tensor
    high: Tensor
    materials: tuple[int, ...]


@dataclass(frozen=True)
class Primitive:
    """A textured solid or panel, defined in its local frame and posed by ``motion``.

    shape "sphere": radius ``size[0]``; "box": half extents ``size``; "quad": the two-sided
    rectangle ``|x| ≤ size[0], |y| ≤ size[1]`` of the local plane ``z = 0``.
    """

    shape: str
    size: Tensor
    material: int
    motion: Motion
    name: str

    @property
    def radius(self) -> float:
        """Bounding-sphere radius about the local origin."""
        return float(self.size[0]) if self.shape == "sphere" else float(self.size.norm())


@dataclass(frozen=True)
class World:
    """Everything the renderer needs.

    light: (3,) position of the point light; ``ambient`` is the unlit fraction of the albedo.
    """

    room: Room
    objects: tuple[Primitive, ...]
    materials: Materials
    light: Tensor
    ambient: float

    @property
    def dynamic(self) -> bool:
        return any(obj.motion.moves for obj in self.objects)


def sample_room(sampler: Sampler, materials: list[Material]) -> Room:
    """A room of 5–9 m × 2.5–3.2 m × 5–9 m with the floor 1.2–1.6 m below the origin.

    Appends the room's materials (walls, ceiling, floor) to ``materials``.
    """
    half_x, half_z = sampler.scalar(2.5, 4.5), sampler.scalar(2.5, 4.5)
    floor = sampler.scalar(1.2, 1.6)
    ceiling = floor - sampler.scalar(2.5, 3.2)
    walls = _add(materials, sample_material(sampler, scale=(0.2, 0.7)))
    ceiling_id = _add(materials, sample_material(sampler, scale=(0.3, 0.9)))
    floor_id = _add(materials, sample_material(sampler, scale=(0.25, 0.8)))
    return Room(
        low=torch.tensor([-half_x, ceiling, -half_z]),
        high=torch.tensor([half_x, floor, half_z]),
        materials=(walls, walls, ceiling_id, floor_id, walls, walls),
    )


def sample_light(sampler: Sampler, room: Room) -> Tensor:
    """(3,) a point light 25 cm under the ceiling, in the middle half of the room."""
    x = sampler.scalar(-0.5, 0.5) * float(room.high[0])
    z = sampler.scalar(-0.5, 0.5) * float(room.high[2])
    return torch.tensor([x, float(room.low[1]) + 0.25, z])


def sample_objects(
    sampler: Sampler,
    room: Room,
    materials: list[Material],
    camera_poses: Tensor,
    times: Tensor,
    *,
    count: int,
    moving_fraction: float,
    dynamic: bool,
    focus: Tensor | None = None,
) -> tuple[Primitive, ...]:
    """``count`` free-standing primitives clear of the cameras (fewer if some do not fit).

    camera_poses: (T, 4, 4) camera-to-world at ``times`` (T,) seconds. Each object's centre, at
    every one of these times, keeps ``radius + CAMERA_CLEARANCE`` from every camera centre and
    its bounding box stays inside the room. The first object is tried at ``focus`` (x, z) first,
    e.g. the point an orbit circles; most other candidates lie in front of a camera, so that the
    clip sees its objects rather than bare walls. With ``dynamic`` each object moves with
    probability ``moving_fraction`` (at least one does).
    """
    moving = [dynamic and sampler.bernoulli(moving_fraction) for _ in range(count)]
    if dynamic and count and not any(moving):
        moving[sampler.integer(0, count - 1)] = True
    objects = []
    for i in range(count):
        obj = _place_object(
            sampler, room, materials, camera_poses, times, moving[i], focus if i == 0 else None
        )
        if obj is not None:
            objects.append(obj)
    if dynamic and objects and not any(obj.motion.moves for obj in objects):
        # every mover failed to fit: spin one in place (its bounding sphere does not change,
        # and a vertical axis keeps a resting object on the floor)
        i = sampler.integer(0, len(objects) - 1)
        spinning = replace(objects[i].motion, spin_rate=sampler.sign() * 0.6)
        objects[i] = replace(objects[i], motion=spinning, name=f"spinning {objects[i].name}")
    return tuple(objects)


def sample_posters(sampler: Sampler, room: Room, materials: list[Material], count: int):
    """``count`` static quads hanging on the walls (cameras keep well away from walls)."""
    posters = []
    for i in range(count):
        face = sampler.choice((0, 1, 4, 5))
        axis, positive = face // 2, face % 2 == 1
        half_w, half_h = sampler.scalar(0.3, 0.8), sampler.scalar(0.25, 0.6)
        # distinct offsets from the wall: overlapping posters never share a plane (no z-fight)
        wall = room.high[axis] if positive else room.low[axis]
        inward = -1.0 if positive else 1.0
        across = 2 - axis  # the horizontal axis along the wall (x for z-walls, z for x-walls)
        center = torch.zeros(3)
        center[axis] = wall + inward * (0.01 + 0.01 * i)
        center[across] = sampler.scalar(
            float(room.low[across]) + half_w + 0.1, float(room.high[across]) - half_w - 0.1
        )
        center[1] = sampler.scalar(
            float(room.low[1]) + half_h + 0.2, float(room.high[1]) - half_h - 0.4
        )
        normal = torch.zeros(3)
        normal[axis] = inward
        down = torch.tensor([0.0, 1.0, 0.0])
        rotation = torch.stack([torch.linalg.cross(down, normal), down, normal], dim=1)
        material = sample_material(sampler, scale=(0.05, 0.25))
        posters.append(
            Primitive(
                shape="quad",
                size=torch.tensor([half_w, half_h, 0.0]),
                material=_add(materials, material),
                motion=Motion.fixed(center, rotation),
                name=f"{material.description} poster",
            )
        )
    return tuple(posters)


def _add(materials: list[Material], material: Material) -> int:
    materials.append(material)
    return len(materials) - 1


def _place_object(
    sampler: Sampler,
    room: Room,
    materials: list[Material],
    camera_poses: Tensor,
    times: Tensor,
    moving: bool,
    focus: Tensor | None,
) -> Primitive | None:
    shape = sampler.choice(SHAPES)
    if shape == "sphere":
        r = sampler.scalar(0.2, 0.55)
        size = torch.tensor([r, r, r])
    elif shape == "box":
        size = sampler.uniform(0.15, 0.5, (3,))
    else:
        size = torch.tensor([sampler.scalar(0.25, 0.7), sampler.scalar(0.25, 0.6), 0.0])
    # Upright objects turn only about the vertical; resting ones stand on the floor. Panels
    # (quads) are upright signs, floating at any height.
    upright = shape == "quad" or sampler.bernoulli(0.6)
    resting = upright and shape != "quad" and sampler.bernoulli(0.7)
    if upright:
        up = torch.tensor([0.0, -1.0, 0.0])
        rotation = axis_angle(up, torch.tensor([sampler.angle()]))[0]
        if shape == "sphere":
            horizontal, vertical = float(size[0]), float(size[0])
        elif shape == "box":
            horizontal, vertical = float(size[0].hypot(size[2])), float(size[1])
        else:
            horizontal, vertical = float(size[0]), float(size[1])
    else:
        rotation = sampler.rotation()
        horizontal = vertical = float(size.norm())
    material = sample_material(sampler, scale=(0.1, 0.4))
    motion = (
        sample_motion(sampler, rotation, upright, max_amplitude=1.0)
        if moving
        else Motion.fixed(torch.zeros(3), rotation)
    )
    obj = Primitive(shape, size, -1, motion, f"{material.description} {_NOUNS[shape]}")
    for attempt in range(_PLACEMENT_TRIES):
        if attempt == _PLACEMENT_TRIES // 2 and motion.translates:
            # a long path that keeps hitting the camera path: keep the object, drop its path
            motion = replace(motion, amplitude=torch.zeros(3))
            if not motion.spins:
                motion = replace(motion, spin_rate=sampler.sign() * 0.6)
        reach = motion.amplitude.abs()
        low = room.low + reach + torch.tensor([horizontal, vertical, horizontal]) + _WALL_GAP
        high = room.high - reach - torch.tensor([horizontal, vertical, horizontal]) - _WALL_GAP
        if (low > high).any():
            continue
        if focus is not None and attempt == 0:
            center = focus.clone()
        elif sampler.bernoulli(_IN_VIEW_PROBABILITY):
            center = _in_view(sampler, camera_poses)
        else:
            center = low + (high - low) * sampler.uniform(0.0, 1.0, (3,))
        center = torch.maximum(torch.minimum(center, high), low)
        if resting:
            center[1] = room.high[1] - vertical
        placed = replace(motion, center=center)
        path = placed.centers(times)  # (T, 3)
        if torch.cdist(path, camera_poses[:, :3, 3]).min() > obj.radius + CAMERA_CLEARANCE:
            material_id = _add(materials, material)
            name = obj.name if not placed.moves else f"{_VERBS[placed.translates]} {obj.name}"
            return replace(obj, material=material_id, motion=placed, name=name)
    return None


def _in_view(sampler: Sampler, camera_poses: Tensor) -> Tensor:
    """(3,) a point 1.5–4.5 m in front of a random camera of the clip, near its optical axis."""
    pose = camera_poses[sampler.integer(0, len(camera_poses) - 1)]
    right, down, forward = pose[:3, 0], pose[:3, 1], pose[:3, 2]
    offset = sampler.uniform(-0.5, 0.5, (2,))
    ray = forward + offset[0] * right + offset[1] * down
    return pose[:3, 3] + sampler.scalar(1.5, 4.5) * ray / ray.norm()


_NOUNS = {"sphere": "sphere", "box": "box", "quad": "panel"}
_VERBS = {True: "moving", False: "spinning"}
