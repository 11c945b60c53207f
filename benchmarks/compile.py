"""``torch.compile`` of the transformer's blocks against eager, in the same run.

    python benchmarks/compile.py                      # a reduced Wan-shaped model on the CPU
    python benchmarks/compile.py --device cuda --num-layers 30 --dim 1536 --frames 14 \
        --height 30 --width 40                        # the paper's shape on a GPU

Rows: forward without grad (sampling's call) and forward + backward (a training micro-step),
four streams, batch 1; the median of ``--repeats`` after warm-up (the compiled model's first
call compiles, timed separately). Printed as the compiled / eager ratio, which is stable on a
noisy machine; absolute seconds beside it.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from any4d.model import Any4DTransformer, preset


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        start = clock(device)
        fn()
        times.append(clock(device) - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--frames", type=int, default=4, help="latent frames")
    parser.add_argument("--height", type=int, default=12, help="latent height")
    parser.add_argument("--width", type=int, default=16, help="latent width")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    heads = max(1, args.dim // 128)
    config = preset(
        "wan2.1-1.3b", num_layers=args.num_layers, dim=args.dim, num_heads=heads,
        ffn_dim=args.dim * 6, text_dim=None,
    )  # fmt: skip
    eager = Any4DTransformer(config).to(device)
    compiled = copy.deepcopy(eager).compile_blocks()
    shape = (1, config.in_channels, args.frames, args.height, args.width)
    latents = {s: torch.randn(shape, device=device) for s in config.streams}
    times = {s: torch.rand(1, args.frames, 1, 1, device=device) for s in config.streams}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def forward(model):
        with torch.no_grad(), autocast:
            return model(latents, times)

    def train_step(model):
        with autocast:
            out = model(latents, times)
        sum(v.float().square().mean() for v in out.values()).backward()

    print(f"device {device}; {args.num_layers} layers, dim {args.dim}, latent "
          f"{args.frames} × {args.height} × {args.width}, four streams, bf16 autocast")  # fmt: skip
    print("| call | eager (s) | compiled (s) | compiled / eager | first compiled call (s) |")
    print("|---|---|---|---|---|")
    for name, fn in (("forward, no grad", forward), ("forward + backward", train_step)):
        fn(eager)
        start = clock(device)
        fn(compiled)
        first = clock(device) - start
        for _ in range(2):
            fn(compiled)
        seconds = {
            label: median_seconds(lambda fn=fn, model=model: fn(model), args.repeats, device)
            for label, model in (("eager", eager), ("compiled", compiled))
        }
        ratio = seconds["compiled"] / seconds["eager"]
        print(f"| {name} | {seconds['eager']:.4f} | {seconds['compiled']:.4f} | {ratio:.2f} | "
              f"{first:.1f} |")  # fmt: skip
    with torch.no_grad():
        a, b = forward(eager), forward(compiled)
    error = max(float((a[s].float() - b[s].float()).abs().max()) for s in a)
    print(f"max |compiled − eager| of the forward: {error:.2e}")


if __name__ == "__main__":
    main()
