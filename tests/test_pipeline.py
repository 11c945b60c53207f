"""Any4DPipeline: loading every layout, tasks as masks, observed data kept exactly, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import SamplerConfig, SearchConfig
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer
from any4d.train import load_config, train
from tests.tiny_pipeline import tiny_pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(steps=3)


@pytest.fixture(scope="module")
def scene():
    return render_clip(2, num_frames=3, height=16, width=16)


def test_interpolation_keeps_observed_frames_and_cameras_exactly(pipe, scene):
    result = pipe(scene, task="interpolate", sampler={"steps": 3}, progress=False)
    assert torch.equal(result.scene.rgb[[0, 2]], scene.rgb[[0, 2]])
    assert torch.equal(result.scene.cameras.c2w, scene.cameras.c2w)
    assert result.scene.depth.shape == scene.depth.shape
    assert result.scores is None and result.uncertainty is None
    assert set(result.latents) == {"rgb", "depth", "ray_d", "ray_m"}


def test_depth_task_returns_the_given_rgb_and_cameras(pipe, scene):
    result = pipe(scene, task="depth", sampler={"steps": 2}, progress=False)
    assert torch.equal(result.scene.rgb, scene.rgb)
    assert torch.equal(result.scene.cameras.K, scene.cameras.K)
    assert (result.scene.depth >= 0).all()


def test_seed_makes_runs_repeatable(pipe, scene):
    a = pipe(scene, task="video", sampler={"steps": 2}, seed=3, progress=False)
    b = pipe(scene, task="video", sampler={"steps": 2}, seed=3, progress=False)
    c = pipe(scene, task="video", sampler={"steps": 2}, seed=4, progress=False)
    assert torch.equal(a.scene.rgb, b.scene.rgb) and not torch.equal(a.scene.rgb, c.scene.rgb)


def test_sampler_settings_are_the_pipelines_with_the_changes_given(pipe, scene):
    assert pipe.sampler == SamplerConfig(steps=3)  # the saved steps, SamplerConfig's others
    changed = pipe.sampler_config({"guidance": 0.5})
    assert changed == SamplerConfig(steps=3, guidance=0.5)
    assert pipe.sampler_config(SamplerConfig(steps=7)) == SamplerConfig(steps=7)
    as_dict = pipe(scene, "depth", sampler={"steps": 2, "solver": "euler"}, progress=False)
    as_config = pipe(scene, "depth", sampler=SamplerConfig(steps=2, solver="euler"), progress=False)
    assert torch.equal(as_dict.scene.depth, as_config.scene.depth)
    with pytest.raises(ValueError, match=r"unknown settings \['stepz'\]"):
        pipe(scene, "depth", sampler={"stepz": 2}, progress=False)
    with pytest.raises(ValueError, match="sampler is a str"):
        pipe(scene, "depth", sampler="fast", progress=False)
    for wrong in ({"candidates": 2}, {}):
        with pytest.raises(ValueError, match="search is a dict"):
            pipe(scene, "depth", search=wrong, progress=False)


def test_tasks_that_observe_missing_data_are_clear_errors(pipe, scene):
    rgb_only = dataclasses.replace(scene, depth=None, cameras=None)
    with pytest.raises(ValueError, match="observes ray_d .* scene has no cameras"):
        pipe(rgb_only, task="interpolate", progress=False)
    with pytest.raises(ValueError, match="observes depth .* scene has no depth"):
        pipe(rgb_only, task="depth_to_video", progress=False)
    with pytest.raises(ValueError, match="must be a Scene"):
        pipe(scene.rgb, task="video")


def test_save_and_load_round_trip(pipe, scene, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = Any4DPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.defaults == pipe.defaults
    a = pipe(scene, task="depth", sampler={"steps": 2}, progress=False)
    b = loaded(scene, task="depth", sampler={"steps": 2}, progress=False)
    assert torch.equal(a.scene.depth, b.scene.depth)


def test_training_checkpoint_loads_with_its_tokenizer_and_ema(tmp_path, scene):
    config = load_config(
        "tiny-synthetic",
        [
            "steps=2",
            "checkpoint_every=2",
            "ema_decay=0.5",
            "data.batch_size=2",
            "data.num_frames=3",
            "data.height=16",
            "data.width=16",
            f"output_dir={tmp_path}",
        ],
    )
    result = train(config, progress=False)
    pipe = Any4DPipeline.from_pretrained(result.checkpoint)
    source = pipe.defaults.pop("clip_source")
    assert pipe.defaults == {"num_frames": 3, "height": 16, "width": 16, "fps": 10.0}
    assert "trainer.json" in source and "data section" in source
    from safetensors.torch import load_file

    ema = load_file(result.checkpoint / "ema.safetensors")
    assert torch.equal(pipe.model.state_dict()["head.linear.weight"], ema["head.linear.weight"])
    assert (
        pipe(scene, task="geometry", sampler={"steps": 2}, progress=False).scene.depth is not None
    )


def test_a_checkpoint_trained_on_a_mixture_takes_the_mixture_clip_shape(tmp_path):
    """A run on a mixture trains on the mixture's clips, not on the data section's synthetic
    shape: the pipeline takes the shape recorded at training time, or the mixture file's."""
    config = load_config(
        "tiny-synthetic",
        [
            "steps=1",
            "checkpoint_every=1",
            "data.batch_size=2",
            "data.num_frames=3",
            "data.height=16",
            "data.width=16",
            f"output_dir={tmp_path}",
        ],
    )
    checkpoint = train(config, progress=False).checkpoint
    mixture = tmp_path / "mixture.yaml"
    mixture.write_text(
        "clip: {length: 9, height: 24, width: 40, temporal_stride: 4}\n"
        "datasets:\n  - {name: seven, reader: 7scenes, root: nowhere}\n"
    )
    meta = json.loads((checkpoint / "trainer.json").read_text())
    meta["config"]["data"]["mixture"] = str(mixture)
    meta["trainer"]["clip"] = {
        "num_frames": 49,
        "height": 240,
        "width": 320,
        "fps": 10.0,
        "source": "the mixture paper.yaml (its clip settings)",
    }
    (checkpoint / "trainer.json").write_text(json.dumps(meta))
    recorded = Any4DPipeline.from_pretrained(checkpoint).defaults
    assert (recorded["num_frames"], recorded["height"], recorded["width"]) == (49, 240, 320)
    assert "paper.yaml" in recorded["clip_source"]
    del meta["trainer"]["clip"]  # a checkpoint from before the shape was recorded
    (checkpoint / "trainer.json").write_text(json.dumps(meta))
    derived = Any4DPipeline.from_pretrained(checkpoint).defaults
    assert (derived["num_frames"], derived["height"], derived["width"]) == (9, 24, 40)
    assert str(mixture) in derived["clip_source"]
    mixture.unlink()
    with pytest.raises(ValueError, match="mixture.yaml, which is not found"):
        Any4DPipeline.from_pretrained(checkpoint)


