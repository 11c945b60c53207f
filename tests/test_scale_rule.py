"""DESIGN §1's scale rule: one clip scale for a sample, computed the same way by the trainer (for
the pattern it drew) and by the pipeline (for the task, from ``observed(scene, task)``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import PRESETS, NoiseConfig
from any4d.geometry import Cameras, median_depth
from any4d.tokenize import STREAMS, Observed, PixelTokenizer
from any4d.train.step import prepare_micro_batch
from tests.tiny_pipeline import tiny_pipeline

# Where each preset's clip scale comes from; the others observe RGB alone ("relative").
UNITS_OF = {
    "depth": "cameras",
    "depth_to_video": "depth",
    "interpolate": "cameras",
    "extrapolate": "cameras",
}


class Recording(PixelTokenizer):
    """A pixel tokenizer that keeps every clip it encodes."""

    def __init__(self, stride: int) -> None:
        super().__init__(stride)
        self.clips = []

    def encode(self, *args, **kwargs):
        clip = super().encode(*args, **kwargs)
        self.clips.append(clip)
        return clip


def micro_batch(truth, tokenizer, pattern):
    """The trainer's micro-batch of ``truth`` alone, drawing ``pattern`` only."""
    noise = NoiseConfig(patterns={pattern: 1.0})
    cpu = torch.device("cpu")
    return prepare_micro_batch(
        [truth], [0], 0, tokenizer=tokenizer, streams=STREAMS, noise=noise, seed=0, device=cpu
    )


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(num_frames=5, steps=1, tokenizer=Recording(2))


@pytest.fixture(scope="module")
def truth():
    return render_clip(4, num_frames=5, height=16, width=16, fps=4.0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_trainer_and_the_pipeline_give_a_pattern_the_same_scale(pipe, truth, name):
    tokenizer = Recording(2)
    batch = micro_batch(truth, tokenizer, name)
    assert batch.patterns == [name]
    trained = tokenizer.clips[-1]
    result = pipe(truth, name, sampler={"steps": 1}, progress=False)
    inferred = pipe.tokenizer.clips[-1]
    assert result.units == inferred.units[0] == trained.units[0] == batch.units[0]
    expected = UNITS_OF.get(name, "relative")
    assert result.units == expected
    if expected == "relative":  # RGB only: training's unit is the target's median depth
        torch.testing.assert_close(trained.frame.scale[0], median_depth(truth.depth[None])[0])
        assert float(inferred.frame.scale[0]) == 1.0  # … which inference cannot know
    else:
        torch.testing.assert_close(inferred.frame.scale, trained.frame.scale)


def test_the_pipeline_feeds_only_what_the_task_observes(pipe, truth):
    """Unobserved truth must not reach the model, not even as a scale: completing the truth
    equals completing ``observed(truth)`` bit for bit, for every preset."""
    for name in ("geometry", "depth", "depth_to_video"):
        given = pipe.observed(truth, name)
        mask = PRESETS[name]
        assert (given.depth is not None) == ("depth" in mask.clean)
        assert (given.cameras is not None) == ("ray_d" in mask.clean)
        a = pipe(truth, name, sampler={"steps": 1}, progress=False)
        b = pipe(given, name, sampler={"steps": 1}, progress=False)
        assert all(torch.equal(a.latents[s], b.latents[s]) for s in a.latents)
        assert torch.equal(a.scene.depth, b.scene.depth) and a.units == b.units
        assert (a.scene.cameras is None) == (b.scene.cameras is None)
        if a.scene.cameras is not None:  # generated cameras: in the same frame either way
            assert torch.equal(a.scene.cameras.c2w, b.scene.cameras.c2w)


@pytest.mark.parametrize("targets", [False, True])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_encoding_and_decoding_the_truth_returns_the_input_units(truth, name, targets):
    tokenizer = PixelTokenizer(2)
    observed = Observed.of(PRESETS[name], truth.num_frames)
    clip = tokenizer.encode(truth, observed=observed, targets=targets)
    back = tokenizer.decode(clip)[0]
    torch.testing.assert_close(back.depth, truth.depth, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(back.cameras.c2w, truth.cameras.c2w, rtol=1e-3, atol=1e-3)


def test_observed_depth_without_a_valid_value_is_a_clear_error(pipe, truth):
    invalid = dataclasses.replace(truth, depth=torch.zeros_like(truth.depth))
    with pytest.raises(ValueError, match="no valid"):
        pipe(invalid, "depth_to_video", sampler={"steps": 1}, progress=False)


def test_a_static_camera_observes_no_scale_and_falls_back_to_relative_units(pipe, truth):
    cameras = truth.cameras
    static = Cameras(cameras.K, cameras.c2w[:1].expand_as(cameras.c2w).clone())
    result = pipe(
        dataclasses.replace(truth, cameras=static), "depth", sampler={"steps": 1}, progress=False
    )
    assert result.units == "relative"
    assert float(pipe.tokenizer.clips[-1].frame.scale[0]) == 1.0
    assert torch.isfinite(result.scene.depth).all()


def test_ray_losses_count_only_the_real_ray_channels(truth):
    """Pixel tokenizer, stride 2: 12 channels per stream, of which rays fill 3 (one frame)."""
    tokenizer = PixelTokenizer(2)
    weights = tokenizer.channel_weights(STREAMS)
    assert set(weights) == {"ray_d", "ray_m"}
    assert weights["ray_d"].tolist() == [1.0] * 3 + [0.0] * 9
    batch = micro_batch(truth, tokenizer, "video")
    grid = batch.latents["ray_d"].shape  # (1, 12, T', H', W'), every group a target
    assert batch.counts["ray_d"] == 3 * grid[2] * grid[3] * grid[4]
    assert batch.counts["rgb"] == 12 * grid[2] * grid[3] * grid[4] - 12 * grid[3] * grid[4]
