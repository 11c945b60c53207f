"""Components kept off the accelerator until needed: the pipeline's low-memory mode.

Each component (anything with ``.to(device)``: the transformer, the tokenizer, the text
encoder) lives on the CPU; ``use(*names)`` brings the named ones to the accelerator and sends
the others back, so that only one phase's weights are there at a time — umT5 while the prompt is
encoded, then the transformer and the VAE while a clip is sampled and decoded. A component
already where it should be is not moved.
"""

from __future__ import annotations

import torch


class Offload:
    """Moves ``components`` (name → object with ``.to(device)``) between the CPU and
    ``device``, one phase at a time."""

    def __init__(self, device: str | torch.device, components: dict[str, object]) -> None:
        self.device = torch.device(device)
        self.components = dict(components)
        self.on_device: set[str] = set()
        for component in self.components.values():
            component.to("cpu")

    def use(self, *names: str) -> None:
        """``names`` on the device, every other component on the CPU."""
        unknown = set(names) - self.components.keys()
        if unknown:
            raise ValueError(f"no component {sorted(unknown)} (have {sorted(self.components)})")
        for name in self.on_device - set(names):
            self.components[name].to("cpu")
        for name in set(names) - self.on_device:
            self.components[name].to(self.device)
        self.on_device = set(names)
