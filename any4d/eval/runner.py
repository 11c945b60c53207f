"""The benchmark runner: a task over a data split, per-clip JSON, a table with its floors.

    any4d eval --checkpoint DIR --data synthetic --task geometry --regime sparse --candidates 4

Data: ``synthetic`` (the procedural world's held-out split, at the pipeline's clip shape) or a
mixture YAML (its ``role: eval`` data sets, e.g. 7-Scenes).

Regimes (``REGIMES``; dense and sparse are those of the paper's Tables 3 and 4, EVAL.md §0):

``dense``
    The task's own mask on consecutive frames. geometry observes every RGB frame (the
    ``geometry`` mask) and generates all depth and every camera; interpolate observes the first
    and last RGB frame and every camera (``interpolate``) and generates the frames between.
``sparse``
    geometry from **only the first and last RGB frames** (the ``sparse_geometry`` mask): no other
    frame, no depth and no camera reaches the model, which generates the RGB between, all depth
    and every camera. Interpolation observes exactly the first and last RGB frames already (with
    the cameras), so its dense run *is* that regime and ``sparse`` is refused for it.
``strided``
    As ``dense`` on frames ``stride_factor`` apart (default 4): a mixture's clip stride times the
    factor, or the synthetic world's time sampled that many times coarser — wider motion between
    the frames, every frame still observed. Not an experiment of the paper.

Scoring is the same in every regime: geometry scores depth (``depth_protocol``, default Geo4D's
L1 scale + shift) and pose (evo's ATE / RPE) over **every frame** of the clip, observed or not;
interpolate scores the RGB of frames 1 … T − 2. The baselines are computed from the whole true
clip. The model's input is ``model_input``: ``pipe.observed(truth, mask)`` (depth and cameras
the mask does not observe are dropped) with every unobserved RGB frame blanked, so that nothing
but the mask's clean groups reaches the model. Failed clips are counted and named, never dropped.

Writes ``<out>/clips/<dataset>/<clip>.json`` (the regime, what was observed and scored, the
scores and baselines of each clip), ``<out>/table.md`` (a header line naming the task, regime
and observed frames, then the table), ``<out>/table.csv`` and ``<out>/table.json`` (the run's
settings and every row): one row per dataset and method (ours, then the baselines), metric
columns in the layout of the paper's tables (Table 3: ATE / RPE-t / RPE-r; Table 4: AbsRel /
RMSE / δ1; Table 2: PSNR / SSIM). ``table.md`` heads each column with its unit and better
direction (``any4d.eval.metric_units``; lengths in the truth's units) and names the oracle
baselines as such (``any4d.eval.tasks.ORACLE_BASELINES``); ``table.csv`` keeps the metric keys as
its header and has an ``oracle`` column (True / False); ``table.json`` adds ``units`` (each
column's name, unit and better direction) and ``oracles`` (what each oracle uses), and an
``oracle`` flag on every row.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from any4d.data import Scene
from any4d.diffusion import SamplerConfig, SearchConfig
from any4d.diffusion.masks import ALL, PRESETS, Mask
from any4d.eval.depth_metrics import PROTOCOLS
from any4d.eval.metric_units import column_header, units
from any4d.eval.tasks import (
    ORACLE_BASELINES,
    ORACLE_NOTE,
    TASKS,
    method_label,
    task_baselines,
    task_scores,
)
from any4d.geometry import inverse_depth_planes
from any4d.io import atomic_path

COLUMNS = {
    "geometry": ("ate", "rpe_t", "rpe_r", "abs_rel", "rmse", "delta1"),
    "interpolate": ("psnr_pooled", "psnr_frame_mean", "ssim"),
}
# regime → task → the preset it runs (module docstring); a task missing from a regime refuses it.
REGIMES: dict[str, dict[str, str]] = {
    "dense": {"geometry": "geometry", "interpolate": "interpolate"},
    "sparse": {"geometry": "sparse_geometry"},
    "strided": {"geometry": "geometry", "interpolate": "interpolate"},
}
DEFAULT_STRIDE_FACTOR = 4


def regime_mask(task: str, regime: str) -> Mask:
    """The mask ``task`` runs under ``regime`` (module docstring), or a ``ValueError``."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} (expected one of {TASKS})")
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r} (expected one of {tuple(REGIMES)})")
    if task not in REGIMES[regime]:
        raise ValueError(
            f"regime {regime!r} does not apply to task {task!r}: sparse is the paper's sparse "
            "geometry (only the first and last RGB frames observed), and interpolation already "
            "observes only the first and last RGB frames (and every camera), so its 'dense' run "
            "is that regime ('strided' widens the motion between the frames)"
        )
    return PRESETS[REGIMES[regime][task]]


