"""Frames per second of the synthetic renderer, against a reference timed in the same run.

    python benchmarks/synthetic_fps.py [--sizes 64x64,240x320] [--frames 8] [--clips 20]

For each image size, clips of ``--frames`` frames are generated end to end (``render_clip``:
world, cameras, ray casting, ``Scene`` validation) for seeds ``0 … clips − 1``. The reference is
``any4d.geometry.plucker_rays`` on the same cameras and size — the ray map every training sample
needs anyway — so ``ratio = clip time / plücker time`` is comparable across machines and loads.
Times are medians over seeds (after one warm-up clip).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from any4d.data.synthetic import SyntheticConfig, render_clip, render_spec, sample_clip
from any4d.geometry import plucker_rays


def _seconds(fn, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def measure(height: int, width: int, frames: int, clips: int) -> dict[str, float]:
    config = SyntheticConfig(num_frames=frames, height=height, width=width)
    render_clip(0, config)  # warm-up: first-call allocations and thread pool start
    clip, sample, cast, reference = [], [], [], []
    for seed in range(clips):
        clip.append(_seconds(lambda seed=seed: render_clip(seed, config)))
        spec = sample_clip(seed, config)
        sample.append(_seconds(lambda seed=seed: sample_clip(seed, config)))
        cast.append(_seconds(lambda spec=spec: render_spec(spec)))
        reference.append(_seconds(lambda spec=spec: plucker_rays(spec.cameras, height, width), 5))
    clip_s, reference_s = statistics.median(clip), statistics.median(reference)
    return {
        "fps": frames / clip_s,
        "clip_ms": 1e3 * clip_s,
        "sample_ms": 1e3 * statistics.median(sample),
        "render_ms": 1e3 * statistics.median(cast),
        "plucker_ms": 1e3 * reference_s,
        "ratio": clip_s / reference_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64x64,240x320", help="HxW,HxW,…")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.frames} frames per clip, {args.clips} clips per size"
    )
    print(
        f"{'size':>9} {'frames/s':>9} {'clip ms':>8} {'world ms':>9} {'cast ms':>8} "
        f"{'plücker ms':>11} {'clip/plücker':>13}"
    )
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.lower().split("x"))
        r = measure(height, width, args.frames, args.clips)
        print(
            f"{size:>9} {r['fps']:9.1f} {r['clip_ms']:8.2f} {r['sample_ms']:9.2f} "
            f"{r['render_ms']:8.2f} {r['plucker_ms']:11.3f} {r['ratio']:13.1f}"
        )


if __name__ == "__main__":
    main()
