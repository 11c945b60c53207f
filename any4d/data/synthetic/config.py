"""``SyntheticConfig``: what a synthetic clip looks like (size, length, motion, camera kinds)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from any4d.data.synthetic.trajectories import TRAJECTORIES


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of the procedural 4D world. Construction validates every field.

    num_frames, height, width: clip size (T, H, W), each ≥ 1.
    dynamic:          objects may move (False: a static world, only the camera moves).
    trajectories:     camera path kinds to draw from, a subset of ``TRAJECTORIES``.
    fps:              frames per second; frame ``k`` shows the world at ``k / fps`` seconds.
    num_objects:      (min, max) free-standing primitives (fewer when they do not fit).
    num_posters:      (min, max) static textured quads on the walls.
    moving_fraction:  probability that an object moves when ``dynamic``.
    fov_degrees:      (min, max) field of view across the longer image side.
    aspect_jitter:    fy / fx is uniform in ``1 ± aspect_jitter``.
    principal_jitter: principal point offset from the image centre, as a fraction of the size.
    """

    num_frames: int = 8
    height: int = 64
    width: int = 64
    dynamic: bool = True
    trajectories: tuple[str, ...] = TRAJECTORIES
    fps: float = 10.0
    num_objects: tuple[int, int] = (3, 6)
    num_posters: tuple[int, int] = (0, 2)
    moving_fraction: float = 0.5
    fov_degrees: tuple[float, float] = (45.0, 80.0)
    aspect_jitter: float = 0.1
    principal_jitter: float = 0.03

    def __post_init__(self) -> None:
        for name in ("num_frames", "height", "width"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} is {value!r} (expected an integer ≥ 1)")
        if not isinstance(self.dynamic, bool):
            raise ValueError(f"dynamic is {self.dynamic!r} (expected True or False)")
        if isinstance(self.trajectories, str) or not isinstance(self.trajectories, (tuple, list)):
            raise ValueError(
                f"trajectories is {self.trajectories!r} (expected a tuple of names from "
                f"{TRAJECTORIES}, e.g. ('orbit',))"
            )
        if not self.trajectories:
            raise ValueError(f"trajectories is empty (expected some of {TRAJECTORIES})")
        unknown = [kind for kind in self.trajectories if kind not in TRAJECTORIES]
        if unknown:
            raise ValueError(
                f"trajectories has unknown kind(s) {unknown} (expected names from {TRAJECTORIES})"
            )
        object.__setattr__(self, "trajectories", tuple(self.trajectories))
        if not _is_number(self.fps) or not 0 < self.fps < math.inf:
            raise ValueError(f"fps is {self.fps!r} (expected a positive finite number)")
        for name, low in (("num_objects", 0), ("num_posters", 0)):
            value = getattr(self, name)
            if not _is_range(value, _is_int) or value[0] < low or value[0] > value[1]:
                raise ValueError(
                    f"{name} is {value!r} (expected (min, max) integers, 0 ≤ min ≤ max)"
                )
            object.__setattr__(self, name, tuple(value))
        if not _is_range(self.fov_degrees, _is_number) or not (
            0 < self.fov_degrees[0] <= self.fov_degrees[1] < 180
        ):
            raise ValueError(
                f"fov_degrees is {self.fov_degrees!r} "
                "(expected (min, max) with 0 < min ≤ max < 180)"
            )
        object.__setattr__(self, "fov_degrees", tuple(self.fov_degrees))
        for name, high in (
            ("moving_fraction", 1.0),
            ("aspect_jitter", 0.5),
            ("principal_jitter", 0.5),
        ):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= high:
                raise ValueError(f"{name} is {value!r} (expected a number in [0, {high}])")

    def with_overrides(self, **overrides) -> SyntheticConfig:
        """A copy with some fields replaced; an unknown field name is a ``TypeError``."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(
                f"SyntheticConfig has no field(s) {unknown} (expected some of {sorted(names)})"
            )
        return replace(self, **overrides)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_range(value, kind) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and all(kind(v) for v in value)
