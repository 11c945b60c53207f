"""Training checkpoints that never lose work.

Layout under ``<output_dir>/checkpoints``::

    step_000100/model/{config.json, model.safetensors}   # Any4DTransformer.from_pretrained
    step_000100/ema.safetensors                           # EMA weights (when kept)
    step_000100/optimizer.pt                              # AdamW state (tensors, no pickled code)
    step_000100/trainer.json                              # step, config, schedule, seeds
    latest                                                # the name of the newest good one

A checkpoint is written into a temporary directory and renamed into place only when complete;
``latest`` is then replaced atomically and the oldest ones beyond ``keep_last`` deleted. A
failing save leaves every earlier checkpoint and ``latest`` as they were. Sharded (FSDP2) and
replicated (DDP) models are gathered to full tensors, so a checkpoint is the same whatever the
number of processes. Loading reads nothing with pickle (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from any4d.io import atomic_path, default_permissions, read_json_object
from any4d.model.checkpoint import WEIGHTS_NAME, read_config, save_state
from any4d.train.config import IDENTITY_SECTIONS, TrainConfig, config_from_dict
from any4d.train.distributed import Processes

FORMAT = "any4d.training-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest"


@dataclass(frozen=True)
class Resumed:
    """What a checkpoint restores besides the weights: the next step and the trainer state."""

    step: int
    directory: Path
    state: dict[str, Any]


def checkpoint_root(config: TrainConfig) -> Path:
    return Path(config.output_dir) / "checkpoints"


def step_name(step: int) -> str:
    return f"step_{step:06d}"


def _full_options(processes: Processes, loading: bool = False) -> StateDictOptions:
    return StateDictOptions(
        full_state_dict=True,
        cpu_offload=True,
        broadcast_from_rank0=loading and processes.distributed,
    )


def save_checkpoint(
    *,
    config: TrainConfig,
    model: nn.Module,
    inner: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None,
    step: int,
    trainer_state: dict[str, Any],
    processes: Processes,
) -> Path:
    """Gather and write the checkpoint of ``step`` (every process calls this; rank 0 writes).

    model: the wrapped model (DDP / FSDP2 / plain); inner: the ``Any4DTransformer`` itself.
    Returns the checkpoint directory.
    """
    options = _full_options(processes)
    model_state = get_model_state_dict(model, options=options)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=options)
    ema_state = None
    if ema is not None:
        ema_state = {k: _full(v) for k, v in ema.items()}
    root = checkpoint_root(config)
    final = root / step_name(step)
    if processes.main:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{step_name(step)}-"))
        default_permissions(staging, directory=True)
        try:
            save_state(model_state, inner.config, staging / "model")
            if ema_state is not None:
                ema_path = staging / "ema.safetensors"
                save_file({k: v.contiguous() for k, v in ema_state.items()}, ema_path)
                default_permissions(ema_path)  # save_file makes it 0600
            torch.save(optimizer_state, staging / "optimizer.pt")
            meta = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "step": step,
                "config": config.to_dict(),
                "trainer": trainer_state,
            }
            (staging / "trainer.json").write_text(json.dumps(meta, indent=2))
            _move_into_place(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with atomic_path(root / LATEST) as temporary:
            temporary.write_text(final.name + "\n")
        _prune(root, config.keep_last, keep=final.name)
    if processes.distributed:
        dist.barrier()
    return final


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A full CPU tensor from a (possibly sharded DTensor) one."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu()


def _move_into_place(staging: Path, final: Path) -> None:
    """Rename the complete staging directory onto ``final`` (replacing an older copy)."""
    if final.exists():
        trash = final.with_name(f".trash-{final.name}")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(final, trash)
        os.replace(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, final)


def _prune(root: Path, keep_last: int, keep: str) -> None:
    for old in _step_directories(root)[:-keep_last]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def existing_checkpoints(config: TrainConfig) -> list[Path]:
    return _step_directories(checkpoint_root(config))


def _step_directories(root: Path) -> list[Path]:
    """The checkpoints under ``root``, oldest first (none when it does not exist)."""
    return sorted(p for p in root.glob("step_*") if p.is_dir()) if root.is_dir() else []


def latest_checkpoint(config: TrainConfig) -> Path:
    """The directory ``latest`` names; a clear error when there is none or it is missing."""
    root = checkpoint_root(config)
    pointer = root / LATEST
    if not pointer.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume: {pointer} does not exist (train without --resume to start "
            f"a new run, or point output_dir at the run to continue)"
        )
    directory = root / pointer.read_text().strip()
    if not directory.is_dir():
        raise FileNotFoundError(f"{pointer} names {directory.name}, which does not exist")
    return directory


def read_trainer_state(directory: Path, config: TrainConfig) -> dict[str, Any]:
    """trainer.json of a checkpoint, checked against the running config."""
    path = directory / "trainer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is {directory} a complete checkpoint?)")
    meta = read_json_object(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an any4d training checkpoint")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r} (this any4d reads {FORMAT_VERSION})"
        )
    try:  # through the dataclasses: a field added since the save reads as its default
        # Paths as a run records them (absolute; a checkpoint from before resolved here too).
        saved = config_from_dict(meta["config"]).with_absolute_paths(check=False).to_dict()
    except ValueError as error:
        raise ValueError(f"{path} holds a config this any4d cannot read: {error}") from None
    running = config.with_absolute_paths(check=False).to_dict()
    differences = [
        f"{key}: checkpoint {saved.get(key)!r} ≠ now {running[key]!r}"
        for key in IDENTITY_SECTIONS
        if saved.get(key) != running[key]
    ]
    if differences:
        raise ValueError(
            f"checkpoint {directory} was written by another config; " + "; ".join(differences)
        )
    return meta


def load_checkpoint(
    directory: Path,
    *,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None,
    processes: Processes,
) -> Resumed:
    """Restore weights, optimiser state and EMA from ``directory`` into the (wrapped) model."""
    meta = read_trainer_state(directory, config)
    weights = directory / "model" / WEIGHTS_NAME
    optimizer_path = directory / "optimizer.pt"
    try:
        model_state = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{weights} is not a readable safetensors file: {error}") from None
    try:
        optimizer_state = torch.load(optimizer_path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle opcode refused, missing file, …
        raise ValueError(
            f"{optimizer_path} cannot be read ({error}): the checkpoint is corrupt"
        ) from None
    options = _full_options(processes, loading=True)
    try:
        set_model_state_dict(model, model_state, options=options)
    except (RuntimeError, KeyError) as error:
        raise ValueError(f"{weights} does not fit the model: {error}") from None
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)
    if ema is not None:
        path = directory / "ema.safetensors"
        try:
            saved = load_file(path)
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path} cannot be read ({error}) but ema_decay is set") from None
        if set(saved) != set(ema):
            raise ValueError(f"{path} holds other tensors than the model's parameters")
        with torch.no_grad():
            for key, value in ema.items():
                _copy_into(value, saved[key])
    return Resumed(step=int(meta["step"]), directory=directory, state=meta["trainer"])


def _copy_into(target: torch.Tensor, full: torch.Tensor) -> None:
    """Copy a full tensor into a plain or sharded (DTensor) one."""
    if hasattr(target, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor

        local = target.to_local()
        full = full.to(device=local.device, dtype=local.dtype)
        full = distribute_tensor(full, target.device_mesh, target.placements)
        local.copy_(full.to_local())
    else:
        target.copy_(full)


def initial_weights(path: str | Path, expected) -> dict[str, torch.Tensor]:
    """The fp32 weights a fine-tuning run starts from (``model.init_from``).

    path: a pipeline directory (``model/`` beside ``pipeline.json``), a training checkpoint
    ``step_N/`` (its ``ema.safetensors`` when kept, else ``model/``) or a ``model/`` directory
    itself. expected: the run's ``TransformerConfig``; a different architecture is an error
    naming the fields that differ.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model.init_from={str(path)!r} is not a directory")
    model_dir = path / "model" if (path / "model").is_dir() else path
    if not (model_dir / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"model.init_from={str(path)!r} holds no {WEIGHTS_NAME} (expected a pipeline "
            "directory, a training checkpoint step_N/ or a model/ directory)"
        )
    config, _ = read_config(model_dir)
    if config != expected:
        ours, theirs = expected.to_dict(), config.to_dict()
        changed = sorted(k for k in ours if ours[k] != theirs.get(k))
        raise ValueError(
            f"model.init_from={str(path)!r} is a different architecture: "
            + ", ".join(f"{k}={theirs.get(k)!r} there, {ours[k]!r} here" for k in changed)
        )
    ema = path / "ema.safetensors"
    source = ema if ema.is_file() else model_dir / WEIGHTS_NAME
    try:
        state = load_file(source)
    except SafetensorError as error:
        raise ValueError(f"{source} is not a readable safetensors file ({error})") from None
    return {name: tensor.float() for name, tensor in state.items()}
