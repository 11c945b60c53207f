"""Training data: deterministic slots, process-independent batches, modality filtering."""

from __future__ import annotations

import functools

import pytest
import torch

from any4d.diffusion import NoiseConfig, State, flow_matching_loss
from any4d.tokenize import STREAMS as TOKEN_STREAMS
from any4d.tokenize import PixelTokenizer
from any4d.train import load_config
from any4d.train.data import (
    SlotDataset,
    SlotSampler,
    build_sources,
    keep_modalities,
    micro_batches,
)
from any4d.train.step import prepare_micro_batch, prepared_by_loader

STREAMS = list(TOKEN_STREAMS)


def prepare(scenes, slots, step=0, noise=None, seed=0):
    """``prepare_micro_batch`` with the pixel tokenizer and every stream, on the CPU."""
    return prepare_micro_batch(
        scenes,
        slots,
        step,
        tokenizer=PixelTokenizer(2),
        streams=STREAMS,
        noise=NoiseConfig() if noise is None else noise,
        seed=seed,
        device=torch.device("cpu"),
    )


@pytest.fixture(scope="module")
def dataset():
    config = load_config("tiny-synthetic", ["data.num_frames=3", "data.height=16", "data.width=16"])
    return SlotDataset(build_sources(config.data, temporal_stride=1), seed=0)


def test_slots_partition_the_global_batch_for_any_split():
    batch = 8
    for world, accumulation in [(1, 1), (2, 1), (1, 4), (2, 2), (4, 2)]:
        slots = []
        for rank in range(world):
            sampler = SlotSampler(batch, world, rank, accumulation, start=5, end=6)
            slots += [slot for micro in sampler for _, slot in micro]
        assert sorted(slots) == list(range(batch)), (world, accumulation)
    with pytest.raises(ValueError, match="not divisible"):
        SlotSampler(6, 4, 0, 1, 0, 1)


def test_a_slot_is_the_same_clip_wherever_it_is_loaded(dataset):
    _, first = dataset[(3, 5)]
    _, again = dataset[(3, 5)]
    _, other = dataset[(4, 5)]
    assert torch.equal(first.rgb, again.rgb)
    assert not torch.equal(first.rgb, other.rgb)


def test_sources_are_drawn_by_weight_with_their_modalities(dataset):
    picks = [dataset.pick(step, slot)[0].name for step in range(50) for slot in range(8)]
    rgb_only = picks.count("synthetic-rgb-only") / len(picks)
    assert 0.18 < rgb_only < 0.32  # weights 3 : 1
    for step in range(10):
        _, scene = dataset[(step, 0)]
        source, _ = dataset.pick(step, 0)
        assert (scene.depth is not None) == ("depth" in source.modalities)
        assert (scene.cameras is not None) == ("cameras" in source.modalities)


def test_keep_modalities_drops_what_a_source_does_not_provide(dataset):
    _, scene = dataset[(0, 0)]
    full = scene if scene.depth is not None else dataset[(1, 1)][1]
    stripped = keep_modalities(full, ("rgb",))
    assert stripped.depth is None and stripped.cameras is None and stripped.text is None
    assert torch.equal(stripped.rgb, full.rgb)


def test_rgb_only_samples_have_exactly_zero_loss_terms_for_other_streams(dataset):
    """An RGB-only and a fully annotated clip in one batch: the RGB-only sample's depth and
    ray groups are absent, so its terms of those streams are exactly zero."""
    full = next(dataset[(s, 0)][1] for s in range(100) if dataset[(s, 0)][1].depth is not None)
    rgb_only = keep_modalities(full, ("rgb",))
    batch = prepare([full, rgb_only], [0, 1])
    for s in ("depth", "ray_d", "ray_m"):
        assert (batch.states[s][1] == State.ABSENT).all()
        assert (batch.times[s][1] == 1).all()
        assert torch.equal(batch.noisy[s][1], batch.noise[s][1])  # pure placeholder noise
    assert batch.patterns[1] == "video"
    prediction = {s: torch.randn_like(v) for s, v in batch.latents.items()}
    terms = flow_matching_loss(prediction, batch.latents, batch.noise, batch.states)
    for s in ("depth", "ray_d", "ray_m"):
        assert terms.sums[s][1] == 0
    assert terms.sums["rgb"][1] > 0


def test_micro_batch_draws_depend_only_on_the_slot(dataset):
    scenes = [dataset[(2, slot)][1] for slot in range(4)]
    together = prepare(scenes, [0, 1, 2, 3], 2)
    alone = prepare(scenes[2:3], [2], 2)
    for s in STREAMS:
        assert torch.equal(together.noisy[s][2], alone.noisy[s][0])
        assert torch.equal(together.times[s][2], alone.times[s][0])


@pytest.mark.parametrize("workers", [0, 2])
def test_micro_batches_prepared_by_the_loader_equal_those_prepared_in_the_loop(dataset, workers):
    """The trainer's two paths: scenes from the loader prepared in the loop, or micro-batches
    prepared by the loader (its workers, with a pixel tokenizer) — the same tensors either way.
    DataLoader workers run torch on one thread, and a multi-threaded reduction may round its
    last bit otherwise, so the main process runs on one thread here too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_loader_preparation(dataset, workers)
    finally:
        torch.set_num_threads(threads)


def _check_loader_preparation(dataset, workers):
    in_loader = functools.partial(prepare, noise=NoiseConfig(shared_target_prob=0.5), seed=3)
    sampler = SlotSampler(4, 1, 0, accumulation=2, start=7, end=9)
    plain = list(micro_batches(dataset, sampler, num_workers=0))  # (scenes, slots, step)
    prepared = list(micro_batches(dataset, sampler, workers, in_loader))
    assert [step for _, _, step in plain] == [7, 7, 8, 8]  # 2 steps × 2 micro-batches
    assert len(prepared) == 4
    fields = ("latents", "noise", "noisy", "times", "states", "pixel_weights", "channel_weights")
    for arguments, batch in zip(plain, prepared, strict=True):
        reference = in_loader(*arguments)
        assert batch.patterns == reference.patterns and batch.counts == reference.counts
        assert batch.units == reference.units
        for field in fields:
            ours, theirs = getattr(batch, field), getattr(reference, field)
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[s], theirs[s]) for s in ours), field
        assert torch.equal(batch.frame_index, reference.frame_index)


def test_the_loader_prepares_micro_batches_only_without_a_wan_vae_or_text_encoder():
    assert prepared_by_loader(load_config("tiny-synthetic"))
    assert not prepared_by_loader(load_config("tiny-synthetic", ["model.text_encoder=/umt5"]))
    wan = ["tokenizer.kind=wan_vae", "tokenizer.vae_path=/vae"]
    assert not prepared_by_loader(load_config("tiny-synthetic", wan))


def test_a_micro_batch_moves_every_tensor(dataset):
    scenes = [dataset[(0, slot)][1] for slot in range(2)]
    batch = prepare(scenes, [0, 1])
    moved = batch.to(torch.device("meta"))
    for field in ("latents", "noise", "noisy", "times", "states", "pixel_weights"):
        assert all(x.is_meta for x in getattr(moved, field).values()), field
    assert moved.frame_index.is_meta and moved.patterns == batch.patterns
    assert not batch.latents["rgb"].is_meta  # a new micro-batch, the old one untouched
