"""``any4d demo``: every task on held-out procedural scenes, pictures, and a table with floors.

The shipped checkpoint (``any4d/assets/demo``, trained by ``any4d train --config
demo-synthetic`` and its follow-up stages) completes held-out clips of the procedural world for
every preset; what each task generates (depth, cameras, unobserved frames) is scored beside
trivial baselines (constant depth; static and constant-velocity cameras; a cross-fade, or the
first frame repeated), and the quality floors are checked. Interpolation is also scored beside
a **plane sweep** — classic stereo from the first and last frame and the cameras, over the
depth range of the procedural world's training clips: what geometry alone gets from the same
inputs, a reference rather than a floor.

The row ``any4d`` scores one sample per clip (what the pictures show). With ``candidates=K``
(``any4d demo --candidates K``) the presets with floors are also scored as ``any4d mean of K``,
the mean of K samples (``select="mean"``): per-pixel errors such as AbsRel and PSNR reward the
posterior mean, which a single sample is not. The floors, checked on every ``any4d`` row:

* ``geometry``: depth AbsRel ≤ 0.5 × that of the best constant depth, and ATE ≤ 0.5 × that of a
  static camera;
* ``interpolate``: PSNR ≥ 2 dB above a linear cross-fade of the first and last frame;
* the **scale** of what comes back, with no alignment (``any4d.eval.scale``): median predicted /
  true depth within [0.8, 1.25] for ``depth``, ``interpolate`` and ``extrapolate`` (they observe
  cameras: depth must come back in metres), and the camera path length within [0.8, 1.25] of
  the truth's for ``depth_to_video`` (it observes depth: cameras must come back in metres).
  Scale columns are shown only where the task observes a scale (``Completion.units``); averaged
  over clips geometrically.

Writes, for each preset, ``<out>/<preset>.png`` (truth, completion and error rows over the
clip's frames: RGB, depth, ray directions, ray moments, the predicted depth aligned as AbsRel
aligns it, one depth scale with a colour bar in metres), ``<preset>.mp4`` and ``<preset>.gif``
(the same frame by frame, slowed to last 4 s) and, where the preset generates cameras,
``<preset>_cameras.png`` (clip frame and Sim(3)-aligned frustums, rotation and centre errors
per frame); then ``<out>/table.md`` (columns with units and ↑ / ↓, oracle baselines marked) and
``<out>/results.json`` (the same, with ``legend``: each column's unit and direction, and the
oracles).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from any4d.diffusion import PRESETS, SamplerConfig, SearchConfig
from any4d.eval.scale import geometric_mean, scale_scores
from any4d.eval.tasks import mask_baselines, mask_scores

FLOORS = {
    "geometry": "depth AbsRel ≤ 0.5 × best constant; ATE ≤ 0.5 × static camera",
    "interpolate": "PSNR ≥ cross-fade + 2 dB",
}
# Preset → the scale score that must lie in SCALE_RANGE (the input carries the units).
SCALE_FLOORS = {
    "depth": "depth_scale",
    "interpolate": "depth_scale",
    "extrapolate": "depth_scale",
    "depth_to_video": "path_scale",
}
SCALE_RANGE = (0.8, 1.25)
# The table's columns: depth, depth scale, cameras, camera-path scale, image quality.
TABLE_COLUMNS = (
    "abs_rel",
    "delta1",
    "depth_scale",
    "ate",
    "rpe_r",
    "path_scale",
    "psnr_pooled",
    "ssim",
)
OURS = "any4d"  # the one-sample row; the mean of K samples is f"{OURS} mean of {K}"


def shipped_checkpoint() -> Path:
    """The demo checkpoint that ships inside the package."""
    return Path(str(resources.files("any4d") / "assets" / "demo"))


def _mean(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _average(metric: str, values):
    """Scale ratios average geometrically (1.25 and 0.8 are equally far from 1); the rest
    arithmetically."""
    return (geometric_mean if metric.endswith("_scale") else _mean)(values)


DEFAULT_SCENES = 6
DEFAULT_CANDIDATES = 1  # no mean-of-K rows unless asked: K samples cost K times the time
DEFAULT_STEPS = 20  # the demo's sampler steps, whatever the checkpoint's default


def heldout_clips(pipe, scenes: int = DEFAULT_SCENES):
    """The first ``scenes`` held-out procedural clips, at the clip shape ``pipe`` knows."""
    from any4d.data import SyntheticClips, SyntheticConfig

    shape = {k: int(pipe.defaults[k]) for k in ("num_frames", "height", "width")}
    shape["fps"] = float(pipe.defaults.get("fps", 10.0))
    return SyntheticClips(SyntheticConfig(**shape), split="heldout", size=scenes)


def training_depth_range(pipe, clips: int = 16) -> tuple[float, float]:
    """(1st, 99th) percentile of the valid depth of the first ``clips`` *training* clips at
    ``pipe``'s clip shape: the plane sweep's depth range, a prior of the data set."""
    from any4d.data import SyntheticClips

    config = heldout_clips(pipe, 1).config
    train = SyntheticClips(config, split="train", size=clips)
    depth = torch.cat([train[i].depth.flatten() for i in range(clips)])
    near, far = torch.quantile(depth[depth > 0].double(), torch.tensor([0.01, 0.99]).double())
    return float(near), float(far)


def score_preset(
    pipe,
    preset: str,
    clips,
    sampler: SamplerConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    candidates: int = 1,
    depth_range: tuple[float, float] | None = None,
) -> tuple[dict, tuple]:
    """Complete every clip for ``preset`` and score only what it generates, beside the trivial
    baselines (with ``depth_range``, interpolation's plane sweep too). sampler: as for the
    pipeline (None: its own). candidates > 1: the mean of that many samples (``select="mean"``),
    in the row ``f"{OURS} mean of {candidates}"``; else one sample, in the row ``OURS``. Returns
    ({row: {metric: mean over clips}}, (truth, completion) of the first clip) — the pair is what
    the pictures show."""
    label = OURS if candidates <= 1 else f"{OURS} mean of {candidates}"
    ours, floors, first = [], [], None
    for index in range(len(clips)):
        truth = clips[index]
        result = pipe(
            pipe.observed(truth, preset),
            task=preset,
            sampler=sampler,
            search=SearchConfig(candidates=candidates, select="mean"),
            seed=seed,
            progress=progress,
        )
        scores = mask_scores(PRESETS[preset], result.scene, truth)
        if result.units != "relative":  # in relative units the scale is not the input's
            scores.update(scale_scores(PRESETS[preset], result.scene, truth))
        ours.append(scores)
        floors.append(mask_baselines(PRESETS[preset], truth, depth_range))
        if index == 0:
            first = (truth, result)
    keys = sorted({k for s in ours for k in s})
    summary = {label: {k: _average(k, [s.get(k) for s in ours]) for k in keys}}
    for name in sorted({n for f in floors for n in f}):
        summary[name] = {k: _mean([f[name].get(k) for f in floors if name in f]) for k in keys}
    return summary, first


def run_demo(
    checkpoint: str | Path | None = None,
    out: str | Path = "any4d-demo",
    scenes: int = DEFAULT_SCENES,
    sampler: SamplerConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    candidates: int = DEFAULT_CANDIDATES,
) -> dict:
    """Run every preset on ``scenes`` held-out clips; returns the results (also written).
    sampler: as for the pipeline, but at ``DEFAULT_STEPS`` steps unless a ``SamplerConfig`` or
    the dict of changes says otherwise. candidates: K of the mean-of-K rows scored for the
    presets with floors (≤ 1: none)."""
    from any4d.pipeline import Any4DPipeline

    started = time.perf_counter()
    pipe = Any4DPipeline.from_pretrained(checkpoint or shipped_checkpoint())
    if not isinstance(sampler, SamplerConfig):  # changes to the checkpoint's, at demo steps
        sampler = {"steps": DEFAULT_STEPS, **(sampler or {})}
    sampler = pipe.sampler_config(sampler)
    clips = heldout_clips(pipe, scenes)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    depth_range = training_depth_range(pipe)
    results = {}
    for preset in PRESETS:
        results[preset], (truth, result) = score_preset(
            pipe, preset, clips, sampler, seed, progress, depth_range=depth_range
        )
        if preset in FLOORS and candidates > 1:
            mean, _ = score_preset(pipe, preset, clips, sampler, seed, progress, candidates)
            single = results[preset]
            results[preset] = {OURS: single.pop(OURS), **mean, **single}
        write_pictures(out, preset, truth, result)
    results["floors"] = check_floors(results)
    results["legend"] = table_units()
    results["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "table.md").write_text(markdown(results))
    return results


def write_pictures(out: Path, preset: str, truth, result) -> list[Path]:
    """The pictures of one preset's first clip: ``<preset>.png`` / ``.mp4`` / ``.gif`` (truth,
    the completion as scored and their error on one colour scale, ``any4d.viz.figures``) and,
    where the preset generates cameras, ``<preset>_cameras.png`` (clip frame, aligned, errors).
    Returns the paths written."""
    from any4d.eval.tasks import generated_by
    from any4d.viz.camera_figure import plot_camera_comparison
    from any4d.viz.figures import compare, write_comparison

    # What the table scores as generated is what the pictures align and show errors for.
    depth, cameras, given = generated_by(PRESETS[preset], truth)
    comparison = compare(
        truth, result.scene, depth_generated=depth, cameras_generated=cameras, given=given
    )
    title = f"any4d demo · {preset} · held-out clip 0"
    paths = write_comparison(comparison, out / preset, title=title)
    if cameras and result.scene.cameras is not None:
        paths.append(
            plot_camera_comparison(
                out / f"{preset}_cameras.png",
                result.scene.cameras,
                truth.cameras,
                fps=truth.fps,
                title=f"any4d demo · {preset} · cameras of held-out clip 0",
            )
        )
    return paths


def check_floors(results: dict) -> dict[str, dict[str, bool | None]]:
    """The quality floors of the module docstring for every any4d row of the preset means:
    {row: {floor: passed, or None where a number is missing}}."""
    geometry, interpolate = results.get("geometry", {}), results.get("interpolate", {})
    constant = geometry.get("constant depth", {}).get("abs_rel")
    static = geometry.get("static camera", {}).get("ate")
    fade = interpolate.get("cross-fade", {}).get("psnr_pooled")
    rows = [r for r in {**geometry, **interpolate} if r.startswith(OURS)]
    checks = {}
    for row in rows:
        depth = geometry.get(row, {}).get("abs_rel")
        ate = geometry.get(row, {}).get("ate")
        psnr = interpolate.get(row, {}).get("psnr_pooled")
        checks[row] = {
            "geometry depth": None if None in (depth, constant) else depth <= 0.5 * constant,
            "geometry cameras": None if None in (ate, static) else ate <= 0.5 * static,
            "interpolate": None if None in (psnr, fade) else psnr >= fade + 2.0,
        }
        low, high = SCALE_RANGE
        for preset, key in SCALE_FLOORS.items():
            value = results.get(preset, {}).get(row, {}).get(key)
            checks[row][f"{preset} scale"] = None if value is None else low <= value <= high
    return checks


def markdown(results: dict) -> str:
    """The table of ``results`` (``run_demo``'s): columns with unit and better direction,
    oracle baselines named as such, then the floors."""
    from any4d.eval.metric_units import column_header
    from any4d.eval.tasks import ORACLE_BASELINES, ORACLE_NOTE, method_label

    columns = TABLE_COLUMNS
    # The procedural world is in metres, so ATE is too (elsewhere: the truth's units).
    headers = [column_header(c, length_unit="m") for c in columns]
    lines = ["| task | method | " + " | ".join(headers) + " |", "|---|---|" + "---|" * len(columns)]
    oracles = False
    for preset in PRESETS:
        for method, scores in results[preset].items():
            cells = ["–" if scores.get(c) is None else f"{scores[c]:.3g}" for c in columns]
            lines.append(f"| {preset} | {method_label(method)} | " + " | ".join(cells) + " |")
            oracles = oracles or method in ORACLE_BASELINES
    lines.append("")
    if oracles:
        lines += [ORACLE_NOTE, ""]
    floors = results["floors"]
    for name in next(iter(floors.values()), {}):
        states = []
        for row, checks in floors.items():
            passed = checks[name]
            states.append(f"{row}: " + ("n/a" if passed is None else "pass" if passed else "FAIL"))
        lines.append(f"- floor {name}: " + "; ".join(states))
    return "\n".join(lines) + "\n"


def table_units() -> dict:
    """JSON-ready legend of the table, for ``results.json``: ``units`` (each column's name,
    unit and better direction, ``any4d.eval.metric_units.units``) and ``oracles`` (oracle
    baseline → what of the truth it uses, ``any4d.eval.tasks.ORACLE_BASELINES``)."""
    from any4d.eval.metric_units import units
    from any4d.eval.tasks import ORACLE_BASELINES

    return {"units": units(TABLE_COLUMNS, length_unit="m"), "oracles": dict(ORACLE_BASELINES)}