def regime_stride(regime: str, stride_factor: int | None = None) -> int:
    """How many times coarser than the data's own sampling ``regime`` takes its frames: 1, or
    ``stride_factor`` (default 4) for ``strided``; a factor given to another regime is an error."""
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r} (expected one of {tuple(REGIMES)})")
    if regime != "strided":
        if stride_factor is not None:
            raise ValueError(
                f"stride_factor={stride_factor} applies to regime 'strided' only (got regime "
                f"{regime!r}, which takes consecutive frames)"
            )
        return 1
    factor = DEFAULT_STRIDE_FACTOR if stride_factor is None else stride_factor
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"stride_factor={factor!r} (expected an integer ≥ 1)")
    return factor


def model_input(pipe, truth: Scene, mask: Mask) -> Scene:
    """What the model is given of ``truth`` under ``mask``: ``pipe.observed`` (depth and cameras
    the mask does not observe dropped) with every RGB frame it does not observe set to 0.
    Unobserved frames are targets, which start from noise; blanking them makes sure that no
    value of them reaches the model whatever the pipeline does with them."""
    given = pipe.observed(truth, mask)
    hidden = sorted(set(range(truth.num_frames)) - mask.clean_frames("rgb", truth.num_frames))
    if not hidden:
        return given
    rgb = given.rgb.clone()
    rgb[hidden] = 0.0
    return dataclasses.replace(given, rgb=rgb)


def observed_frames(mask: Mask, num_frames: int) -> dict[str, list[int]]:
    """stream → the sorted pixel frames ``mask`` observes in a clip of ``num_frames`` (streams
    it observes nothing of are left out)."""
    frames = {s: sorted(mask.clean_frames(s, num_frames)) for s in mask.clean}
    return {s: f for s, f in frames.items() if f}


def scored_frames(task: str, num_frames: int) -> list[int]:
    """The frames ``task`` scores: every frame for geometry, frames 1 … T − 2 for interpolate."""
    if task == "interpolate":
        return list(range(1, num_frames - 1))
    return list(range(num_frames))


def mask_spec(mask: Mask) -> str:
    """``mask`` as the spec ``Mask.parse`` reads, both ray streams written as one ``rays``."""
    clean = dict(mask.clean)
    if "ray_d" in clean and clean.get("ray_d") == clean.get("ray_m"):
        clean["rays"] = clean.pop("ray_d")
        del clean["ray_m"]
    return " ".join(f"{s}:{f if f == ALL else ','.join(map(str, f))}" for s, f in clean.items())


def describe(task: str, regime: str, mask: Mask, stride: int = 1) -> str:
    """One line naming the run: task, regime, what the model observed and what is scored."""
    frames = "consecutive frames"
    if stride > 1:
        frames = f"frames {stride}× further apart than the data's sampling"
    scored = (
        "depth and cameras generated and scored on every frame"
        if task == "geometry"
        else "RGB scored on frames 1 … T−2"
    )
    return f"task {task}, regime {regime}: observed {mask_spec(mask)!r} on {frames}; {scored}"


