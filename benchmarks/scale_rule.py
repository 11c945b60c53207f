"""Calibration of the camera rule (DESIGN §1, ``any4d.geometry.camera_scale``).

With cameras observed and depth not, the clip scale is ``CAMERA_SECONDS × L / Δt`` (path length
of the camera centres over the clip's duration). The constant is chosen so that this approximates
the median depth of clips that have both. This script prints, per clip shape of the procedural
world's training split, the median of ``median depth / (L / Δt)`` (the constant that clip shape
alone would choose) and the spread of the per-clip ratio around ``CAMERA_SECONDS``, overall and
per camera motion. Ratios, not times: stable on any machine.

    python benchmarks/scale_rule.py --clips 300
"""

from __future__ import annotations

import argparse

import torch

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.geometry import CAMERA_SECONDS, median_depth, path_length
from any4d.geometry.normalize import STATIC_EXTENT

SHAPES = ((5, 4.0), (5, 10.0), (49, 10.0))  # (frames, fps): the demo's, and the paper's length


def ratios(num_frames: int, fps: float, clips: int) -> tuple[torch.Tensor, list[str]]:
    """Per clip: median depth / (path length / duration), and the camera motion's kind."""
    data = SyntheticClips(
        SyntheticConfig(num_frames=num_frames, height=32, width=32, fps=fps), split="train"
    )
    values, kinds = [], []
    for index in range(clips):
        scene = data[index]
        path = path_length(scene.cameras.to(dtype=torch.float64))
        if path < STATIC_EXTENT:
            continue
        speed = path / ((num_frames - 1) / fps)
        values.append(float(median_depth(scene.depth[None].double())[0] / speed))
        kinds.append((scene.text or "").split("the camera ")[-1].split()[0])
    return torch.tensor(values, dtype=torch.float64), kinds


def spread(values: torch.Tensor) -> str:
    q = torch.quantile(values / CAMERA_SECONDS, torch.tensor([0.1, 0.5, 0.9], dtype=values.dtype))
    return f"p10 {q[0]:.2f}×  median {q[1]:.2f}×  p90 {q[2]:.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300, help="training clips per shape")
    args = parser.parse_args()
    print(f"CAMERA_SECONDS = {CAMERA_SECONDS} s; per-clip median depth / (path / duration)")
    print("shown as multiples of CAMERA_SECONDS (1.00× = the camera rule gives the median depth)")
    for num_frames, fps in SHAPES:
        values, kinds = ratios(num_frames, fps, args.clips)
        constant = float(values.median())
        print(
            f"\n{num_frames} frames at {fps:g} fps ({len(values)} moving clips): this shape "
            f"alone would choose {constant:.2f} s; all clips {spread(values)}"
        )
        for kind in sorted(set(kinds)):
            picked = values[[k == kind for k in kinds]]
            print(f"  camera {kind:8s} ({len(picked):3d} clips): {spread(picked)}")


if __name__ == "__main__":
    main()
