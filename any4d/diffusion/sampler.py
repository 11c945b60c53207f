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

from collections.abc import Callable, Mapping

import torch
from torch import Tensor
from tqdm.auto import tqdm

from any4d.diffusion.masks import Layout, Mask, State

Velocity = Callable[..., dict[str, Tensor]]
SOLVERS = ("unipc", "euler")


def make_scheduler(solver: str, steps: int, shift: float):
    """A fresh diffusers flow-matching scheduler with ``steps`` timesteps set."""
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
    return scheduler


def resolve_states(
    mask: Mask | str | Mapping[str, Tensor],
    layout,
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


def _unpack_input(latents, layout, frame_index, available):
    """Grids, layout, frame_index and availability from a dict of grids or a LatentClip."""
    if hasattr(latents, "grids"):  # a LatentClip: it carries its own layout
        clip = latents
        layout = clip if layout is None else layout
        frame_index = clip.frame_index if frame_index is None else frame_index
        available = clip.available if available is None else available
        latents = clip.grids
    if not isinstance(latents, Mapping) or not latents:
        raise ValueError("latents must be a non-empty dict of stream → (B, C, T', H, W)")
    first = next(iter(latents.values()))
    if layout is None:  # latent frame j is pixel frame j
        layout = Layout.for_stride(first.shape[2], 1)
    elif not isinstance(layout, Layout):
        layout = Layout(tuple(tuple(p) for p in layout.pixel_frames), int(layout.num_context))
    return dict(latents), layout, frame_index, available


@torch.no_grad()
def sample(
    model: Velocity,
    latents,
    mask: Mask | str | Mapping[str, Tensor],
    *,
    steps: int = 40,
    solver: str = "unipc",
    shift: float = 3.0,
    guidance: float = 2.0,
    generator: torch.Generator | None = None,
    noise: Mapping[str, Tensor] | None = None,
    text: Tensor | None = None,
    layout=None,
    frame_index: Tensor | None = None,
    available: Mapping[str, Tensor] | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Complete the target groups of ``latents``.

    model:     any callable ``model(latents, t, text=None[, frame_index=…])`` → velocities
               (DESIGN §4); ``t`` is given per latent frame, (B, T', 1, 1).
    latents:   stream → (B, C, T', H, W) observed latents (values of target groups are
               ignored), or a ``LatentClip`` (its layout, frame_index and availability are used).
    mask:      a ``Mask``, a spec or preset name, or explicit states stream → (B, T') / (T',).
    steps, solver, shift: the schedule (``"unipc"`` as Wan2.1, or ``"euler"``), time shift α.
    guidance:  history guidance weight w (0 = off).
    generator: for the initial noise; ``noise`` (stream → the latents' shape) gives it instead.
               The noise at clean groups replaces the context in the unguided branch.
    text:      (B, L, text_dim) text features for the model, or None.
    layout:    pixel frames per latent frame (default: latent frame j = pixel frame j).
    frame_index: RoPE time index per latent frame, passed to the model when given.
    available: stream → (B,) bool: a clean group of a sample without data is an error.
    Returns stream → (B, C, T', H, W): clean groups equal to the observation, targets sampled.
    """
    latents, layout, frame_index, available = _unpack_input(latents, layout, frame_index, available)
    streams = list(latents)
    first = latents[streams[0]]
    batch, dtype, device = first.shape[0], first.dtype, first.device
    states = resolve_states(mask, layout, streams, batch, available)
    if noise is None:
        noise = {
            s: torch.randn(
                x.shape,
                generator=generator,
                dtype=dtype,
                device=generator.device if generator is not None else device,
            ).to(device)
            for s, x in latents.items()
        }
    elif set(noise) != set(streams) or any(noise[s].shape != latents[s].shape for s in streams):
        raise ValueError(
            f"noise has {{{', '.join(f'{k}: {tuple(v.shape)}' for k, v in noise.items())}}} "
            "(expected the latents' streams and shapes)"
        )

    def group(s: str, state: State) -> Tensor:  # (B, 1, T', 1, 1) bool
        return (states[s].to(device) == state)[:, None, :, None, None]

    clean = {s: group(s, State.CLEAN) for s in streams}
    target = {s: group(s, State.TARGET) for s in streams}
    absent = {s: group(s, State.ABSENT) for s in streams}
    x = {s: torch.where(clean[s], latents[s], noise[s].to(dtype)) for s in streams}
    guided = guidance != 0 and any(bool(c.any()) for c in clean.values())
    extra = {} if frame_index is None else {"frame_index": frame_index}

    scheduler = make_scheduler(solver, steps, shift)
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
