"""What a run records is self-contained: checkpoints load from any directory with their VAE and
text encoder; a Wan start's architecture is the checkpoint's; captions are never silently lost;
the logged loss does not jump with the batch's composition."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from any4d.model import Any4DTransformer
from any4d.pipeline import Any4DPipeline
from any4d.train import load_config, train
from any4d.train.loop import _record, build_model
from tests.model.wan_reference import tiny_wan
from tests.tokenize.test_text import tiny_umt5
from tests.tokenize.test_wan_vae import _tiny_vae
from tests.train.runs import TINY

CAPTIONED = "data.synthetic=[{name: synthetic, modalities: [rgb, depth, cameras, text]}]"


def test_a_checkpoint_with_relative_paths_loads_from_another_directory(tmp_path, monkeypatch):
    work = tmp_path / "work"
    _tiny_vae().save_pretrained(work / "wan" / "vae")
    tiny_umt5(work / "umt5")
    monkeypatch.chdir(work)
    config = load_config(
        "tiny-synthetic",
        [
            *TINY,
            "data.num_frames=5",
            "tokenizer.kind=wan_vae",
            "tokenizer.vae_path=wan/vae",  # relative, as the shipped paper config's
            "model.text_encoder=umt5",
            "model.overrides={in_channels: 16, text_dim: 32}",
            CAPTIONED,
            "steps=1",
            "output_dir=run",
        ],
    )
    checkpoint = train(config, progress=False).checkpoint.resolve()
    recorded = json.loads((checkpoint / "trainer.json").read_text())["config"]
    assert recorded["tokenizer"]["vae_path"] == str(work / "wan" / "vae")
    assert recorded["model"]["text_encoder"] == str(work / "umt5")
    monkeypatch.chdir(tmp_path)
    pipe = Any4DPipeline.from_pretrained(checkpoint)
    assert pipe.tokenizer.latent_channels == 16
    assert pipe.text_encoder is not None and pipe.text_encoder.dim == 32  # the run's umT5 is back
    assert Any4DPipeline.from_pretrained(checkpoint, text_encoder=False).text_encoder is None
    # A saved pipeline holds its VAE and names its text encoder by an absolute path.
    pipe.save_pretrained(tmp_path / "saved")
    again = Any4DPipeline.from_pretrained(tmp_path / "saved")
    assert again.text_encoder is not None and again.text_encoder_path == str(work / "umt5")
    # Resuming continues: the recorded absolute paths are the config's, resolved.
    monkeypatch.chdir(work)
    resumed = train(dataclasses.replace(config, steps=2), resume=True, progress=False)
    assert resumed.step == 2
    # A text encoder that is gone is named, with the way out.
    (work / "umt5").rename(work / "moved")
    with pytest.raises(FileNotFoundError, match=r"names the text encoder .*umt5, which does not"):
        Any4DPipeline.from_pretrained(checkpoint)
    (work / "wan").rename(work / "gone")
    with pytest.raises(FileNotFoundError, match=r"trained with the Wan VAE at .*wan/vae, which"):
        Any4DPipeline.from_pretrained(checkpoint, text_encoder=False)


def test_missing_input_paths_are_named_before_training(tmp_path):
    config = load_config(
        "tiny-synthetic", [*TINY, f"output_dir={tmp_path}", "model.text_encoder=nowhere"]
    )
    with pytest.raises(FileNotFoundError, match=r"model.text_encoder='nowhere' does not exist"):
        train(config, progress=False)


def test_captions_without_a_text_encoder_are_refused(tmp_path):
    config = load_config("tiny-synthetic", [*TINY, f"output_dir={tmp_path}", CAPTIONED])
    with pytest.raises(ValueError, match=r"\['synthetic'\] list 'text' but model.text_encoder"):
        train(config, progress=False)


def test_a_wan_start_refuses_overrides_it_would_ignore(tmp_path):
    tiny_wan(in_channels=12, out_channels=12).save_pretrained(tmp_path / "wan")
    loaded = Any4DTransformer.from_wan(tmp_path / "wan").config
    fields = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)}
    del fields["streams"]
    fields["patch_size"] = list(fields["patch_size"])
    matching = json.dumps(fields)

    def config(overrides: str):
        return load_config(
            "tiny-synthetic",
            [*TINY, f"model.wan_path={tmp_path / 'wan'}", f"model.overrides={overrides}"],
        )

    model = build_model(config(matching), 12)  # every override the checkpoint's: applied
    assert model.config.dim == 24 and model.config.text_dim == 16
    with pytest.raises(ValueError, match=r"model.overrides.dim=64 but the checkpoint has 24"):
        build_model(config(json.dumps({**fields, "dim": 64})), 12)
    with pytest.raises(ValueError, match=r"model.preset='tiny' has ffn_dim=256 but the checkpoint"):
        build_model(config("{}"), 12)


def test_the_logged_loss_is_comparable_across_batch_compositions():
    config = load_config("tiny-synthetic", TINY)
    args = (torch.tensor(0.0), 0.0, 1, torch.device("cpu"))
    streams = ("rgb", "depth", "ray_d", "ray_m")
    everything = _record(
        config, 1, torch.tensor([2.0] * 4, dtype=torch.float64), dict.fromkeys(streams, 4.0), *args
    )
    rgb_only = _record(
        config,
        1,
        torch.tensor([2.0, 0, 0, 0], dtype=torch.float64),
        {"rgb": 4.0, "depth": 0.0, "ray_d": 0.0, "ray_m": 0.0},
        *args,
    )
    assert everything["loss"] == rgb_only["loss"] == pytest.approx(0.5)
    assert everything["objective"] == pytest.approx(0.5) and rgb_only["objective"] == pytest.approx(
        0.125
    )
    assert rgb_only["loss_depth"] is None


def test_compile_compiles_the_blocks_before_training(tmp_path, monkeypatch):
    calls = []
    original = Any4DTransformer.compile_blocks

    def eager_compile(self, **options):
        calls.append(len(self.blocks))
        return original(self, backend="eager")

    monkeypatch.setattr(Any4DTransformer, "compile_blocks", eager_compile)
    config = load_config(
        "tiny-synthetic", [*TINY, f"output_dir={tmp_path}", "steps=1", "compile=true"]
    )
    assert train(config, progress=False).step == 1 and calls == [2]
