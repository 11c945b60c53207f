"""The metric legend: every key the project reports has a name, a unit and a direction."""

from __future__ import annotations

import json

import pytest

from any4d.demo import TABLE_COLUMNS
from any4d.eval import DEPTH_KEYS, IMAGE_KEYS, POSE_KEYS
from any4d.eval.metric_units import (
    HIGHER,
    LOWER,
    METRICS,
    ONE,
    SCENE_UNITS,
    Metric,
    column_header,
    metric,
    units,
)
from any4d.eval.runner import COLUMNS


def test_every_reported_metric_key_has_an_entry():
    reported = {
        *DEPTH_KEYS,
        *POSE_KEYS,
        *IMAGE_KEYS,
        "mse",  # image_metrics, beside IMAGE_KEYS
        "lpips",  # image_metrics with an LpipsVGG
        "depth_scale",  # scale.py
        "path_scale",
        *TABLE_COLUMNS,
        *(key for columns in COLUMNS.values() for key in columns),
    }
    assert reported <= set(METRICS), reported - set(METRICS)


@pytest.mark.parametrize(
    ("key", "header"),
    [
        ("abs_rel", "AbsRel ↓"),
        ("rmse", "RMSE (m) ↓"),
        ("delta1", "δ1 ↑"),
        ("ate", "ATE (scene units) ↓"),
        ("rpe_t", "RPE-t (scene units) ↓"),
        ("rpe_r", "RPE-r (°) ↓"),
        ("psnr_pooled", "PSNR pooled (dB) ↑"),
        ("psnr_frame_mean", "PSNR frame mean (dB) ↑"),
        ("ssim", "SSIM ↑"),
        ("lpips", "LPIPS ↓"),
        ("depth_scale", "depth scale (→ 1)"),
        ("path_scale", "path scale (→ 1)"),
    ],
)
def test_column_headers_carry_the_unit_and_the_better_direction(key, header):
    assert column_header(key) == header


def test_a_known_length_unit_replaces_scene_units_only_for_the_pose_lengths():
    assert column_header("ate", length_unit="m") == "ATE (m) ↓"
    assert column_header("rpe_t", length_unit="m") == "RPE-t (m) ↓"
    assert column_header("rpe_r", length_unit="m") == "RPE-r (°) ↓"  # an angle stays one
    assert column_header("rmse", length_unit="cm") == "RMSE (m) ↓"  # depth is metric (DESIGN)
    assert {k for k, m in METRICS.items() if m.unit == SCENE_UNITS} == {"ate", "rpe_t"}


def test_scale_ratios_are_best_at_one_and_the_rest_have_a_direction():
    assert {k for k, m in METRICS.items() if m.better == ONE} == {"depth_scale", "path_scale"}
    assert METRICS["psnr_pooled"].better == HIGHER and METRICS["ate"].better == LOWER


def test_units_is_json_ready_and_in_the_order_asked():
    legend = units(("ate", "psnr_pooled", "depth_scale"), length_unit="m")
    assert list(legend) == ["ate", "psnr_pooled", "depth_scale"]
    assert legend["ate"] == {
        "name": "ATE",
        "unit": "m",
        "better": "lower",
        "about": METRICS["ate"].about,
    }
    assert legend["psnr_pooled"]["unit"] == "dB" and legend["psnr_pooled"]["better"] == "higher"
    assert legend["depth_scale"] == {**legend["depth_scale"], "unit": "", "better": "closest to 1"}
    assert json.loads(json.dumps(legend)) == legend
    assert units(("ate",))["ate"]["unit"] == "scene units"


def test_an_unknown_metric_key_is_an_error_naming_it_and_the_known_keys():
    with pytest.raises(ValueError, match=r"metric 'psnr' has no entry .*expected one of .*'ate'"):
        column_header("psnr")
    with pytest.raises(ValueError, match="metric 'n_valid' has no entry"):
        units(["abs_rel", "n_valid"])
    assert metric("ssim") is METRICS["ssim"]


def test_a_metric_refuses_an_unknown_direction():
    with pytest.raises(ValueError, match=r"better='up' \(expected one of"):
        Metric("x", "", "up", "")
