"""any4d eval on the procedural world's held-out split with a tiny model: a complete table."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from any4d.cli import main
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer


def test_eval_writes_a_complete_table_for_both_tasks_and_every_regime(tmp_path, capsys):
    torch.manual_seed(0)
    pipe = Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2),
        {"num_frames": 3, "height": 16, "width": 16, "fps": 4.0},
    )
    pipe.save_pretrained(tmp_path / "pipe")
    runs = {
        ("geometry", "dense"): {"rgb": [0, 1, 2]},
        ("geometry", "sparse"): {"rgb": [0, 2]},
        ("interpolate", "strided"): {"rgb": [0, 2], "ray_d": [0, 1, 2], "ray_m": [0, 1, 2]},
    }
    for (task, regime), observed in runs.items():
        out = tmp_path / f"{task}-{regime}"
        extra = ["--sweep-depth", "0.5", "8", "--stride-factor", "2"] if regime == "strided" else []
        status = main(
            [
                "eval",
                "--checkpoint",
                str(tmp_path / "pipe"),
                "--task",
                task,
                "--regime",
                regime,
                "--clips",
                "2",
                "--steps",
                "2",
                "--out",
                str(out),
                *extra,
            ]
        )
        assert status == 0
        rows = list(csv.DictReader((out / "table.csv").open()))
        methods = {r["method"] for r in rows}
        expected = {"constant depth", "static camera", "constant velocity"}
        if task == "interpolate":
            expected = {"cross-fade", "plane sweep"}
        assert expected <= methods, methods
        assert {r["regime"] for r in rows} == {regime}
        clips = sorted((out / "clips" / "synthetic").glob("*.json"))
        assert len(clips) == 2
        record = json.loads(clips[0].read_text())
        assert record["regime"] == regime and record["observed"] == observed
        assert record["scored_frames"] == ([0, 1, 2] if task == "geometry" else [1])
        assert f"regime {regime}" in (out / "table.md").read_text().splitlines()[0]
        summary = json.loads((out / "table.json").read_text())
        assert summary["stride_factor"] == (2 if regime == "strided" else 1)
    assert "| synthetic |" in capsys.readouterr().out


def test_eval_refuses_regime_settings_that_do_not_fit_before_loading(tmp_path, capsys):
    # The checkpoint does not exist: each error must come from the settings, not from loading.
    cases = [
        (
            ["--task", "interpolate", "--regime", "sparse"],
            "interpolation already observes only the first and last RGB frames",
        ),
        (
            ["--regime", "sparse", "--stride-factor", "2"],
            "--stride-factor 2 applies to --regime strided only (got --regime sparse",
        ),
        (
            ["--regime", "dense", "--sparse-stride", "4"],
            "--sparse-stride is now --stride-factor with --regime strided",
        ),
    ]
    for options, message in cases:
        status = main(["eval", "--checkpoint", str(tmp_path / "missing"), *options])
        assert status == 1
        assert message in capsys.readouterr().err


def test_sweep_depth_takes_two_positive_numbers(capsys):
    cases = [
        (["0", "8"], "0.0 is not a finite number > 0"),
        (["1", "x"], "'x' is not a number"),
        (["1"], "expected 2 arguments"),
    ]
    for bad, message in cases:
        with pytest.raises(SystemExit) as exit:
            main(["eval", "--checkpoint", "x", "--task", "interpolate", "--sweep-depth", *bad])
        assert exit.value.code == 2 and message in capsys.readouterr().err
