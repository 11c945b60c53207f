"""The memory table at the paper's shape, computed on the meta device, and its check.

    python benchmarks/memory_table.py                 # 49 × 240 × 320, wan2.1-1.3b
    python benchmarks/memory_table.py --skip-check    # the tables only (~30 s on a CPU)

Prints (``any4d.memory``): one sampled clip on one accelerator, default pipeline and low-memory
mode (``Any4DPipeline.enable_low_memory``); one training step per accelerator under FSDP2 over
1 / 4 / 8 processes, with and without gradient checkpointing, from a cache or encoding on the
fly. Then the check: the computed activations of a reduced model (dim 256, 2 layers, latent
4 × 32 × 32, fp32) against the peak measured on this CPU (a fresh process with glibc mapping
every allocation ≥ 64 KiB on its own, so its peak resident set follows the live tensors) as
measured / computed; with CUDA also the full model's forward and forward + backward measured by
the allocator beside the computed totals.
"""

from __future__ import annotations

import argparse

import torch

from any4d.memory import (
    RUNS,
    GiB,
    activation_bytes,
    inference_table,
    measured_activations,
    meta_model,
    training_activations,
    training_table,
    wan_latent,
    weight_bytes,
)
from any4d.model import preset


def training_grid(config, frames, height, width) -> str:
    """Components × world sizes, GiB per accelerator."""
    worlds = (1, 4, 8)
    latent = wan_latent(frames, height, width)
    # Counted once per checkpointing setting: the activations do not depend on the world size.
    activations = {
        ck: training_activations(config, latent, checkpointing=ck) for ck in (True, False)
    }
    tables = {
        (w, ck, enc): training_table(
            config,
            frames,
            height,
            width,
            world=w,
            checkpointing=ck,
            encoders=enc,
            activations=activations[ck],
        )  # fmt: skip
        for w in worlds
        for ck in (True, False)
        for enc in (False, True)
    }
    names = [r.component for r in tables[(1, True, True)].rows]
    lines = [
        f"**training, {frames} × {height} × {width}, batch 1 per GPU, FSDP2 (GiB per GPU)**",
        "",
        "| component | " + " | ".join(f"{w} GPU{'s' if w > 1 else ''}" for w in worlds) + " |",
        "|---|" + "---:|" * len(worlds),
    ]
    for name in names:
        cells = [
            next(r for r in tables[(w, True, True)].rows if r.component == name).gib for w in worlds
        ]
        lines.append(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    without = next(r for r in tables[(1, False, False)].rows if "without" in r.component)
    lines.append(f"| {without.component} | " + " | ".join([f"{without.gib:.2f}"] * 3) + " |")
    for ck, enc, label in (
        (True, False, "**peak**, checkpointing, from a cache"),
        (True, True, "**peak**, checkpointing, encoding on the fly (VAE + umT5 resident)"),
        (False, False, "**peak**, no checkpointing, from a cache"),
    ):
        cells = [tables[(w, ck, enc)].peak / GiB for w in worlds]
        lines.append(f"| {label} | " + " | ".join(f"**{c:.2f}**" for c in cells) + " |")
    return "\n".join(lines)


def cpu_check() -> str:
    overrides = {"dim": 256, "ffn_dim": 1024, "num_heads": 4, "num_layers": 2}
    measured = measured_activations("tiny", overrides, (4, 32, 32))
    model = meta_model(preset("tiny", **overrides))
    lines = [
        "**check on this CPU: reduced model (dim 256, 2 layers), latent 4 × 32 × 32, fp32**",
        "",
        "| run | computed MiB | measured MiB | measured / computed |",
        "|---|---:|---:|---:|",
    ]
    for label, train, checkpointing in RUNS:
        computed = activation_bytes(
            model, (4, 32, 32), dtype=torch.float32, train=train, checkpointing=checkpointing
        )
        value = measured[label]
        lines.append(
            f"| {label} | {computed / 2**20:.1f} | {value / 2**20:.1f} | {value / computed:.2f} |"
        )
    return "\n".join(lines)


def cuda_check(config, latent) -> str:
    """The full model on this GPU: allocator peaks beside the computed totals."""
    from any4d.memory import measure_peak, model_inputs
    from any4d.model import Any4DTransformer

    device = torch.device("cuda")
    lines = ["**check on this GPU: the full model, batch 1**", "",
             "| run | computed GiB | measured GiB |", "|---|---:|---:|"]  # fmt: skip
    model = Any4DTransformer(config).to(device, torch.bfloat16).eval()
    computed = weight_bytes(model) + activation_bytes(meta_model(config).to(torch.bfloat16), latent)
    torch.cuda.reset_peak_memory_stats()
    latents, times, index = model_inputs(config, latent, 1, 1, torch.bfloat16, device)
    with torch.no_grad():
        model(latents, times, frame_index=index)
    measured = torch.cuda.max_memory_allocated()
    lines.append(f"| forward, bf16 weights | {computed / GiB:.2f} | {measured / GiB:.2f} |")
    del latents, times
    model.float().train().requires_grad_(True)
    model.gradient_checkpointing = True
    # fp32 weights and gradients: twice the fp32 weights' bytes.
    computed = 2 * weight_bytes(model) + training_activations(config, latent)

    def step():
        latents, times, index = model_inputs(config, latent, 1, 1, torch.float32, device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(latents, times, frame_index=index)
        sum(v.float().square().mean() for v in out.values()).backward()

    step()
    model.zero_grad(set_to_none=False)  # the gradients stay allocated, as in training
    peak = torch.cuda.memory_allocated(device) + measure_peak(step, device)
    lines.append(
        f"| forward + backward, fp32 weights + grads, autocast, checkpointing | "
        f"{computed / GiB:.2f} | {peak / GiB:.2f} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="wan2.1-1.3b")
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--skip-check", action="store_true")
    args = parser.parse_args()
    config = preset(args.preset)
    shape = (args.frames, args.height, args.width)
    for low in (False, True):
        print(inference_table(config, *shape, low_memory=low).markdown(), end="\n\n")
    print(training_grid(config, *shape), end="\n\n")
    if not args.skip_check:
        print(cpu_check(), end="\n\n")
        if torch.cuda.is_available():
            print(cuda_check(config, wan_latent(*shape)))


if __name__ == "__main__":
    main()
