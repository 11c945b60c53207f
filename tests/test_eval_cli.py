"""any4d eval on the procedural world's held-out split with a tiny model: a complete table."""

from __future__ import annotations

import csv

import pytest
import torch

from any4d.cli import main
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer


def test_eval_writes_a_complete_table_for_both_tasks_and_regimes(tmp_path, capsys):
    torch.manual_seed(0)
    pipe = Any4DPipeline(Any4DTransformer(preset("tiny")), PixelTokenizer(2),
                         {"num_frames": 3, "height": 16, "width": 16, "fps": 4.0})  # fmt: skip
    pipe.save_pretrained(tmp_path / "pipe")
    for task, regime in (("geometry", "dense"), ("interpolate", "sparse")):
        out = tmp_path / f"{task}-{regime}"
        sweep = ["--sweep-depth", "0.5", "8"] if task == "interpolate" else []
        status = main(["eval", "--checkpoint", str(tmp_path / "pipe"), "--task", task,
                       "--regime", regime, "--clips", "2", "--steps", "2",
                       "--out", str(out), *sweep])  # fmt: skip
        assert status == 0
        rows = list(csv.DictReader((out / "table.csv").open()))
        methods = {r["method"] for r in rows}
        expected = {"constant depth", "static camera", "constant velocity"}
        if task == "interpolate":
            expected = {"cross-fade", "plane sweep"}
        assert expected <= methods, methods
        assert len(list((out / "clips" / "synthetic").glob("*.json"))) == 2
    assert "| synthetic |" in capsys.readouterr().out


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
