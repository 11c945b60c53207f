"""A latent and text cache of a training run's clips (``any4d cache``), and reading it back.

Encoding each sample with the Wan VAE (and umT5) on every rank at every step competes with the
training step and keeps ~12 GB of frozen encoders beside the model. The cache encodes every clip
a run can draw once — codec latents of RGB and of depth at each clip scale training may need,
cameras, the clip frame, availability and caption features (``any4d.tokenize.precomputed``) —
and a run with ``data.cache: DIR`` reads them instead: it never builds the VAE or the text
encoder, and its batches equal those of encoding on the fly for the same clip draws.

A cache directory::

    index.json                  its spec (what it was made from), sources, shards and sizes
    shard_000000.safetensors    clips 0 … S−1 of the global clip order, each named "j.field"
    shard_000001.safetensors    …

The global clip order lists each training source of the config in order and its clips
``0 … n−1``: what ``SlotDataset`` draws from, so a clip draw ``(source, index)`` is the same clip
in a cache and on the fly. Under ``torchrun`` rank ``r`` of ``w`` writes shards ``r, r + w, …``
(nodes included); each shard is written atomically and, with ``resume``, a complete one is kept;
rank 0 writes the index once every shard is there and names any that is missing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from any4d.data import Scene
from any4d.geometry import Cameras
from any4d.model.checkpoint import atomic_path, read_json_object
from any4d.tokenize import Observed
from any4d.tokenize.precomputed import PrecomputedClip, PrecomputedTokenizer, precompute
from any4d.train.config import TrainConfig
from any4d.train.data import Source, build_sources, keep_modalities
from any4d.train.distributed import Processes, init_processes, shutdown

FORMAT = "any4d.latent-cache"
FORMAT_VERSION = 1
INDEX = "index.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def shard_name(number: int) -> str:
    return f"shard_{number:06d}.safetensors"


# ---------------------------------------------------------------------- what a cache is made from


def training_observations(num_frames: int, temporal_stride: int) -> tuple[list[Observed], list]:
    """What training may observe of a clip of ``num_frames`` frames — one ``Observed`` per mask
    preset, since the drawn pattern is one of them — and the context frames training encodes
    (the interpolation pattern's last frame, under a temporal stride > 1)."""
    from any4d.diffusion import PRESETS

    observations = list(dict.fromkeys(Observed.of(m, num_frames) for m in PRESETS.values()))
    context = [num_frames - 1] if temporal_stride > 1 else []
    return observations, context


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def cache_spec(config: TrainConfig) -> dict[str, Any]:
    """What decides a cache's contents, from a training config: the tokenizer, the clip shape,
    each training source (how its clips are read; not its weight, which only changes how often
    it is drawn) and the text encoder. Paths are absolute."""
    section = config.tokenizer
    tokenizer: dict[str, Any] = {"kind": section.kind}
    if section.kind == "pixel":
        tokenizer["stride"] = section.stride
    else:
        tokenizer["vae_path"] = _absolute(section.vae_path)
    tokenizer["stream_scales"] = dict(sorted(section.stream_scales.items()))
    shape = config.data.clip_shape()
    clip = {k: shape[k] for k in ("num_frames", "height", "width")}
    sources = []
    if config.data.mixture is not None:
        from any4d.data import load_mixture

        mixture = load_mixture(config.data.mixture)
        clip["mixture_clip"] = dataclasses.asdict(mixture.clip)
        for entry in mixture.role("train"):
            if entry.weight > 0:
                sources.append(
                    {
                        "name": entry.name,
                        "reader": entry.reader,
                        "root": _absolute(entry.root),
                        "options": entry.options,
                        "modalities": list(entry.modalities),
                    }
                )
    else:
        clip["fps"] = config.data.fps
        for source in config.data.synthetic:
            if source.weight > 0:
                sources.append(
                    {
                        "name": source.name,
                        "reader": "synthetic",
                        "size": source.size,
                        "modalities": list(source.modalities),
                    }
                )
    text = config.model.text_encoder
    encoder = None if text is None else {"path": _absolute(text), "precision": config.precision}
    return {"tokenizer": tokenizer, "clip": clip, "sources": sources, "text_encoder": encoder}


def spec_differences(cached: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """How a cache's spec differs from a config's, one phrase per difference (empty: none).
    Sources the config does not train on may be in the cache; every one it trains on must be
    there, made the same way."""
    differences = []
    for key in ("tokenizer", "clip", "text_encoder"):
        if cached.get(key) != wanted.get(key):
            differences.append(f"{key}: {_describe(cached.get(key))} in the cache, "
                               f"{_describe(wanted.get(key))} in the config")  # fmt: skip
    by_name = {s["name"]: s for s in cached.get("sources", [])}
    for source in wanted.get("sources", []):
        there = by_name.get(source["name"])
        if there is None:
            differences.append(
                f"source {source['name']!r} is not in the cache (it has {sorted(by_name)})"
            )
        elif {k: v for k, v in there.items() if k != "clips"} != source:
            differences.append(
                f"source {source['name']!r}: {_describe(there, drop='clips')} in the cache, "
                f"{_describe(source)} in the config"
            )
    return differences


def _describe(value, drop: str | None = None) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != drop}
    return json.dumps(value, sort_keys=True)


# ---------------------------------------------------------------------- writing


def cache_sources(config: TrainConfig, temporal_stride: int) -> list[Source]:
    """The config's training sources, each a finite data set (a procedural source needs its
    ``size``: the world has a million clips per split)."""
    if config.data.mixture is None:
        for source in config.data.synthetic:
            if source.weight > 0 and source.size is None:
                raise ValueError(
                    f"data.synthetic[{source.name!r}].size is unset (the procedural world has "
                    "10^6 training clips): set it to the number of clips to cache and train on"
                )
    return build_sources(config.data, temporal_stride)


def write_cache(
    config: TrainConfig,
    directory: str | Path,
    *,
    shard_size: int = 64,
    resume: bool = False,
    dtype: str = "float32",
    progress: bool = True,
) -> Path:
    """Encode every clip the config trains on into ``directory`` (module docstring); under
    torchrun, this process's share. Returns the index path.

    shard_size: clips per shard. resume: keep the complete shards already there (else an existing
    cache is an error). dtype: of the stored codec latents, "float32" (exactly what encoding
    gives) or "bfloat16" (half the size; what bf16 training computes in anyway)."""
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size={shard_size!r} (expected an integer ≥ 1)")
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} (expected one of {sorted(DTYPES)})")
    directory = Path(directory)
    if (directory / INDEX).exists() and not resume:
        raise ValueError(
            f"{directory} already holds a cache ({INDEX}): pass --resume to complete or reuse it, "
            "or choose another directory (nothing is overwritten)"
        )
    processes = init_processes()
    try:
        return _write(config, directory, shard_size, resume, dtype, progress, processes)
    finally:
        shutdown(processes)


