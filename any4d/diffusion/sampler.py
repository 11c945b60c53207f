"""Sampling: complete a partially observed scene (DESIGN §5).

Targets start from ``N(0, I)``; clean groups are clamped to the observation at ``t = 0`` at every
step; absent groups stay Gaussian placeholders at ``t = 1``. All targets share one noise level
per step, so one diffusers scheduler instance steps them all: its multistep history (UniPC) is
elementwise with scalar coefficients, so stepping the whole stacked tensor and keeping only the
target values is exact (WAN.md §6). The model sees ``t = timestep / 1000`` with the scheduler's
own timesteps, as Wan's pipelines feed them.

History guidance (DFoT): ``v = v_H + w·(v_H − v_∅)``, where ``v_∅`` sees the clean context
replaced by noise at ``t = 1``; both branches run in one batched forward, and guidance is skipped
when nothing is clean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from any4d.diffusion.masks import Layout, Mask, State, as_layout

Velocity = Callable[..., dict[str, Tensor]]
SOLVERS = ("unipc", "euler")


def make_scheduler(solver: str, steps: int, shift: float, device: torch.device | None = None):
    """A fresh diffusers flow-matching scheduler with ``steps`` timesteps set. device: where
    the samples are — UniPC's noise levels are put there once, since its step moves each one
    it reads to the samples' device (a host-to-device copy, and a synchronisation, per read)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if solver == "unipc":  # Wan2.1's sampler
        scheduler = UniPCMultistepScheduler(
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            num_train_timesteps=1000,
            flow_shift=shift,
        )
    elif solver == "euler":
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    else:
        raise ValueError(f"solver={solver!r} (expected one of {SOLVERS})")
    scheduler.set_timesteps(steps)
    if solver == "unipc" and device is not None:
        scheduler.sigmas = scheduler.sigmas.to(device)
    return scheduler


@dataclass(frozen=True)
class SamplerConfig:
    """How to integrate the flow from noise to a completion; every default is stated here.

    steps:    solver steps (model calls; twice the batch with history guidance).
    solver:   "unipc" (Wan2.1's sampler) or "euler".
    shift:    time shift α of the flow-matching schedule (Wan2.1: 3.0 at 480p).
    guidance: history guidance weight w ≥ 0 (DFoT; 0 = off).
    """

    steps: int = 40
    solver: str = "unipc"
    shift: float = 3.0
    guidance: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps={self.steps!r} (expected an integer ≥ 1)")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} (expected one of {SOLVERS})")
        if not _finite(self.shift) or self.shift <= 0:
            raise ValueError(f"shift={self.shift!r} (expected a finite number > 0)")
        if not _finite(self.guidance) or self.guidance < 0:
            raise ValueError(f"guidance={self.guidance!r} (expected a finite weight w ≥ 0)")

    @classmethod
    def settings(cls) -> tuple[str, ...]:
        """The field names, e.g. to pick sampler settings out of a pipeline's defaults."""
        return tuple(f.name for f in fields(cls))


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, eq=False)
class Latents:
    """What the sampler completes: the latent grids of a batch and where they sit in time.

    grids:       stream → (B, C, T', H', W') observed latents; values of target groups are
                 ignored. Every stream has the same (B, ·, T', H', W').
    layout:      the pixel frames each latent frame holds (default: latent frame j is pixel
                 frame j).
    frame_index: (T',) integer RoPE time index per latent frame, passed to the model when given.
    available:   stream → (B,) bool: a clean group of a sample without that data is an error.
    """

    grids: dict[str, Tensor]
    layout: Layout | None = None
    frame_index: Tensor | None = None
    available: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.grids, Mapping) or not self.grids:
            raise ValueError("grids must be a non-empty dict of stream → (B, C, T', H', W')")
        first = next(iter(self.grids.values()))
        for name, grid in self.grids.items():
            if not isinstance(grid, Tensor) or grid.dim() != 5 or grid.shape[2] != first.shape[2]:
                shape = tuple(grid.shape) if isinstance(grid, Tensor) else type(grid).__name__
                raise ValueError(
                    f"grids[{name!r}] is {shape} (expected (B, C, T', H', W') with the T' of "
                    "every other stream)"
                )
        if self.layout is None:
            object.__setattr__(self, "layout", Layout.for_stride(first.shape[2], 1))
        object.__setattr__(self, "grids", dict(self.grids))

    @classmethod
    def of(cls, clip) -> Latents:
        """The grids of a ``LatentClip`` with its layout, RoPE indices and availability."""
        return cls(dict(clip.grids), as_layout(clip), clip.frame_index, dict(clip.available))

    @property
    def streams(self) -> list[str]:
        return list(self.grids)

    @property
    def batch_size(self) -> int:
        return next(iter(self.grids.values())).shape[0]

    def repeat(self, count: int) -> Latents:
        """``count`` copies of the batch one after the other (candidates sampled together)."""

        if count == 1:
            return self
        available = None if self.available is None else _each(tile, self.available, count)
        return replace(self, grids=_each(tile, self.grids, count), available=available)


def tile(x: Tensor, count: int) -> Tensor:
    """(B, …) → (count·B, …): ``count`` copies of the batch one after the other."""
    return x if count == 1 else x.repeat(count, *([1] * (x.dim() - 1)))


def _each(function, tensors: Mapping[str, Tensor], *args) -> dict[str, Tensor]:
    return {s: function(x, *args) for s, x in tensors.items()}


