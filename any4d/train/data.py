"""Training data: a weighted mixture of sources, drawn deterministically per batch slot.

Every sample of the global batch of step ``k`` has a **slot** ``i`` (0 … batch − 1). What the
slot holds — which source, which clip — and all its randomness (pattern, noise levels, noise)
come from a generator seeded by ``(seed, k, i)`` alone. So the global batch is the same whatever
the number of processes, DataLoader workers or accumulation steps, and resuming at step ``k``
needs no saved data position beyond ``k`` itself.

A source declares which modalities training uses from it; a clip loses the others (an RGB-only
source trains side by side with a fully annotated one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from any4d.data import Scene, SyntheticClips, SyntheticConfig, build_dataset, load_mixture
from any4d.train.config import DataSection


@dataclass(frozen=True)
class Source:
    """A data set of scenes, its sampling weight and the modalities training uses from it."""

    name: str
    dataset: Dataset
    weight: float
    modalities: tuple[str, ...]


def slot_generator(seed: int, step: int, slot: int, purpose: str) -> torch.Generator:
    """A CPU generator that depends only on (seed, step, slot, purpose)."""
    digest = hashlib.sha256(f"{seed}/{step}/{slot}/{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def keep_modalities(scene: Scene, modalities: Sequence[str]) -> Scene:
    """The scene without the modalities a source does not provide for training."""
    return dataclasses.replace(
        scene,
        depth=scene.depth if "depth" in modalities else None,
        cameras=scene.cameras if "cameras" in modalities else None,
        text=scene.text if "text" in modalities else None,
    )


def build_sources(data: DataSection, temporal_stride: int) -> list[Source]:
    """The sources of a data section: a mixture file of real data sets, or the procedural world."""
    if data.mixture is not None:
        mixture = load_mixture(data.mixture)
        if mixture.clip.temporal_stride != temporal_stride:
            raise ValueError(
                f"{data.mixture}: clip.temporal_stride={mixture.clip.temporal_stride} but the "
                f"tokenizer's temporal stride is {temporal_stride}"
            )
        return [
            Source(e.name, build_dataset(e, mixture.clip, "train"), e.weight, e.modalities)
            for e in mixture.role("train")
            if e.weight > 0
        ]
    shape = SyntheticConfig(
        num_frames=data.num_frames, height=data.height, width=data.width, fps=data.fps
    )
    return [
        Source(s.name, SyntheticClips(shape, split="train", size=s.size), s.weight, s.modalities)
        for s in data.synthetic
        if s.weight > 0
    ]


class SlotDataset(Dataset):
    """Item ``(step, slot)`` → (slot, scene): the source and clip the slot's generator picks."""

    def __init__(self, sources: Sequence[Source], seed: int) -> None:
        if not sources:
            raise ValueError("no data source with a positive weight")
        self.sources = list(sources)
        self.seed = seed
        self.weights = torch.tensor([s.weight for s in sources], dtype=torch.float64)

    def pick(self, step: int, slot: int) -> tuple[Source, int]:
        generator = slot_generator(self.seed, step, slot, "data")
        source = self.sources[int(torch.multinomial(self.weights, 1, generator=generator))]
        size = len(source.dataset)
        if size == 0:
            raise ValueError(f"data source {source.name!r} has no clips")
        index = int(torch.randint(size, (1,), generator=generator))
        return source, index

    def __getitem__(self, item: tuple[int, int]) -> tuple[int, Scene]:
        step, slot = item
        source, index = self.pick(step, slot)
        sample = source.dataset[index]
        if isinstance(sample, Scene):  # a cache's clips were stored with the source's modalities
            sample = keep_modalities(sample, source.modalities)
        return slot, sample

    def __len__(self) -> int:  # the slots are unbounded; samplers index explicitly
        return 2**62


class SlotSampler(Sampler):
    """Yields, for steps ``start …`` ``end − 1``, each micro-batch of this process's slots.

    The global batch of ``batch`` slots is split into ``accumulation`` micro-batches, each
    split over ``world`` processes: micro-batch ``m`` of rank ``r`` holds slots
    ``(m·world + r)·b … (m·world + r + 1)·b − 1`` with ``b = batch / (world · accumulation)``.
    """

    def __init__(self, batch: int, world: int, rank: int, accumulation: int, start: int, end: int):
        per = world * accumulation
        if batch % per:
            raise ValueError(
                f"data.batch_size={batch} is not divisible by processes × accumulation = "
                f"{world} × {accumulation}"
            )
        self.micro, self.world, self.rank = batch // per, world, rank
        self.accumulation, self.start, self.end = accumulation, start, end

    def slots(self, micro_step: int) -> list[int]:
        first = (micro_step * self.world + self.rank) * self.micro
        return list(range(first, first + self.micro))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.end):
            for m in range(self.accumulation):
                yield [(step, slot) for slot in self.slots(m)]

    def __len__(self) -> int:
        return (self.end - self.start) * self.accumulation


class _MicroBatches(Dataset):
    """Item: one micro-batch's ``(step, slot)`` pairs → ``prepare(scenes, slots, step)``.
    Fetching whole micro-batches lets a worker prepare one end to end."""

    def __init__(self, slots: SlotDataset, prepare: Callable) -> None:
        self.slots, self.prepare = slots, prepare

    def __getitem__(self, items: list[tuple[int, int]]):
        pairs = [self.slots[item] for item in items]
        slots, scenes = [slot for slot, _ in pairs], [scene for _, scene in pairs]
        return self.prepare(scenes, slots, items[0][0])

    def __len__(self) -> int:
        return len(self.slots)


def _unprepared(scenes: list[Scene], slots: list[int], step: int) -> tuple:
    """The loader's item when the caller prepares micro-batches itself: the arguments of its
    ``prepare(scenes, slots, step)``."""
    return scenes, slots, step


def _as_is(batch):
    return batch


def micro_batches(
    dataset: SlotDataset,
    sampler: SlotSampler,
    num_workers: int,
    prepare: Callable[[list[Scene], list[int], int], Any] = _unprepared,
    pin_memory: bool = False,
) -> Iterator:
    """Each micro-batch of ``sampler``, in order, loaded by ``num_workers`` workers as
    ``prepare(scenes, slots, step)`` computed in the loader — e.g. a partial of
    ``any4d.train.step.prepare_micro_batch`` with a CPU tokenizer, which must be picklable when
    ``num_workers > 0`` — or by default (scenes, slots, step) for the caller to prepare.
    pin_memory: page-locked results, for a CUDA copy that overlaps."""
    loader = DataLoader(
        _MicroBatches(dataset, prepare),
        sampler=sampler,
        batch_size=None,  # the sampler yields whole micro-batches
        num_workers=num_workers,
        collate_fn=_as_is,
        pin_memory=pin_memory,
        persistent_workers=False,
        worker_init_fn=_ignore_sigterm if num_workers > 0 else None,
    )
    return iter(loader)


def _ignore_sigterm(worker_id: int) -> None:
    """Workers leave SIGTERM to the main process. Schedulers and ``timeout`` signal the whole
    process group; a worker that died of it made the DataLoader raise in the middle of the main
    process's final save."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
