"""One micro-batch of diffusion-forcing training data: scenes → noisy latents and targets.

Per sample (slot): one training pattern its modalities allow, the tokenizer's latents of every
model stream normalised by the scale rule for what that pattern observes (DESIGN §1; zeros
where the scene lacks the modality: those groups are absent), a flow time per group and
Gaussian noise — all drawn from the slot's own generator, so a sample is the same whichever
process or micro-batch it lands in. ``micro_batch_stream`` yields a run's micro-batches, prepared
in the data loader (on the CPU) or on the training loop's device.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.data import Scene
from any4d.diffusion import (
    PRESETS,
    Layout,
    NoiseConfig,
    add_noise,
    sample_patterns,
    sample_times,
    target_counts,
)
from any4d.tokenize.batch import STREAM_MODALITY, Observed
from any4d.tokenize.precomputed import PrecomputedClip
from any4d.train.config import TrainConfig
from any4d.train.data import SlotDataset, SlotSampler, build_sources, micro_batches, slot_generator
from any4d.train.distributed import Processes

# The MicroBatch fields that map streams to tensors.
_TENSOR_DICTS = ("latents", "noise", "noisy", "times", "states", "pixel_weights", "channel_weights")


@dataclass(frozen=True, eq=False)
class MicroBatch:
    """latents: stream → (B, C, T', H', W') clean latents z₀; noise: ε of the same shapes;
    noisy: ``(1 − t) z₀ + t ε``; times: stream → (B, T') flow time per group; states: stream →
    (B, T') group states; pixel_weights: stream → (B, T', H', W') loss weights inside targets
    (depth: the valid fraction); frame_index: (T',) RoPE time indices; patterns: per sample;
    counts: stream → weighted target elements (the loss denominators of this micro-batch);
    text: (B, L, text_dim) text features (zero rows: no text), or None without a text encoder;
    channel_weights: stream → (C,) weights of its channels in the loss (the ray streams' zero
    padding: 0); units: per sample, where its clip scale came from (``any4d.geometry.UNITS``)."""

    latents: dict[str, Tensor]
    noise: dict[str, Tensor]
    noisy: dict[str, Tensor]
    times: dict[str, Tensor]
    states: dict[str, Tensor]
    pixel_weights: dict[str, Tensor]
    frame_index: Tensor
    patterns: list[str]
    counts: dict[str, float]
    text: Tensor | None = None
    channel_weights: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    units: tuple[str, ...] = ()

    @property
    def model_times(self) -> dict[str, Tensor]:
        """Flow times shaped for the model, (B, T', 1, 1): one per latent frame."""
        return {s: t[:, :, None, None] for s, t in self.times.items()}

    def to(self, device: torch.device, non_blocking: bool = False) -> MicroBatch:
        """The same micro-batch with every tensor on ``device``."""
        return self._map(lambda x: x.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> MicroBatch:
        """Page-locked copies (the DataLoader calls this with ``pin_memory=True``)."""
        return self._map(Tensor.pin_memory)

    def _map(self, move) -> MicroBatch:
        def each(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
            return {s: move(x) for s, x in tensors.items()}

        moved = {name: each(getattr(self, name)) for name in _TENSOR_DICTS}
        text = None if self.text is None else move(self.text)
        return dataclasses.replace(self, **moved, frame_index=move(self.frame_index), text=text)


def prepare_micro_batch(
    scenes: Sequence[Scene | PrecomputedClip],
    slots: Sequence[int],
    step: int,
    *,
    tokenizer,
    streams: Sequence[str],
    noise: NoiseConfig,
    seed: int,
    device: torch.device,
    text_encoder=None,
    text_drop_prob: float = 0.0,
) -> MicroBatch:
    """Tokenise ``scenes`` and draw each slot's pattern, times and noise (module docstring);
    with a ``text_encoder`` (``any4d.tokenize.text.TextEncoder``) also encode their texts.

    scenes may also be a latent cache's ``PrecomputedClip``s (``any4d.train.cache``): then the
    tokenizer is a ``PrecomputedTokenizer`` and the text encoder a ``CachedText``, and the batch
    is the one the scenes themselves would give. text_drop_prob: the probability that a slot's
    caption is replaced by the null text (drawn from the slot's own generator)."""
    first = scenes[0]
    num_frames, stride = first.num_frames, tokenizer.temporal_stride
    context = [num_frames - 1] if stride > 1 else []  # the interpolation pattern's last frame
    layout = Layout.for_stride(num_frames, stride)
    layout = Layout(layout.pixel_frames + tuple((p,) for p in context), len(context))
    # Each slot's generator draws, in order: its pattern, its times, its noise.
    generators = [slot_generator(seed, step, slot, "noise") for slot in slots]
    states_cpu, patterns = sample_patterns(layout, _available(scenes, streams), noise, generators)
    # The clip scale follows what the drawn pattern observes, as it will at inference.
    observed = [Observed.of(PRESETS[p], num_frames) for p in patterns]
    if isinstance(first, PrecomputedClip):
        if tuple(first.context) != tuple(context):
            raise ValueError(
                f"cached clips have context frames {list(first.context)}, training needs {context}"
            )
        clip = tokenizer.encode_precomputed(scenes, observed)
    else:
        clip = tokenizer.encode(
            list(scenes), context_frames=context, observed=observed, targets=True
        )
    if clip.pixel_frames != layout.pixel_frames:
        raise ValueError(
            f"the tokenizer laid out latent frames {clip.pixel_frames} but the patterns were "
            f"drawn for {layout.pixel_frames}"
        )
    clip = clip.to(device).with_streams(streams)
    latents, reference = clip.grids, clip.grids["rgb"]
    rows = []
    noises = {s: [] for s in streams}
    for b, generator in enumerate(generators):
        own = {s: v[b : b + 1] for s, v in states_cpu.items()}  # stream → (1, T')
        rows.append(sample_times(own, noise, generator))
        for s in streams:
            shape = latents[s].shape[1:]
            noises[s].append(torch.randn(shape, generator=generator, dtype=reference.dtype))
    states = {s: v.to(device) for s, v in states_cpu.items()}
    times = {s: torch.cat([r[s] for r in rows]).to(device) for s in streams}
    eps = {s: torch.stack(noises[s]).to(device) for s in streams}
    noisy, _ = add_noise(latents, times, noise=eps)
    pixel_weights = {}
    if clip.depth_valid is not None and "depth" in streams:
        pixel_weights["depth"] = clip.depth_valid
    shapes = {s: latents[s].shape for s in streams}
    channel_weights = {s: w.to(device) for s, w in tokenizer.channel_weights(streams).items()}
    text = _text(scenes, slots, step, seed, text_encoder, text_drop_prob)
    return MicroBatch(
        latents=latents,
        noise=eps,
        noisy=noisy,
        times=times,
        states=states,
        pixel_weights=pixel_weights,
        frame_index=clip.frame_index,
        patterns=patterns,
        counts=target_counts(states, shapes, pixel_weights, channel_weights),
        text=None if text is None else text.to(device),
        channel_weights=channel_weights,
        units=clip.units,
    )


def _text(scenes, slots, step: int, seed: int, text_encoder, drop: float) -> Tensor | None:
    """(B, L, D) caption features of the samples (zero rows: the null text), None without a
    text encoder; each slot's caption is dropped to the null text with probability ``drop``,
    from its own generator (so the same in a cache and on the fly)."""
    if text_encoder is None:
        return None
    if isinstance(scenes[0], PrecomputedClip):
        features = text_encoder.features(scenes)
    else:
        features = text_encoder.encode_optional([scene.text for scene in scenes])
    if drop > 0:
        dropped = [
            bool(torch.rand((), generator=slot_generator(seed, step, slot, "text")) < drop)
            for slot in slots
        ]
        if any(dropped):
            features = features.clone()
            features[torch.tensor(dropped)] = 0
    return features


def _available(scenes, streams: Sequence[str]) -> dict[str, Tensor]:
    """Stream → (B,) bool: which samples have ground truth for it (rays need cameras)."""

    def has(scene, stream: str) -> bool:
        if isinstance(scene, PrecomputedClip):
            return {"rgb": True, "depth": scene.has_depth}.get(stream, scene.has_cameras)
        return getattr(scene, STREAM_MODALITY[stream]) is not None

    return {s: torch.tensor([has(scene, s) for scene in scenes]) for s in streams}


def prepared_by_loader(config: TrainConfig) -> bool:
    """Whether the data loader prepares the micro-batches of a run, on the CPU (in its workers,
    when it has any): from a latent cache, or with the pixel tokenizer, which needs no device,
    and no text encoder. The Wan VAE and umT5 run on the training loop's device, so with either
    the loop prepares them."""
    if config.data.cache is not None:
        return True
    return config.tokenizer.kind == "pixel" and config.model.text_encoder is None


def preparation(
    config: TrainConfig, tokenizer, streams: Sequence[str], device: torch.device, text_encoder=None
) -> Callable[[list[Scene], list[int], int], MicroBatch]:
    """``prepare(scenes, slots, step)``: ``prepare_micro_batch`` with a run's tokenizer, streams,
    noise and seed, on ``device``. Picklable (DataLoader workers run it) when its tokenizer is."""
    return functools.partial(
        prepare_micro_batch,
        tokenizer=tokenizer,
        streams=streams,
        noise=config.noise.noise_config(),
        seed=config.seed,
        device=device,
        text_encoder=text_encoder,
        text_drop_prob=config.noise.text_drop_prob,
    )


def micro_batch_stream(
    config: TrainConfig,
    tokenizer,
    text_encoder,
    streams: Sequence[str],
    start: int,
    processes: Processes,
    cache=None,
) -> Iterator[MicroBatch]:
    """This process's micro-batches of steps ``start`` … ``config.steps − 1``, in order, ready on
    its device: what the training loop trains on. One ``prepare(scenes, slots, step)`` makes
    them: in the data loader on the CPU (``prepared_by_loader``: the pixel tokenizer, no text
    encoder), or in the loop's process on its device, where the Wan VAE and umT5 are, from the
    scenes the loader yields. cache: the run's ``LatentCache`` (its clips are drawn instead)."""
    device = processes.device
    in_loader = prepared_by_loader(config)
    prepare_on = torch.device("cpu") if in_loader else device
    prepare = preparation(config, tokenizer, streams, prepare_on, text_encoder)
    if cache is not None:
        sources = cache.sources(config)
    else:
        sources = build_sources(config.data, tokenizer.temporal_stride)
    dataset = SlotDataset(sources, config.seed)
    size, world, rank = config.data.batch_size, processes.world, processes.rank
    sampler = SlotSampler(size, world, rank, config.accumulation, start, config.steps)
    workers, pin = config.data.num_workers, device.type == "cuda"
    if in_loader:
        prepared = micro_batches(dataset, sampler, workers, prepare, pin_memory=pin)
        return (micro.to(device, non_blocking=True) for micro in prepared)
    loaded = micro_batches(dataset, sampler, workers, pin_memory=pin)  # (scenes, slots, step)
    return (prepare(*arguments) for arguments in loaded)