def resolve_states(
    mask: Mask | str | Mapping[str, Tensor],
    layout: Layout,
    streams: list[str],
    batch: int,
    available: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Group states stream → (B, T') from a mask, a spec string or explicit states."""
    if isinstance(mask, Mapping):
        if set(mask) != set(streams):
            raise ValueError(
                f"mask states have streams {sorted(mask)} but latents {sorted(streams)}"
            )
        states = {s: torch.as_tensor(mask[s]).to(torch.uint8) for s in streams}
    else:
        states = Mask.parse(mask).states(layout, streams, available=available)
    out = {}
    for s, row in states.items():
        row = row if row.dim() == 2 else row[None]
        if row.shape[0] == 1:
            row = row.expand(batch, -1)
        if row.shape[0] != batch or row.shape[1] != layout.num_latent:
            raise ValueError(
                f"mask states of {s!r} have shape {tuple(row.shape)} (expected ({batch}, "
                f"{layout.num_latent}))"
            )
        out[s] = row
    return out


@torch.no_grad()
def sample(
    model: Velocity,
    latents: Latents,
    mask: Mask | str | Mapping[str, Tensor],
    config: SamplerConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    noise: Mapping[str, Tensor] | None = None,
    text: Tensor | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Complete the target groups of ``latents``.

    model:     any callable ``model(latents, t, text=None[, frame_index=…])`` → velocities
               (DESIGN §4); ``t`` is given per latent frame, (B, T', 1, 1).
    latents:   the observed grids and their layout (``Latents``; ``Latents.of(clip)`` for a
               ``LatentClip``).
    mask:      a ``Mask``, a spec or preset name, or explicit states stream → (B, T') / (T',).
    config:    steps, solver, shift and history guidance (default ``SamplerConfig()``).
    generator: for the initial noise; ``noise`` (stream → the latents' shape) gives it instead.
               The noise at clean groups replaces the context in the unguided branch.
    text:      (B, L, text_dim) text features for the model, or None.
    Returns stream → (B, C, T', H', W'): clean groups equal to the observation, targets sampled.
    """
    if not isinstance(latents, Latents):
        raise ValueError(
            f"latents is a {type(latents).__name__} (expected Latents: Latents(grids) or "
            "Latents.of(clip))"
        )
    config = config or SamplerConfig()
    grids, streams = latents.grids, latents.streams
    first = grids[streams[0]]
    batch, dtype, device = first.shape[0], first.dtype, first.device
    states = resolve_states(mask, latents.layout, streams, batch, latents.available)
    if noise is None:
        noise = {
            s: torch.randn(
                x.shape,
                generator=generator,
                dtype=dtype,
                device=generator.device if generator is not None else device,
            ).to(device)
            for s, x in grids.items()
        }
    elif set(noise) != set(streams) or any(noise[s].shape != grids[s].shape for s in streams):
        raise ValueError(
            f"noise has {{{', '.join(f'{k}: {tuple(v.shape)}' for k, v in noise.items())}}} "
            "(expected the latents' streams and shapes)"
        )

    def group(s: str, state: State) -> Tensor:  # (B, 1, T', 1, 1) bool
        return (states[s].to(device) == state)[:, None, :, None, None]

    clean = {s: group(s, State.CLEAN) for s in streams}
    target = {s: group(s, State.TARGET) for s in streams}
    absent = {s: group(s, State.ABSENT) for s in streams}
    x = {s: torch.where(clean[s], grids[s], noise[s].to(dtype)) for s in streams}
    guidance = config.guidance
    guided = guidance != 0 and any(bool(c.any()) for c in clean.values())
    index = latents.frame_index
    extra = {} if index is None else {"frame_index": index}

    # Inside the loop nothing waits for the device but UniPC's corrector: its 2 × 2
    # torch.linalg.solve checks for singularity on the host, once per step.
    scheduler = make_scheduler(config.solver, config.steps, config.shift, device)
    for timestep in tqdm(scheduler.timesteps, desc="sampling", disable=not progress, leave=False):
        level = float(timestep) / 1000.0
        t = {
            s: torch.where(clean[s], 0.0, torch.where(absent[s], 1.0, level))[:, 0].to(
                torch.float32
            )
            for s in streams
        }  # (B, T', 1, 1)
        if guided:
            unconditional = {s: torch.where(clean[s], noise[s].to(dtype), x[s]) for s in streams}
            t_unconditional = {s: torch.where(clean[s][:, 0], 1.0, t[s]) for s in streams}
            both = model(
                {s: torch.cat([x[s], unconditional[s]]) for s in streams},
                {s: torch.cat([t[s], t_unconditional[s]]) for s in streams},
                text=None if text is None else torch.cat([text, text]),
                **extra,
            )
            velocity = {}
            for s in streams:
                history, free = both[s].chunk(2)
                velocity[s] = history + guidance * (history - free)
        else:
            velocity = model(x, t, text=text, **extra)
        # One (1, N) tensor for every stream: UniPC wants (batch, channels, …).
        stacked = torch.cat([x[s].reshape(1, -1) for s in streams], dim=1)
        velocities = torch.cat([velocity[s].to(dtype).reshape(1, -1) for s in streams], dim=1)
        stepped = scheduler.step(velocities, timestep, stacked).prev_sample[0]
        offset = 0
        for s in streams:
            n = x[s].numel()
            update = stepped[offset : offset + n].view_as(x[s])
            x[s] = torch.where(target[s], update, x[s])
            offset += n
    return x
