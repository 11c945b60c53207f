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
from tests.json_close import json_close


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


def _tiny_pipe(path):
    torch.manual_seed(0)
    pipe = Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2),
        {"num_frames": 3, "height": 16, "width": 16, "fps": 4.0},
    )
    pipe.save_pretrained(path)
    return path


def test_eval_with_nothing_to_score_is_an_error_naming_why(tmp_path, capsys):
    from tests.data.readers.test_sevenscenes import seven_scenes_truth, write_seven_scenes

    write_seven_scenes(tmp_path / "7s", seven_scenes_truth())  # one sequence of a few frames
    cases = {
        "role: train": (
            "lists no data set with role: eval, so there is nothing to score "
            "(its data sets: 7scenes (role: train))"
        ),
        "role: eval": "no clip to score in mixture",
    }
    for role, message in cases.items():
        mixture = tmp_path / "mix.yaml"
        mixture.write_text(
            "clip: {length: 49, height: 24, width: 32}\n"
            f"datasets:\n  - {{name: 7scenes, reader: 7scenes, root: {tmp_path / '7s'}, {role},"
            " modalities: [rgb, depth, cameras]}\n"
        )
        # The checkpoint does not exist: the data are checked before the model loads.
        status = main(["eval", "--checkpoint", str(tmp_path / "nope"), "--data", str(mixture)])
        assert status == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "any4d-eval").exists()


def _eval(pipe, out, *extra):
    return main(
        ["eval", "--checkpoint", str(pipe), "--clips", "3", "--steps", "1", "--out", str(out)]
        + list(extra)
    )


def test_eval_refuses_to_overwrite_and_resumes_only_the_missing_clips(tmp_path, capsys):
    pipe, out = _tiny_pipe(tmp_path / "pipe"), tmp_path / "eval"
    assert _eval(pipe, out) == 0
    clips = sorted((out / "clips" / "synthetic").glob("*.json"))
    table = json.loads((out / "table.json").read_text())
    assert len(clips) == 3
    capsys.readouterr()
    assert _eval(pipe, out) == 1
    assert "already holds scored clips: pass --resume" in capsys.readouterr().err
    kept = {c: c.stat().st_mtime_ns for c in clips[::2]}
    gone = clips[1].read_text()
    clips[1].unlink()
    assert _eval(pipe, out, "--resume") == 0
    assert {c: c.stat().st_mtime_ns for c in kept} == kept  # not scored again
    assert json_close(json.loads(clips[1].read_text()), json.loads(gone))  # same seed
    assert json_close(json.loads((out / "table.json").read_text()), table)
    # Low-memory mode (bf16 transformer) scores the same clips, close to the default.
    low = tmp_path / "low"
    assert _eval(pipe, low, "--low-memory") == 0
    rows = json.loads((low / "table.json").read_text())["rows"]
    assert [(r["dataset"], r["method"]) for r in rows] == [
        (r["dataset"], r["method"]) for r in table["rows"]
    ]
    ours = next(r for r in rows if r["method"] == "any4d")
    expected = next(r for r in table["rows"] if r["method"] == "any4d")
    assert ours["abs_rel"] == pytest.approx(expected["abs_rel"], rel=0.05)


def test_eval_names_the_clip_a_crash_stopped_at_and_keeps_the_clips_before(
    tmp_path, capsys, monkeypatch
):
    pipe, out = _tiny_pipe(tmp_path / "pipe"), tmp_path / "eval"
    calls = []
    original = Any4DPipeline.__call__

    def crash_on_the_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Any4DPipeline, "__call__", crash_on_the_second)
    with pytest.raises(RuntimeError, match=r"failed on clip synthetic/heldout_0001: Runtime"):
        _eval(pipe, out)
    assert [c.name for c in (out / "clips" / "synthetic").glob("*.json")] == ["heldout_0000.json"]
    assert not (out / "table.json").exists()

    def refuse(self, *args, **kwargs):
        raise ValueError("cannot fit the cameras")

    monkeypatch.setattr(Any4DPipeline, "__call__", refuse)
    capsys.readouterr()
    assert _eval(pipe, tmp_path / "all-failed") == 1  # a table of baselines only is no success
    err = capsys.readouterr().err
    assert "the model scored no clip (every clip failed" in err
    summary = json.loads((tmp_path / "all-failed" / "table.json").read_text())
    assert "cannot fit the cameras" in json.dumps(summary)
