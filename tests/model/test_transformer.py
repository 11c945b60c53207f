"""Any4DTransformer: streams, timesteps, text, gradients, checkpointing, compile, errors."""

from __future__ import annotations

import pytest
import torch

from any4d.model import STREAMS, Any4DTransformer, preset
from any4d.model.config import TransformerConfig

CONFIG = preset("tiny", in_channels=4, dim=24, num_heads=2, ffn_dim=32, text_dim=8)


def make_model(config=CONFIG, seed=0) -> Any4DTransformer:
    """A tiny model with the zero-initialised output layer randomised (gradients flow)."""
    torch.manual_seed(seed)
    model = Any4DTransformer(config)
    with torch.no_grad():
        model.head.linear.weight.normal_(0.0, 0.2)
    return model


def make_latents(streams=STREAMS, batch=2, frames=3, size=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        s: torch.randn(batch, CONFIG.in_channels, frames, size, size, generator=g) for s in streams
    }


def test_fresh_model_predicts_zero_velocity():
    """Wan's init zeroes the output layer."""
    out = Any4DTransformer(CONFIG)(make_latents(), dict.fromkeys(STREAMS, 0.5))
    assert all(torch.equal(v, torch.zeros_like(v)) for v in out.values())


@pytest.mark.parametrize("streams", [("rgb",), ("depth", "ray_m"), ("rgb", "ray_d"), STREAMS])
def test_any_subset_of_streams_gives_velocities_of_the_latent_shape(streams):
    model = make_model()
    latents = make_latents(streams)
    out = model(latents, dict.fromkeys(streams, torch.tensor([0.2, 0.9])))
    assert list(out) == list(streams)
    assert all(out[s].shape == latents[s].shape and torch.isfinite(out[s]).all() for s in streams)


def test_streams_attend_to_each_other():
    """Shared self-attention: changing the depth latents changes the RGB velocity."""
    model = make_model()
    latents = make_latents(("rgb", "depth"))
    t = {"rgb": 0.5, "depth": 0.5}
    before = model(latents, t)["rgb"]
    latents["depth"] = latents["depth"] + 1.0
    assert (model(latents, t)["rgb"] - before).abs().max() > 1e-3


def test_stream_weights_are_separate():
    """The same latents through different streams give different velocities."""
    model = make_model()
    x = make_latents(("rgb",))["rgb"]
    rgb = model({"rgb": x}, {"rgb": 0.5})["rgb"]
    depth = model({"depth": x}, {"depth": 0.5})["depth"]
    assert (rgb - depth).abs().max() > 1e-3


def test_gradients_reach_every_stream_and_skip_absent_ones():
    model = make_model()
    latents = make_latents(("rgb", "ray_d"))
    t = {"rgb": torch.rand(2, 3, 4, 4), "ray_d": 0.3}
    out = model(latents, t, text=torch.randn(2, 5, CONFIG.text_dim))
    sum(v.square().mean() for v in out.values()).backward()
    present, absent = [0, 2], [1, 3]
    for name, parameter in model.named_parameters():
        if name.startswith("text_embedding"):
            continue  # shared by all streams
        per_stream = parameter.grad.flatten(1).abs().amax(1)
        assert (per_stream[present] > 0).all(), name
        assert (per_stream[absent] == 0).all(), name


def test_absent_stream_weights_do_not_change_the_output():
    model = make_model()
    latents = make_latents(("rgb", "ray_m"))
    t = {"rgb": 0.4, "ray_m": 0.7}
    before = model(latents, t)
    with torch.no_grad():
        for parameter in model.blocks[0].parameters():
            parameter[1].add_(1.0)  # the depth stream
    after = model(latents, t)
    assert all(torch.equal(before[s], after[s]) for s in before)


