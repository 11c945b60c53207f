"""Training mixture: which data sets, where, how often, with which modalities (paper Table 1).

A YAML file loads into ``MixtureConfig`` (unknown keys are errors); ``build_dataset`` turns one
entry into ``Clips`` and ``build_mixture`` concatenates the entries of a role with per-item
sampling weights, so that ``WeightedRandomSampler(weights, n)`` draws each data set in
proportion to its ``weight`` whatever its size. ``configs/mixture/paper.yaml`` is the paper's.

    config = load_mixture("configs/mixture/paper.yaml")
    data, weights = build_mixture(config, role="train")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor
from torch.utils.data import ConcatDataset

from any4d.data.clips import SPLITS, Clips, check_clip_length
from any4d.data.readers import READERS, build_reader
from any4d.data.scene import MODALITIES

ROLES = ("train", "eval")


@dataclass(frozen=True)
class ClipConfig:
    """Clip shape for every data set: ``length`` frames (``1 + temporal_stride·k``), ``stride``
    frames apart, resized + centre-cropped to ``height × width``; ``eval_fraction`` of each
    training data set's sequences is held out (``any4d.data.clips.split_of``)."""

    length: int = 49
    stride: int = 1
    height: int = 240
    width: int = 320
    temporal_stride: int = 4
    eval_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("length", "stride", "height", "width", "temporal_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"clip.{name} is {value!r} (expected an integer ≥ 1)")
        check_clip_length(self.length, self.temporal_stride)
        if not isinstance(self.eval_fraction, (int, float)) or not 0 <= self.eval_fraction <= 1:
            raise ValueError(f"clip.eval_fraction is {self.eval_fraction!r} (expected [0, 1])")


@dataclass(frozen=True)
class DatasetConfig:
    """One data set of the mixture.

    name:       unique label (e.g. "re10k"). reader: a key of ``READERS``. root: its folder.
    weight:     relative sampling weight (≥ 0; 0 for evaluation-only data).
    modalities: what training uses from it, names from ``MODALITIES`` ("cameras" = pose).
    role:       "train" or "eval".
    options:    keyword arguments of the reader (split, captions file, depth_root, …).
    notes:      free text, e.g. where annotations come from.
    """

    name: str
    reader: str
    root: str
    weight: float = 1.0
    modalities: tuple[str, ...] = ("rgb",)
    role: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"dataset name is {self.name!r} (expected a non-empty string)")
        if self.reader not in READERS:
            raise ValueError(
                f"{where}: reader is {self.reader!r} (expected one of {sorted(READERS)})"
            )
        if not isinstance(self.root, str) or not self.root:
            raise ValueError(f"{where}: root is {self.root!r} (expected a path)")
        weight = self.weight
        if not isinstance(weight, (int, float)) or not (0 <= weight < math.inf):
            raise ValueError(f"{where}: weight is {weight!r} (expected a finite number ≥ 0)")
        given = self.modalities
        modalities = tuple(given) if isinstance(given, (list, tuple)) else ()
        if "rgb" not in modalities or any(m not in MODALITIES for m in modalities):
            raise ValueError(
                f"{where}: modalities is {self.modalities!r} (expected a list of {MODALITIES} "
                "including 'rgb')"
            )
        object.__setattr__(self, "modalities", tuple(m for m in MODALITIES if m in modalities))
        if self.role not in ROLES:
            raise ValueError(f"{where}: role is {self.role!r} (expected one of {ROLES})")
        if not isinstance(self.options, dict):
            raise ValueError(f"{where}: options is {self.options!r} (expected a mapping)")


@dataclass(frozen=True)
class MixtureConfig:
    """The data sets (``DatasetConfig``) and the clip shape they share (``ClipConfig``)."""

    datasets: tuple[DatasetConfig, ...]
    clip: ClipConfig = ClipConfig()

    def __post_init__(self) -> None:
        names = [d.name for d in self.datasets]
        if not names:
            raise ValueError("a mixture needs at least one dataset")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"dataset names {duplicates} appear twice (expected unique names)")

    def role(self, role: str) -> tuple[DatasetConfig, ...]:
        if role not in ROLES:
            raise ValueError(f"role is {role!r} (expected one of {ROLES})")
        return tuple(d for d in self.datasets if d.role == role)


def load_mixture(path: str | Path) -> MixtureConfig:
    """Read a mixture YAML (keys: ``clip``, ``datasets``); unknown keys are errors. Relative
    roots stay relative (resolved against the working directory when data are read)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mixture config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping with 'datasets' (and optionally 'clip')")
    _check_keys(data, {"datasets", "clip"}, f"{path}")
    if not isinstance(data.get("datasets"), list):
        raise ValueError(f"{path}: 'datasets' must be a list of dataset entries")
    entries = []
    for i, entry in enumerate(data["datasets"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: datasets[{i}] must be a mapping")
        _check_keys(entry, {f.name for f in fields(DatasetConfig)}, f"{path}: datasets[{i}]")
        entries.append(DatasetConfig(**entry))
    clip = data.get("clip") or {}
    _check_keys(clip, {f.name for f in fields(ClipConfig)}, f"{path}: clip")
    return MixtureConfig(tuple(entries), ClipConfig(**clip))


def build_dataset(entry: DatasetConfig, clip: ClipConfig, split: str = "train") -> Clips:
    """``Clips`` of one data set; its reader must provide every modality the entry lists."""
    if split not in SPLITS:
        raise ValueError(f"split is {split!r} (expected one of {SPLITS})")
    reader = build_reader(entry.reader, entry.root, **entry.options)
    missing = [m for m in entry.modalities if m not in reader.modalities]
    if missing:
        raise ValueError(
            f"dataset {entry.name!r} lists {missing} but its {entry.reader} reader provides "
            f"{reader.modalities} with options {entry.options} (captions: give a captions file; "
            "depth: see the reader's options)"
        )
    return Clips(
        reader,
        length=clip.length,
        stride=clip.stride,
        size=(clip.height, clip.width),
        split=split,
        eval_fraction=clip.eval_fraction,
        temporal_stride=clip.temporal_stride,
        salt=entry.name,
    )


def build_mixture(config: MixtureConfig, role: str = "train") -> tuple[ConcatDataset, Tensor]:
    """The concatenated ``Clips`` of a role's data sets, and (N,) per-clip sampling weights
    (``weight / len(dataset)``, so each data set is drawn in proportion to its weight).

    Training data sets use their "train" split; evaluation ones all their sequences.
    """
    entries = [e for e in config.role(role) if role == "eval" or e.weight > 0]
    split = "train" if role == "train" else "all"
    datasets = [build_dataset(entry, config.clip, split) for entry in entries]
    weights = []
    for entry, dataset in zip(entries, datasets, strict=True):
        if len(dataset) == 0:
            raise ValueError(f"dataset {entry.name!r} under {entry.root} yields no clips")
        weights.append(torch.full((len(dataset),), entry.weight / len(dataset)))
    return ConcatDataset(datasets), torch.cat(weights).double()


def _check_keys(mapping: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} (expected some of {sorted(allowed)})")
