"""any4d demo: every preset, pictures, a table with baselines and the floors."""

from __future__ import annotations

import json

import torch

from any4d.cli import main
from any4d.diffusion import PRESETS
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import PixelTokenizer


def _long_side(path) -> int:
    """The long side in pixels of a PNG / GIF (Pillow) or an MP4 (PyAV)."""
    if path.suffix == ".mp4":
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return max(stream.width, stream.height)
    from PIL import Image

    with Image.open(path) as image:
        return max(image.size)


def test_demo_runs_every_preset_and_writes_pictures_and_table(tmp_path, capsys):
    torch.manual_seed(0)
    pipe = Any4DPipeline(
        Any4DTransformer(preset("tiny")),
        PixelTokenizer(2),
        {"num_frames": 3, "height": 16, "width": 16},
    )
    pipe.save_pretrained(tmp_path / "pipe")
    status = main(
        [
            "demo",
            "--checkpoint",
            str(tmp_path / "pipe"),
            "--out",
            str(tmp_path / "demo"),
            "--scenes",
            "1",
            "--steps",
            "2",
            "--candidates",
            "8",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    for name in PRESETS:
        for suffix in (".png", ".mp4", ".gif"):
            assert _long_side(tmp_path / "demo" / f"{name}{suffix}") >= 512, (name, suffix)
        assert f"| {name} | any4d |" in printed
    # Camera figures for the presets that generate cameras, where the untrained model's rays
    # gave some; never for those that observe them.
    figures = {
        p.name.removesuffix("_cameras.png"): p for p in (tmp_path / "demo").glob("*_cameras.png")
    }
    assert set(figures) <= {"geometry", "sparse_geometry", "depth_to_video", "video"}
    for path in figures.values():
        assert _long_side(path) >= 512
    assert list(results["geometry"])[:2] == ["any4d", "any4d mean of 8"]
    assert "| interpolate | any4d mean of 8 |" in printed
    assert "| video | any4d mean of 8 |" not in printed  # only where there are floors
    assert set(results["floors"]) == {"any4d", "any4d mean of 8"}
    scale = {f"{name} scale" for name in ("depth", "interpolate", "extrapolate", "depth_to_video")}
    for checks in results["floors"].values():
        assert set(checks) == {"geometry depth", "geometry cameras", "interpolate", *scale}
    assert "depth_scale" in results["extrapolate"]["any4d"]
    assert "| task | method | AbsRel ↓ | δ1 ↑ | depth scale (→ 1) | ATE (m) ↓ |" in printed
    assert results["legend"]["units"]["rpe_r"]["unit"] == "°"
    assert "constant depth" in results["legend"]["oracles"]
    assert "| geometry | constant depth (oracle: " in printed
    assert "- floor interpolate: any4d: " in printed and "; any4d mean of 8: " in printed
    assert "constant depth" in results["geometry"] and "cross-fade" in results["interpolate"]
    assert "| interpolate | plane sweep |" in printed
    assert "plane sweep" not in results["extrapolate"]  # only between two observed frames


def test_floors_are_checked_on_every_any4d_row():
    from any4d.demo import check_floors

    results = {
        "geometry": {
            "any4d": {"abs_rel": 0.3, "ate": 0.01},
            "any4d mean of 4": {"abs_rel": 0.1, "ate": 0.02},
            "constant depth": {"abs_rel": 0.4},
            "static camera": {"ate": 0.1},
        },
        "interpolate": {
            "any4d": {"psnr_pooled": 15.0},
            "any4d mean of 4": {"psnr_pooled": 18.1},
            "cross-fade": {"psnr_pooled": 16.0},
        },
    }
    results["interpolate"]["any4d"]["depth_scale"] = 1.3  # outside [0.8, 1.25]
    results["depth_to_video"] = {"any4d": {"path_scale": 0.81}}
    unscored = {"depth scale": None, "extrapolate scale": None}
    assert check_floors(results) == {
        "any4d": {
            "geometry depth": False,
            "geometry cameras": True,
            "interpolate": False,
            "interpolate scale": False,
            "depth_to_video scale": True,
            **unscored,
        },
        "any4d mean of 4": {
            "geometry depth": True,
            "geometry cameras": True,
            "interpolate": True,
            "interpolate scale": None,
            "depth_to_video scale": None,
            **unscored,
        },
    }
    del results["interpolate"]["cross-fade"]
    assert check_floors(results)["any4d"]["interpolate"] is None


def test_the_shipped_checkpoint_loads_and_completes_a_clip():
    from any4d.data import SyntheticClips, SyntheticConfig
    from any4d.demo import shipped_checkpoint

    pipe = Any4DPipeline.from_pretrained(shipped_checkpoint())
    shape = {k: pipe.defaults[k] for k in ("num_frames", "height", "width", "fps")}
    assert shape == {"num_frames": 5, "height": 32, "width": 32, "fps": 4.0}
    assert pipe.tokenizer.stream_scales == {"depth": 2.5, "ray_m": 7.0}
    truth = SyntheticClips(SyntheticConfig(**shape), split="heldout", size=1)[0]
    result = pipe(
        pipe.observed(truth, "geometry"), task="geometry", sampler={"steps": 4}, progress=False
    )
    assert result.scene.depth.shape == truth.depth.shape and result.scene.cameras is not None
    size = sum(p.stat().st_size for p in shipped_checkpoint().rglob("*") if p.is_file())
    assert size <= 20 * 2**20  # the budget for a committed checkpoint


def test_the_shipped_checkpoint_meets_the_geometry_and_scale_floors_on_held_out_scenes():
    """As ``any4d demo`` scores it (one sample per clip, its held-out scenes): depth AbsRel ≤
    0.5 × the best constant depth and ATE ≤ 0.5 × a static camera (measured 0.46 × and 0.12 ×);
    with no alignment, median predicted / true depth in [0.8, 1.25] for ``depth`` and
    ``extrapolate`` (measured 1.10 and 1.23). Not met yet, and guarded so that a regression
    shows: interpolation's PSNR floor (cross-fade + 2 dB; guarded at cross-fade − 1.5 dB), its
    depth scale (measured 1.27; guarded in [0.67, 1.5] — before the scale rule it was 0.2) and
    ``depth_to_video``'s camera path length (measured 3.1 × the truth's; guarded ≤ 4 ×)."""
    from any4d.demo import (
        SCALE_FLOORS,
        check_floors,
        heldout_clips,
        score_preset,
        shipped_checkpoint,
    )

    pipe = Any4DPipeline.from_pretrained(shipped_checkpoint())
    clips = heldout_clips(pipe)
    presets = ("geometry", "interpolate", *[p for p in SCALE_FLOORS if p != "interpolate"])
    results = {p: score_preset(pipe, p, clips)[0] for p in presets}
    floors = check_floors(results)["any4d"]
    unmet = ["interpolate", "interpolate scale", "depth_to_video scale"]
    assert all(floors[name] is True for name in floors if name not in unmet), (floors, results)
    ours, fade = results["interpolate"]["any4d"], results["interpolate"]["cross-fade"]
    assert ours["psnr_pooled"] >= fade["psnr_pooled"] - 1.5, results
    assert 0.67 <= ours["depth_scale"] <= 1.5, results
    assert results["depth_to_video"]["any4d"]["path_scale"] <= 4.0, results
