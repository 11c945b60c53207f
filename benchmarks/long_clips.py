"""Clips longer than the model's window: the native rollout against the non-native ways.

For held-out procedural clips of ``k ×`` the model's window (default 4× and 8×), with truth,
``geometry`` (depth and cameras from RGB) is completed by

* native:          windows that observe their completed overlap (``WindowConfig(overlap=2)``);
* native + anchor: the same with frame 0 kept in every window (``overlap=1, anchors=(0,)``);
* sim3:            independent windows, each moved onto the previous by a robust Sim(3) on the
                   point maps of their overlap (``stitch="sim3"``, VGGT-Long's chunk alignment);
* strided:         one window over frames spread evenly over the clip (scored on those only);

and scored over the **whole clip at once**: depth AbsRel / δ1 with one alignment for the clip
(Geo4D's protocol), ATE / RPE with one Sim(3) for the trajectory (evo's computation). Scores,
not times: stable on any machine. The camera floors (a constant-velocity path fitted to the
truth: an oracle) are printed beside them.

    python benchmarks/long_clips.py --scenes 4 --factors 4 8
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from any4d.data import Scene, SyntheticClips, SyntheticConfig
from any4d.demo import shipped_checkpoint
from any4d.eval.tasks import constant_velocity_ate, geometry_scores
from any4d.pipeline import Any4DPipeline
from any4d.windows import WindowConfig

METHODS = {
    "native": WindowConfig(overlap=2),
    "native + anchor 0": WindowConfig(overlap=1, anchors=(0,)),
    "sim3 stitched": WindowConfig(overlap=2, stitch="sim3"),
}
COLUMNS = ("abs_rel", "delta1", "ate", "rpe_t", "rpe_r")


def strided(pipe, clip: Scene, steps: int, seed: int) -> tuple[Scene, Scene]:
    """(completion, truth) of one window over frames spread evenly over the clip."""
    length = pipe.clip_length
    frames = torch.linspace(0, clip.num_frames - 1, length).round().long().tolist()
    truth = clip.frames(frames)
    result = pipe(truth, "geometry", sampler={"steps": steps}, seed=seed, progress=False)
    return result.scene, truth


def mean(values) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped demo model")
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    pipe = Any4DPipeline.from_pretrained(args.checkpoint or shipped_checkpoint())
    window = pipe.clip_length
    shape = {k: int(pipe.defaults[k]) for k in ("height", "width")}
    print(f"window {window} frames at {shape['height']}x{shape['width']}, {args.steps} steps, "
          f"{args.scenes} held-out clips per length; geometry task")  # fmt: skip
    header = "| clip | method | " + " | ".join(COLUMNS) + " | s / clip |"
    print(header)
    print("|" + "---|" * (len(COLUMNS) + 3))
    for factor in args.factors:
        config = SyntheticConfig(
            num_frames=window * factor, fps=float(pipe.defaults.get("fps", 10.0)), **shape
        )
        clips = SyntheticClips(config, split="heldout", size=args.scenes)
        rows: dict[str, list[dict]] = {name: [] for name in [*METHODS, "strided (1 window)"]}
        seconds: dict[str, float] = dict.fromkeys(rows, 0.0)
        floors = []
        for index in range(len(clips)):
            clip = clips[index]
            floors.append(constant_velocity_ate(clip.cameras.c2w))
            for name, windows in METHODS.items():
                start = time.perf_counter()
                result = pipe(clip, "geometry", sampler={"steps": args.steps}, seed=index,
                              window=windows, progress=False)  # fmt: skip
                seconds[name] += time.perf_counter() - start
                rows[name].append(geometry_scores(result.scene, clip))
            start = time.perf_counter()
            completion, truth = strided(pipe, clip, args.steps, index)
            seconds["strided (1 window)"] += time.perf_counter() - start
            rows["strided (1 window)"].append(geometry_scores(completion, truth))
        label = f"{factor}× ({window * factor} frames)"
        for name, scores in rows.items():
            cells = []
            for column in COLUMNS:
                value = mean(s.get(column) for s in scores)
                cells.append("–" if value is None else f"{value:.4f}")
            per_clip = seconds[name] / len(clips)
            print(f"| {label} | {name} | " + " | ".join(cells) + f" | {per_clip:.1f} |")
        print(f"| {label} | constant velocity (oracle: fit to the truth) | – | – | "
              f"{mean(floors):.4f} | – | – | – |")  # fmt: skip


if __name__ == "__main__":
    main()
