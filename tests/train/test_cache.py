"""The latent cache: training from it equals encoding on the fly, without a VAE or text encoder
in the training process; caches of another config and damaged shards are clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from any4d.cli import main
from any4d.tokenize.text import TextEncoder
from any4d.tokenize.wan_vae import WanVAETokenizer
from any4d.train import load_config, train
from any4d.train.cache import LatentCache, write_cache
from any4d.train.distributed import Processes
from any4d.train.step import _TENSOR_DICTS, micro_batch_stream
from tests.tokenize.test_text import tiny_umt5
from tests.tokenize.test_wan_vae import _tiny_vae
from tests.train.runs import losses

SOURCES = (
    "data.synthetic=[{name: annotated, weight: 3.0, size: 3, modalities: [rgb, depth, cameras, "
    "text]}, {name: plain, weight: 1.0, size: 2, modalities: [rgb]}]"
)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """A tiny random Wan VAE and a tiny umT5 on disk, as a user's local copies."""
    root = tmp_path_factory.mktemp("encoders")
    _tiny_vae().save_pretrained(root / "vae")
    tiny_umt5(root / "umt5")
    return root


def config(encoders, output, *overrides):
    return load_config(
        "tiny-synthetic",
        [
            "tokenizer.kind=wan_vae",
            f"tokenizer.vae_path={encoders / 'vae'}",
            "tokenizer.stream_scales={ray_m: 4.0}",
            f"model.text_encoder={encoders / 'umt5'}",
            "model.overrides={in_channels: 16, text_dim: 32}",
            SOURCES,
            "data.batch_size=4",
            "data.num_frames=5",
            "data.height=16",
            "data.width=16",
            "noise.text_drop_prob=0.5",
            "optim.warmup_steps=1",
            "steps=3",
            f"output_dir={output}",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def cache(encoders, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cache")
    write_cache(config(encoders, directory / "unused"), directory, shard_size=2, progress=False)
    return directory


def _batches(run_config, steps, cache=None):
    from any4d.train.loop import build_model, build_text_encoder

    processes = Processes(0, 1, 0, torch.device("cpu"))
    if cache is None:
        tokenizer = run_config.tokenizer.build()
        model = build_model(run_config, tokenizer.latent_channels)
        text = build_text_encoder(run_config, model, processes.device)
    else:
        tokenizer, text = cache.tokenizer(), cache.text()
    streams = ["rgb", "depth", "ray_d", "ray_m"]
    stream = micro_batch_stream(run_config, tokenizer, text, streams, 0, processes, cache)
    return [next(stream) for _ in range(steps)]


def test_cached_batches_and_losses_equal_encoding_on_the_fly(
    encoders, cache, tmp_path, monkeypatch
):
    fly = config(encoders, tmp_path / "fly")
    cached = config(encoders, tmp_path / "cached", f"data.cache={cache}")
    expected = _batches(fly, 3)
    train(fly, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("a run from a cache built an encoder")

    monkeypatch.setattr(WanVAETokenizer, "__init__", refuse)
    monkeypatch.setattr(TextEncoder, "__init__", refuse)
    got = _batches(cached, 3, LatentCache(cache, cached))
    dropped = 0
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.patterns == theirs.patterns and ours.units == theirs.units
        for name in _TENSOR_DICTS:
            a, b = getattr(ours, name), getattr(theirs, name)
            assert a.keys() == b.keys()
            for s in a:
                torch.testing.assert_close(a[s], b[s], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.text, theirs.text, rtol=0, atol=0)
        assert ours.counts == pytest.approx(theirs.counts)
        dropped += int((theirs.text.abs().sum((1, 2)) == 0).sum())
    assert 0 < dropped < 12  # captions dropped to the null text, and some kept
    result = train(cached, progress=False)
    assert result.step == 3
    ours, theirs = losses(tmp_path / "cached"), losses(tmp_path / "fly")
    assert ours.keys() == theirs.keys() == {1, 2, 3}
    for step in ours:
        assert ours[step] == pytest.approx(theirs[step], rel=1e-4)


def test_the_index_records_sources_shards_and_latent_layout(cache):
    index = json.loads((cache / "index.json").read_text())
    assert [(s["name"], s["clips"]) for s in index["sources"]] == [("annotated", 3), ("plain", 2)]
    assert [s["file"] for s in index["shards"]] == [
        "shard_000000.safetensors",
        "shard_000001.safetensors",
        "shard_000002.safetensors",
    ]
    assert index["latent"] == {
        "temporal_stride": 4,
        "spatial_stride": 8,
        "latent_channels": 16,
        "stream_scales": {"ray_m": 4.0},
    }
    assert index["text"] == {"dim": 32, "max_length": 512} and index["context"] == [4]


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "tokenizer.stream_scales={ray_m: 8.0}",
            r"tokenizer: .*\"ray_m\": 4.0.* in the cache, .*\"ray_m\": 8.0",
        ),
        ("data.height=24", r"clip: .*\"height\": 16.* in the cache, .*\"height\": 24"),
        (
            SOURCES.replace("size: 2", "size: 4"),
            r"source 'plain': .*\"size\": 2.* in the cache, .*\"size\": 4",
        ),
        ("data.synthetic=[{name: other, size: 2}]", r"source 'other' is not in the cache"),
        ("model.text_encoder=null", r"text_encoder: .*umt5.* in the cache, null in the config"),
    ],
    ids=["tokenizer", "resolution", "mixture", "source", "text"],
)
def test_a_cache_of_another_config_is_refused_naming_the_difference(
    encoders, cache, tmp_path, override, message
):
    other = config(encoders, tmp_path, f"data.cache={cache}", override)
    with pytest.raises(ValueError, match=f"was made for another config: .*{message}"):
        LatentCache(cache, other)


def test_truncated_and_missing_shards_are_named_and_resume_rewrites_them(encoders, cache, tmp_path):
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    run = config(encoders, tmp_path / "run", f"data.cache={copy}")
    shard = copy / "shard_000001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cache shard .*shard_000001.safetensors is truncated"):
        LatentCache(copy, run)
    # Without --resume an existing cache is never overwritten; with it only that shard is.
    with pytest.raises(ValueError, match="already holds a cache"):
        write_cache(run, copy, shard_size=2, progress=False)
    shard.unlink()
    kept = (copy / "shard_000000.safetensors").stat().st_mtime_ns
    write_cache(run, copy, shard_size=2, resume=True, progress=False)
    assert (copy / "shard_000000.safetensors").stat().st_mtime_ns == kept
    _assert_same_shard(shard, data)
    assert LatentCache(copy, run).read(2).rgb.shape == (16, 3, 2, 2)