def _write(
    config: TrainConfig,
    directory: Path,
    shard_size: int,
    resume: bool,
    dtype: str,
    progress: bool,
    processes: Processes,
) -> Path:
    device = processes.device
    tokenizer = config.tokenizer.build(device)
    text_encoder = _text_encoder(config, device)
    spec = cache_spec(config)
    sources = cache_sources(config, tokenizer.temporal_stride)
    counts = [len(s.dataset) for s in sources]
    total = sum(counts)
    if total == 0:
        raise ValueError(f"the config's training sources {[s.name for s in sources]} hold no clip")
    num_frames = config.data.clip_shape()["num_frames"]
    observations, context = training_observations(num_frames, tokenizer.temporal_stride)
    shards = (total + shard_size - 1) // shard_size
    mine = list(range(processes.rank, shards, processes.world))
    header = {"spec": spec, "format": FORMAT, "version": FORMAT_VERSION}
    bar = tqdm(mine, desc=f"cache (rank {processes.rank})", disable=not progress)
    for number in bar:
        path = directory / shard_name(number)
        first, last = number * shard_size, min(total, (number + 1) * shard_size)
        if resume and _complete_shard(path, header, last - first):
            continue
        try:
            records = [_clip_at(sources, counts, g) for g in range(first, last)]
            clips = [
                _encode(tokenizer, text_encoder, source, scene, observations, context)
                for source, scene in records
            ]
        except Exception as error:
            where = f"rank {processes.rank} of {processes.world}" if processes.distributed else ""
            start, end = (
                _clip_at_name(sources, counts, first),
                _clip_at_name(sources, counts, last - 1),
            )
            raise RuntimeError(
                f"{where + ' ' if where else ''}failed on {shard_name(number)} (clips {start} … "
                f"{end}): {error}; rerun with --resume to keep the shards already written"
            ) from error
        _save_shard(path, header, clips, DTYPES[dtype])
    if processes.distributed:
        torch.distributed.barrier()
    index = directory / INDEX
    if processes.main:
        missing = [n for n in range(shards) if not (directory / shard_name(n)).is_file()]
        if missing:
            owners = sorted({n % processes.world for n in missing})
            raise RuntimeError(
                f"{len(missing)} shard(s) missing from {directory}: "
                f"{[shard_name(n) for n in missing][:8]} (written by rank(s) {owners}); rerun "
                "with --resume to write only those"
            )
        meta = {
            **header,
            "shard_size": shard_size,
            "dtype": dtype,
            "clips": total,
            "latent": {
                "temporal_stride": tokenizer.temporal_stride,
                "spatial_stride": tokenizer.spatial_stride,
                "latent_channels": tokenizer.latent_channels,
                "stream_scales": dict(tokenizer.stream_scales),
            },
            "text": None
            if text_encoder is None
            else {
                "dim": text_encoder.dim,
                "max_length": text_encoder.max_length,
            },  # fmt: skip
            "observations": [[sorted(o.depth), sorted(o.cameras)] for o in observations],
            "context": context,
            "sources": [{**s, "clips": n} for s, n in zip(spec["sources"], counts, strict=True)],
            "shards": [
                {"file": shard_name(n), "bytes": (directory / shard_name(n)).stat().st_size}
                for n in range(shards)
            ],
        }
        with atomic_path(index) as temporary:
            temporary.write_text(json.dumps(meta, indent=1))
    if processes.distributed:
        torch.distributed.barrier()  # nobody returns before the index exists
    return index