def test_unknown_directories_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Any4DPipeline.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is not a pipeline"):
        Any4DPipeline.from_pretrained(tmp_path)


def test_undecodable_rays_are_reported_not_fatal(pipe, scene):
    """An untrained model's rays determine no camera: the rest of the scene still comes back."""
    result = pipe(scene, task="geometry", sampler={"steps": 2}, progress=False)
    assert result.scene.depth is not None
    if result.scene.cameras is None:
        assert result.failures and result.failures[0].startswith("cameras:")


def test_mean_of_candidates_is_their_latent_mean(scene):
    """select="mean" returns the mean of the very candidates select="best" chooses from."""
    torch.manual_seed(0)
    pipe = Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2),
        {"num_frames": 3, "height": 16, "width": 16},
    )
    observed = pipe.observed(scene, "depth")
    kwargs = dict(task="depth", sampler={"steps": 2}, seed=4, progress=False)
    best = pipe(observed, search=SearchConfig(candidates=3, select="best"), **kwargs)
    mean = pipe(observed, search=SearchConfig(candidates=3, select="mean"), **kwargs)
    torch.testing.assert_close(mean.scores, best.scores)
    assert mean.best == best.best
    assert not torch.equal(mean.latents["depth"], best.latents["depth"])
    assert mean.scene.depth.shape == best.scene.depth.shape
    assert torch.isfinite(mean.scene.depth).all()
    # Observed streams come back as given either way.
    assert torch.equal(mean.scene.rgb, scene.rgb.float())
    torch.testing.assert_close(mean.latents["ray_d"], best.latents["ray_d"])
    with pytest.raises(ValueError, match="select='median'"):
        pipe(observed, search=SearchConfig(candidates=3, select="median"), **kwargs)