def test_uniform_per_token_time_equals_per_sample_time():
    model = make_model()
    latents = make_latents()
    t = torch.tensor([0.25, 0.75])
    per_sample = model(latents, dict.fromkeys(STREAMS, t))
    per_token = model(latents, dict.fromkeys(STREAMS, t.view(2, 1, 1, 1).expand(2, 3, 4, 4)))
    per_frame = model(latents, dict.fromkeys(STREAMS, t.view(2, 1, 1, 1).expand(2, 3, 1, 1)))
    for s in STREAMS:
        torch.testing.assert_close(per_token[s], per_sample[s], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(per_frame[s], per_sample[s], atol=1e-5, rtol=1e-5)


def test_mixed_per_token_times_modulate_each_token():
    """Changing the time of latent frame 0 only changes what frame 0's tokens are told."""
    model = make_model()
    latents = make_latents(("rgb",), batch=1)
    t = torch.full((1, 3, 4, 4), 0.5)
    base = model(latents, {"rgb": t})["rgb"]
    t[:, 0] = 0.0
    mixed = model(latents, {"rgb": t})["rgb"]
    assert (mixed - base).abs().max() > 1e-3


def test_frame_index_sets_rope_time_positions():
    model = make_model()
    latents = make_latents()
    t = dict.fromkeys(STREAMS, 0.5)
    default = model(latents, t)
    explicit = model(latents, t, frame_index=torch.arange(3))
    repeated = model(latents, t, frame_index=torch.tensor([0, 1, 1]))
    assert all(torch.equal(default[s], explicit[s]) for s in STREAMS)
    assert (repeated["rgb"] - default["rgb"]).abs().max() > 1e-4


def test_null_text_equals_zero_text_of_any_length():
    model = make_model()
    latents = make_latents(("rgb",))
    t = {"rgb": 0.5}
    null = model(latents, t)["rgb"]
    zeros = model(latents, t, text=torch.zeros(2, 512, CONFIG.text_dim))["rgb"]
    text = model(latents, t, text=torch.randn(2, 5, CONFIG.text_dim))["rgb"]
    torch.testing.assert_close(null, zeros, atol=1e-5, rtol=1e-5)
    assert (text - null).abs().max() > 1e-4


def test_model_without_text_has_no_cross_attention():
    model = make_model(preset("tiny", in_channels=4, dim=24, num_heads=2, ffn_dim=32))
    assert model.text_embedding is None and model.blocks[0].cross_attn is None
    out = model(make_latents(), dict.fromkeys(STREAMS, 0.5))
    assert out["rgb"].shape == (2, 4, 3, 8, 8)
    with pytest.raises(ValueError, match="no text cross-attention"):
        model(make_latents(), dict.fromkeys(STREAMS, 0.5), text=torch.zeros(2, 1, 8))


def test_gradient_checkpointing_gives_the_same_gradients():
    latents = make_latents()
    t = dict.fromkeys(STREAMS, torch.tensor([0.3, 0.6]))
    grads = []
    for checkpointing in (False, True):
        model = make_model()
        model.gradient_checkpointing = checkpointing
        sum(v.sum() for v in model(latents, t).values()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for plain, checkpointed in zip(*grads, strict=True):
        torch.testing.assert_close(plain, checkpointed)


def test_bf16_autocast_stays_close_to_fp32():
    model = make_model()
    latents = make_latents()
    t = dict.fromkeys(STREAMS, 0.5)
    reference = model(latents, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model(latents, t)
    for s in STREAMS:
        error = (half[s].float() - reference[s]).abs().max() / reference[s].abs().max()
        assert error < 0.05, (s, float(error))


def test_bf16_weights_run():
    model = make_model().to(torch.bfloat16)
    latents = {k: v.bfloat16() for k, v in make_latents().items()}
    out = model(latents, dict.fromkeys(STREAMS, 0.5))
    assert out["rgb"].dtype == torch.bfloat16 and torch.isfinite(out["rgb"].float()).all()


def test_block_compiles_without_graph_breaks():
    model = make_model()
    latents = make_latents(("rgb", "depth"))
    captured = {}
    block = model.blocks[0]
    original = block.forward

    def spy(*args):
        captured["args"] = args
        return original(*args)

    block.forward = spy
    model(latents, {"rgb": 0.2, "depth": 0.8}, text=torch.randn(2, 3, 8))
    block.forward = original
    compiled = torch.compile(block, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(*captured["args"]), block(*captured["args"]))


def test_four_stream_wan_config_shapes_on_meta_device():
    """The 1.3B four-stream model at the paper's latent shape (49 × 240 × 320 → 13 × 30 × 40)."""
    with torch.device("meta"):
        model = Any4DTransformer(preset("wan2.1-1.3b"))
        latents = {s: torch.randn(1, 16, 13, 30, 40) for s in STREAMS}
        t = {s: torch.rand(1, 13, 15, 20) for s in STREAMS}
        out = model(latents, t, text=torch.randn(1, 512, 4096))
    assert {s: tuple(v.shape) for s, v in out.items()} == dict.fromkeys(
        STREAMS, (1, 16, 13, 30, 40)
    )


def test_parameter_counts_match_wan():
    """One stream has exactly Wan2.1-1.3B's 1,418,996,800 parameters (WAN.md §1)."""
    text = 4096 * 1536 + 1536 + 1536 * 1536 + 1536  # the shared text embedding
    with torch.device("meta"):
        one = Any4DTransformer(preset("wan2.1-1.3b", streams=("rgb",)))
        four = Any4DTransformer(preset("wan2.1-1.3b"))
    assert sum(p.numel() for p in one.parameters()) == 1_418_996_800
    assert sum(p.numel() for p in four.parameters()) == 4 * (1_418_996_800 - text) + text


@pytest.mark.parametrize(
    ("latents", "t", "message"),
    [
        ({"rgb": torch.zeros(1, 3, 3, 8, 8)}, {"rgb": 0.5}, "has 3 channels"),
        ({"normals": torch.zeros(1, 4, 3, 8, 8)}, {"normals": 0.5}, "unknown stream 'normals'"),
        (
            {"rgb": torch.zeros(1, 4, 3, 8, 8), "depth": torch.zeros(1, 4, 3, 8, 6)},
            {"rgb": 0.5, "depth": 0.5},
            "expected the same batch and grid",
        ),
        ({"rgb": torch.zeros(1, 4, 3, 8, 7)}, {"rgb": 0.5}, "not a positive multiple"),
        ({"rgb": torch.zeros(1, 4, 3, 8, 8)}, {"depth": 0.5}, "t has streams"),
        ({"rgb": torch.zeros(1, 4, 3, 8)}, {"rgb": 0.5}, "expected \\(B, C, T, H, W\\)"),
        ({"rgb": torch.zeros(1, 4, 3, 8, 8)}, {"rgb": torch.zeros(1, 3, 8, 8)}, "broadcastable"),
        ({"rgb": torch.zeros(2, 4, 3, 8, 8)}, {"rgb": torch.zeros(3)}, "t\\['rgb'\\] has shape"),
    ],
)
def test_bad_inputs_are_clear_errors(latents, t, message):
    with pytest.raises(ValueError, match=message):
        make_model()(latents, t)


def test_stream_outside_the_model_and_bad_text_are_errors():
    model = make_model(TransformerConfig(**{**CONFIG.to_dict(), "streams": ("rgb", "depth")}))
    with pytest.raises(ValueError, match="weights only for"):
        model({"ray_d": torch.zeros(1, 4, 3, 8, 8)}, {"ray_d": 0.5})
    with pytest.raises(ValueError, match="text has shape"):
        model({"rgb": torch.zeros(1, 4, 3, 8, 8)}, {"rgb": 0.5}, text=torch.zeros(1, 5, 7))
    with pytest.raises(ValueError, match="frame_index"):
        model({"rgb": torch.zeros(1, 4, 3, 8, 8)}, {"rgb": 0.5}, frame_index=torch.arange(4))


def test_compile_blocks_keeps_names_and_outputs():
    from any4d.model import Any4DTransformer, preset

    torch.manual_seed(0)
    model = Any4DTransformer(preset("tiny"))
    keys = list(model.state_dict())
    latents = {s: torch.randn(1, 12, 2, 4, 4) for s in model.config.streams}
    times = {s: torch.rand(1, 2, 1, 1) for s in model.config.streams}
    with torch.no_grad():
        eager = model(latents, times)
        model.compile_blocks(backend="eager")  # dynamo's tracing without a C++ build
        compiled = model(latents, times)
    assert list(model.state_dict()) == keys  # checkpoints and FSDP2 see the same names
    for s in eager:
        torch.testing.assert_close(compiled[s], eager[s])
