"""Cost of the four-stream transformer, as ratios against references timed in the same run.

    python benchmarks/model_forward.py                       # CPU, a small Wan-shaped config
    python benchmarks/model_forward.py --preset wan2.1-1.3b --device cuda --dtype bfloat16 \\
        --grid 13 30 40                                      # the paper's 49 × 240 × 320 clip

- ``rgb`` stream only against diffusers' ``WanTransformer3DModel`` with the same config, tokens
  and text: forward (no grad) and forward + backward, time per token, ratio ours / diffusers
  (aim ≤ 1.10);
- all four streams against one stream of our model (the attention is joint, so > 4× is
  expected at long sequences).
Times are the best of ``--repeats`` runs after a warm-up, runs of the two sides interleaved.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from diffusers import WanTransformer3DModel

from any4d.model import STREAMS, Any4DTransformer, TransformerConfig, preset


def bench_config(name: str) -> TransformerConfig:
    if name == "cpu":  # WAN.md §7's CPU measurement config: 4 heads × 64, 4 layers
        return preset(
            "wan2.1-1.3b", dim=256, num_heads=4, ffn_dim=1024, num_layers=4, text_dim=4096
        )
    return preset(name)


def diffusers_twin(config: TransformerConfig) -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=config.patch_size,
        num_attention_heads=config.num_heads,
        attention_head_dim=config.head_dim,
        in_channels=config.in_channels,
        out_channels=config.in_channels,
        text_dim=config.text_dim,
        freq_dim=config.freq_dim,
        ffn_dim=config.ffn_dim,
        num_layers=config.num_layers,
        eps=config.eps,
    )


def timer(device: torch.device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    return run


def best_of(fns: dict[str, callable], repeats: int, run) -> dict[str, float]:
    """Best time of each function, interleaved so drift hits every side alike."""
    for fn in fns.values():
        run(fn)  # warm-up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], run(fn))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", help="'cpu' or a model preset name")
    parser.add_argument("--grid", type=int, nargs=3, default=(4, 16, 16), metavar=("T", "H", "W"))
    parser.add_argument("--text-tokens", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpointing", action="store_true")
    args = parser.parse_args()

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    config = bench_config(args.preset)
    torch.manual_seed(0)
    with torch.device(device):
        ours = Any4DTransformer(config).to(dtype)
        one = Any4DTransformer(dataclasses.replace(config, streams=("rgb",))).to(dtype)
        wan = diffusers_twin(config).to(dtype)
    if args.checkpointing:
        ours.gradient_checkpointing = one.gradient_checkpointing = True
        wan.enable_gradient_checkpointing()

    frames, height, width = args.grid
    latent = torch.randn(1, config.in_channels, frames, height, width, device=device, dtype=dtype)
    t = torch.tensor([0.5], device=device)
    text = torch.randn(1, args.text_tokens, config.text_dim, device=device, dtype=dtype)
    p_t, p_h, p_w = config.patch_size
    tokens = frames // p_t * (height // p_h) * (width // p_w)

    all_latents = {s: latent.clone() for s in STREAMS}
    calls = {
        "diffusers": lambda: wan(latent, timestep=1000 * t, encoder_hidden_states=text).sample,
        "ours rgb": lambda: one({"rgb": latent}, {"rgb": t}, text)["rgb"],
        "ours 4 streams": lambda: ours(all_latents, dict.fromkeys(STREAMS, t), text),
    }

    def backward(fn):
        def step():
            out = fn()
            loss = sum(v.float().sum() for v in out.values()) if isinstance(out, dict) else out
            loss.float().sum().backward()

        return step

    run = timer(device)
    with torch.no_grad():
        forward = best_of(calls, args.repeats, run)
    train = best_of({k: backward(v) for k, v in calls.items()}, args.repeats, run)

    print(
        f"config {args.preset}: dim {config.dim}, {config.num_layers} layers, "
        f"{config.num_heads} heads; grid {tuple(args.grid)} → {tokens} tokens per stream; "
        f"{args.device} {args.dtype}, {torch.get_num_threads()} threads"
    )
    print(f"{'':16}{'forward ms':>12}{'µs/token':>10}{'fwd+bwd ms':>12}{'µs/token':>10}")
    for name in calls:
        n = tokens * (4 if "4" in name else 1)
        print(
            f"{name:16}{forward[name] * 1e3:12.1f}{forward[name] / n * 1e6:10.2f}"
            f"{train[name] * 1e3:12.1f}{train[name] / n * 1e6:10.2f}"
        )
    print(
        f"ratio ours rgb / diffusers: forward {forward['ours rgb'] / forward['diffusers']:.3f}, "
        f"forward+backward {train['ours rgb'] / train['diffusers']:.3f}"
    )
    four, rgb = "ours 4 streams", "ours rgb"
    print(
        f"ratio 4 streams / 1 stream: forward {forward[four] / forward[rgb]:.2f}, "
        f"forward+backward {train[four] / train[rgb]:.2f}"
    )
    if device.type == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
