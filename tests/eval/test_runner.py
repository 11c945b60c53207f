"""The benchmark runner: what reaches the model in each regime, what is scored, what is written."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from types import SimpleNamespace

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import Mask
from any4d.eval.clips import synthetic_clips
from any4d.eval.runner import (
    REGIMES,
    model_input,
    regime_mask,
    regime_stride,
    run_benchmark,
)
from any4d.eval.tasks import geometry_baselines, geometry_scores
from any4d.geometry import Cameras
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer

FRAMES = 5


def truth(seed=0):
    return render_clip(seed, num_frames=FRAMES, height=24, width=32, trajectories=("orbit",))


class Spy:
    """A pipeline whose ``observed`` is a real (tiny) pipeline's and whose call records what it
    was given and answers with a prepared prediction per clip, in order (default: the truth)."""

    def __init__(self, answers):
        self.real = Any4DPipeline(Any4DTransformer(preset("tiny")), PixelTokenizer(2))
        self.defaults = {"num_frames": FRAMES, "height": 24, "width": 32}
        self.answers = list(answers)
        self.calls = []  # (scene given, Mask asked for)

    def observed(self, scene, task):
        return self.real.observed(scene, task)

    def __call__(self, scene, task, **kwargs):
        self.calls.append((scene, Mask.parse(task)))
        return SimpleNamespace(scene=self.answers[len(self.calls) - 1], failures=[])


def run(tmp_path, scenes, task, regime, answers=None, **kwargs):
    spy = Spy(scenes if answers is None else answers)
    clips = [("synthetic", f"clip_{i}", s) for i, s in enumerate(scenes)]
    table = run_benchmark(spy, clips, task, tmp_path, regime=regime, progress=False, **kwargs)
    return spy, table


def frames(scene, index):
    """The frames ``index`` of a scene."""
    return dataclasses.replace(
        scene, rgb=scene.rgb[index], depth=scene.depth[index], cameras=scene.cameras[index]
    )


def record(tmp_path, clip="clip_0"):
    return json.loads((tmp_path / "clips" / "synthetic" / f"{clip}.json").read_text())


@pytest.mark.parametrize(
    ("task", "regime", "rgb", "cameras"),
    [
        ("geometry", "dense", set(range(FRAMES)), False),
        ("geometry", "sparse", {0, FRAMES - 1}, False),
        ("geometry", "strided", set(range(FRAMES)), False),
        ("interpolate", "dense", {0, FRAMES - 1}, True),
    ],
)
def test_the_model_is_given_only_what_the_regime_observes(tmp_path, task, regime, rgb, cameras):
    scene = truth()
    spy, _ = run(tmp_path, [scene], task, regime)
    ((given, mask),) = spy.calls
    assert given.depth is None  # no regime observes depth: not even its median may reach it
    if cameras:
        assert torch.equal(given.cameras.c2w, scene.cameras.c2w)
    else:
        assert given.cameras is None
    shown = sorted(rgb)
    hidden = sorted(set(range(FRAMES)) - rgb)
    assert torch.equal(given.rgb[shown], scene.rgb[shown])
    assert not given.rgb[hidden].any()  # unobserved frames carry nothing of the truth
    assert mask.clean_frames("rgb", FRAMES) == rgb


def test_the_sparse_regime_observes_the_first_and_last_rgb_frames_and_nothing_else(tmp_path):
    scene = truth(1)
    spy, table = run(tmp_path, [scene], "geometry", "sparse")
    ((given, mask),) = spy.calls
    # The mask run: rgb frames 0 and T−1 clean, no depth, no rays, no other frame.
    assert set(mask.clean) == {"rgb"}
    assert mask.clean_frames("rgb", FRAMES) == {0, FRAMES - 1}
    assert given.depth is None and given.cameras is None
    assert torch.equal(given.rgb[[0, -1]], scene.rgb[[0, -1]])
    assert not given.rgb[1:-1].any()
    # And the outputs say so.
    saved = record(tmp_path)
    assert saved["regime"] == "sparse" and saved["mask"] == "sparse_geometry"
    assert saved["observed"] == {"rgb": [0, FRAMES - 1]}
    assert table.settings["observed"] == "rgb:0,-1"
    header = (tmp_path / "table.md").read_text().splitlines()[0]
    assert "regime sparse" in header and "'rgb:0,-1'" in header and "every frame" in header
    summary = json.loads((tmp_path / "table.json").read_text())
    assert summary["regime"] == "sparse" and summary["observed"] == "rgb:0,-1"


def test_the_sparse_regime_scores_depth_and_pose_on_every_frame(tmp_path):
    # A prediction exact on the frames between and wrong on the two observed ones: scoring
    # only the generated middle would find it perfect.
    scene = truth(2)
    depth = scene.depth.clone()
    depth[[0, -1]] *= 3.0
    c2w = scene.cameras.c2w.clone()
    c2w[[0, -1], :3, 3] += torch.tensor([0.5, -0.3, 0.2])
    pred = dataclasses.replace(scene, depth=depth, cameras=Cameras(scene.cameras.K, c2w))
    _, table = run(tmp_path, [scene], "geometry", "sparse", answers=[pred])
    saved = record(tmp_path)
    assert saved["scored_frames"] == list(range(FRAMES))
    expected = geometry_scores(pred, scene)
    assert saved["ours"] == pytest.approx(expected)
    assert expected["abs_rel"] > 0.1 and expected["ate"] > 0.05
    middle = geometry_scores(frames(pred, slice(1, -1)), frames(scene, slice(1, -1)))
    assert middle["abs_rel"] < 1e-6 and middle["ate"] < 1e-6
    # The floors come from the whole true clip, although the model saw two frames of it.
    floors = geometry_baselines(scene)
    assert saved["baselines"].keys() == floors.keys()
    for method, scores in floors.items():  # lstsq may differ in the last digit between calls
        assert saved["baselines"][method] == pytest.approx(scores), method


def test_the_runner_scores_depth_under_the_protocol_it_is_given(tmp_path):
    scene = truth(3)
    pred = dataclasses.replace(scene, depth=2.0 * scene.depth)  # right up to scale
    _, aligned = run(tmp_path / "geo4d", [scene], "geometry", "dense", answers=[pred])
    _, metric = run(
        tmp_path / "none", [scene], "geometry", "dense", answers=[pred], depth_protocol="none"
    )
    assert aligned.rows[("synthetic", "any4d")]["abs_rel"] < 1e-6
    assert metric.rows[("synthetic", "any4d")]["abs_rel"] == pytest.approx(1.0)
    assert metric.settings["depth_protocol"] == "none"
    with pytest.raises(ValueError, match=r"depth_protocol='lsq' \(expected one of"):
        run(tmp_path, [], "geometry", "dense", depth_protocol="lsq")


def test_every_regime_names_a_mask_and_sparse_refuses_interpolation():
    assert regime_mask("geometry", "dense").clean_frames("rgb", 4) == {0, 1, 2, 3}
    assert regime_mask("geometry", "sparse").clean == {"rgb": (0, -1)}
    assert str(regime_mask("interpolate", "strided")) == "rgb:0,-1 ray_d:all ray_m:all"
    assert set(REGIMES) == {"dense", "sparse", "strided"}
    with pytest.raises(ValueError, match="interpolation already observes only the first and"):
        regime_mask("interpolate", "sparse")
    with pytest.raises(ValueError, match=r"regime='wide' \(expected one of"):
        regime_mask("geometry", "wide")
    with pytest.raises(ValueError, match=r"task='video' \(expected one of"):
        regime_mask("video", "dense")


def test_only_the_strided_regime_takes_a_stride_factor():
    assert regime_stride("dense") == regime_stride("sparse") == 1
    assert regime_stride("strided") == 4 and regime_stride("strided", 2) == 2
    with pytest.raises(ValueError, match="stride_factor=3 applies to regime 'strided' only"):
        regime_stride("sparse", 3)
    with pytest.raises(ValueError, match=r"stride_factor=0 \(expected an integer ≥ 1\)"):
        regime_stride("strided", 0)
    pipe = SimpleNamespace(defaults={"num_frames": 3, "height": 16, "width": 16, "fps": 8.0})
    with pytest.raises(ValueError, match="applies to regime 'strided' only"):
        synthetic_clips(pipe, 1, "dense", 2)  # at the call, not at the first clip
    ((_, _, dense),) = synthetic_clips(pipe, 1, "dense")
    ((_, _, strided),) = synthetic_clips(pipe, 1, "strided", 2)
    assert dense().fps == 8.0 and strided().fps == 4.0  # loaders: read when scored


def test_model_input_blanks_unobserved_rgb_and_keeps_observed_data():
    scene = truth(4)
    spy = Spy([])
    given = model_input(spy, scene, Mask.parse("rgb:0,2 rays:all"))
    assert torch.equal(given.rgb[[0, 2]], scene.rgb[[0, 2]]) and not given.rgb[[1, 3, 4]].any()
    assert given.depth is None and torch.equal(given.cameras.c2w, scene.cameras.c2w)
    assert torch.equal(scene.rgb, truth(4).rgb)  # the truth itself is untouched


class Perfect:
    """A stand-in pipeline that returns the truth it is asked about (and fails on one clip)."""

    defaults = {"num_frames": 5, "height": 24, "width": 32}

    def __init__(self, scenes):
        self.scenes = scenes

    def observed(self, scene, task):
        return scene

    def __call__(self, scene, task, **kwargs):
        if torch.equal(scene.rgb, self.scenes[-1].rgb):
            raise ValueError("rays determine no camera")
        return SimpleNamespace(scene=scene, failures=[])


def test_runner_writes_clips_tables_and_counts_failures(tmp_path):
    scenes = [truth(s) for s in range(3)]
    clips = [("synthetic", f"clip_{i}", s) for i, s in enumerate(scenes)]
    table = run_benchmark(Perfect(scenes), clips, "geometry", tmp_path, progress=False)
    assert table.counts[("synthetic", "any4d")] == 2
    assert table.counts[("synthetic", "static camera")] == 3
    assert table.failed == {"synthetic": {"clip_2": "rays determine no camera"}}
    assert table.rows[("synthetic", "any4d")]["abs_rel"] < 1e-6
    saved = record(tmp_path, "clip_2")
    assert saved["error"] == "rays determine no camera" and saved["ours"] is None
    assert saved["regime"] == "dense" and saved["observed"] == {"rgb": list(range(FRAMES))}
    rows = list(csv.reader((tmp_path / "table.csv").open()))
    assert rows[0][:3] == ["dataset", "method", "clips"] and rows[0][-2:] == ["task", "regime"]
    assert rows[1][1] == "any4d" and rows[1][-2:] == ["geometry", "dense"]
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("task geometry, regime dense: observed 'rgb:all'")
    assert "failed: synthetic/clip_2" in markdown
    summary = json.loads((tmp_path / "table.json").read_text())
    assert summary["depth_protocol"] == "geo4d" and summary["failed"] == table.failed
    assert {(r["dataset"], r["method"]) for r in summary["rows"]} == set(table.rows)


def test_run_benchmark_checks_the_depth_range_first(tmp_path):
    for bad in ((2.0, 1.0), (0.0, 1.0), (1.0, math.inf)):
        with pytest.raises(ValueError, match=r"depth_range=.*expected 0 < near < far"):
            run_benchmark(None, [], "interpolate", tmp_path, depth_range=bad)


def test_tables_carry_units_directions_and_the_oracle_baselines(tmp_path):
    from any4d.eval.metric_units import units
    from any4d.eval.runner import COLUMNS
    from any4d.eval.tasks import ORACLE_BASELINES, ORACLE_NOTE

    scenes = [truth(s) for s in range(2)]
    _, table = run(tmp_path, scenes, "geometry", "dense")
    lines = (tmp_path / "table.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| dataset |"))
    assert header == (
        "| dataset | method | clips | ATE (scene units) ↓ | RPE-t (scene units) ↓ | "
        "RPE-r (°) ↓ | AbsRel ↓ | RMSE (m) ↓ | δ1 ↑ |"
    )
    assert any(line.startswith("| synthetic | constant depth (oracle: true median depth) | 2 |")
               for line in lines)  # fmt: skip
    assert any("| constant velocity (oracle: fit to the true cameras) |" in line for line in lines)
    assert any(line.startswith("| synthetic | static camera | 2 |") for line in lines)
    assert ORACLE_NOTE in lines
    # The camera baselines now have an RPE: no "–" left in their rows.
    static = next(line for line in lines if "| static camera |" in line)
    assert static.count("–") == 3  # its depth columns only
    summary = json.loads((tmp_path / "table.json").read_text())
    assert summary["units"] == units(COLUMNS["geometry"])
    assert summary["units"]["rpe_r"]["unit"] == "°" and summary["units"]["ate"]["better"] == "lower"
    assert summary["oracles"] == ORACLE_BASELINES
    oracle = {r["method"]: r["oracle"] for r in summary["rows"]}
    assert oracle == {
        "any4d": False,
        "constant depth": True,
        "static camera": False,
        "constant velocity": True,
    }
    # The CSV keeps machine keys as its one header line, with an oracle column.
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert {r["method"]: r["oracle"] for r in rows} == {m: str(o) for m, o in oracle.items()}
    assert set(COLUMNS["geometry"]) <= set(rows[0])


def test_an_interpolation_table_has_no_oracle_line(tmp_path):
    from any4d.eval.tasks import ORACLE_NOTE

    _, table = run(tmp_path, [truth()], "interpolate", "dense")
    markdown = table.markdown()
    assert "| PSNR pooled (dB) ↑ | PSNR frame mean (dB) ↑ | SSIM ↑ |" in markdown
    assert ORACLE_NOTE not in markdown and table.as_dict()["oracles"] == {}


def test_each_rank_scores_its_share_and_a_peers_failure_is_raised_naming_it(tmp_path):
    # Rank 0 of 2, with the peer's answers given by a stand-in for all_gather_object.
    scenes = [truth(s) for s in range(3)]
    clips = [("synthetic", f"clip_{i}", s) for i, s in enumerate(scenes)]
    peer = iter([None, "failed on clip synthetic/clip_1: RuntimeError: out of memory"])
    spy = Spy(scenes)
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 failed on clip synthetic/clip_1: Run"):
        run_benchmark(
            spy, clips, "geometry", tmp_path, progress=False,
            rank=0, world=2, gather=lambda mine: [mine, next(peer)],
        )  # fmt: skip
    assert len(spy.calls) == 2  # clips 0 and 2 only
    assert sorted(p.name for p in (tmp_path / "clips" / "synthetic").iterdir()) == [
        "clip_0.json",
        "clip_2.json",
    ]
    # A peer that reported success but whose clip is not there: the merge names it and its rank.
    with pytest.raises(ValueError, match=r"1 clip\(s\) missing .*synthetic/clip_1 \(rank 1\)"):
        run_benchmark(
            Spy(scenes), clips, "geometry", tmp_path, progress=False, resume=True,
            rank=0, world=2, gather=lambda mine: [mine, None],
        )  # fmt: skip
    assert not (tmp_path / "table.json").exists()
