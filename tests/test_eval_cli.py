"""any4d eval on the procedural world's held-out split with a tiny model: a complete table."""

from __future__ import annotations

import csv

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
        status = main(["eval", "--checkpoint", str(tmp_path / "pipe"), "--task", task,
                       "--regime", regime, "--clips", "2", "--steps", "2",
                       "--out", str(out)])  # fmt: skip
        assert status == 0
        rows = list(csv.DictReader((out / "table.csv").open()))
        methods = {r["method"] for r in rows}
        expected = {"constant depth", "static camera", "constant velocity"}
        assert expected <= methods if task == "geometry" else "cross-fade" in methods
        assert len(list((out / "clips" / "synthetic").glob("*.json"))) == 2
    assert "| synthetic |" in capsys.readouterr().out
