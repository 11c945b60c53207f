"""Throughput of the geometry core, as ratios against references measured in the same run.

    python benchmarks/geometry.py [--frames 50] [--repeats 5]

- ``rays_to_cameras`` (the inverse) against ``plucker_rays`` (the forward map) on the same grid;
- ``warp`` against one bare ``grid_sample`` of the same images;
- ``any4d.geometry.vectors`` ``cross`` / ``norm`` against ``torch.linalg.cross`` /
  ``Tensor.norm`` along the channel dimension of a ray map (ratio < 1: ours is faster).
Grids: the paper's latent grid (30 × 40) and its pixel grid (240 × 320).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from any4d.geometry import Cameras, look_at, plucker_rays, rays_to_cameras, vectors, warp


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cameras(frames: int, height: int, width: int) -> Cameras:
    angles = torch.linspace(0, 0.5, frames)
    eye = torch.stack([torch.sin(angles), torch.zeros(frames), -2 * torch.cos(angles)], -1)
    c2w = look_at(eye, torch.zeros(frames, 3))
    return Cameras.from_intrinsics(0.9 * width, 0.9 * width, width / 2, height / 2, c2w)


def _rows(frames: int, height: int, width: int, repeats: int) -> list[tuple]:
    """(op, seconds, reference op, reference seconds) for one grid size."""
    cams = _cameras(frames, height, width)
    rays = plucker_rays(cams, height, width)
    image = torch.rand(frames - 1, 3, height, width)
    depth = torch.full((frames - 1, 1, height, width), 2.0)
    sample_grid = torch.rand(frames - 1, height, width, 2) * 2 - 1
    d, m = rays[:, :3], rays[:, 3:]
    pairs = [
        (
            "rays_to_cameras",
            lambda: rays_to_cameras(rays),
            "plucker_rays",
            lambda: plucker_rays(cams, height, width),
        ),
        (
            "warp",
            lambda: warp(image, depth, cams[:-1], cams[1:]),
            "grid_sample",
            lambda: F.grid_sample(image, sample_grid, align_corners=False),
        ),
        (
            "vectors.cross",
            lambda: vectors.cross(d, m, dim=-3),
            "linalg.cross",
            lambda: torch.linalg.cross(d, m, dim=-3),
        ),
        ("vectors.norm", lambda: vectors.norm(d, dim=-3), "Tensor.norm", lambda: d.norm(dim=-3)),
    ]
    return [
        (name, _best_time(fn, repeats), ref_name, _best_time(ref, repeats))
        for name, fn, ref_name, ref in pairs
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.frames} frames")
    print(f"{'grid':>8} {'op':>16} {'seconds':>9} {'reference':>13} {'seconds':>9} {'ratio':>7}")
    for height, width in ((30, 40), (240, 320)):
        for name, t, ref_name, t_ref in _rows(args.frames, height, width, args.repeats):
            grid = f"{height}x{width}"
            print(f"{grid:>8} {name:>16} {t:9.4f} {ref_name:>13} {t_ref:9.4f} {t / t_ref:7.2f}")


if __name__ == "__main__":
    main()
