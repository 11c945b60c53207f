"""Wan2.1 import: both key formats, every file layout, equivalence with diffusers' model."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from safetensors.torch import save_file

from any4d.model import STREAMS, Any4DTransformer, TransformerConfig
from tests.model.wan_reference import original_config, tiny_wan, to_original_keys

TOLERANCE = 1e-4  # fp32, max abs difference (issue 4)


def wan_output(wan, x, t, text):
    with torch.no_grad():
        return wan(x, timestep=1000 * t, encoder_hidden_states=text).sample


def ours_output(model, x, t, text):
    with torch.no_grad():
        return model({"rgb": x}, {"rgb": t}, text)["rgb"]


def inputs(seed=1, batch=2, frames=3, size=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, frames, size, size, generator=g)
    t = torch.rand(batch, generator=g)
    text = torch.randn(batch, 7, 16, generator=g)
    return x, t, text


def assert_matches_wan(model, wan, seed=1):
    x, t, text = inputs(seed)
    difference = (ours_output(model, x, t, text) - wan_output(wan, x, t, text)).abs().max()
    assert difference <= TOLERANCE, f"max abs difference {difference:.3g}"


def write_original(wan, directory, with_config=True):
    directory.mkdir()
    save_file(to_original_keys(wan.state_dict()), directory / "diffusion_pytorch_model.safetensors")
    if with_config:
        (directory / "config.json").write_text(json.dumps(original_config(wan)))
    return directory


def test_original_key_fixture_is_what_diffusers_converts():
    """The test's original-format state dict converts back exactly (diffusers as the oracle)."""
    wan = tiny_wan()
    state = wan.state_dict()
    converted = convert_wan_transformer_to_diffusers(to_original_keys(state))
    assert set(converted) == set(state)
    assert all(torch.equal(converted[k], state[k]) for k in state)


def test_rgb_stream_reproduces_diffusers_wan_from_diffusers_directory(tmp_path):
    wan = tiny_wan()
    wan.save_pretrained(tmp_path / "wan")
    model = Any4DTransformer.from_wan(tmp_path / "wan")
    assert model.config.streams == STREAMS
    assert_matches_wan(model, wan)


def test_rgb_stream_reproduces_diffusers_wan_from_original_directory(tmp_path):
    wan = tiny_wan(seed=3)
    model = Any4DTransformer.from_wan(write_original(wan, tmp_path / "wan"))
    assert_matches_wan(model, wan)


def test_sharded_diffusers_checkpoint_with_index(tmp_path):
    wan = tiny_wan(seed=4)
    wan.save_pretrained(tmp_path / "wan", max_shard_size="20KB")
    assert len(list((tmp_path / "wan").glob("*.safetensors"))) > 1
    index = next((tmp_path / "wan").glob("*.index.json"))
    assert_matches_wan(Any4DTransformer.from_wan(index), wan)
    assert_matches_wan(Any4DTransformer.from_wan(tmp_path / "wan"), wan)


def test_diffusers_pipeline_directory_uses_transformer_subfolder(tmp_path):
    wan = tiny_wan(seed=5)
    wan.save_pretrained(tmp_path / "pipeline" / "transformer")
    (tmp_path / "pipeline" / "vae").mkdir()
    assert_matches_wan(Any4DTransformer.from_wan(tmp_path / "pipeline"), wan)


def test_single_file_with_prefix_and_explicit_config(tmp_path):
    """A lone .safetensors (no config.json) with ComfyUI's ``model.diffusion_model.`` prefix."""
    wan = tiny_wan(seed=6)
    state = {f"model.diffusion_model.{k}": v for k, v in to_original_keys(wan.state_dict()).items()}
    save_file(state, tmp_path / "wan.safetensors")
    config = TransformerConfig(
        in_channels=4, dim=24, ffn_dim=32, num_heads=2, num_layers=2, text_dim=16, freq_dim=32
    )
    assert_matches_wan(Any4DTransformer.from_wan(tmp_path / "wan.safetensors", config=config), wan)


