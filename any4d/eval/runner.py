"""The benchmark runner: a task over a data split, per-clip JSON, a table with its floors.

    any4d eval --checkpoint DIR --data synthetic --task geometry --regime dense --candidates 4

Data: ``synthetic`` (the procedural world's held-out split, at the pipeline's clip shape) or a
mixture YAML (its ``role: eval`` data sets, e.g. 7-Scenes). Regime: ``dense`` takes consecutive
frames; ``sparse`` frames ``sparse_stride`` apart (a wider baseline: the synthetic world samples
time ``sparse_stride`` × coarser). The input holds only what the task observes
(``Any4DPipeline.observed``). Failed clips are counted and named, never dropped.

Writes ``<out>/clips/<dataset>/<clip>.json`` (scores and baselines of each clip),
``<out>/table.md`` and ``<out>/table.csv``: one row per dataset and method (ours, then the
baselines), metric columns in the layout of the paper's tables (Table 3: ATE / RPE-t / RPE-r;
Table 4: AbsRel / RMSE / δ1; Table 2: PSNR / SSIM).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from any4d.data import Scene
from any4d.eval.tasks import TASKS, task_baselines, task_scores
from any4d.geometry import inverse_depth_planes

COLUMNS = {
    "geometry": ("ate", "rpe_t", "rpe_r", "abs_rel", "rmse", "delta1"),
    "interpolate": ("psnr_pooled", "psnr_frame_mean", "ssim"),
}
REGIMES = ("dense", "sparse")


@dataclass(frozen=True)
class BenchmarkTable:
    """rows: (dataset, method) → column → mean (None: no clip gave a number); counts:
    (dataset, method) → clips averaged; failed: dataset → {clip: reason}."""

    task: str
    rows: dict[tuple[str, str], dict[str, float | None]]
    counts: dict[tuple[str, str], int]
    failed: dict[str, dict[str, str]]

    def markdown(self) -> str:
        columns = COLUMNS[self.task]
        lines = [
            "| dataset | method | clips | " + " | ".join(columns) + " |",
            "|---|---|---|" + "---|" * len(columns),
        ]
        for (dataset, method), row in self.rows.items():
            cells = [_cell(row.get(c)) for c in columns]
            count = self.counts[(dataset, method)]
            lines.append(f"| {dataset} | {method} | {count} | " + " | ".join(cells) + " |")
        for dataset, failures in self.failed.items():
            for clip, reason in failures.items():
                lines.append(f"\nfailed: {dataset}/{clip}: {reason}")
        return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def synthetic_clips(pipe, count: int, regime: str, sparse_stride: int) -> Iterator:
    """("synthetic", clip name, Scene) of held-out procedural clips at the pipeline's shape."""
    from any4d.data import SyntheticClips, SyntheticConfig

    defaults = pipe.defaults
    fps = float(defaults.get("fps", 10.0)) / (sparse_stride if regime == "sparse" else 1)
    config = SyntheticConfig(num_frames=int(defaults.get("num_frames", 5)),
                             height=int(defaults.get("height", 32)),
                             width=int(defaults.get("width", 32)), fps=fps)  # fmt: skip
    clips = SyntheticClips(config, split="heldout", size=count)
    for index in range(count):
        yield "synthetic", f"heldout_{index:04d}", clips[index]


def mixture_clips(path: str, count: int, regime: str, sparse_stride: int):
    """(dataset, clip name, Scene) of a mixture's evaluation data sets."""
    import dataclasses

    from any4d.data import build_dataset, load_mixture

    mixture = load_mixture(path)
    clip = mixture.clip
    if regime == "sparse":
        clip = dataclasses.replace(clip, stride=clip.stride * sparse_stride)
    for entry in mixture.role("eval"):
        dataset = build_dataset(entry, clip, split="all")
        for index in range(min(count, len(dataset))):
            yield entry.name, f"clip_{index:04d}", dataset[index]


def run_benchmark(
    pipe,
    clips: Iterable[tuple[str, str, Scene]],
    task: str,
    out: str | Path,
    *,
    candidates: int = 1,
    select: str = "best",
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    depth_range: tuple[float, float] | None = None,
) -> BenchmarkTable:
    """Run ``task`` on every (dataset, clip name, truth) and write the outputs (module doc).
    depth_range: (near, far) in the clips' units — adds interpolation's plane-sweep baseline."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} (expected one of {TASKS})")
    if depth_range is not None:  # checked before the first clip, by the sweep's own check
        try:
            inverse_depth_planes(*depth_range, 2)
        except ValueError as error:
            raise ValueError(f"depth_range={tuple(depth_range)}: {error}") from None
    out = Path(out)
    totals: dict[tuple[str, str], dict[str, list[float]]] = {}
    failed: dict[str, dict[str, str]] = {}
    for dataset, name, truth in clips:
        record = {"dataset": dataset, "clip": name, "task": task}
        try:
            result = pipe(pipe.observed(truth, task), task=task, steps=steps,
                          candidates=candidates, select=select, seed=seed,
                          progress=progress)  # fmt: skip
            ours = task_scores(task, result.scene, truth)
            if result.failures:
                record["failures"] = result.failures
        except ValueError as error:
            failed.setdefault(dataset, {})[name] = str(error)
            record["error"] = str(error)
            ours = None
        baselines = task_baselines(task, truth, depth_range)
        record["ours"], record["baselines"] = ours, baselines
        path = out / "clips" / dataset / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
        methods = {"any4d": ours, **baselines} if ours is not None else dict(baselines)
        for method, scores in methods.items():
            bucket = totals.setdefault((dataset, method), {})
            for key, value in scores.items():
                if value is not None and math.isfinite(value):
                    bucket.setdefault(key, []).append(value)
            totals[(dataset, method)].setdefault("__clips__", []).append(1.0)
    rows, counts = {}, {}
    for key in sorted(totals, key=lambda k: (k[0], k[1] != "any4d", k[1])):
        bucket = totals[key]
        counts[key] = len(bucket.pop("__clips__"))
        rows[key] = {c: (sum(v) / len(v) if v else None) for c, v in bucket.items()}
    table = BenchmarkTable(task, rows, counts, failed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table.markdown())
    with (out / "table.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "method", "clips", *COLUMNS[task]])
        for (dataset, method), row in rows.items():
            writer.writerow([dataset, method, counts[(dataset, method)],
                             *[row.get(c) for c in COLUMNS[task]]])  # fmt: skip
    return table
