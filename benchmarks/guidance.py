"""Does history guidance help? The demo's presets at guidance w ∈ {0, 1, 2, 3}.

History guidance (DESIGN §5) steps with ``v_H + w·(v_H − v_∅)``; ``v_∅`` sees the context as
noise at t = 1, which training shows the model with ``noise.context_drop_prob``. This prints,
for the shipped model (or ``--checkpoint``) on the demo's held-out clips, what each preset
generates scored at each w — one sample per clip, the same seeds — so the default can be chosen
from it. Scores, not times: stable on any machine.

    python benchmarks/guidance.py --scenes 6
"""

from __future__ import annotations

import argparse

from any4d.demo import heldout_clips, score_preset, shipped_checkpoint
from any4d.diffusion import PRESETS
from any4d.pipeline import Any4DPipeline

# Preset → what to read of it (metric, ↑ or ↓ better).
COLUMNS = {
    "geometry": (("abs_rel", "↓"), ("ate", "↓")),
    "video": (("psnr_pooled", "↑"),),
    "depth": (("abs_rel", "↓"), ("depth_scale", "→1")),
    "interpolate": (("psnr_pooled", "↑"), ("depth_scale", "→1")),
    "extrapolate": (("psnr_pooled", "↑"), ("depth_scale", "→1")),
    "depth_to_video": (("psnr_pooled", "↑"), ("ate", "↓"), ("path_scale", "→1")),
    "sparse_geometry": (("abs_rel", "↓"), ("ate", "↓")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped demo model")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    pipe = Any4DPipeline.from_pretrained(args.checkpoint or shipped_checkpoint())
    clips = heldout_clips(pipe, args.scenes)
    scores = {}
    for w in args.weights:
        for preset in PRESETS:
            changes = (
                {"guidance": w} if args.steps is None else {"guidance": w, "steps": args.steps}
            )
            summary, _ = score_preset(pipe, preset, clips, changes)
            scores[(preset, w)] = summary["any4d"]
    print("| task | metric | " + " | ".join(f"w = {w:g}" for w in args.weights) + " |")
    print("|---|---|" + "---|" * len(args.weights))
    for preset in PRESETS:
        for metric, better in COLUMNS[preset]:
            cells = [scores[(preset, w)].get(metric) for w in args.weights]
            shown = ["–" if v is None else f"{v:.4g}" for v in cells]
            print(f"| {preset} | {metric} {better} | " + " | ".join(shown) + " |")


if __name__ == "__main__":
    main()