def _text_encoder(config: TrainConfig, device: torch.device):
    """The run's umT5 (as training would load it), or None."""
    if config.model.text_encoder is None:
        return None
    from any4d.tokenize.text import TextEncoder

    dtype = torch.bfloat16 if config.precision == "bf16" else None
    return TextEncoder.from_pretrained(config.model.text_encoder, dtype=dtype, device=device)


def _clip_at(sources: Sequence[Source], counts: Sequence[int], number: int) -> tuple[Source, Scene]:
    """Global clip ``number`` → (its source, its scene without the modalities it does not train)."""
    for source, count in zip(sources, counts, strict=True):
        if number < count:
            return source, keep_modalities(source.dataset[number], source.modalities)
        number -= count
    raise IndexError(number)


def _clip_at_name(sources: Sequence[Source], counts: Sequence[int], number: int) -> str:
    for source, count in zip(sources, counts, strict=True):
        if number < count:
            return f"{source.name}/{number}"
        number -= count
    return f"#{number}"


def _encode(tokenizer, text_encoder, source, scene, observations, context) -> PrecomputedClip:
    clip = precompute(tokenizer, scene, observations, context)
    if text_encoder is not None and scene.text:
        features = text_encoder.encode(scene.text)[0]
        rows = int((features.abs().sum(-1) > 0).nonzero().max()) + 1 if features.any() else 0
        clip = dataclasses.replace(clip, text_features=features[:rows])
    return clip


