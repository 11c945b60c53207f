"""Our own checkpoint format: ``config.json`` + ``model.safetensors`` in one directory.

Both files are written atomically (temporary file in the same directory, then rename), so an
interrupted save never leaves a half-written checkpoint under the final name. Loading never
unpickles anything and every tensor key must match the model.

``default_permissions``, ``atomic_path`` and ``read_json_object`` are a copy of ``any4d.io``'s:
the model imports nothing else of any4d (DESIGN §7). ``tests/test_io.py`` holds the two copies
to one behaviour; every other package uses ``any4d.io``.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from any4d.model.config import TransformerConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "any4d.transformer"
FORMAT_VERSION = 1


def default_permissions(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open`` / ``mkdir`` would under the process umask
    (``mkstemp`` / ``mkdtemp`` and safetensors' ``save_file`` make 0600 / 0700), so others on a
    shared machine can read it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` (parent folders created), renamed onto it when the block
    ends without error; on error it is removed and ``path`` is left as it was.

        with atomic_path(directory / WEIGHTS_NAME) as temporary:
            save_file(state, temporary)

    suffix: the temporary name's ending, for writers that pick the format from it.
    The file gets the umask's permissions whoever created it (``default_permissions``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}{suffix}"
    try:
        yield temporary
        default_permissions(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file holding an object; a clear error when it is unreadable or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the file is corrupt") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write the model's config and weights into ``directory`` (created if needed)."""
    return save_state(model.state_dict(), model.config, directory)


def save_state(state: dict[str, Tensor], config: TransformerConfig, directory: str | Path) -> Path:
    """Write a transformer's state dict and config in our format (what ``from_pretrained``
    reads); used directly when the state was gathered from a sharded model."""
    directory = Path(directory)
    state = {key: value.detach().contiguous() for key, value in state.items()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": "Any4DTransformer",
        "dtype": str(next(iter(state.values())).dtype).removeprefix("torch."),
        "config": config.to_dict(),
    }
    with atomic_path(directory / WEIGHTS_NAME) as temporary:
        save_file(state, temporary, metadata={"format": FORMAT})
    with atomic_path(directory / CONFIG_NAME) as temporary:
        temporary.write_text(json.dumps(meta, indent=2))
    return directory


def read_config(directory: Path) -> tuple[TransformerConfig, torch.dtype]:
    """The config and saved dtype of a checkpoint directory."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found (expected a directory written by save_pretrained)"
        )
    meta = read_json_object(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an any4d transformer config (expected format {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {meta.get('format_version')!r} "
            f"(this any4d reads version {FORMAT_VERSION})"
        )
    dtype = getattr(torch, str(meta.get("dtype", "float32")), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{path} names an unknown dtype {meta.get('dtype')!r}")
    return TransformerConfig.from_dict(meta["config"]), dtype


def key_mismatch_error(source: str, missing: Iterable[str], unexpected: Iterable[str]) -> str:
    """A readable listing of the keys a checkpoint lacks and the keys nothing uses."""

    def listing(keys: list[str]) -> str:
        shown = ", ".join(keys[:20])
        return f"{shown}, … ({len(keys)} in all)" if len(keys) > 20 else shown

    missing, unexpected = sorted(missing), sorted(unexpected)
    parts = [f"{source} does not match the model"]
    if missing:
        parts.append(f"missing keys: {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {listing(unexpected)}")
    return "; ".join(parts)


def from_pretrained(cls, directory, *, dtype=None, device="cpu"):
    """Build ``cls`` from ``config.json`` on the meta device and load the weights in place."""
    directory = Path(directory)
    config, saved_dtype = read_config(directory)
    dtype = dtype or saved_dtype
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found (expected the weights next to config.json)")
    with torch.device("meta"):
        model = cls(config)
    expected = model.state_dict()
    state: dict[str, Tensor] = {}
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            keys = set(f.keys())
            if keys != set(expected):
                raise ValueError(
                    key_mismatch_error(str(weights), set(expected) - keys, keys - set(expected))
                )
            for key in keys:
                value = f.get_tensor(key)
                if value.shape != expected[key].shape:
                    raise ValueError(
                        f"{weights}: {key} has shape {tuple(value.shape)} "
                        f"(expected {tuple(expected[key].shape)} from config.json)"
                    )
                state[key] = value.to(device=device, dtype=dtype)
    except SafetensorError as error:
        raise ValueError(f"{weights} is not a readable safetensors file: {error}") from error
    model.load_state_dict(state, strict=True, assign=True)
    return model
