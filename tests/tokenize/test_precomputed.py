"""Precomputed latents assemble exactly the clip that encoding the scene gives."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.diffusion import PRESETS
from any4d.tokenize import Observed, PixelTokenizer, WanVAETokenizer
from any4d.tokenize.precomputed import PrecomputedTokenizer, precompute
from tests.tokenize.test_wan_vae import _tiny_vae


def _scenes(num_frames: int, size: int):
    clips = SyntheticClips(SyntheticConfig(num_frames=num_frames, height=size, width=size), size=3)
    # A clip without depth and one without cameras beside a complete one.
    return [
        clips[0],
        dataclasses.replace(clips[1], depth=None),
        dataclasses.replace(clips[2], cameras=None),
    ]


def _assert_same_clip(ours, expected):
    assert ours.streams == expected.streams
    for stream in expected.streams:
        torch.testing.assert_close(ours.grids[stream], expected.grids[stream], rtol=1e-5, atol=1e-5)
        assert torch.equal(ours.available[stream], expected.available[stream])
    torch.testing.assert_close(ours.frame.scale, expected.frame.scale)
    torch.testing.assert_close(ours.frame.reference, expected.frame.reference)
    torch.testing.assert_close(ours.depth_valid, expected.depth_valid)
    assert torch.equal(ours.frame_index, expected.frame_index)
    assert ours.pixel_frames == expected.pixel_frames and ours.units == expected.units
    assert (ours.text, ours.fps, ours.num_context) == (
        expected.text,
        expected.fps,
        expected.num_context,
    )


@pytest.mark.parametrize(
    "tokenizer, num_frames, size",
    [
        (PixelTokenizer(2), 3, 16),
        (WanVAETokenizer(_tiny_vae(), stream_scales={"ray_m": 4.0}), 5, 16),
    ],
    ids=["pixel", "wan_vae"],
)
def test_assembled_clips_equal_encoding_the_scenes_for_every_pattern(tokenizer, num_frames, size):
    scenes = _scenes(num_frames, size)
    context = [num_frames - 1] if tokenizer.temporal_stride > 1 else []
    observations = [Observed.of(mask, num_frames) for mask in PRESETS.values()]
    cached = [precompute(tokenizer, s, observations, context) for s in scenes]
    # The complete clip has fewer distinct depth latents than patterns (one per scale).
    assert 1 < len(cached[0].depth) < len(observations)
    light = PrecomputedTokenizer(
        tokenizer.temporal_stride,
        tokenizer.spatial_stride,
        tokenizer.latent_channels,
        tokenizer.stream_scales,
    )
    for first in range(len(observations)):
        drawn = [observations[(first + i) % len(observations)] for i in range(len(scenes))]
        expected = tokenizer.encode(scenes, context_frames=context, observed=drawn, targets=True)
        _assert_same_clip(light.encode_precomputed(cached, drawn), expected)


def test_an_observation_not_precomputed_and_the_codec_are_clear_errors():
    tokenizer = PixelTokenizer(2)
    scene = _scenes(3, 16)[0]
    cached = precompute(tokenizer, scene, [Observed.of(PRESETS["geometry"], 3)])
    light = PrecomputedTokenizer(1, 2, 12)
    with pytest.raises(ValueError, match="precomputed for 1 observations, not for depth frames"):
        light.encode_precomputed([cached], [Observed.everything(scene)])
    with pytest.raises(ValueError, match="has no codec"):
        light.decode_images(torch.zeros(1, 12, 3, 8, 8))
    with pytest.raises(ValueError, match="latent_channels=0"):
        PrecomputedTokenizer(1, 2, 0)
