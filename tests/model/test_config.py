"""TransformerConfig: presets, validation, dict round trip."""

from __future__ import annotations

import pytest

from any4d.model import PRESETS, STREAMS, TransformerConfig, preset


def test_wan_preset_is_wan21_t2v_1_3b():
    config = PRESETS["wan2.1-1.3b"]
    assert (config.num_layers, config.dim, config.ffn_dim, config.num_heads) == (30, 1536, 8960, 12)
    assert (config.patch_size, config.in_channels, config.text_dim) == ((1, 2, 2), 16, 4096)
    assert config.streams == STREAMS
    assert config.rope_dims == (44, 42, 42)  # WAN.md §1


def test_dict_round_trip_and_unknown_keys():
    config = preset("small", num_layers=3)
    assert TransformerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown TransformerConfig keys \['depth'\]"):
        TransformerConfig.from_dict({**config.to_dict(), "depth": 3})


def test_legacy_max_positions_key_is_dropped_on_load():
    """Checkpoints written before the field's removal (the shipped demo model) still load."""
    config = preset("small")
    assert "max_positions" not in config.to_dict()
    assert TransformerConfig.from_dict({**config.to_dict(), "max_positions": 1024}) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"streams": ("rgb", "normals")}, "subset of"),
        ({"streams": ("depth", "rgb")}, "in the order"),
        ({"streams": ()}, "non-empty"),
        ({"dim": 100, "num_heads": 3}, "not divisible"),
        ({"dim": 30, "num_heads": 6}, "head_dim"),
        ({"patch_size": (1, 0, 2)}, "patch_size"),
        ({"num_layers": 0}, "num_layers=0"),
    ],
)
def test_invalid_configs_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        preset("tiny", **overrides)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        preset("huge")
