"""Camera paths through the room and random pinhole intrinsics.

Every path is a bounded smooth function of time in seconds (sinusoids and constant angular
rates), so any number of frames at any fps stays inside ``camera_region`` — at least
``WALL_CLEARANCE`` from every wall. Poses come from ``any4d.geometry.look_at`` (OpenCV axes,
camera-to-world, up = −y). Angles: yaw about the vertical (0 looks along +z, positive turns
towards +x, i.e. to the camera's right), pitch positive looks down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data.synthetic.sampling import Sampler
from any4d.data.synthetic.world import Room
from any4d.geometry import look_at

TRAJECTORIES = ("orbit", "dolly", "pan", "random")
WALL_CLEARANCE = 0.6  # metres between a camera centre and any wall
_EYE_HEIGHTS = (-0.4, 0.3)  # camera y range (room origin is roughly eye level)


@dataclass(frozen=True)
class Trajectory:
    """A camera path sampled at the clip's frame times.

    c2w: (T, 4, 4) camera-to-world. focus: (3,) point the path circles (orbit) or None.
    description: caption fragment, e.g. ``"the camera pans left"``.
    """

    kind: str
    c2w: Tensor
    focus: Tensor | None
    description: str


def camera_region(room: Room) -> tuple[Tensor, Tensor]:
    """(3,) low and high corners of the box every camera centre stays in."""
    low = room.low + WALL_CLEARANCE
    high = room.high - WALL_CLEARANCE
    low[1] = max(float(low[1]), _EYE_HEIGHTS[0])
    high[1] = min(float(high[1]), _EYE_HEIGHTS[1])
    return low, high


def sample_trajectory(sampler: Sampler, kind: str, room: Room, times: Tensor) -> Trajectory:
    """A random path of ``kind`` (one of ``TRAJECTORIES``) at ``times`` (T,) seconds."""
    if kind not in _SAMPLERS:
        raise ValueError(f"trajectory kind {kind!r} is unknown (expected one of {TRAJECTORIES})")
    return _SAMPLERS[kind](sampler, room, times)


def sample_intrinsics(
    sampler: Sampler,
    height: int,
    width: int,
    fov_degrees: tuple[float, float],
    aspect_jitter: float,
    principal_jitter: float,
) -> Tensor:
    """(3, 3) intrinsics for an ``height × width`` image.

    The field of view across the longer image side is uniform in ``fov_degrees``; ``fy / fx``
    is uniform in ``1 ± aspect_jitter``; the principal point is off the image centre by up to
    ``principal_jitter`` of the image size. The draws do not depend on the size, so one seed
    gives the same (rescaled) camera at every resolution.
    """
    fov = math.radians(sampler.scalar(*fov_degrees))
    ratio = sampler.scalar(1.0 - aspect_jitter, 1.0 + aspect_jitter)
    shift = sampler.uniform(-principal_jitter, principal_jitter, (2,))
    fx = 0.5 * max(height, width) / math.tan(fov / 2)
    K = torch.eye(3)
    K[0, 0], K[1, 1] = fx, fx * ratio
    K[0, 2], K[1, 2] = width * (0.5 + shift[0]), height * (0.5 + shift[1])
    return K


def _direction(yaw: Tensor, pitch: Tensor) -> Tensor:
    """(N,) yaw and pitch -> (N, 3) unit viewing directions (y down)."""
    return torch.stack(
        [torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch), torch.cos(pitch) * torch.cos(yaw)],
        -1,
    )


def _between(sampler: Sampler, low: Tensor, high: Tensor) -> Tensor:
    """(3,) uniform in the box [low, high] (its centre where the box is empty)."""
    return torch.where(
        low <= high, low + (high - low) * sampler.uniform(0.0, 1.0, (3,)), 0.5 * (low + high)
    )


def _yaw_towards(point: Tensor, target: Tensor) -> float:
    return math.atan2(float(target[0] - point[0]), float(target[2] - point[2]))


def _orbit(sampler: Sampler, room: Room, times: Tensor) -> Trajectory:
    low, high = camera_region(room)
    half = 0.5 * (high - low)
    radius = sampler.scalar(1.2, max(1.2, min(2.5, float(min(half[0], half[2])) - 0.05)))
    margin = torch.tensor([radius, 0.0, radius])
    center = _between(sampler, low + margin, high - margin)
    focus = torch.stack([center[0], room.high[1] - sampler.scalar(0.3, 1.0), center[2]])
    bob = sampler.scalar(0.0, min(0.1, float(half[1])))
    height = sampler.scalar(float(low[1]) + bob, float(high[1]) - bob)
    rate = sampler.sign() * sampler.scalar(0.25, 0.7)
    angle = sampler.angle() + rate * times
    bob_phase, bob_rate = sampler.angle(), sampler.scalar(0.5, 1.5)
    eye = torch.stack(
        [
            center[0] + radius * torch.sin(angle),
            height + bob * torch.sin(bob_rate * times + bob_phase),
            center[2] + radius * torch.cos(angle),
        ],
        -1,
    )
    return Trajectory("orbit", look_at(eye, focus.expand_as(eye)), focus, "the camera orbits")


def _dolly(sampler: Sampler, room: Room, times: Tensor) -> Trajectory:
    low, high = camera_region(room)
    yaw = sampler.angle()
    forward = torch.tensor([math.sin(yaw), 0.0, math.cos(yaw)])
    reach = sampler.scalar(0.4, 1.2)
    direction = sampler.sign()
    low, high = low + reach * forward.abs(), high - reach * forward.abs()
    # start on the side the camera looks away from, so that it looks across the room
    fraction = sampler.uniform(0.0, 0.6, (3,))
    fraction = torch.where(forward > 0, fraction, 1.0 - fraction)
    start = torch.where(low <= high, low + (high - low) * fraction, 0.5 * (low + high))
    rate = sampler.scalar(0.5, 1.2)
    eye = start + direction * reach * torch.sin(rate * times)[:, None] * forward
    look = _direction(
        torch.full_like(times, yaw + sampler.scalar(-0.15, 0.15)),
        torch.full_like(times, sampler.scalar(-0.1, 0.25)),
    )
    verb = "forward" if direction > 0 else "backward"
    return Trajectory("dolly", look_at(eye, eye + look), None, f"the camera moves {verb}")


def _pan(sampler: Sampler, room: Room, times: Tensor) -> Trajectory:
    low, high = camera_region(room)
    quarter = 0.25 * (high - low)
    eye0 = _between(sampler, low + quarter, high - quarter)
    sway = sampler.uniform(0.0, 0.03, (3,))  # a handheld pan barely translates
    sway_rate, sway_phase = (
        sampler.uniform(1.0, 2.0, (3,)),
        sampler.uniform(-math.pi, math.pi, (3,)),
    )
    eye = eye0 + sway * torch.sin(times[:, None] * sway_rate + sway_phase)
    rate = sampler.sign() * sampler.scalar(0.3, 0.8)
    yaw = sampler.angle() + rate * times
    pitch = sampler.scalar(-0.15, 0.25) + 0.05 * torch.sin(sampler.scalar(0.5, 1.5) * times)
    side = "right" if rate > 0 else "left"
    c2w = look_at(eye, eye + _direction(yaw, pitch))
    return Trajectory("pan", c2w, None, f"the camera pans {side}")


def _random(sampler: Sampler, room: Room, times: Tensor) -> Trajectory:
    low, high = camera_region(room)
    half = 0.5 * (high - low)
    amplitude = sampler.uniform(0.2, 0.8, (2, 3)) * torch.tensor([[1.0, 0.0, 1.0], [0.4, 0.0, 0.4]])
    amplitude[:, 1] = torch.tensor([0.1, 0.05]).clamp(max=0.5 * float(half[1]))
    reach = amplitude.sum(0)
    center = _between(sampler, low + reach, high - reach)
    rate = sampler.uniform(0.3, 1.0, (2, 3)) * torch.tensor([[1.0], [2.0]])
    phase = sampler.uniform(-math.pi, math.pi, (2, 3))
    waves = torch.sin(times[:, None, None] * rate + phase)  # (T, 2, 3)
    eye = center + (amplitude * waves).sum(1)
    # the look-at target is the eye plus a smoothly swinging direction, roughly to mid-room
    yaw0 = _yaw_towards(center, torch.zeros(3)) + sampler.scalar(-0.6, 0.6)
    yaw = yaw0 + 0.4 * torch.sin(sampler.scalar(0.3, 0.9) * times + sampler.angle())
    pitch = sampler.scalar(-0.1, 0.2) + 0.1 * torch.sin(sampler.scalar(0.3, 0.9) * times)
    c2w = look_at(eye, eye + 2.0 * _direction(yaw, pitch))
    return Trajectory("random", c2w, None, "the camera drifts through the room")


_SAMPLERS = {"orbit": _orbit, "dolly": _dolly, "pan": _pan, "random": _random}
