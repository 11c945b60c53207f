"""Diffusion forcing for training: a pattern per sample, a noise level per group (DESIGN §3).

Flow matching (DESIGN §1): ``z_t = (1 − t)·z₀ + t·ε`` with ``t = 0`` clean and ``t = 1`` noise;
the model predicts the velocity ``v* = ε − z₀``. Levels are shifted,
``t' = α·t / (1 + (α − 1)·t)`` (``α = 3``), which spends more of training at high noise.

Per sample: one of the training patterns its modalities allow; target groups get independent
shifted levels; each context (clean) group is clean with probability 0.5 and otherwise gets a
level below every target level of that sample ("imperfect history", as DFoT); absent groups are
pure noise at ``t = 1``. Optionally (``shared_target_prob``) a sample's targets all share one
level instead — the condition sampling meets, where every target starts from pure noise together.

With probability ``context_drop_prob`` a sample's whole context is dropped to pure noise at
``t = 1`` (its targets keep their levels): the input of history guidance's unguided branch
``v_∅`` (DESIGN §5), trained as classifier-free guidance trains its null branch. Without it
``v_∅`` would be an input the model never saw: noisy history is drawn below the lowest target
level, never at ``t = 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from any4d.diffusion.masks import PRESETS, TRAINING_PATTERNS, State


def shift_time(t: Tensor, shift: float) -> Tensor:
    """``t' = α·t / (1 + (α − 1)·t)``: the time shift of Wan / SD3 (``α = shift``)."""
    return shift * t / (1 + (shift - 1) * t)


@dataclass(frozen=True)
class NoiseConfig:
    """Training noise.

    patterns:           pattern name → sampling weight (presets of ``any4d.diffusion.masks``).
    shift:              α of the time shift applied to target levels.
    history_clean_prob: probability that a context group stays clean.
    shared_target_prob: probability that all target groups of a sample share one level (as at
                        sampling time) instead of drawing one each; 0 draws nothing extra.
    context_drop_prob:  probability that all context (clean) groups of a sample are pure noise
                        at ``t = 1`` (history guidance's unguided input); 0 draws nothing extra.
    """

    patterns: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(TRAINING_PATTERNS, 1.0)
    )
    shift: float = 3.0
    history_clean_prob: float = 0.5
    shared_target_prob: float = 0.0
    context_drop_prob: float = 0.1

    def __post_init__(self) -> None:
        unknown = [p for p in self.patterns if p not in PRESETS]
        if unknown or not self.patterns:
            raise ValueError(f"patterns {unknown or '{}'} (expected names from {sorted(PRESETS)})")
        if any(w < 0 for w in self.patterns.values()) or sum(self.patterns.values()) <= 0:
            raise ValueError(f"pattern weights {dict(self.patterns)} (expected ≥ 0, not all 0)")
        if self.shift <= 0:
            raise ValueError(f"shift={self.shift} (expected > 0)")
        if not 0 <= self.history_clean_prob <= 1:
            raise ValueError(f"history_clean_prob={self.history_clean_prob} (expected in [0, 1])")
        if not 0 <= self.shared_target_prob <= 1:
            raise ValueError(f"shared_target_prob={self.shared_target_prob} (expected in [0, 1])")
        if not 0 <= self.context_drop_prob <= 1:
            raise ValueError(f"context_drop_prob={self.context_drop_prob} (expected in [0, 1])")


