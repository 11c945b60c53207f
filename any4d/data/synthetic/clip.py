"""From a seed to everything that defines a clip — world, cameras, frame times, caption — before
any pixel is rendered (``render_clip`` renders it; tests and novel-view renders reuse it).

Random draws happen in one fixed order from one ``Sampler``: room, light, trajectory kind, camera
path, intrinsics, object counts, objects, posters, noise lattice. Image size enters only after
the draws, so one seed gives the same world and camera path at every resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data.synthetic.config import SyntheticConfig
from any4d.data.synthetic.sampling import Sampler
from any4d.data.synthetic.textures import Material, Materials, sample_lattice
from any4d.data.synthetic.trajectories import Trajectory, sample_intrinsics, sample_trajectory
from any4d.data.synthetic.world import (
    Primitive,
    World,
    sample_light,
    sample_objects,
    sample_posters,
    sample_room,
)
from any4d.geometry import Cameras

AMBIENT = 0.35  # fraction of the albedo seen on surfaces that face away from the light


@dataclass(frozen=True)
class ClipSpec:
    """A clip before rendering.

    cameras: batch shape (T,), intrinsics for ``config.height × config.width``.
    times:   (T,) seconds of each frame, ``k / fps``.
    """

    seed: int
    config: SyntheticConfig
    world: World
    cameras: Cameras
    times: Tensor
    trajectory: str
    text: str


def resolve_config(config: SyntheticConfig | None, overrides: dict) -> SyntheticConfig:
    """``config`` (default ``SyntheticConfig()``) with ``overrides`` applied."""
    if config is not None and not isinstance(config, SyntheticConfig):
        raise TypeError(f"config must be a SyntheticConfig or None, got {type(config).__name__}")
    config = config or SyntheticConfig()
    return config.with_overrides(**overrides) if overrides else config


def sample_clip(seed: int, config: SyntheticConfig | None = None, **overrides) -> ClipSpec:
    """The world, cameras and caption of clip ``seed`` (an int in ``[0, 2**63)``)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed is {seed!r} (expected an integer in [0, 2**63))")
    config = resolve_config(config, overrides)
    sampler = Sampler(seed)
    times = torch.arange(config.num_frames, dtype=torch.float32) / config.fps
    materials: list[Material] = []
    room = sample_room(sampler, materials)
    light = sample_light(sampler, room)
    kind = sampler.choice(config.trajectories)
    trajectory = sample_trajectory(sampler, kind, room, times)
    K = sample_intrinsics(
        sampler,
        config.height,
        config.width,
        config.fov_degrees,
        config.aspect_jitter,
        config.principal_jitter,
    )
    num_objects = sampler.integer(*config.num_objects)
    num_posters = sampler.integer(*config.num_posters)
    objects = sample_objects(
        sampler,
        room,
        materials,
        trajectory.c2w,
        times,
        count=num_objects,
        moving_fraction=config.moving_fraction,
        dynamic=config.dynamic,
        focus=trajectory.focus,
    )
    posters = sample_posters(sampler, room, materials, num_posters)
    world = World(
        room=room,
        objects=objects + posters,
        materials=Materials.stack(materials, sample_lattice(sampler)),
        light=light,
        ambient=AMBIENT,
    )
    cameras = Cameras(K.expand(config.num_frames, 3, 3).clone(), trajectory.c2w)
    text = caption(world, materials, objects, posters, trajectory)
    return ClipSpec(seed, config, world, cameras, times, kind, text)


def caption(
    world: World,
    materials: list[Material],
    objects: tuple[Primitive, ...],
    posters: tuple[Primitive, ...],
    trajectory: Trajectory,
) -> str:
    """E.g. "a room with grey striped walls and a brown checkered floor, with a red mottled
    sphere and a moving blue striped box; the camera orbits the red mottled sphere"."""
    walls, floor = world.room.materials[0], world.room.materials[3]
    text = (
        f"a room with {materials[walls].description} walls and "
        f"{_article(materials[floor].description + ' floor')}"
    )
    things = [_article(obj.name) for obj in objects + posters]
    if things:
        text += f", with {_join(things)}"
    camera = trajectory.description
    if trajectory.focus is not None and objects:
        offset = objects[0].motion.center - trajectory.focus
        if float(offset[0].hypot(offset[2])) < 1e-3:  # the first object stands at the focus
            camera += f" around the {objects[0].name.removeprefix('moving ')}"
    return f"{text}; {camera}"


def _article(phrase: str) -> str:
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