@dataclass(frozen=True)
class BenchmarkTable:
    """rows: (dataset, method) → column → mean (None: no clip gave a number); counts:
    (dataset, method) → clips averaged; failed: dataset → {clip: reason}; settings: the run's
    regime, mask, stride and depth protocol (``run_benchmark``), what the header line says."""

    task: str
    rows: dict[tuple[str, str], dict[str, float | None]]
    counts: dict[tuple[str, str], int]
    failed: dict[str, dict[str, str]]
    settings: dict = field(default_factory=dict)

    def header(self) -> str:
        return self.settings.get("description", f"task {self.task}")

    def markdown(self) -> str:
        """The header line, then the table: columns with unit and better direction, oracle
        baselines named as such (and a line saying what an oracle is), then failed clips."""
        columns = COLUMNS[self.task]
        lines = [
            f"{self.header()}\n",
            "| dataset | method | clips | " + " | ".join(map(column_header, columns)) + " |",
            "|---|---|---|" + "---|" * len(columns),
        ]
        for (dataset, method), row in self.rows.items():
            cells = [_cell(row.get(c)) for c in columns]
            count = self.counts[(dataset, method)]
            label = method_label(method)
            lines.append(f"| {dataset} | {label} | {count} | " + " | ".join(cells) + " |")
        if any(method in ORACLE_BASELINES for _, method in self.rows):
            lines.append(f"\n{ORACLE_NOTE}")
        for dataset, failures in self.failed.items():
            for clip, reason in failures.items():
                lines.append(f"\nfailed: {dataset}/{clip}: {reason}")
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        """JSON-ready: the settings, ``units`` of the columns (``metric_units.units``),
        ``oracles`` (oracle method → what of the truth it uses, for those in the rows), every
        row with its clip count and ``oracle`` flag, and the failed clips."""
        rows = [
            {
                "dataset": d,
                "method": m,
                "clips": self.counts[(d, m)],
                "oracle": m in ORACLE_BASELINES,
                **row,
            }
            for (d, m), row in self.rows.items()
        ]
        methods = {m for _, m in self.rows}
        oracles = {m: use for m, use in ORACLE_BASELINES.items() if m in methods}
        return {
            "task": self.task,
            **self.settings,
            "units": units(COLUMNS[self.task]),
            "oracles": oracles,
            "rows": rows,
            "failed": self.failed,
        }


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def run_benchmark(
    pipe,
    clips: Iterable[tuple[str, str, Scene | Callable[[], Scene]]],
    task: str,
    out: str | Path,
    *,
    regime: str = "dense",
    stride_factor: int | None = None,
    sampler: SamplerConfig | Mapping[str, Any] | None = None,
    search: SearchConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    depth_range: tuple[float, float] | None = None,
    depth_protocol: str = "geo4d",
    resume: bool = False,
    rank: int = 0,
    world: int = 1,
    gather: Callable[[Any], list[Any]] | None = None,
) -> BenchmarkTable | None:
    """Run ``task`` under ``regime`` on every (dataset, clip name, truth or its loader) and write
    the outputs (module doc). sampler, search, seed: as for the pipeline (every clip with
    ``seed``, whatever process scores it). stride_factor: only recorded here — the clips must
    already be sampled with it (``synthetic_clips`` / ``mixture_clips`` with the same regime and
    factor). depth_range: (near, far) in the clips' units — adds interpolation's plane-sweep
    baseline. depth_protocol: geometry's depth protocol (``any4d.eval.PROTOCOLS``).

    resume: keep the clips already scored in ``out`` (else an ``out`` holding scored clips is
    an error: nothing is overwritten). rank, world, gather: process ``rank`` of ``world``
    scores clips ``rank, rank + world, …`` of the clip order; ``gather(value)`` returns every
    process's ``value`` in rank order (``torch.distributed.all_gather_object``), so that a
    process's failure is raised, naming it, on every process instead of leaving the others
    waiting; then ``rank`` 0 merges every clip into the table and returns it (others: None).
    ``out`` must be one folder every process sees (a shared file system across nodes)."""
    mask = regime_mask(task, regime)
    stride = regime_stride(regime, stride_factor)
    if depth_protocol not in PROTOCOLS:
        raise ValueError(f"depth_protocol={depth_protocol!r} (expected one of {PROTOCOLS})")
    if depth_range is not None:  # checked before the first clip, by the sweep's own check
        try:
            inverse_depth_planes(*depth_range, 2)
        except ValueError as error:
            raise ValueError(f"depth_range={tuple(depth_range)}: {error}") from None
    settings = {
        "regime": regime,
        "mask": REGIMES[regime][task],
        "observed": mask_spec(mask),
        "stride_factor": stride,
        "description": describe(task, regime, mask, stride),
    }
    if task == "geometry":
        settings["depth_protocol"] = depth_protocol
    out = Path(out)
    gather = gather or (lambda value: [value])
    clips_dir = out / "clips"
    refusal = None
    if not resume and clips_dir.is_dir() and any(clips_dir.rglob("*.json")):
        refusal = (
            f"{clips_dir} already holds scored clips: pass --resume (resume=True) to keep them "
            "and score the rest, or choose another output folder (nothing is overwritten)"
        )
    _raise_any(gather(refusal), world)  # every process has checked before any writes
    order: list[tuple[str, str]] = []
    failure, cause = None, None
    for number, (dataset, name, truth) in enumerate(clips):
        order.append((dataset, name))
        path = _clip_path(out, dataset, name)
        if failure or number % world != rank or (resume and _read_record(path) is not None):
            continue
        try:
            record = _score_clip(
                pipe, dataset, name, truth, task, mask, settings, stride,
                sampler, search, seed, progress, depth_protocol, depth_range,
            )  # fmt: skip
        except Exception as error:  # named on every process below, then raised
            failure = f"failed on clip {dataset}/{name}: {type(error).__name__}: {error}"
            cause = error
            continue
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(record, indent=2))
    failures = gather(failure)
    if any(failures):
        named = "; ".join(
            (f"rank {r} of {world} " if world > 1 else "") + message
            for r, message in enumerate(failures)
            if message
        )
        raise RuntimeError(
            f"{named} (the clips scored so far are kept in {clips_dir}: rerun with --resume "
            "to score only the rest)"
        ) from cause
    if not order:
        raise ValueError("no clip to score: the clip source yielded none")
    if rank != 0:
        return None
    records, missing = [], []
    for number, (dataset, name) in enumerate(order):
        record = _read_record(_clip_path(out, dataset, name))
        if record is None:
            missing.append(f"{dataset}/{name} (rank {number % world})")
        records.append(record)
    if missing:
        raise ValueError(
            f"{len(missing)} clip(s) missing from {clips_dir}: {missing[:8]}; rerun with "
            "--resume to score only those"
        )
    table = _table(task, records, settings)
    _write_table(table, out, regime)
    return table


