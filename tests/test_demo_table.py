"""The demo's table (``any4d.demo.markdown``) from a small made-up result, without running it."""

from __future__ import annotations

import json

from any4d.demo import TABLE_COLUMNS, check_floors, markdown, table_units
from any4d.diffusion import PRESETS
from any4d.eval.tasks import ORACLE_BASELINES, ORACLE_NOTE

HEADER = (
    "| task | method | AbsRel ↓ | δ1 ↑ | depth scale (→ 1) | ATE (m) ↓ | RPE-r (°) ↓ | "
    "path scale (→ 1) | PSNR pooled (dB) ↑ | SSIM ↑ |"
)


def fake_results() -> dict:
    """Every preset with an any4d row; geometry and interpolate with their baselines."""
    results = {preset: {"any4d": {"abs_rel": 0.2, "psnr_pooled": 20.0}} for preset in PRESETS}
    results["geometry"] = {
        "any4d": {"abs_rel": 0.1, "delta1": 0.9, "ate": 0.01, "rpe_r": 1.5},
        "constant depth": {"abs_rel": 0.4, "delta1": 0.3},
        "static camera": {"ate": 0.1, "rpe_r": 2.2},
        "constant velocity": {"ate": 0.02, "rpe_r": 0.03},
    }
    results["interpolate"] = {
        "any4d": {"psnr_pooled": 17.0, "ssim": 0.6, "depth_scale": 1.1},
        "cross-fade": {"psnr_pooled": 16.0, "ssim": 0.5},
        "plane sweep": {"psnr_pooled": 22.0, "ssim": 0.7},
    }
    results["floors"] = check_floors(results)
    return results


def test_the_demo_table_heads_columns_with_units_and_directions():
    lines = markdown(fake_results()).splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "|---|---|" + "---|" * len(TABLE_COLUMNS)


def test_the_demo_table_names_the_oracle_baselines_and_says_what_an_oracle_is():
    table = markdown(fake_results())
    assert "| geometry | constant depth (oracle: true median depth) | 0.4 | 0.3 |" in table
    assert "| geometry | constant velocity (oracle: fit to the true cameras) |" in table
    assert "| geometry | static camera | – | – | – | 0.1 | 2.2 |" in table  # not an oracle
    assert "| interpolate | plane sweep |" in table and "| interpolate | cross-fade |" in table
    assert ORACLE_NOTE in table.splitlines()
    for preset in PRESETS:
        assert f"| {preset} | any4d |" in table


def test_a_demo_table_without_oracle_rows_has_no_oracle_line():
    results = fake_results()
    for preset in PRESETS:
        results[preset] = {k: v for k, v in results[preset].items() if k not in ORACLE_BASELINES}
    assert ORACLE_NOTE not in markdown(results)


def test_the_floors_still_follow_the_table():
    table = markdown(fake_results())
    assert "- floor geometry depth: any4d: pass" in table  # 0.1 ≤ 0.5 × 0.4
    assert "- floor interpolate: any4d: FAIL" in table  # 17 < 16 + 2


def test_table_units_is_the_json_legend_of_the_demo_columns():
    legend = table_units()
    assert list(legend["units"]) == list(TABLE_COLUMNS)
    assert legend["units"]["ate"]["unit"] == "m" and legend["units"]["rpe_r"]["unit"] == "°"
    assert legend["units"]["depth_scale"]["better"] == "closest to 1"
    assert legend["oracles"] == ORACLE_BASELINES
    assert json.loads(json.dumps(legend)) == legend
