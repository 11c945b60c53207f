"""Training configs: named configs, files, overrides, unknown keys."""

from __future__ import annotations

import pytest

from any4d.train import load_config, named_configs
from any4d.train.config import config_from_dict
from any4d.train.loop import learning_rate


def test_named_configs_are_shipped_and_load():
    assert {"tiny-synthetic", "wan2.1-1.3b"} <= set(named_configs())
    tiny = load_config("tiny-synthetic")
    assert tiny.model.preset == "tiny" and tiny.tokenizer.kind == "pixel"
    assert [s.modalities for s in tiny.data.synthetic] == [("rgb", "depth", "cameras"), ("rgb",)]
    paper = load_config("wan2.1-1.3b")
    assert (paper.optim.lr, paper.optim.betas, paper.optim.weight_decay) == (
        1e-5,
        (0.9, 0.95),
        0.05,
    )
    assert (paper.optim.grad_clip, paper.optim.warmup_steps, paper.data.batch_size) == (
        5.0,
        1000,
        16,
    )
    assert paper.precision == "bf16" and paper.model.gradient_checkpointing


def test_overrides_parse_values_as_yaml():
    config = load_config(
        "tiny-synthetic",
        ["optim.lr=3e-4", "steps=7", "ema_decay=0.99", "model.overrides={num_layers: 3}"],
    )
    assert (config.optim.lr, config.steps, config.ema_decay) == (3e-4, 7, 0.99)
    assert config.model.overrides == {"num_layers": 3}


def test_the_noise_section_builds_the_samplers_noise_config():
    noise = load_config(
        "tiny-synthetic",
        ["noise.shared_target_prob=0.25", "noise.history_clean_prob=0.75", "noise.shift=2.0"],
    ).noise.noise_config()
    assert (noise.shared_target_prob, noise.history_clean_prob, noise.shift) == (0.25, 0.75, 2.0)
    with pytest.raises(ValueError, match="shared_target_prob=-1"):
        load_config("tiny-synthetic", ["noise.shared_target_prob=-1"])


def test_round_trip_through_a_dict():
    config = load_config("tiny-synthetic")
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.learning_rate=1"], r"optim: unknown key\(s\) \['learning_rate'\]"),
        (["stepz=3"], r"unknown key\(s\) \['stepz'\]"),
        (["precision=fp16"], "precision='fp16'"),
        (["tokenizer.kind=wan_vae"], "needs tokenizer.vae_path"),
        (["data.synthetic=[{name: x, modalities: [depth]}]"], "including 'rgb'"),
        (["steps"], "expected key=value"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config("tiny-synthetic", overrides)


def test_unknown_name_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="neither a file nor a named config"):
        load_config("huge-synthetic")
    with pytest.raises(FileNotFoundError):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(str(bad))
    bad.write_text("model:\n  presett: tiny\n")
    with pytest.raises(ValueError, match=r"model: unknown key\(s\) \['presett'\]"):
        load_config(str(bad))


def test_learning_rate_warms_up_then_stays_or_follows_a_cosine():
    warmup = ["optim.lr=1e-3", "optim.warmup_steps=10", "steps=110"]
    constant = load_config("tiny-synthetic", warmup)
    assert learning_rate(constant, 0) == pytest.approx(1e-4)
    assert [learning_rate(constant, s) for s in (9, 50, 109)] == [1e-3] * 3
    cosine = load_config("tiny-synthetic", [*warmup, "optim.schedule=cosine", "optim.min_lr=1e-5"])
    assert learning_rate(cosine, 9) == pytest.approx(1e-3)
    assert learning_rate(cosine, 10) == pytest.approx(1e-3)
    assert learning_rate(cosine, 60) == pytest.approx((1e-3 + 1e-5) / 2)  # half way
    assert learning_rate(cosine, 110) == pytest.approx(1e-5)
    rates = [learning_rate(cosine, s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    with pytest.raises(ValueError, match="optim.schedule='linear'"):
        load_config("tiny-synthetic", ["optim.schedule=linear"])
    with pytest.raises(ValueError, match=r"optim.min_lr=0.1 \(expected in \[0, lr="):
        load_config("tiny-synthetic", ["optim.min_lr=0.1"])