def test_stream_scales_survive_save_and_load(tmp_path):
    pipe = Any4DPipeline(Any4DTransformer(preset("tiny")), PixelTokenizer(2, {"ray_m": 7.0}))
    loaded = Any4DPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "p"))
    assert loaded.tokenizer.stream_scales == {"ray_m": 7.0}


def test_pipeline_under_bf16_autocast_returns_float32_geometry():
    """Autocast runs the model in bf16; depth and cameras are still decoded in the clip's dtype
    (bf16 poses beside fp32 intrinsics used to be an invalid Scene)."""
    from any4d.demo import shipped_checkpoint

    shipped = Any4DPipeline.from_pretrained(shipped_checkpoint())
    d = shipped.defaults
    truth = render_clip(7, num_frames=d["num_frames"], height=d["height"], width=d["width"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        observed = shipped.observed(truth, "geometry")
        search = SearchConfig(candidates=2)
        result = shipped(observed, "geometry", sampler={"steps": 3}, search=search, progress=False)
    assert result.failures == []
    assert result.scene.depth.dtype == result.scene.cameras.c2w.dtype == torch.float32
    assert result.scene.cameras.K.dtype == torch.float32
    assert torch.equal(result.scene.rgb, truth.rgb)


def test_prompt_reaches_the_model_through_the_text_encoder(scene, tmp_path, monkeypatch):
    from any4d.tokenize.text import TextEncoder
    from tests.tokenize.test_text import tiny_umt5

    tiny_umt5(tmp_path)
    text = TextEncoder.from_pretrained(tmp_path, max_length=16)
    torch.manual_seed(0)
    model = Any4DTransformer(preset("tiny", text_dim=32))
    seen = []
    forward = model.forward
    monkeypatch.setattr(
        model, "forward", lambda *a, **k: seen.append(k.get("text")) or forward(*a, **k)
    )
    defaults = {"num_frames": 3, "height": 16, "width": 16}
    with_text = Any4DPipeline(model, PixelTokenizer(2), defaults, text_encoder=text)
    with_text(scene, task="geometry", sampler={"steps": 2}, prompt="a red cube", progress=False)
    expected = text.encode("a red cube")
    assert len(seen) == 2 and all(t.shape[0] == 2 for t in seen)  # both guidance branches
    assert all(torch.equal(t, torch.cat([expected, expected])) for t in seen)
    # Without a prompt the scene's own text is used.
    seen.clear()
    with_text(
        dataclasses.replace(scene, text="two blue spheres"),
        task="geometry",
        sampler={"steps": 1},
        progress=False,
    )
    assert torch.equal(seen[0][:1], text.encode("two blue spheres"))
    # A pipeline without an encoder says it did not use the scene's text, and refuses a prompt.
    plain = Any4DPipeline(model, PixelTokenizer(2), defaults)
    result = plain(
        dataclasses.replace(scene, text="x"), task="geometry", sampler={"steps": 1}, progress=False
    )
    assert any("text was not used" in f for f in result.failures)
    with pytest.raises(ValueError, match="prompt given but the pipeline has no text encoder"):
        plain(scene, task="geometry", sampler={"steps": 1}, prompt="x", progress=False)
    untexted = Any4DPipeline(Any4DTransformer(preset("tiny")), PixelTokenizer(2), defaults)
    with pytest.raises(ValueError, match="no text conditioning"):
        untexted(scene, task="geometry", sampler={"steps": 1}, prompt="x", progress=False)
    with pytest.raises(ValueError, match="32-d features but the model's text_dim is 48"):
        Any4DPipeline(
            Any4DTransformer(preset("tiny", text_dim=48)),
            PixelTokenizer(2),
            defaults,
            text_encoder=text,
        )
    # from_pretrained takes the encoder from a local directory.
    with_text.save_pretrained(tmp_path / "pipe")
    loaded = Any4DPipeline.from_pretrained(tmp_path / "pipe", text_encoder=tmp_path)
    assert loaded.text_encoder is not None and loaded.text_encoder.dim == 32
