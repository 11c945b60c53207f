"""The full-size model at the paper's clip on one GPU: forward, training micro-step, sampled clip.

    python benchmarks/paper_shape.py                     # wan2.1-1.3b, 49 × 240 × 320, cuda
    python benchmarks/paper_shape.py --steps 50 --guidance 0 --skip-train

The model is random-initialised (the shapes are Wan2.1-T2V-1.3B's with four streams, 5.65 B
parameters); the VAE is a random-initialised ``AutoencoderKLWan`` with Wan2.1's config. Weights
do not change the cost. Rows:

- **reference**: an 8192³ bf16 matrix product, timed in the same run — the machine's attainable
  peak, against which MFU is also given (beside the nominal dense bf16 peak, ``--peak-tflops``);
- **forward** (no grad) of one clip's four streams + the context group, bf16 weights, and fp32
  weights under bf16 autocast (what training and the pipeline run): seconds, TFLOP/s, MFU,
  peak memory. FLOPs are the analytic count of ``train_step.py`` (matmuls and attention);
- **forward + backward** of a training micro-batch (batch 1, fp32 weights, bf16 autocast,
  gradient checkpointing as the ``wan2.1-1.3b`` config), peak memory. AdamW is left out: its
  fp32 moments (42 GiB) do not fit one 80 GB card beside the weights; FSDP2 shards them;
- **sampled clip**: ``Any4DPipeline`` end to end for ``--task`` — VAE encode of the observed
  streams, ``--steps`` solver steps (history guidance doubles the model calls), VAE decode,
  cameras from rays — seconds per clip and model calls per clip.

Times are the median of ``--repeats`` after one warm-up. ``--device cpu`` only checks that the
script runs (with ``--num-layers 1 --small-vae`` and a small clip); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from train_step import analytic_forward, clock  # benchmarks/ is on sys.path as a script

from any4d.data import Scene
from any4d.diffusion import SamplerConfig
from any4d.model import Any4DTransformer, preset

H100_BF16_DENSE = 989e12  # FLOP/s, SXM, dense; the H200's is the same


def timed(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up, and the last result."""
    result = fn()
    clock(device)
    times = []
    for _ in range(repeats):
        start = clock(device)
        result = fn()
        times.append(clock(device) - start)
    return statistics.median(times), result


