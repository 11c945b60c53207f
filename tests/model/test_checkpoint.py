"""save_pretrained / from_pretrained: exact round trip, atomic files, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import any4d
from any4d.model import STREAMS, Any4DTransformer, preset
from any4d.model.checkpoint import read_config

CONFIG = preset("tiny", in_channels=4, dim=24, num_heads=2, ffn_dim=32, text_dim=8)


def saved(tmp_path, config=CONFIG):
    torch.manual_seed(0)
    model = Any4DTransformer(config)
    with torch.no_grad():
        model.head.linear.weight.normal_()
    return model, model.save_pretrained(tmp_path / "ckpt")


def test_round_trip_is_exact(tmp_path):
    model, directory = saved(tmp_path)
    loaded = Any4DTransformer.from_pretrained(directory)
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert set(original) == set(restored)
    assert all(torch.equal(original[k], restored[k]) for k in original)
    latents = {s: torch.randn(1, 4, 2, 4, 4) for s in STREAMS}
    t = dict.fromkeys(STREAMS, 0.5)
    assert torch.equal(model(latents, t)["depth"], loaded(latents, t)["depth"])


def test_checkpoint_with_the_legacy_max_positions_key_loads(tmp_path):
    model, directory = saved(tmp_path)
    meta = json.loads((directory / "config.json").read_text())
    meta["config"]["max_positions"] = 1024
    (directory / "config.json").write_text(json.dumps(meta))
    loaded = Any4DTransformer.from_pretrained(directory)
    assert loaded.config == model.config
    latents = {s: torch.randn(1, 4, 2, 4, 4) for s in STREAMS}
    t = dict.fromkeys(STREAMS, 0.5)
    assert torch.equal(model(latents, t)["rgb"], loaded(latents, t)["rgb"])


def test_shipped_demo_model_config_loads():
    config, dtype = read_config(Path(any4d.__file__).parent / "assets" / "demo" / "model")
    assert config.streams == STREAMS and dtype == torch.float32


def test_saved_dtype_is_kept_and_can_be_overridden(tmp_path):
    model, _ = saved(tmp_path)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "half")
    assert (
        next(Any4DTransformer.from_pretrained(tmp_path / "half").parameters()).dtype
        == torch.bfloat16
    )
    as_float = Any4DTransformer.from_pretrained(tmp_path / "half", dtype=torch.float32)
    assert next(as_float.parameters()).dtype == torch.float32


def test_no_temporary_files_are_left(tmp_path):
    _, directory = saved(tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]


def test_missing_weights_and_keys_are_errors(tmp_path):
    _, directory = saved(tmp_path)
    state = load_file(directory / "model.safetensors")
    del state["blocks.1.ffn.fc2.bias"]
    state["extra.weight"] = torch.zeros(1)
    save_file(state, directory / "model.safetensors")
    with pytest.raises(
        ValueError, match=r"missing keys: blocks\.1\.ffn\.fc2\.bias.*unexpected keys: extra"
    ):
        Any4DTransformer.from_pretrained(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        Any4DTransformer.from_pretrained(directory)


def test_config_that_does_not_match_the_weights_is_an_error(tmp_path):
    _, directory = saved(tmp_path)
    meta = json.loads((directory / "config.json").read_text())
    meta["config"]["ffn_dim"] = 48
    (directory / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"has shape .* \(expected .* from config.json\)"):
        Any4DTransformer.from_pretrained(directory)


def test_foreign_or_corrupt_files_are_errors(tmp_path):
    _, directory = saved(tmp_path)
    (directory / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        Any4DTransformer.from_pretrained(directory)
    (directory / "config.json").write_text(json.dumps({"dim": 1536}))
    with pytest.raises(ValueError, match="not an any4d transformer config"):
        Any4DTransformer.from_pretrained(directory)
    (directory / "config.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        Any4DTransformer.from_pretrained(directory)
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        Any4DTransformer.from_pretrained(tmp_path / "elsewhere")


def test_saved_files_get_the_umask_permissions_not_mkstemp_ones(tmp_path):
    import os

    _, directory = saved(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "model.safetensors"):
        assert (directory / name).stat().st_mode & 0o777 == 0o666 & ~umask