def test_config_inferred_from_shapes_uses_wan_head_dim(tmp_path):
    """Without config.json, heads = dim / 128 (every Wan model); the rest from the shapes."""
    wan = tiny_wan(seed=7, num_attention_heads=1, attention_head_dim=128)
    directory = write_original(wan, tmp_path / "wan", with_config=False)
    model = Any4DTransformer.from_wan(directory)
    assert (model.config.dim, model.config.num_heads, model.config.num_layers) == (128, 1, 2)
    assert (model.config.in_channels, model.config.text_dim, model.config.ffn_dim) == (4, 16, 32)
    assert_matches_wan(model, wan)


def test_pth_state_dict_loads_without_pickle(tmp_path):
    wan = tiny_wan(seed=8)
    (tmp_path / "wan").mkdir()
    torch.save(to_original_keys(wan.state_dict()), tmp_path / "wan" / "model.pth")
    (tmp_path / "wan" / "config.json").write_text(json.dumps(original_config(wan)))
    assert_matches_wan(Any4DTransformer.from_wan(tmp_path / "wan" / "model.pth"), wan)


def test_every_stream_is_a_copy_of_wan(tmp_path):
    wan = tiny_wan(seed=9)
    wan.save_pretrained(tmp_path / "wan")
    model = Any4DTransformer.from_wan(tmp_path / "wan")
    x, t, text = inputs()
    reference = wan_output(wan, x, t, text)
    for stream in STREAMS:
        with torch.no_grad():
            out = model({stream: x}, {stream: t}, text)[stream]
        assert (out - reference).abs().max() <= TOLERANCE, stream


def test_subset_of_streams_and_bf16(tmp_path):
    wan = tiny_wan(seed=10)
    wan.save_pretrained(tmp_path / "wan")
    model = Any4DTransformer.from_wan(tmp_path / "wan", streams=("rgb", "depth"))
    assert model.config.streams == ("rgb", "depth")
    assert model.patch_embedding.weight.shape[0] == 2
    assert_matches_wan(model, wan)
    half = Any4DTransformer.from_wan(tmp_path / "wan", dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    wan = tiny_wan()
    state = to_original_keys(wan.state_dict())
    del state["blocks.1.ffn.2.bias"]
    state["img_emb.proj.0.weight"] = torch.zeros(3)
    (tmp_path / "wan").mkdir()
    save_file(state, tmp_path / "wan" / "model.safetensors")
    (tmp_path / "wan" / "config.json").write_text(json.dumps(original_config(wan)))
    with pytest.raises(
        ValueError, match=r"missing keys: blocks\.1\.ffn\.2\.bias.*unexpected keys: img_emb"
    ):
        Any4DTransformer.from_wan(tmp_path / "wan")


def test_wrong_shape_names_the_key(tmp_path):
    wan = tiny_wan()
    state = to_original_keys(wan.state_dict())
    state["blocks.0.self_attn.q.weight"] = torch.zeros(24, 23)
    (tmp_path / "wan").mkdir()
    save_file(state, tmp_path / "wan" / "model.safetensors")
    (tmp_path / "wan" / "config.json").write_text(json.dumps(original_config(wan)))
    with pytest.raises(ValueError, match=r"blocks\.0\.self_attn\.q\.weight has shape \(24, 23\)"):
        Any4DTransformer.from_wan(tmp_path / "wan")


def test_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Any4DTransformer.from_wan(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="expected one \\*.safetensors"):
        Any4DTransformer.from_wan(tmp_path / "empty")
    save_file({"encoder.conv1.weight": torch.zeros(2)}, tmp_path / "vae.safetensors")
    with pytest.raises(ValueError, match="is not a Wan2.1 transformer"):
        Any4DTransformer.from_wan(tmp_path / "vae.safetensors")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a Wan checkpoint file"):
        Any4DTransformer.from_wan(tmp_path / "notes.txt")