def sample_patterns(
    layout,
    available: Mapping[str, Tensor],
    config: NoiseConfig,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> tuple[dict[str, Tensor], list[str]]:
    """One training pattern per sample, restricted to what the sample provides.

    layout:    pixel frames per latent frame (a ``LatentClip``), context groups last.
    available: stream → (B,) bool, which samples have ground truth for the stream; the streams
               given are the streams present.
    generator: one for the batch, or one per sample (sample b draws from ``generator[b]``).
    A pattern fits a sample when every stream it makes clean is available and at least one of
    its targets has ground truth. Targets without ground truth become absent.
    Returns the states, stream → (B, T') uint8, and the pattern name of each sample.
    """
    streams = list(available)
    batch = next(iter(available.values())).shape[0]
    if isinstance(generator, Sequence) and len(generator) != batch:
        raise ValueError(f"generator has {len(generator)} generators for {batch} samples")
    names = [name for name, weight in config.patterns.items() if weight > 0]
    weights = torch.tensor([config.patterns[n] for n in names], dtype=torch.float64)
    flags_cpu = {s: available[s].cpu().tolist() for s in streams}  # one transfer per stream
    fitting: dict[tuple[bool, ...], tuple[list[str], list[dict[str, Tensor]], Tensor]] = {}
    rows: dict[str, list[Tensor]] = {s: [] for s in streams}
    chosen = []
    for b in range(batch):
        key = tuple(bool(flags_cpu[s][b]) for s in streams)
        if key not in fitting:  # samples with the same modalities have the same options
            flags = dict(zip(streams, key, strict=True))
            options, option_states = _fitting_patterns(layout, streams, flags, names)
            option_weights = weights[[names.index(o) for o in options]]
            fitting[key] = options, option_states, option_weights
        options, option_states, option_weights = fitting[key]
        if not options:
            have = [s for s, flag in zip(streams, key, strict=True) if flag]
            raise ValueError(
                f"sample {b} has only {have}: none of the patterns {names} fits it (each needs "
                "its clean streams and a target with ground truth)"
            )
        own = generator[b] if isinstance(generator, Sequence) else generator
        pick = int(torch.multinomial(option_weights, 1, generator=own))
        chosen.append(options[pick])
        for s in streams:
            rows[s].append(option_states[pick][s][0])
    return {s: torch.stack(r) for s, r in rows.items()}, chosen


def _fitting_patterns(layout, streams, flags: dict[str, bool], names: list[str]):
    """The patterns (names, states (1, T') per stream) that fit a sample providing ``flags``."""
    options, option_states = [], []
    for name in names:
        mask = PRESETS[name]
        if any(not flags.get(s, False) for s in mask.clean):
            continue
        states = mask.states(layout, streams, available=flags, drop_unavailable=True)
        if any((v == State.TARGET).any() for v in states.values()):
            options.append(name)
            option_states.append(states)
    return options, option_states


def sample_times(
    states: Mapping[str, Tensor],
    config: NoiseConfig,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """A flow time per group from its state (module docstring).

    states: stream → (B, T') ``State`` values. Returns stream → (B, T') float32 in [0, 1].
    """
    streams = list(states)
    stacked = torch.stack([states[s].long() for s in streams])  # (S, B, T')
    target = stacked == State.TARGET
    uniform = torch.rand(stacked.shape, generator=generator)
    levels = shift_time(uniform, config.shift)
    if config.shared_target_prob > 0:  # drawn only then: with 0, times are as they always were
        batch = stacked.shape[1]
        shared = torch.rand(batch, generator=generator) < config.shared_target_prob  # (B,)
        one = shift_time(torch.rand(batch, generator=generator), config.shift)  # (B,)
        levels = torch.where(shared[None, :, None], one[None, :, None], levels)
    # The lowest target level of each sample bounds its noisy history from above.
    lowest = torch.where(target, levels, torch.ones_like(levels)).amin(dim=(0, 2))  # (B,)
    keep_clean = torch.rand(stacked.shape, generator=generator) < config.history_clean_prob
    history = torch.rand(stacked.shape, generator=generator) * lowest[None, :, None]
    t = torch.where(target, levels, torch.ones_like(levels))  # absent → 1
    clean = stacked == State.CLEAN
    t = torch.where(clean, torch.where(keep_clean, torch.zeros_like(t), history), t)
    if config.context_drop_prob > 0:  # drawn last and only then: the draws above are unchanged
        dropped = torch.rand(stacked.shape[1], generator=generator) < config.context_drop_prob
        t = torch.where(clean & dropped[None, :, None], torch.ones_like(t), t)
    return {s: t[i] for i, s in enumerate(streams)}


def add_noise(
    latents: Mapping[str, Tensor],
    t: Mapping[str, Tensor],
    generator: torch.Generator | None = None,
    noise: Mapping[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``z_t = (1 − t)·z₀ + t·ε`` per stream, with ``t`` per latent frame.

    latents: stream → (B, C, T', H, W); t: stream → (B, T'); noise: ε, stream → (B, C, T', H, W),
    or None to draw it from ``generator`` (the trainer draws its own, from each sample's
    generator). ``t`` is cast to ε's dtype.
    Returns the noisy latents and the noise ε, each stream → (B, C, T', H, W).
    """
    noisy, noises = {}, {}
    for s, z0 in latents.items():
        if noise is None:
            device = generator.device if generator is not None else z0.device
            eps = torch.randn(z0.shape, generator=generator, dtype=z0.dtype, device=device)
            eps = eps.to(z0.device)
        else:
            eps = noise[s]
        level = t[s].to(eps.dtype).to(z0.device)[:, None, :, None, None]
        noisy[s] = (1 - level) * z0 + level * eps
        noises[s] = eps
    return noisy, noises
