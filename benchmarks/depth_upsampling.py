"""Does edge-aware (joint bilateral) upsampling of depth help over bilinear?

The model runs at its own size; depth comes back at the input's. For held-out procedural clips
rendered at ``--factor ×`` the shipped model's size, the model-size depth — the truth resized
as ``FrameFit.apply`` does (an oracle that isolates the upsampling), and what the shipped model
predicts (``geometry``) — is brought back to the input's size bilinearly (over valid pixels) and
by ``joint_bilateral_upsample`` guided by the input frames, and scored against the full-size
truth (AbsRel after one median scale per clip, δ1). Scores, not times.

    python benchmarks/depth_upsampling.py --scenes 4 --factor 4
"""

from __future__ import annotations

import argparse

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.data.fit import FrameFit
from any4d.demo import shipped_checkpoint
from any4d.eval.depth_metrics import depth_metrics
from any4d.pipeline import Any4DPipeline


def score(depth, truth) -> tuple[float, float]:
    metrics = depth_metrics(depth, truth, valid=truth > 0, protocol="geo4d")
    return float(metrics["abs_rel"]), float(metrics["delta1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    pipe = Any4DPipeline.from_pretrained(shipped_checkpoint())
    height, width = pipe.size
    shape = {"num_frames": pipe.clip_length, "fps": float(pipe.defaults.get("fps", 10.0))}
    config = SyntheticConfig(height=height * args.factor, width=width * args.factor, **shape)
    clips = SyntheticClips(config, split="heldout", size=args.scenes)
    fit = FrameFit.plan((config.height, config.width), (height, width))
    rows = {(source, way): [] for source in ("truth resized", "predicted") for way in ("b", "j")}
    for index in range(len(clips)):
        clip = clips[index]
        small = fit.apply(clip)
        predicted = pipe(small, "geometry", sampler={"steps": args.steps}, seed=index,
                         progress=False).scene.depth  # fmt: skip
        for source, depth in (("truth resized", small.depth), ("predicted", predicted)):
            bilinear = fit.restore_depth(depth)
            joint = fit.restore_depth(depth, guide=clip.rgb, model_rgb=small.rgb)
            rows[(source, "b")].append(score(bilinear, clip.depth))
            rows[(source, "j")].append(score(joint, clip.depth))
    print(f"{args.scenes} held-out clips at {config.width}x{config.height}, model {width}x{height}")
    print("| model-size depth | upsampling | AbsRel ↓ | δ1 ↑ |")
    print("|---|---|---|---|")
    for (source, way), values in rows.items():
        abs_rel = sum(v[0] for v in values) / len(values)
        delta = sum(v[1] for v in values) / len(values)
        name = "bilinear" if way == "b" else "joint bilateral (edge-aware)"
        print(f"| {source} | {name} | {abs_rel:.4f} | {delta:.4f} |")


if __name__ == "__main__":
    main()