def matmul_reference(device: torch.device, repeats: int = 10) -> float:
    """Attained bf16 FLOP/s of an 8192³ product (1024³ on CPU)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    seconds, _ = timed(lambda: a @ b, repeats, device)
    return 2 * n**3 / seconds


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def model_inputs(config, latent, context, dtype, device):
    """Latents, per-frame times and frame index as the trainer and pipeline build them."""
    channels, frames, height, width = latent
    total = frames + context
    latents = {
        s: torch.randn(1, channels, total, height, width, device=device, dtype=dtype)
        for s in config.streams
    }
    times = {s: torch.rand(1, total, 1, 1, device=device) * 1000 for s in config.streams}
    index = torch.tensor(list(range(frames)) + [frames - 1] * context, device=device)
    return latents, times, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="wan2.1-1.3b")
    parser.add_argument("--num-layers", type=int, default=None, help="override (dry runs)")
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--context", type=int, default=1, help="context groups (pipeline: 1)")
    parser.add_argument("--task", default="geometry")
    parser.add_argument("--steps", type=int, default=SamplerConfig.steps, help="solver steps")
    parser.add_argument("--guidance", type=float, default=SamplerConfig.guidance, help="weight w")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-vae", action="store_true", help="a tiny VAE (dry runs)")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-clip", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE / 1e12)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --device cpu for a dry run)")

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}")
    attained = matmul_reference(device)
    nominal = args.peak_tflops * 1e12
    print(
        f"reference: 8192³ bf16 matmul {attained / 1e12:.0f} TFLOP/s "
        f"({attained / nominal:.0%} of the nominal {args.peak_tflops:.0f})"
    )

    overrides = {} if args.num_layers is None else {"num_layers": args.num_layers}
    config = preset(args.preset, **overrides)
    stride_t, stride_s = 4, 8  # Wan VAE
    latent = (
        config.in_channels,
        1 + (args.frames - 1) // stride_t,
        args.height // stride_s,
        args.width // stride_s,
    )
    p_t, p_h, p_w = config.patch_size
    frames = latent[1] + args.context
    tokens = frames // p_t * (latent[2] // p_h) * (latent[3] // p_w)
    counted = analytic_forward(config, tokens, frames, text_tokens=1)
    flops = counted["blocks"] + counted["rest"]
    torch.manual_seed(0)
    with device:
        model = Any4DTransformer(config)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.preset}: {params / 1e9:.3f} B parameters, {len(config.streams)} streams; "
        f"clip {args.frames} × {args.height} × {args.width} → latent {latent[1]} (+{args.context} "
        f"context) × {latent[2]} × {latent[3]} → {tokens} tokens per stream, "
        f"{tokens * len(config.streams)} in the joint attention; {flops / 1e12:.1f} TFLOP "
        f"per forward (analytic)"
    )

    def report(label: str, seconds: float, work: float) -> None:
        rate = work / seconds
        print(
            f"  {label:44} {seconds:8.3f} s  {rate / 1e12:6.0f} TFLOP/s  MFU "
            f"{rate / nominal:5.1%} (of attained {rate / attained:5.1%})  "
            f"peak {peak_gib():6.1f} GiB"
        )

    # ---------------------------------------------------------------- forward
    model.eval()
    for label, dtype in (
        ("fp32 weights, bf16 autocast", torch.float32),
        ("bf16 weights", torch.bfloat16),
    ):
        model.to(dtype)
        latents, times, index = model_inputs(config, latent, args.context, dtype, device)
        reset_peak()

        def forward(latents=latents, times=times, index=index):
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                return model(latents, times, frame_index=index)

        seconds, _ = timed(forward, args.repeats, device)
        report(f"forward, {label}", seconds, flops)
        del latents
    model.float()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # ---------------------------------------------------------------- training micro-step
    if not args.skip_train:
        model.train()
        model.gradient_checkpointing = True
        latents, times, index = model_inputs(config, latent, args.context, torch.float32, device)
        targets = {s: torch.randn_like(v) for s, v in latents.items()}

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                out = model(latents, times, frame_index=index)
            loss = sum((out[s].float() - targets[s]).square().mean() for s in out)
            loss.backward()

        reset_peak()
        # backward ≈ 2 × forward, + the recomputed forward of every block
        seconds, _ = timed(step, args.repeats, device)
        report(
            "forward + backward (batch 1, checkpointing)", seconds, 3 * flops + counted["blocks"]
        )
        print(
            f"    (fp32 weights + gradients; AdamW's two fp32 moments would add "
            f"{params * 8 / 2**30:.0f} GiB: FSDP2 shards them over GPUs)"
        )
        del latents, targets
        model.zero_grad(set_to_none=True)
        model.gradient_checkpointing = False
        if device.type == "cuda":
            torch.cuda.empty_cache()

    # ---------------------------------------------------------------- sampled clip
    if not args.skip_clip:
        from diffusers import AutoencoderKLWan

        from any4d.data import SyntheticClips, SyntheticConfig
        from any4d.pipeline import Any4DPipeline
        from any4d.tokenize import WanVAETokenizer

        model.eval()
        vae_config = {}
        if args.small_vae:
            vae_config = dict(base_dim=16, num_res_blocks=1, attn_scales=[])
        vae = AutoencoderKLWan(**vae_config).to(device)  # Wan2.1's config, random weights
        pipe = Any4DPipeline(model, WanVAETokenizer(vae))
        truth = SyntheticClips(
            SyntheticConfig(num_frames=args.frames, height=args.height, width=args.width),
            split="heldout",
            size=1,
        )[0]
        scene: Scene = pipe.observed(truth, args.task).to(device)
        calls = []
        forward = model.forward

        def counting(*a, **k):
            calls.append(1)
            return forward(*a, **k)

        model.forward = counting
        reset_peak()

        def clip():
            calls.clear()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                sampler = {"steps": args.steps, "guidance": args.guidance}
                return pipe(scene, args.task, sampler=sampler, progress=False)

        seconds, result = timed(clip, args.repeats, device)
        del model.forward  # the class's forward again
        work = len(calls) * flops
        report(
            f"sampled clip '{args.task}', {args.steps} steps, {len(calls)} model calls",
            seconds,
            work,
        )
        print(f"    failures while decoding: {result.failures or 'none'}")


if __name__ == "__main__":
    main()