def _raise_any(refusals: list[str | None], world: int) -> None:
    """Raise the first process's refusal, if any process refused."""
    for rank, refusal in enumerate(refusals):
        if refusal:
            raise ValueError(refusal if world == 1 else f"rank {rank} of {world}: {refusal}")


def _clip_path(out: Path, dataset: str, name: str) -> Path:
    return out / "clips" / dataset / f"{name}.json"


_RECORD_KEYS = ("dataset", "clip", "task", "ours", "baselines")


def _read_record(path: Path) -> dict | None:
    """A complete clip record at ``path``, or None (missing or unfinished)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and all(k in record for k in _RECORD_KEYS) else None


def _score_clip(
    pipe, dataset, name, truth, task, mask, settings, stride, sampler, search, seed, progress,
    depth_protocol, depth_range,
) -> dict:  # fmt: skip
    """One clip's record: what was observed and scored, our scores (or the error), baselines."""
    if not isinstance(truth, Scene):
        truth = truth()  # a loader: only the clips of this process are read
    frames = truth.num_frames
    record = {
        "dataset": dataset,
        "clip": name,
        "task": task,
        "regime": settings["regime"],
        "mask": settings["mask"],
        "stride_factor": stride,
        "frames": frames,
        "observed": observed_frames(mask, frames),
        "scored_frames": scored_frames(task, frames),
    }
    try:
        scene = model_input(pipe, truth, mask)
        result = pipe(
            scene, task=mask, sampler=sampler, search=search, seed=seed, progress=progress
        )
        ours = task_scores(task, result.scene, truth, depth_protocol)
        if result.failures:
            record["failures"] = result.failures
    except ValueError as error:
        record["error"] = str(error)
        ours = None
    record["ours"] = ours
    record["baselines"] = task_baselines(task, truth, depth_range)  # from the whole true clip
    return record


def _table(task: str, records: list[dict], settings: dict) -> BenchmarkTable:
    """The per-(dataset, method) means of the clip records, in the table's row order."""
    totals: dict[tuple[str, str], dict[str, list[float]]] = {}
    failed: dict[str, dict[str, str]] = {}
    for record in records:
        dataset, ours = record["dataset"], record["ours"]
        if "error" in record:
            failed.setdefault(dataset, {})[record["clip"]] = record["error"]
        methods = (
            {"any4d": ours, **record["baselines"]}
            if ours is not None
            else dict(record["baselines"])
        )
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
    return BenchmarkTable(task, rows, counts, failed, settings)


def _write_table(table: BenchmarkTable, out: Path, regime: str) -> None:
    task = table.task
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table.markdown())
    (out / "table.json").write_text(json.dumps(table.as_dict(), indent=2))
    with (out / "table.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        # Metric keys as the header, one line per row: what pandas reads as is (units and
        # directions are in table.json).
        writer.writerow(["dataset", "method", "clips", "oracle", *COLUMNS[task], "task", "regime"])
        for (dataset, method), row in table.rows.items():
            scores = [row.get(c) for c in COLUMNS[task]]
            count, oracle = table.counts[(dataset, method)], method in ORACLE_BASELINES
            writer.writerow([dataset, method, count, oracle, *scores, task, regime])
