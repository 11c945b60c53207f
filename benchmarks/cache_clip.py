"""What caching a clip costs: seconds per clip through the Wan VAE, and bytes per clip.

    python benchmarks/cache_clip.py                               # CPU, a reduced clip
    python benchmarks/cache_clip.py --device cuda --frames 49 --height 240 --width 320

One procedural clip with depth and moving cameras (the most expensive kind: RGB once, depth once
per distinct clip scale) is precomputed as ``any4d cache`` does (``any4d.tokenize.precomputed``)
with a random-initialised ``AutoencoderKLWan`` of Wan2.1's config (weights do not change the
cost); the median of ``--repeats``. The time is given beside one VAE encode of the clip's RGB,
timed in the same run, so the ratio (codec passes per clip) is stable on a noisy machine.
Bytes are computed for the paper's clip (49 × 240 × 320) from the latent shapes, for an
annotated clip (RGB + depth + cameras) and an RGB-only one, with and without a caption.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.diffusion import PRESETS
from any4d.tokenize import Observed, WanVAETokenizer
from any4d.tokenize.precomputed import precompute

CAPTION_TOKENS = 80  # a scene prompt of a few sentences, in umT5 tokens (Wan pads to 512)


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def paper_bytes(latent_bytes: int) -> dict[str, float]:
    """MB per clip at 49 × 240 × 320: 13 latent frames + 1 context group of 16 × 30 × 40."""
    cells = 16 * (13 + 1) * 30 * 40
    valid = (13 + 1) * 30 * 40 * 4
    cameras = 49 * (9 + 16) * 4
    caption = CAPTION_TOKENS * 4096 * 2  # umT5 features in bf16
    annotated = cells * latent_bytes * 3 + valid + cameras  # RGB + depth at two clip scales
    rgb_only = cells * latent_bytes
    mb = 1e6
    return {
        "annotated": annotated / mb,
        "annotated + caption": (annotated + caption) / mb,
        "RGB-only": rgb_only / mb,
        "RGB-only + caption": (rgb_only + caption) / mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    tokenizer = WanVAETokenizer(AutoencoderKLWan().to(device).eval())
    shape = SyntheticConfig(num_frames=args.frames, height=args.height, width=args.width)
    scene = SyntheticClips(shape, split="heldout", size=1)[0].to(device)
    observations = list(dict.fromkeys(Observed.of(m, args.frames) for m in PRESETS.values()))
    context = [args.frames - 1]

    def timed(fn) -> tuple[float, object]:
        fn()  # warm-up
        times, result = [], None
        for _ in range(args.repeats):
            start = clock(device)
            result = fn()
            times.append(clock(device) - start)
        return statistics.median(times), result

    with torch.no_grad():
        encode, _ = timed(lambda: tokenizer.encode_images(scene.rgb[None]))
        seconds, clip = timed(lambda: precompute(tokenizer, scene, observations, context))
    print(f"device {device}; clip {args.frames} × {args.height} × {args.width}; Wan2.1 VAE "
          f"(random weights); {len(observations)} training observations")  # fmt: skip
    print(f"distinct clip scales: {len(clip.depth)} (depth latents stored)")
    print("| what | seconds | / one RGB encode |")
    print("|---|---|---|")
    print(f"| one VAE encode of the RGB video | {encode:.2f} | 1.00 |")
    print(f"| precompute one clip (RGB, depth per scale, context groups) | {seconds:.2f} | "
          f"{seconds / encode:.2f} |")  # fmt: skip
    print()
    print("| paper clip 49 × 240 × 320 | MB float32 | MB bfloat16 |")
    print("|---|---|---|")
    full, half = paper_bytes(4), paper_bytes(2)
    for kind in full:
        print(f"| {kind} | {full[kind]:.2f} | {half[kind]:.2f} |")


if __name__ == "__main__":
    main()
