"""Masks: presets, specs, pixel frames → latent groups, context frames, errors."""

from __future__ import annotations

import pytest
import torch

from any4d.diffusion import PRESETS, Layout, Mask, State

C, T, A = State.CLEAN, State.TARGET, State.ABSENT
ALL4 = ["rgb", "depth", "ray_d", "ray_m"]


def rows(states):
    return {s: v[0].tolist() for s, v in states.items()}


def test_spec_parses_streams_aliases_and_negative_frames():
    mask = Mask.parse("rgb:0,-1 rays:all")
    assert mask.clean == {"rgb": (0, -1), "ray_d": "all", "ray_m": "all"}
    assert Mask.parse(str(mask)).clean == mask.clean
    assert Mask.parse("").clean == {}
    assert Mask.parse("interpolate") is PRESETS["interpolate"]


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("video", {"rgb": [C, T, T], "depth": [T, T, T], "ray_d": [T, T, T]}),
        ("geometry", {"rgb": [C, C, C], "depth": [T, T, T], "ray_d": [T, T, T]}),
        ("depth", {"rgb": [C, C, C], "depth": [T, T, T], "ray_d": [C, C, C]}),
        ("interpolate", {"rgb": [C, T, C], "depth": [T, T, T], "ray_d": [C, C, C]}),
        ("extrapolate", {"rgb": [C, T, T], "depth": [T, T, T], "ray_d": [C, C, C]}),
        ("depth_to_video", {"rgb": [C, T, T], "depth": [C, C, C], "ray_d": [T, T, T]}),
        ("sparse_geometry", {"rgb": [C, T, C], "depth": [T, T, T], "ray_d": [T, T, T]}),
    ],
)
def test_presets_match_design_table_at_stride_one(preset, expected):
    states = rows(Mask.parse(preset).states(Layout.for_stride(3), ALL4))
    assert {k: states[k] for k in expected} == expected
    assert states["ray_m"] == states["ray_d"]


def test_stride_four_last_frame_needs_a_context_group():
    layout = Layout.for_stride(9, 4)  # latent frames hold (0,), (1..4), (5..8)
    mask = PRESETS["interpolate"]
    assert mask.context_frames(layout) == (8,)
    with_context = Layout(layout.pixel_frames + ((8,),), num_context=1)
    states = rows(mask.states(with_context, ALL4))
    assert states["rgb"] == [C, T, T, C]  # the latent frame holding 8 is still a target
    assert states["depth"] == [T, T, T, A]  # depth does not observe the context frame
    assert states["ray_d"] == [C, C, C, C]


def test_a_latent_frame_is_clean_only_when_all_its_pixel_frames_are():
    layout = Layout.for_stride(9, 4)
    states = rows(Mask.parse("rgb:0,1,2,3").states(layout, ["rgb"]))
    assert states["rgb"] == [C, T, T]
    assert rows(Mask.parse("rgb:0,1,2,3,4").states(layout, ["rgb"]))["rgb"] == [C, C, T]


def test_availability_checks_clean_streams_and_drops_targets_in_training():
    layout = Layout.for_stride(3)
    available = {"rgb": torch.tensor([True, True]), "depth": torch.tensor([True, False])}
    states = PRESETS["video"].states(layout, ["rgb", "depth"], available=available)
    assert states["depth"].tolist() == [[T, T, T], [T, T, T]]  # inference: still generated
    training = PRESETS["video"].states(
        layout, ["rgb", "depth"], available=available, drop_unavailable=True
    )
    assert training["depth"].tolist() == [[T, T, T], [A, A, A]]
    with pytest.raises(ValueError, match="sample 1 has no depth"):
        PRESETS["depth_to_video"].states(layout, ["rgb", "depth"], available=available)


@pytest.mark.parametrize(
    ("spec", "streams", "message"),
    [
        ("rgb:all", ["rgb"], "no target"),
        ("rgb:0 depth:all", ["rgb"], "only the streams"),
        ("rgb:5", ["rgb", "depth"], "out of range"),
        ("normals:0", ["rgb"], "unknown stream"),
        ("rgb", ["rgb"], "expected 'stream:frames'"),
        ("rgb:a,b", ["rgb"], "comma-separated integers"),
    ],
)
def test_bad_masks_are_clear_errors(spec, streams, message):
    with pytest.raises(ValueError, match=message):
        Mask.parse(spec).states(Layout.for_stride(3), streams)


def test_layout_needs_the_vae_frame_rule():
    with pytest.raises(ValueError, match="1 \\+ 4·k"):
        Layout.for_stride(8, 4)
