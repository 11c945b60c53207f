"""Whole training runs: the loss falls, resume after SIGKILL is exact, SIGTERM saves, DDP and
FSDP2 on two CPU processes equal one process, and bad checkpoints are clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from any4d.cli import main
from any4d.train import checkpoint as checkpoint_module
from any4d.train import load_config, train
from any4d.train.loop import build_model
from tests.train.runs import TINY, environment, losses, run, train_command


def tiny(output, *overrides):
    return load_config("tiny-synthetic", [*TINY, f"output_dir={output}", *overrides])


def test_loss_falls_and_metrics_hold_every_stream(tmp_path, capsys):
    overrides = ["steps=40", "checkpoint_every=20", "optim.lr=3e-3", "log_every=1"]
    command = train_command(tmp_path, *overrides)
    status = main(command[3:])  # in this process: what follows `python -m any4d`
    assert status == 0
    printed = capsys.readouterr().out
    assert f"checkpoint: {tmp_path / 'checkpoints' / 'step_000040'}" in printed
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 41))
    streams = ("loss_rgb", "loss_depth", "loss_ray_d", "loss_ray_m")
    for key in (*streams, "lr", "grad_norm", "tokens_per_s", "memory_gb"):
        assert all(key in r for r in records), key
        # None only for a batch in which no sample had a target of that stream
        assert sum(r[key] is not None for r in records) >= 0.8 * len(records), key
    first = sum(r["loss"] for r in records[:5]) / 5
    last = sum(r["loss"] for r in records[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    directory = tmp_path / "checkpoints" / "step_000040"
    from any4d.model import Any4DTransformer

    assert Any4DTransformer.from_pretrained(directory / "model").config.num_layers == 2


def test_resume_after_sigkill_repeats_the_uninterrupted_losses(tmp_path):
    overrides = ["steps=10", "checkpoint_every=3", "ema_decay=0.9"]
    run(train_command(tmp_path / "straight", *overrides))
    killed = tmp_path / "killed"
    command = train_command(killed, *overrides)
    process = subprocess.Popen(
        command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (killed / "checkpoints" / "latest").is_file()
    done = len(metrics.read_text().splitlines())
    assert done < 10, "the run finished before it could be killed"
    run(train_command(killed, *overrides, resume=True))
    assert losses(killed) == losses(tmp_path / "straight")
    straight = load_file(tmp_path / "straight/checkpoints/step_000010/ema.safetensors")
    resumed = load_file(killed / "checkpoints/step_000010/ema.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def wait_for_first_metrics(output, timeout: float = 120) -> None:
    """Until the run in ``output`` has logged a step (it is inside the training loop)."""
    metrics = output / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text()):
        time.sleep(0.05)


def test_sigterm_saves_the_current_step_and_exits(tmp_path):
    command = train_command(tmp_path, "steps=200", "checkpoint_every=100")
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, text=True)
    wait_for_first_metrics(tmp_path)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert "stopped (SIGTERM) at step" in out
    step = int(out.split("stopped (SIGTERM) at step ")[1].split(";")[0])
    assert 0 < step < 200
    latest = (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert latest == f"step_{step:06d}"


def test_sigterm_to_the_process_group_with_data_workers_still_saves(tmp_path):
    """As a scheduler or ``timeout`` sends it: to the main process and its DataLoader workers."""
    command = train_command(tmp_path, "steps=200", "checkpoint_every=100", "data.num_workers=2")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    process = subprocess.Popen(command, env=environment(), start_new_session=True, **pipes)
    wait_for_first_metrics(tmp_path)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    step = int(out.split("stopped (SIGTERM) at step ")[1].split(";")[0])
    latest = (tmp_path / "checkpoints" / "latest").read_text().strip()
    assert latest == f"step_{step:06d}"
    assert (tmp_path / "checkpoints" / latest / "model" / "model.safetensors").exists()


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_cpu_processes_equal_one(tmp_path, strategy):
    overrides = ["steps=3", "checkpoint_every=3", f"strategy={strategy}"]
    run(train_command(tmp_path / "one", *overrides))
    run(train_command(tmp_path / "two", *overrides, processes=2))
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert one.keys() == two.keys()
    assert all(abs(one[k] - two[k]) <= 1e-5 * abs(one[k]) for k in one)
    a = load_file(tmp_path / "one/checkpoints/step_000003/model/model.safetensors")
    b = load_file(tmp_path / "two/checkpoints/step_000003/model/model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path):
    train(tiny(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints: pass --resume"):
        train(tiny(tmp_path, "steps=4"), progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume"):
        train(tiny(tmp_path / "empty", "steps=2"), resume=True, progress=False)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    train(tiny(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    deeper = tiny(tmp_path, "steps=4", "model.overrides={num_layers: 3}")
    with pytest.raises(ValueError, match=r"another config; model: checkpoint"):
        train(deeper, resume=True, progress=False)


@pytest.mark.parametrize("name", ["model/model.safetensors", "optimizer.pt", "trainer.json"])
def test_truncated_checkpoint_files_are_clear_errors(tmp_path, name):
    train(tiny(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    path = tmp_path / "checkpoints" / "step_000002" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt|not a readable safetensors"):
        train(tiny(tmp_path, "steps=4"), resume=True, progress=False)


def test_a_failing_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train(tiny(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    good = tmp_path / "checkpoints" / "step_000002"
    before = {p.name: p.read_bytes() for p in good.rglob("*") if p.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train(tiny(tmp_path, "steps=4", "checkpoint_every=2"), resume=True, progress=False)
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_000002"
    assert {p.name: p.read_bytes() for p in good.rglob("*") if p.is_file()} == before
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_mixture_with_a_missing_root_is_a_clear_error(tmp_path):
    mixture = tmp_path / "mixture.yaml"
    mixture.write_text(
        "clip: {length: 3, height: 16, width: 16, temporal_stride: 1}\n"
        f"datasets:\n  - {{name: kitti, reader: vkitti2, root: {tmp_path / 'nowhere'}, "
        "modalities: [rgb, depth, cameras]}\n"
    )
    with pytest.raises((FileNotFoundError, ValueError), match="nowhere"):
        train(tiny(tmp_path / "run", f"data.mixture={mixture}"), progress=False)


def test_init_from_starts_a_fine_tuning_run_from_the_ema_weights(tmp_path):
    first = tiny(tmp_path / "one", "steps=2", "checkpoint_every=2", "ema_decay=0.5")
    first = train(first, progress=False)
    ema = load_file(first.checkpoint / "ema.safetensors")
    raw = load_file(first.checkpoint / "model" / "model.safetensors")
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)  # the test can tell them apart
    umask = os.umask(0)
    os.umask(umask)
    for path in first.checkpoint.rglob("*"):  # readable by others, as plain files are
        assert path.stat().st_mode & 0o777 == (0o777 if path.is_dir() else 0o666) & ~umask, path
    config = tiny(tmp_path / "two", "steps=1", f"model.init_from={first.checkpoint}")
    model = build_model(config, channels=12)
    assert all(torch.equal(v, ema[k]) for k, v in model.state_dict().items())
    # A pipeline / model directory (no EMA beside it): its own weights.
    from_model = build_model(tiny(tmp_path, f"model.init_from={first.checkpoint / 'model'}"), 12)
    assert all(torch.equal(v, raw[k]) for k, v in from_model.state_dict().items())
    # The fine-tuning run trains from there, with its own output_dir.
    result = train(config, progress=False)
    assert result.step == 1 and (tmp_path / "two" / "checkpoints" / "step_000001").is_dir()


def test_init_from_bad_paths_and_architectures_are_clear_errors(tmp_path):
    first = train(tiny(tmp_path / "one", "steps=1"), progress=False)
    with pytest.raises(FileNotFoundError, match=r"model.init_from=.*nowhere.* not a directory"):
        build_model(tiny(tmp_path, f"model.init_from={tmp_path / 'nowhere'}"), 12)
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors"):
        build_model(tiny(tmp_path, f"model.init_from={tmp_path}"), 12)
    wider = tiny(tmp_path, f"model.init_from={first.checkpoint}", "model.overrides={dim: 96}")
    with pytest.raises(ValueError, match=r"different architecture: dim=64 there, 96 here"):
        build_model(wider, 12)
    with pytest.raises(ValueError, match="give at most one starting point"):
        tiny(tmp_path, "model.wan_path=/x", "model.init_from=/y")


def test_training_conditions_on_each_clips_text_through_the_text_encoder(tmp_path):
    from any4d.data import SyntheticClips, SyntheticConfig
    from any4d.diffusion import NoiseConfig
    from any4d.tokenize import PixelTokenizer
    from any4d.tokenize.text import TextEncoder
    from any4d.train.step import prepare_micro_batch
    from tests.tokenize.test_text import tiny_umt5

    tiny_umt5(tmp_path / "umt5")
    umt5 = f"model.text_encoder={tmp_path / 'umt5'}"
    text = TextEncoder.from_pretrained(tmp_path / "umt5")
    clips = SyntheticClips(SyntheticConfig(num_frames=3, height=16, width=16), size=2)
    scenes = [clips[0], dataclasses.replace(clips[1], text=None)]
    batch = prepare_micro_batch(
        scenes,
        [0, 1],
        0,
        tokenizer=PixelTokenizer(2),
        streams=["rgb", "depth", "ray_d", "ray_m"],
        noise=NoiseConfig(),
        seed=0,
        device=torch.device("cpu"),
        text_encoder=text,
    )
    assert scenes[0].text  # the procedural world captions its clips
    assert torch.equal(batch.text[0], text.encode(scenes[0].text)[0])
    assert batch.text.shape == (2, 512, 32) and batch.text[1].abs().sum() == 0  # the null text
    # A run: the sources that declare "text" give it; the model cross-attends to it.
    source = "data.synthetic=[{name: synthetic, modalities: [rgb, depth, cameras, text]}]"
    config = tiny(tmp_path / "run", "steps=2", "model.overrides={text_dim: 32}", source, umt5)
    assert train(config, progress=False).step == 2
    with pytest.raises(ValueError, match="the model has no text conditioning"):
        train(tiny(tmp_path / "no", umt5), progress=False)
    wide = tiny(tmp_path / "wide", "model.overrides={text_dim: 48}", umt5)
    with pytest.raises(ValueError, match="makes 32-d features but the model's text_dim is 48"):
        train(wide, progress=False)


def test_checkpoints_from_before_a_new_config_field_still_resume(tmp_path):
    """A field added to the config since a checkpoint was written reads as its default there."""
    train(tiny(tmp_path, "steps=2", "checkpoint_every=2"), progress=False)
    path = tmp_path / "checkpoints" / "step_000002" / "trainer.json"
    meta = json.loads(path.read_text())
    del meta["config"]["model"]["text_encoder"], meta["config"]["optim"]["schedule"]
    path.write_text(json.dumps(meta))
    resumed = train(tiny(tmp_path, "steps=3", "checkpoint_every=3"), resume=True, progress=False)
    assert resumed.step == 3
    path = resumed.checkpoint / "trainer.json"
    meta = json.loads(path.read_text())
    meta["config"]["model"]["no_such_field"] = 1
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"holds a config this any4d cannot read.*no_such_field"):
        train(tiny(tmp_path, "steps=4"), resume=True, progress=False)