def _save_shard(path: Path, header: dict, clips: Sequence[PrecomputedClip], dtype) -> None:
    tensors, records = {}, []
    for j, clip in enumerate(clips):
        tensors[f"{j}.rgb"] = clip.rgb.to(dtype)
        for k, depth in enumerate(clip.depth):
            tensors[f"{j}.depth.{k}"] = depth.to(dtype)
        if clip.depth_valid is not None:
            tensors[f"{j}.depth_valid"] = clip.depth_valid.float()
        if clip.cameras is not None:
            tensors[f"{j}.K"] = clip.cameras.K.float()
            tensors[f"{j}.c2w"] = clip.cameras.c2w.float()
        tensors[f"{j}.scales"] = clip.scales.float()
        tensors[f"{j}.reference"] = clip.reference.float()
        if clip.text_features is not None:
            tensors[f"{j}.text"] = clip.text_features
        records.append(
            {
                "depth": len(clip.depth),
                "scale_index": list(clip.scale_index),
                "units": list(clip.units),
                "text": clip.text,
                "fps": clip.fps,
            }
        )
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {"header": json.dumps(header), "clips": json.dumps(records)}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)


def _complete_shard(path: Path, header: dict, count: int) -> bool:
    """Whether ``path`` is a shard of this spec holding ``count`` clips (a resumed run keeps it)."""
    if not path.is_file():
        return False
    try:
        with safe_open(path, "pt") as handle:
            metadata = handle.metadata() or {}
        written = json.loads(metadata.get("header", "null"))
        records = json.loads(metadata.get("clips", "[]"))
    except (SafetensorError, OSError, ValueError):
        return False
    if written != json.loads(json.dumps(header)):
        raise ValueError(
            f"{path} was written for another config: "
            + "; ".join(spec_differences(written["spec"], header["spec"]))
            + " — use another cache directory for this config"
        )
    return len(records) == count


# ---------------------------------------------------------------------- reading


