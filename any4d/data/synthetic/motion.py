"""Rigid object motion over time: bounded smooth paths plus an optional spin.

A path is ``centre(t) = center + amplitude ⊙ sin(frequency · t + phase)`` (per axis), so an
object never leaves the box ``center ± |amplitude|`` however long the clip runs; with the same
frequency and phase on every axis the path is a straight segment ("linear"), otherwise a smooth
Lissajous curve. The orientation is ``rotation(t) = Rot(spin_axis, spin_rate · t) · rotation``.
``t`` is in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data.synthetic.sampling import Sampler

_UP = (0.0, -1.0, 0.0)  # world up (OpenCV-style y points down)


def axis_angle(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotations about the unit ``axis`` (3,) by ``angle`` (N,) radians: (N, 3, 3) (Rodrigues)."""
    x, y, z = axis.tolist()
    cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    s, c = torch.sin(angle)[:, None, None], torch.cos(angle)[:, None, None]
    return torch.eye(3) + s * cross + (1 - c) * (cross @ cross)


@dataclass(frozen=True)
class Motion:
    """Pose of one object over time (see the module docstring).

    center (3,), rotation (3, 3), amplitude (3,), frequency (3,) rad/s, phase (3,) rad,
    spin_axis (3,) unit, spin_rate rad/s.
    """

    center: Tensor
    rotation: Tensor
    amplitude: Tensor
    frequency: Tensor
    phase: Tensor
    spin_axis: Tensor
    spin_rate: float

    @classmethod
    def fixed(cls, center: Tensor, rotation: Tensor) -> Motion:
        zero = torch.zeros(3)
        return cls(center, rotation, zero, zero, zero, torch.tensor(_UP), 0.0)

    @property
    def translates(self) -> bool:
        return bool(self.amplitude.abs().max() > 0)

    @property
    def spins(self) -> bool:
        return self.spin_rate != 0.0

    @property
    def moves(self) -> bool:
        return self.translates or self.spins

    def centers(self, times: Tensor) -> Tensor:
        """(N,) seconds -> (N, 3) object centres."""
        return self.center + self.amplitude * torch.sin(
            times[:, None] * self.frequency + self.phase
        )

    def pose(self, times: Tensor) -> tuple[Tensor, Tensor]:
        """(N,) seconds -> rotations (N, 3, 3) and centres (N, 3) (object-to-world)."""
        rotations = self.rotation.expand(len(times), 3, 3)
        if self.spins:
            rotations = axis_angle(self.spin_axis, self.spin_rate * times) @ self.rotation
        return rotations, self.centers(times)


def sample_motion(
    sampler: Sampler, rotation: Tensor, upright: bool, max_amplitude: float
) -> Motion:
    """A random moving motion about the origin (set ``center`` with ``dataclasses.replace``).

    An ``upright`` object only slides horizontally and spins about the vertical, so one standing
    on the floor stays on it. The path amplitude is at most ``max_amplitude`` metres
    per axis; the spin is drawn with probability 1/2 (always when the path is degenerate).
    """
    amplitude_norm = sampler.scalar(0.3, 1.0) * max_amplitude
    if sampler.bernoulli(0.5):  # linear: a straight segment
        direction = sampler.unit_vector()
        if upright:
            direction[1] = 0.0
            direction = direction / direction.norm().clamp_min(1e-6)
        amplitude = amplitude_norm * direction
        frequency = torch.full((3,), sampler.scalar(0.4, 1.2))
        phase = torch.full((3,), sampler.angle())
    else:  # smooth: independent per-axis oscillations
        amplitude = amplitude_norm * sampler.uniform(0.3, 1.0, (3,))
        frequency = sampler.uniform(0.4, 1.2, (3,))
        phase = sampler.uniform(-torch.pi, torch.pi, (3,))
        if upright:
            amplitude[1] = 0.0
    spin = sampler.bernoulli(0.5) or float(amplitude.abs().max()) < 0.05
    spin_axis = torch.tensor(_UP) if upright else sampler.unit_vector()
    spin_rate = sampler.sign() * sampler.scalar(0.3, 1.2) if spin else 0.0
    return Motion(torch.zeros(3), rotation, amplitude, frequency, phase, spin_axis, spin_rate)