def _assert_same_shard(path, data: bytes) -> None:
    """The shard at ``path`` holds what ``data`` (a shard's bytes) held: the same records and
    header, the same tensors to float noise (the VAE's convolutions may add in another order
    from one call to the next)."""
    from safetensors import safe_open
    from safetensors.torch import load

    with safe_open(path, "pt") as handle:
        metadata = handle.metadata()
    copy = path.with_name("expected.safetensors")
    copy.write_bytes(data)
    with safe_open(copy, "pt") as handle:
        assert metadata == handle.metadata()
    copy.unlink()
    got, expected = load(path.read_bytes()), load(data)
    assert got.keys() == expected.keys()
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)


def test_the_cli_writes_a_cache_and_refuses_an_unbounded_world(encoders, tmp_path, capsys):
    common = [
        "--config",
        "tiny-synthetic",
        "--no-progress",
        "data.num_frames=3",
        "data.height=16",
        "data.width=16",
    ]
    assert (
        main(
            ["cache", *common, "--out", str(tmp_path / "c"), "data.synthetic=[{name: s, size: 2}]"]
        )
        == 0
    )
    assert "train from it with data.cache=" in capsys.readouterr().out
    assert main(["cache", *common, "--out", str(tmp_path / "d")]) == 1
    assert "data.synthetic['synthetic'].size is unset" in capsys.readouterr().err
