"""Training configuration: dataclasses, YAML files, command-line overrides, named configs.

A config is a tree of frozen dataclasses. ``load_config("tiny-synthetic")`` reads a named config
shipped in ``any4d/train/configs/``; ``load_config("my.yaml", ["optim.lr=3e-4"])`` a file with
overrides (``section.field=value``, the value parsed as YAML). Unknown keys, in a file or an
override, are errors that name the key and the keys that exist.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from any4d.diffusion import NoiseConfig

if TYPE_CHECKING:
    import torch

    from any4d.tokenize import Tokenizer

MODALITY_NAMES = ("rgb", "depth", "cameras", "text")


@dataclass(frozen=True)
class ModelSection:
    """preset: a model preset (``any4d.model.PRESETS``); overrides: its fields to replace;
    wan_path: a local Wan2.1 transformer to start every stream from (``from_wan``), or None for
    a random init; init_from: a local any4d model to fine-tune instead (a pipeline directory,
    a training checkpoint ``step_N/`` — its EMA weights when it kept them — or a ``model/``
    directory), whose architecture must equal the preset's; text_encoder: a local directory with
    umT5's ``text_encoder/`` + ``tokenizer/`` (e.g. the Wan2.1 diffusers release) to condition on
    each clip's text (sources whose modalities include "text"; others get the null text), or None
    for no text; gradient_checkpointing: recompute activations in the backward pass."""

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    wan_path: str | None = None
    init_from: str | None = None
    text_encoder: str | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.wan_path is not None and self.init_from is not None:
            raise ValueError(
                f"model.wan_path={self.wan_path!r} and model.init_from={self.init_from!r}: "
                "give at most one starting point"
            )


@dataclass(frozen=True)
class TokenizerSection:
    """kind: "pixel" (``PixelTokenizer(stride)``) or "wan_vae" (``WanVAETokenizer`` from
    ``vae_path``, a local diffusers directory or ``Wan2.1_VAE.pth``); stream_scales: per-stream
    factors of the latent grids (``Tokenizer.stream_scales``), e.g. {ray_m: 8.0}."""

    kind: str = "pixel"
    stride: int = 2
    vae_path: str | None = None
    stream_scales: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("pixel", "wan_vae"):
            raise ValueError(f"tokenizer.kind={self.kind!r} (expected 'pixel' or 'wan_vae')")
        if self.kind == "wan_vae" and not self.vae_path:
            raise ValueError("tokenizer.kind='wan_vae' needs tokenizer.vae_path (a local path)")

    def build(self, device: str | torch.device = "cpu") -> Tokenizer:
        """The tokenizer this section describes, on ``device`` (the Wan VAE's; the pixel
        tokenizer has none)."""
        from any4d.tokenize import build_tokenizer

        return build_tokenizer(
            self.kind,
            stride=self.stride,
            vae_path=self.vae_path,
            stream_scales=self.stream_scales,
            device=device,
        )


@dataclass(frozen=True)
class SyntheticSource:
    """One procedural data set of a synthetic mixture: what it provides and how often; size:
    its number of clips (None: the world's whole training split, 10^6)."""

    name: str
    weight: float = 1.0
    modalities: tuple[str, ...] = ("rgb", "depth", "cameras")
    size: int | None = None

    def __post_init__(self) -> None:
        modalities = tuple(self.modalities)
        if "rgb" not in modalities or any(m not in MODALITY_NAMES for m in modalities):
            raise ValueError(
                f"data.synthetic[{self.name!r}].modalities={list(modalities)} (expected names "
                f"from {MODALITY_NAMES} including 'rgb')"
            )
        if not self.weight >= 0:
            raise ValueError(f"data.synthetic[{self.name!r}].weight={self.weight} (expected ≥ 0)")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise ValueError(
                f"data.synthetic[{self.name!r}].size={self.size!r} (expected an integer ≥ 1 or "
                "null)"
            )
        object.__setattr__(self, "modalities", modalities)


@dataclass(frozen=True)
class DataSection:
    """batch_size: the global batch (all processes and accumulation steps together).
    mixture: a mixture YAML of real data sets (``any4d.data.load_mixture``), or None for the
    procedural world: ``synthetic`` lists its data sets, ``num_frames``/``height``/``width`` its
    clip shape and ``fps`` its frame rate (lower: more motion per clip). num_workers: DataLoader
    workers per process. cache: a latent cache of these clips written by ``any4d cache``
    (``any4d.train.cache``): the run then reads its latents and caption features and never
    builds the Wan VAE or the text encoder."""

    batch_size: int = 8
    num_workers: int = 0
    mixture: str | None = None
    cache: str | None = None
    synthetic: tuple[SyntheticSource, ...] = (SyntheticSource("synthetic"),)
    num_frames: int = 5
    height: int = 32
    width: int = 32
    fps: float = 10.0

    def __post_init__(self) -> None:
        sources = tuple(
            s if isinstance(s, SyntheticSource) else _build(SyntheticSource, s, "data.synthetic")
            for s in self.synthetic
        )
        object.__setattr__(self, "synthetic", sources)
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size={self.batch_size} (expected ≥ 1)")
        if self.mixture is None and not sources:
            raise ValueError("data needs a mixture file or at least one synthetic source")

    def clip_shape(self) -> dict[str, Any]:
        """The clip shape training sees: {"num_frames", "height", "width", "fps", "source"} —
        the mixture's ``clip`` settings when a mixture is used (its clips' fps vary by data set:
        ``fps`` is then this section's, a default for videos without one), else this section's."""
        if self.mixture is not None:
            from any4d.data import load_mixture

            clip = load_mixture(self.mixture).clip
            shape = (clip.length, clip.height, clip.width)
            source = f"the mixture {self.mixture} (its clip settings)"
        else:
            shape = (self.num_frames, self.height, self.width)
            source = "the data section (the procedural world)"
        names = ("num_frames", "height", "width")
        return {**dict(zip(names, shape, strict=True)), "fps": self.fps, "source": source}


@dataclass(frozen=True)
class NoiseSection:
    """Training noise (``any4d.diffusion.NoiseConfig``): pattern weights, time shift, the
    probability that a context group stays clean, the probability that a sample's targets
    share one level and the probability that a sample's whole context is dropped to noise;
    text_drop_prob: the probability that a captioned sample trains on the null text instead
    (classifier-free text dropout: the model keeps an uncaptioned mode for every data set)."""

    patterns: dict[str, float] = field(default_factory=lambda: dict(NoiseConfig().patterns))
    shift: float = NoiseConfig.shift
    history_clean_prob: float = NoiseConfig.history_clean_prob
    shared_target_prob: float = NoiseConfig.shared_target_prob
    context_drop_prob: float = NoiseConfig.context_drop_prob
    text_drop_prob: float = 0.0
    stream_weights: dict[str, float] = field(
        default_factory=lambda: {"rgb": 0.25, "depth": 0.25, "ray_d": 0.25, "ray_m": 0.25}
    )

    def __post_init__(self) -> None:
        self.noise_config()  # NoiseConfig's checks, when the config is read
        if not 0 <= self.text_drop_prob <= 1:
            raise ValueError(f"noise.text_drop_prob={self.text_drop_prob} (expected in [0, 1])")

    def noise_config(self) -> NoiseConfig:
        """The ``any4d.diffusion.NoiseConfig`` of this section (all but the stream weights)."""
        return NoiseConfig(
            patterns=self.patterns,
            shift=self.shift,
            history_clean_prob=self.history_clean_prob,
            shared_target_prob=self.shared_target_prob,
            context_drop_prob=self.context_drop_prob,
        )


@dataclass(frozen=True)
class OptimSection:
    """AdamW with a linear warm-up over ``warmup_steps``, then ``schedule``: "constant" (the
    paper's recipe) or "cosine" (from ``lr`` down to ``min_lr`` at the run's last step)."""

    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.05
    grad_clip: float = 5.0
    warmup_steps: int = 1000
    schedule: str = "constant"
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if not self.lr > 0 or self.warmup_steps < 0 or not self.grad_clip > 0:
            raise ValueError(
                f"optim lr={self.lr}, warmup_steps={self.warmup_steps}, grad_clip="
                f"{self.grad_clip} (expected lr > 0, warmup ≥ 0, grad_clip > 0)"
            )
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"optim.schedule={self.schedule!r} (expected 'constant' or 'cosine')")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"optim.min_lr={self.min_lr} (expected in [0, lr={self.lr}])")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs.

    steps: optimiser steps; accumulation: micro-batches per step (per process); precision:
    "fp32" or "bf16" (autocast; with FSDP, bf16 parameters in compute and fp32 reduction);
    strategy: "auto" (FSDP2 above 200 M parameters, else DDP, when several processes), "ddp",
    "fsdp"; ema_decay: keep an exponential moving average of the weights (None: off).
    Checkpoints go to ``output_dir/checkpoints`` every ``checkpoint_every`` steps, the last
    ``keep_last`` kept; metrics to ``output_dir/metrics.jsonl`` every ``log_every`` steps.
    compile: compile each transformer block with ``torch.compile`` (``compile_blocks``).
    """

    model: ModelSection = ModelSection()
    tokenizer: TokenizerSection = TokenizerSection()
    data: DataSection = DataSection()
    noise: NoiseSection = NoiseSection()
    optim: OptimSection = OptimSection()
    steps: int = 100
    accumulation: int = 1
    precision: str = "fp32"
    strategy: str = "auto"
    ema_decay: float | None = None
    seed: int = 0
    output_dir: str = "runs/any4d"
    checkpoint_every: int = 50
    keep_last: int = 2
    log_every: int = 1
    tensorboard: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r} (expected 'fp32' or 'bf16')")
        if self.strategy not in ("auto", "ddp", "fsdp"):
            raise ValueError(f"strategy={self.strategy!r} (expected 'auto', 'ddp' or 'fsdp')")
        for name in ("steps", "accumulation", "checkpoint_every", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} (expected ≥ 1)")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} (expected in (0, 1) or null)")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def with_absolute_paths(self, check: bool = True) -> TrainConfig:
        """The config with every input path absolute (resolved against the working directory)
        — what a run records in its checkpoints, so that they load from any directory. check:
        each path must exist (an error names the field and the path it resolved to)."""
        changes = {}
        for section, names in _PATH_FIELDS.items():
            part = getattr(self, section)
            values = {}
            for name in names:
                value = getattr(part, name)
                if value is None:
                    continue
                path = Path(value).expanduser().resolve()
                if check and not path.exists():
                    raise FileNotFoundError(
                        f"{section}.{name}={value!r} does not exist (resolved to {path}, from the "
                        f"working directory {Path.cwd()})"
                    )
                values[name] = str(path)
            changes[section] = dataclasses.replace(part, **values)
        return dataclasses.replace(self, **changes)


# Input paths of a config, by section: made absolute in what a run records.
_PATH_FIELDS = {
    "model": ("wan_path", "init_from", "text_encoder"),
    "tokenizer": ("vae_path",),
    "data": ("mixture", "cache"),
}

# Sections whose change makes an old checkpoint the wrong starting point.
IDENTITY_SECTIONS = ("model", "tokenizer", "data", "noise", "optim", "seed", "accumulation")


def _plain(value):
    """Tuples → lists, recursively (what YAML / JSON give back)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _number(value):
    """YAML 1.1 reads ``3e-4`` (an exponent without a dot) as a string: read it as a float."""
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _build(cls, data, where: str):
    """``cls(**data)`` for a dataclass, nested sections included; unknown keys are errors."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} (expected some of {sorted(known)})")
    kwargs = {}
    for name, value in data.items():
        section = _SECTIONS.get((cls, name))
        kwargs[name] = _build(section, value, f"{where}.{name}") if section else _number(value)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


_SECTIONS = {
    (TrainConfig, "model"): ModelSection,
    (TrainConfig, "tokenizer"): TokenizerSection,
    (TrainConfig, "data"): DataSection,
    (TrainConfig, "noise"): NoiseSection,
    (TrainConfig, "optim"): OptimSection,
}


def named_configs() -> list[str]:
    """Names of the configs shipped with any4d."""
    folder = resources.files("any4d.train") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _read(name_or_path: str) -> tuple[dict, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        shipped = resources.files("any4d.train") / "configs" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise ValueError(
                f"config {name_or_path!r} is neither a file nor a named config "
                f"(named: {named_configs()})"
            )
        text, where = shipped.read_text(encoding="utf-8"), f"config {name_or_path!r}"
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{where} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a mapping of config sections")
    return data, where


def apply_override(data: dict, override: str) -> None:
    """Set ``section.field=value`` (value parsed as YAML) in a nested dict, in place."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ValueError(f"override {override!r} (expected key=value, e.g. optim.lr=1e-4)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    *parents, leaf = key.split(".")
    value = _number(value)
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {override!r}: {part} is not a section")
    node[leaf] = value


def load_config(name_or_path: str, overrides: list[str] = ()) -> TrainConfig:
    """A named config or a YAML file, with ``section.field=value`` overrides applied."""
    data, where = _read(name_or_path)
    for override in overrides:
        apply_override(data, override)
    return _build(TrainConfig, data, where)


def config_from_dict(data: dict) -> TrainConfig:
    """Inverse of ``TrainConfig.to_dict`` (unknown keys are errors)."""
    return _build(TrainConfig, data, "config")