class LatentCache:
    """A cache directory opened for a training config (checked against it)."""

    def __init__(self, directory: str | Path, config: TrainConfig) -> None:
        self.directory = Path(directory)
        path = self.directory / INDEX
        if not path.is_file():
            raise FileNotFoundError(
                f"data.cache={directory}: {path} does not exist (write the cache with "
                "`any4d cache --config … --out DIR` first; an unfinished one has no index)"
            )
        self.index = read_json_object(path)
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{path} is not an any4d latent cache index")
        if self.index.get("version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} has cache version {self.index['version']}, newer than this any4d's "
                f"{FORMAT_VERSION}"
            )
        differences = spec_differences(self.index["spec"], cache_spec(config))
        if differences:
            raise ValueError(
                f"data.cache={directory} was made for another config: " + "; ".join(differences)
            )
        for shard in self.index["shards"]:
            file = self.directory / shard["file"]
            size = file.stat().st_size if file.is_file() else None
            if size != shard["bytes"]:
                found = "missing" if size is None else f"{size} bytes"
                raise ValueError(
                    f"cache shard {file} is truncated or changed: {found}, the index says "
                    f"{shard['bytes']} bytes (rerun `any4d cache --resume` after deleting it)"
                )
        self.observations = [
            Observed(frozenset(d), frozenset(c)) for d, c in self.index["observations"]
        ]
        clip = self.index["spec"]["clip"]
        self.num_frames, self.image_size = clip["num_frames"], (clip["height"], clip["width"])

    def tokenizer(self) -> PrecomputedTokenizer:
        latent = self.index["latent"]
        return PrecomputedTokenizer(
            latent["temporal_stride"],
            latent["spatial_stride"],
            latent["latent_channels"],
            latent["stream_scales"],
        )

    def text(self) -> CachedText | None:
        """The cached caption features' shape, or None (made without a text encoder)."""
        text = self.index.get("text")
        return None if text is None else CachedText(text["dim"], text["max_length"])

    def sources(self, config: TrainConfig) -> list[Source]:
        """The config's training sources, read from the cache, with the config's weights."""
        offsets, offset = {}, 0
        for source in self.index["sources"]:
            offsets[source["name"]] = (offset, source["clips"])
            offset += source["clips"]
        out = []
        for source in cache_spec(config)["sources"]:
            start, count = offsets[source["name"]]
            dataset = CachedClips(self, start, count, source["name"])
            out.append(
                Source(
                    source["name"],
                    dataset,
                    _weight(config, source["name"]),
                    tuple(source["modalities"]),
                )
            )
        return out

    def read(self, number: int) -> PrecomputedClip:
        """Global clip ``number`` of the cache."""
        size = self.index["shard_size"]
        file = self.directory / self.index["shards"][number // size]["file"]
        j = number % size
        try:
            with safe_open(file, "pt") as handle:
                records = json.loads(handle.metadata()["clips"])
                record = records[j]
                keys = set(handle.keys())

                def get(name: str):
                    key = f"{j}.{name}"
                    return handle.get_tensor(key) if key in keys else None

                rgb = get("rgb").float()
                depth = tuple(get(f"depth.{k}").float() for k in range(record["depth"]))
                K, c2w = get("K"), get("c2w")
                clip = PrecomputedClip(
                    rgb=rgb,
                    depth=depth,
                    depth_valid=get("depth_valid"),
                    cameras=None if K is None else Cameras.unchecked(K, c2w),
                    scales=get("scales"),
                    reference=get("reference"),
                    observations=tuple(self.observations),
                    scale_index=tuple(record["scale_index"]),
                    units=tuple(record["units"]),
                    num_frames=self.num_frames,
                    image_size=self.image_size,
                    context=tuple(self.index["context"]),
                    text=record["text"],
                    fps=record["fps"],
                    text_features=get("text"),
                )
        except (SafetensorError, OSError, KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"cache shard {file} cannot be read at clip {j} ({error}): it is truncated or "
                "corrupt; delete it and rerun `any4d cache --resume`"
            ) from None
        return clip


def _weight(config: TrainConfig, name: str) -> float:
    if config.data.mixture is not None:
        from any4d.data import load_mixture

        return next(e.weight for e in load_mixture(config.data.mixture).datasets if e.name == name)
    return next(s.weight for s in config.data.synthetic if s.name == name)


class CachedClips(Dataset):
    """One source's clips in a cache: item ``i`` → its ``PrecomputedClip``."""

    def __init__(self, cache: LatentCache, start: int, count: int, name: str) -> None:
        self.cache, self.start, self.count, self.name = cache, start, count, name

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> PrecomputedClip:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} clips of {self.name}")
        return self.cache.read(self.start + index)


def open_cache(config: TrainConfig) -> LatentCache | None:
    """The cache of ``config.data.cache`` checked against the config, or None without one."""
    if config.data.cache is None:
        return None
    return LatentCache(config.data.cache, config)


@dataclass(frozen=True)
class CachedText:
    """Caption features of a cache's clips, shaped as the text encoder gives them."""

    dim: int
    max_length: int

    def check_fits(
        self, text_dim: int | None, source: str = "the cache's caption features"
    ) -> None:
        if text_dim != self.dim:
            raise ValueError(
                f"{source} are {self.dim}-d but the model's text_dim is {text_dim} (expected "
                "the width of the text encoder the cache was made with)"
            )

    def features(self, clips: Sequence[PrecomputedClip]) -> torch.Tensor:
        """(B, max_length, dim): each clip's cached rows, zero past them (the null text for a
        clip without a caption), as ``TextEncoder.encode_optional`` gives them."""
        dtypes = [c.text_features.dtype for c in clips if c.text_features is not None]
        out = torch.zeros(
            len(clips), self.max_length, self.dim, dtype=dtypes[0] if dtypes else torch.float32
        )
        for b, clip in enumerate(clips):
            if clip.text_features is not None:
                out[b, : clip.text_features.shape[0]] = clip.text_features
        return out


__all__ = [
    "FORMAT",
    "INDEX",
    "CachedClips",
    "LatentCache",
    "cache_spec",
    "open_cache",
    "spec_differences",
    "CachedText",
    "training_observations",
    "write_cache",
]
