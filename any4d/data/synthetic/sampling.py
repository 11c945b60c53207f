"""Random draws for the synthetic world, all from one local, seeded ``torch.Generator``.

Every random choice of a clip goes through one ``Sampler`` in a fixed order, so a seed fixes the
clip bit for bit and the global RNG state is never read or changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


class Sampler:
    """Uniform, integer, choice and rotation draws from ``torch.Generator().manual_seed(seed)``."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def uniform(self, low: float, high: float, shape: tuple[int, ...] = ()) -> Tensor:
        """float32 tensor of ``shape`` uniform in ``[low, high)``."""
        return low + (high - low) * torch.rand(shape, generator=self.generator)

    def scalar(self, low: float, high: float) -> float:
        """One float uniform in ``[low, high)``."""
        return float(self.uniform(low, high))

    def integer(self, low: int, high: int) -> int:
        """One int uniform in ``[low, high]`` (both ends included)."""
        return int(torch.randint(low, high + 1, (), generator=self.generator))

    def bernoulli(self, probability: float) -> bool:
        return self.scalar(0.0, 1.0) < probability

    def sign(self) -> float:
        return 1.0 if self.bernoulli(0.5) else -1.0

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def unit_vector(self) -> Tensor:
        """(3,) direction uniform on the sphere."""
        v = torch.randn(3, generator=self.generator)
        return v / v.norm().clamp_min(1e-6)

    def rotation(self) -> Tensor:
        """(3, 3) rotation uniform over SO(3) (a normalised Gaussian quaternion)."""
        q = torch.randn(4, generator=self.generator)
        w, x, y, z = (q / q.norm().clamp_min(1e-6)).tolist()
        return torch.tensor(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    def angle(self) -> float:
        """One angle uniform in ``[-π, π)``."""
        return self.scalar(-math.pi, math.pi)
