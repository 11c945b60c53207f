"""Wan2.1 transformer checkpoints → ``Any4DTransformer``, every stream a copy of Wan.

Reads a local checkpoint in the original key format (``WanModel``) or diffusers' format
(``WanTransformer3DModel``) — WAN.md §2 lists both — from a single safetensors file, a sharded
one with its ``*.safetensors.index.json``, a ``.pth`` state dict (loaded with
``weights_only=True``), a directory holding one of those (with its ``config.json``), or a
diffusers pipeline directory (its ``transformer/`` subfolder). Nothing is downloaded.

Every key is accounted for: a key the model needs and the checkpoint lacks, or a checkpoint key
the model does not use (e.g. an image-to-video checkpoint's image branch), is an error listing
them.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from any4d.model.checkpoint import key_mismatch_error
from any4d.model.config import STREAMS, TransformerConfig

# (ours, original WanModel, diffusers WanTransformer3DModel) outside the blocks.
# Rows marked by a ``*`` in "ours" are stacked per stream; the rest are shared.
_GLOBAL_KEYS = [
    ("*patch_embedding.weight", "patch_embedding.weight", "patch_embedding.weight"),
    ("*patch_embedding.bias", "patch_embedding.bias", "patch_embedding.bias"),
    ("*time_embedding.linear_1.weight", "time_embedding.0.weight",
     "condition_embedder.time_embedder.linear_1.weight"),
    ("*time_embedding.linear_1.bias", "time_embedding.0.bias",
     "condition_embedder.time_embedder.linear_1.bias"),
    ("*time_embedding.linear_2.weight", "time_embedding.2.weight",
     "condition_embedder.time_embedder.linear_2.weight"),
    ("*time_embedding.linear_2.bias", "time_embedding.2.bias",
     "condition_embedder.time_embedder.linear_2.bias"),
    ("*time_embedding.projection.weight", "time_projection.1.weight",
     "condition_embedder.time_proj.weight"),
    ("*time_embedding.projection.bias", "time_projection.1.bias",
     "condition_embedder.time_proj.bias"),
    ("*head.modulation", "head.modulation", "scale_shift_table"),
    ("*head.linear.weight", "head.head.weight", "proj_out.weight"),
    ("*head.linear.bias", "head.head.bias", "proj_out.bias"),
]  # fmt: skip
_TEXT_KEYS = [
    ("text_embedding.0.weight", "text_embedding.0.weight",
     "condition_embedder.text_embedder.linear_1.weight"),
    ("text_embedding.0.bias", "text_embedding.0.bias",
     "condition_embedder.text_embedder.linear_1.bias"),
    ("text_embedding.2.weight", "text_embedding.2.weight",
     "condition_embedder.text_embedder.linear_2.weight"),
    ("text_embedding.2.bias", "text_embedding.2.bias",
     "condition_embedder.text_embedder.linear_2.bias"),
]  # fmt: skip


def _attention_rows(ours: str, original: str, diffusers: str) -> list[tuple[str, str, str]]:
    """The (ours, original, diffusers) rows of one attention; the arguments are key prefixes."""
    projections = (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0"))
    rows = [
        (f"{ours}.{proj}.{part}", f"{original}.{proj}.{part}", f"{diffusers}.{theirs}.{part}")
        for proj, theirs in projections
        for part in ("weight", "bias")
    ]
    rows += [
        (f"{ours}.{norm}.weight", f"{original}.{norm}.weight", f"{diffusers}.{norm}.weight")
        for norm in ("norm_q", "norm_k")
    ]
    return rows


# Per block, relative to ``blocks.N.``. Note the deliberate norm swap between the formats:
# the cross-attention LayerNorm is ``norm3`` in the original and ``norm2`` in diffusers.
_BLOCK_KEYS = [
    ("modulation", "modulation", "scale_shift_table"),
    *_attention_rows("self_attn", "self_attn", "attn1"),
    ("ffn.fc1.weight", "ffn.0.weight", "ffn.net.0.proj.weight"),
    ("ffn.fc1.bias", "ffn.0.bias", "ffn.net.0.proj.bias"),
    ("ffn.fc2.weight", "ffn.2.weight", "ffn.net.2.weight"),
    ("ffn.fc2.bias", "ffn.2.bias", "ffn.net.2.bias"),
]
_CROSS_KEYS = [
    ("cross_norm.weight", "norm3.weight", "norm2.weight"),
    ("cross_norm.bias", "norm3.bias", "norm2.bias"),
    *_attention_rows("cross_attn", "cross_attn", "attn2"),
]

# Prefixes some exporters put in front of the original keys (ComfyUI-style single files).
_PREFIXES = ("model.diffusion_model.",)
# Every released Wan2.1 / 2.2 transformer uses 128-dim heads.
WAN_HEAD_DIM = 128


def key_table(num_layers: int, text: bool, fmt: str) -> dict[str, tuple[str, bool]]:
    """Our key → (the checkpoint's key, stacked per stream) for ``fmt`` "original"/"diffusers"."""
    column = {"original": 1, "diffusers": 2}[fmt]
    table = {}
    for row in _GLOBAL_KEYS + (_TEXT_KEYS if text else []):
        ours = row[0]
        table[ours.lstrip("*")] = (row[column], ours.startswith("*"))
    for n in range(num_layers):
        for row in _BLOCK_KEYS + (_CROSS_KEYS if text else []):
            table[f"blocks.{n}.{row[0]}"] = (f"blocks.{n}.{row[column]}", True)
    return table


# ---------------------------------------------------------------------- reading files


class _TensorSource:
    """Lazy access to the tensors of safetensors files, or of an in-memory state dict.

    ``where`` maps each (possibly prefix-stripped) key to its file handle (None: in memory) and
    the key stored there.
    """

    def __init__(self, files: list[Path], stack: ExitStack, state: dict[str, Tensor] | None):
        self.state = state or {}
        self.where: dict[str, tuple[object, str]] = {k: (None, k) for k in self.state}
        for file in files:
            try:
                handle = stack.enter_context(safe_open(str(file), framework="pt", device="cpu"))
            except (SafetensorError, OSError) as error:
                raise ValueError(f"{file} is not a readable safetensors file: {error}") from error
            for key in handle.keys():
                self.where[key] = (handle, key)

    def strip_prefix(self, prefix: str) -> None:
        """Drop ``prefix`` from every key when all keys carry it."""
        if self.where and all(k.startswith(prefix) for k in self.where):
            self.where = {k[len(prefix) :]: v for k, v in self.where.items()}

    def keys(self) -> set[str]:
        return set(self.where)

    def get(self, key: str) -> Tensor:
        handle, stored = self.where[key]
        return self.state[stored] if handle is None else handle.get_tensor(stored)

    def shape(self, key: str) -> tuple[int, ...]:
        handle, stored = self.where[key]
        if handle is None:
            return tuple(self.state[stored].shape)
        return tuple(handle.get_slice(stored).get_shape())


def _resolve(path: Path) -> tuple[list[Path], Path | None, Path | None]:
    """(safetensors files, a .pth file, config.json) of a checkpoint path."""
    if not path.exists():
        raise FileNotFoundError(f"Wan checkpoint {path} does not exist")
    if path.is_file():
        if path.name.endswith(".index.json"):
            return _shards(path), None, _config_beside(path.parent)
        if path.suffix == ".safetensors":
            return [path], None, _config_beside(path.parent)
        if path.suffix in (".pth", ".pt", ".bin"):
            return [], path, _config_beside(path.parent)
        raise ValueError(
            f"{path} is not a Wan checkpoint file (expected .safetensors, "
            "*.safetensors.index.json, .pth or a directory)"
        )
    if (path / "transformer").is_dir() and not (path / "config.json").is_file():
        return _resolve(path / "transformer")  # a diffusers pipeline directory
    indices = sorted(path.glob("*.safetensors.index.json"))
    if len(indices) == 1:
        return _shards(indices[0]), None, _config_beside(path)
    files = sorted(path.glob("*.safetensors"))
    if len(indices) > 1 or len(files) != 1:
        found = [p.name for p in indices + files] or "none"
        raise ValueError(
            f"{path} holds {found} (expected one *.safetensors file or one "
            "*.safetensors.index.json with its shards)"
        )
    return files, None, _config_beside(path)


def _config_beside(directory: Path) -> Path | None:
    config = directory / "config.json"
    return config if config.is_file() else None


def _shards(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{index} is not a safetensors index (no weight_map): {error}") from error
    shards = sorted({index.parent / name for name in weight_map.values()})
    for shard in shards:
        if not shard.is_file():
            raise FileNotFoundError(f"{shard} is listed in {index} but does not exist")
    return shards


# ---------------------------------------------------------------------- config


def _detect_format(keys: set[str], source: str) -> str:
    if "head.head.weight" in keys:
        return "original"
    if "proj_out.weight" in keys:
        return "diffusers"
    raise ValueError(
        f"{source} is not a Wan2.1 transformer (neither 'head.head.weight' (original format) "
        "nor 'proj_out.weight' (diffusers format) is among its keys)"
    )


def _config_from_json(path: Path, streams: tuple[str, ...]) -> TransformerConfig:
    data = json.loads(path.read_text())
    if "num_attention_heads" in data:  # diffusers WanTransformer3DModel
        if data.get("image_dim") or data.get("added_kv_proj_dim"):
            raise ValueError(f"{path} describes an image-to-video Wan model (not supported)")
        heads, head_dim = data["num_attention_heads"], data["attention_head_dim"]
        in_channels, out_channels = data["in_channels"], data.get("out_channels")
        dim = heads * head_dim
    elif "dim" in data:  # original WanModel
        if data.get("model_type", "t2v") != "t2v":
            raise ValueError(f"{path} describes a {data['model_type']!r} Wan model (expected t2v)")
        dim, heads = data["dim"], data["num_heads"]
        in_channels, out_channels = data["in_dim"], data.get("out_dim")
    else:
        raise ValueError(f"{path} is not a Wan transformer config.json")
    if out_channels not in (None, in_channels):
        raise ValueError(f"{path}: out channels {out_channels} ≠ in channels {in_channels}")
    if not data.get("cross_attn_norm", True) or not data.get("qk_norm", True):
        raise ValueError(f"{path}: expected cross_attn_norm and qk_norm (as every Wan2.1 model)")
    return TransformerConfig(
        streams=streams,
        in_channels=in_channels,
        dim=dim,
        ffn_dim=data["ffn_dim"],
        num_heads=heads,
        num_layers=data["num_layers"],
        patch_size=tuple(data.get("patch_size", (1, 2, 2))),
        text_dim=data.get("text_dim", 4096),
        freq_dim=data.get("freq_dim", 256),
        eps=data.get("eps", 1e-6),
    )


def _config_from_shapes(source: _TensorSource, fmt: str, streams) -> TransformerConfig:
    """Wan's config read off the weight shapes (heads: ``dim / 128``, as every Wan model)."""
    table = key_table(0, True, fmt)
    dim, in_channels, *patch = source.shape("patch_embedding.weight")
    ffn_key = "blocks.0.ffn.0.weight" if fmt == "original" else "blocks.0.ffn.net.0.proj.weight"
    blocks = {int(k.split(".")[1]) for k in source.keys() if k.startswith("blocks.")}
    if not blocks or ffn_key not in source.keys():
        raise ValueError("the checkpoint has no transformer blocks")
    text_key = table["text_embedding.0.weight"][0]
    return TransformerConfig(
        streams=streams,
        in_channels=in_channels,
        dim=dim,
        ffn_dim=source.shape(ffn_key)[0],
        num_heads=max(dim // WAN_HEAD_DIM, 1),
        num_layers=max(blocks) + 1,
        patch_size=tuple(patch),
        text_dim=source.shape(text_key)[1] if text_key in source.keys() else None,
        freq_dim=source.shape(table["time_embedding.linear_1.weight"][0])[1],
    )


# ---------------------------------------------------------------------- loading


def load_wan(cls, path, *, streams=STREAMS, config=None, dtype=torch.float32, device="cpu"):
    """``Any4DTransformer.from_wan``: see the module docstring.

    path:    checkpoint file or directory (local). streams: which streams to build, each a copy.
    config:  override the config read from ``config.json`` / the weight shapes (its ``streams``
             is replaced by ``streams``).
    """
    path = Path(path)
    streams = tuple(streams)
    files, pth, config_json = _resolve(path)
    with ExitStack() as stack:
        state = None
        if pth is not None:
            state = torch.load(pth, map_location="cpu", weights_only=True, mmap=True)
            if not isinstance(state, dict):
                raise ValueError(f"{pth} does not hold a state dict")
        source = _TensorSource(files, stack, state)
        for prefix in _PREFIXES:
            source.strip_prefix(prefix)
        fmt = _detect_format(source.keys(), str(path))
        if config is not None:
            config = dataclasses.replace(config, streams=streams)
        elif config_json is not None:
            config = _config_from_json(config_json, streams)
        else:
            config = _config_from_shapes(source, fmt, streams)

        table = key_table(config.num_layers, config.text_dim is not None, fmt)
        wanted = {wan for wan, _ in table.values()}
        if wanted != source.keys():
            raise ValueError(
                key_mismatch_error(
                    f"Wan checkpoint {path} ({fmt} format)",
                    wanted - source.keys(),
                    source.keys() - wanted,
                )
            )
        with torch.device("meta"):
            model = cls(config)
        model = model.to(dtype).to_empty(device=device)
        parameters = dict(model.named_parameters())
        if set(parameters) != set(table):  # the table and the model are written together
            missing, extra = set(parameters) - set(table), set(table) - set(parameters)
            raise RuntimeError(key_mismatch_error("the Wan key table", missing, extra))
        with torch.no_grad():
            for ours, (wan, stacked) in table.items():
                target = parameters[ours]
                value = source.get(wan)
                expected = target.shape[1:] if stacked else target.shape
                if ours == "patch_embedding.weight":  # Conv3d (D, C, pt, ph, pw) → (D, C·pt·ph·pw)
                    value = value.reshape(value.shape[0], -1)
                elif stacked and value.dim() == len(expected) + 1 and value.shape[0] == 1:
                    value = value[0]  # the (1, n, D) modulation tables
                if tuple(value.shape) != tuple(expected):
                    raise ValueError(
                        f"Wan checkpoint {path}: {wan} has shape {tuple(value.shape)} "
                        f"(expected {tuple(expected)} for {ours} of {config})"
                    )
                target.copy_(value.to(target.dtype).expand_as(target) if stacked else value)
    return model
