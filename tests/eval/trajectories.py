"""Camera trajectories for the pose-metric tests, as (T, 4, 4) camera-to-world float64 arrays."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def poses(rotations: Rotation, centres: np.ndarray) -> np.ndarray:
    c2w = np.tile(np.eye(4), (len(centres), 1, 1))
    c2w[:, :3, :3] = rotations.as_matrix()
    c2w[:, :3, 3] = centres
    return c2w


def random_trajectory(frames: int, seed: int) -> np.ndarray:
    """Independent uniformly random orientations and Gaussian centres."""
    rng = np.random.default_rng(seed)
    return poses(Rotation.random(frames, random_state=rng), rng.normal(size=(frames, 3)))


def handheld_trajectory(frames: int, seed: int) -> np.ndarray:
    """A smooth, SLAM-like path: a camera carried around a room, bobbing and looking about.

    About a quarter loop of radius 2 m at 1.5 m height, with small head turns; consecutive
    frames differ by ~2 cm and ~0.5°, as at 30 fps.
    """
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, frames)
    phase = rng.uniform(0, 2 * np.pi, size=4)
    angle = 0.5 * np.pi * s + phase[0]
    centres = np.stack(
        [
            2.0 * np.cos(angle),
            2.0 * np.sin(angle),
            1.5 + 0.05 * np.sin(12 * s + phase[1]),
        ],
        -1,
    )
    yaw = angle + 0.5 * np.pi + 0.2 * np.sin(5 * s + phase[2])  # look along the path
    pitch = 0.1 * np.sin(3 * s + phase[3])
    # OpenCV camera (z forward, y down) turned to look horizontally along +x of the world.
    level = Rotation.from_matrix([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    turn = Rotation.from_euler("zy", np.stack([yaw, pitch], -1))
    return poses(turn * level, centres)


def estimate_of(gt: np.ndarray, seed: int, noise: float = 0.01) -> np.ndarray:
    """A plausible estimate of ``gt``: in another frame and scale (a random Sim(3)), with
    random-walk drift and jitter in position and orientation."""
    rng = np.random.default_rng(seed)
    frames = len(gt)
    world = Rotation.random(random_state=rng)
    scale = rng.uniform(0.2, 5.0)
    drift = np.cumsum(noise * rng.normal(size=(frames, 3)), 0)
    centres = gt[:, :3, 3] + drift + noise * rng.normal(size=(frames, 3))
    wobble = Rotation.from_rotvec(np.cumsum(0.2 * noise * rng.normal(size=(frames, 3)), 0))
    rotations = world * wobble * Rotation.from_matrix(gt[:, :3, :3])
    return poses(rotations, scale * world.apply(centres) + rng.normal(size=3))
