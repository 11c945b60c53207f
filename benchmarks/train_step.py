"""Cost of one training step: measured on CPU at tiny scale, counted on ``meta`` at full scale.

    python benchmarks/train_step.py                        # tiny-synthetic, then wan2.1-1.3b
    python benchmarks/train_step.py precision=bf16 data.batch_size=4  # as `any4d train` takes
    python benchmarks/train_step.py --size-config my.yaml --gpus 8 --latent 16 13 30 40

1. The ``--config`` run (default ``tiny-synthetic``) on ``--device`` (default CPU): full
   training steps as the trainer does them (``prepare_micro_batch`` → forward →
   ``flow_matching_loss`` → backward → clip → AdamW), best of ``--repeats`` after
   ``--warmup`` steps, scenes rendered beforehand (the DataLoader's job). With a pixel tokenizer
   the micro-batches are also prepared beforehand on the CPU (the trainer's loader workers do
   it) and the step only copies them to the device; that CPU time is printed separately.
   Tokens/s and samples/s, and the ratio step / forward-only pass of the same micro-batches,
   the reference timed in the same run. Nothing is written to disk.
2. The ``--size-config`` model (default ``wan2.1-1.3b``) built on the ``meta`` device (no memory):
   parameters, parameter / gradient / AdamW memory per GPU under FSDP2, and the FLOPs of one
   training step counted by ``FlopCounterMode`` against an analytic count; then what an H100 at
   ``--mfu`` would take per step — an estimate, not a measurement. Activation memory is not
   computed (it needs real tensors and the allocator).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from any4d.model import Any4DTransformer, TransformerConfig, preset
from any4d.train import TrainConfig, load_config
from any4d.train.data import SlotDataset, SlotSampler, build_sources, micro_batches
from any4d.train.loop import build_model, micro_batch_loss, optimizer_step, precision_context
from any4d.train.step import preparation, prepared_by_loader

H100_BF16_DENSE = 989e12  # FLOP/s, SXM, dense (no sparsity); the H200's is the same


# ---------------------------------------------------------------------- 1. CPU, measured


def clock(device: torch.device) -> float:
    """perf_counter after the device's queued work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def measure_steps(config: TrainConfig, warmup: int, repeats: int, device: torch.device) -> None:
    """Time the trainer's step (one process, no wrapper) and a no-grad forward of its batch."""
    torch.manual_seed(config.seed)
    tokenizer = config.tokenizer.build(device)
    model = build_model(config, tokenizer.latent_channels).to(device)
    streams = list(model.config.streams)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.optim.lr,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    dataset = SlotDataset(build_sources(config.data, tokenizer.temporal_stride), config.seed)
    steps = warmup + repeats
    sampler = SlotSampler(config.data.batch_size, 1, 0, config.accumulation, 0, steps)

    render = float("inf")
    loaded = []  # step → [(scenes, slots, step) per micro-batch]
    items = micro_batches(dataset, sampler, num_workers=0)
    for _ in range(steps):
        start = time.perf_counter()
        loaded.append([next(items) for _ in range(config.accumulation)])
        render = min(render, time.perf_counter() - start)

    # As the trainer: with a pixel tokenizer the DataLoader's workers prepare micro-batches on
    # the CPU and the step only copies them to the device; otherwise the step prepares them.
    in_loader = prepared_by_loader(config)
    prepare = preparation(config, tokenizer, streams, torch.device("cpu") if in_loader else device)
    loader_prepare = float("inf")
    if in_loader:
        prepared = []
        for step in range(steps):
            start = time.perf_counter()
            prepared.append([prepare(*arguments) for arguments in loaded[step]])
            loader_prepare = min(loader_prepare, time.perf_counter() - start)

    def micro_batches_of(step: int) -> list:
        if in_loader:
            return [batch.to(device) for batch in prepared[step]]
        return [prepare(*arguments) for arguments in loaded[step]]

    def train_step(step: int) -> tuple[dict[str, float], list]:
        """The body of ``any4d.train.loop._train`` for one process; returns phase times."""
        times = {}
        start = clock(device)
        micro = micro_batches_of(step)
        counts = {s: sum(m.counts[s] for m in micro) for s in streams}
        times["tokenise"] = clock(device) - start
        for batch in micro:
            micro_batch_loss(model, batch, counts, config, device).total.backward()
        times["forward + loss + backward"] = clock(device) - start - times["tokenise"]
        middle = clock(device)
        optimizer_step(model, optimizer, config, step)
        times["clip + AdamW"] = clock(device) - middle
        times["step"] = clock(device) - start
        return times, micro

    def forward_only(micro: list) -> float:
        start = clock(device)
        with torch.no_grad(), precision_context(config, device):
            for batch in micro:
                model(batch.noisy, batch.model_times, frame_index=batch.frame_index)
        return clock(device) - start

    for step in range(warmup):
        _, micro = train_step(step)
        forward_only(micro)
    best, forward = None, float("inf")
    for step in range(warmup, steps):  # interleaved, so drift hits both sides alike
        times, micro = train_step(step)
        forward = min(forward, forward_only(micro))
        best = times if best is None or times["step"] < best["step"] else best

    c = model.config
    _, _, frames, height, width = micro[0].latents["rgb"].shape
    p_t, p_h, p_w = c.patch_size
    per_stream = (frames // p_t) * (height // p_h) * (width // p_w)
    batch = config.data.batch_size
    tokens = batch * len(streams) * per_stream  # as the trainer's tokens_per_s counts them
    params = sum(p.numel() for p in model.parameters())
    print(
        f"config: {params / 1e6:.2f} M parameters (dim {c.dim}, {c.num_layers} layers, "
        f"{len(streams)} streams), batch {batch} × accumulation {config.accumulation}, latent "
        f"grid {frames} × {height} × {width} → {per_stream} tokens per stream, {config.precision}, "
        f"checkpointing {config.model.gradient_checkpointing}; {device}, "
        f"{torch.get_num_threads()} threads; best of {repeats} after {warmup} warm-up steps"
    )
    step = best["step"]
    rate = f"{tokens / step:9.0f} tokens/s   {batch / step:7.1f} samples/s"
    print(f"  training step {step * 1e3:9.1f} ms   {rate}")
    first = "copy to device" if in_loader else "tokenise"
    for phase in ("tokenise", "forward + loss + backward", "clip + AdamW"):
        name = first if phase == "tokenise" else phase
        print(f"    {name:26}{best[phase] * 1e3:9.1f} ms  ({best[phase] / step:5.1%})")
    rate = f"{tokens / forward:9.0f} tokens/s"
    print(f"  forward only  {forward * 1e3:9.1f} ms   {rate}   (no grad, the same micro-batches)")
    print(f"  ratio training step / forward only: {step / forward:.2f}")
    print(f"  (scene rendering, not in the step: {render * 1e3:.1f} ms per step's batch)")
    if in_loader:
        per_batch = f"{loader_prepare * 1e3:.1f} ms per step's batch"
        print(f"  (tokenising in a loader worker, not in the step: {per_batch})")


# ---------------------------------------------------------------------- 2. meta, counted


def shard_numel(parameter: nn.Parameter, gpus: int) -> int:
    """Elements of the largest FSDP2 shard: ``fully_shard`` chunks dim 0 and pads every rank to
    the first chunk, so a dim 0 smaller than ``gpus`` (the stream axis, 4) is not split further."""
    rows = parameter.shape[0] if parameter.dim() else 1
    return math.ceil(rows / gpus) * (parameter.numel() // max(rows, 1))


def analytic_forward(c: TransformerConfig, tokens: int, frames: int, text_tokens: int) -> dict:
    """Forward FLOPs of one sample, matmuls only: 2 · weights · rows each weight is applied to,
    plus attention 4 · L_q · L_k · dim per layer (Q·Kᵀ and P·V). ``tokens`` per stream; the time
    embedding sees one row per latent frame (the trainer's per-frame times), the text paths
    ``text_tokens`` rows. Returns FLOPs of the blocks (recomputed under checkpointing) and the
    rest."""
    streams, d, f = len(c.streams), c.dim, c.ffn_dim
    joint = streams * tokens  # one self-attention over the tokens of every stream
    per_layer = 2 * streams * tokens * (4 * d * d + 2 * d * f)  # self Q/K/V/O, FFN
    per_layer += 4 * joint * joint * d
    if c.text_dim is not None:
        per_layer += 2 * streams * tokens * 2 * d * d  # cross Q, O
        per_layer += 2 * streams * text_tokens * 2 * d * d  # cross K, V on the text
        per_layer += 4 * joint * text_tokens * d
    rest = 2 * streams * tokens * 2 * c.patch_numel * d  # patch embedding, output head
    rest += 2 * streams * frames * (c.freq_dim * d + d * d + d * 6 * d)  # time embedding
    if c.text_dim is not None:
        rest += 2 * text_tokens * (c.text_dim * d + d * d)  # text embedding (shared)
    return {"blocks": c.num_layers * per_layer, "rest": rest}


def count_flops(
    model: Any4DTransformer, latent: tuple[int, ...], frames: int, text_tokens: int
) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs of one sample on meta tensors, inputs as the trainer
    builds them: per-frame times (B, T', 1, 1), a context group's repeated frame index."""
    c = model.config
    channels, latent_frames, height, width = latent
    grid = (1, channels, frames, height, width)
    latents = {s: torch.randn(grid, device="meta") for s in c.streams}
    times = {s: torch.rand(1, frames, 1, 1, device="meta") for s in c.streams}
    index = list(range(latent_frames)) + [latent_frames - 1] * (frames - latent_frames)
    frame_index = torch.tensor(index, device="meta")
    text = None
    if text_tokens > 1 and c.text_dim is not None:
        text = torch.zeros(1, text_tokens, c.text_dim, device="meta")
    with FlopCounterMode(display=False) as counter:
        out = model(latents, times, text, frame_index=frame_index)
        forward = counter.get_total_flops()
        loss = sum((v.float() - latents[s]).square().mean() for s, v in out.items())
        loss.backward()  # elementwise loss terms: no FLOPs counted, as none are in the model
    return forward, counter.get_total_flops()


def size_report(args: argparse.Namespace) -> None:
    config = load_config(args.size_config)
    c = preset(config.model.preset, **config.model.overrides)
    channels, latent_frames, height, width = args.latent
    if channels != c.in_channels:
        raise ValueError(
            f"--latent has {channels} channels but the model has in_channels={c.in_channels}"
        )
    context = args.context_groups
    if context is None:  # prepare_micro_batch appends one when the temporal stride is > 1
        context = 1 if config.tokenizer.kind == "wan_vae" else 0
    frames = latent_frames + context
    p_t, p_h, p_w = c.patch_size
    tokens = frames // p_t * (height // p_h) * (width // p_w)
    text_tokens = max(args.text_tokens, 1)  # no text: the null embedding is one zero token
    with torch.device("meta"):
        model = Any4DTransformer(c)
    model.gradient_checkpointing = config.model.gradient_checkpointing
    streams = len(c.streams)

    named = dict(model.named_parameters())
    shared = {n: p for n, p in named.items() if n.startswith("text_embedding.")}
    specific = {n: p for n, p in named.items() if n not in shared}
    assert all(p.shape[0] == streams for p in specific.values()), "a weight without stream axis"
    total = sum(p.numel() for p in named.values())
    n_specific = sum(p.numel() for p in specific.values())
    print(
        f"\n{args.size_config}: model preset {config.model.preset!r}"
        f"{' (wan_path not read: same shape)' if config.model.wan_path else ''}, latent "
        f"{channels} × {latent_frames} × {height} × {width} + {context} context group(s) → "
        f"{tokens} tokens per stream, {streams * tokens} in the joint attention, text "
        f"{text_tokens} token(s); global batch {config.data.batch_size}, {config.precision}, "
        f"gradient checkpointing {model.gradient_checkpointing}"
    )
    print(
        f"  parameters {total / 1e9:.3f} B: stream-specific {n_specific / 1e9:.3f} B "
        f"({n_specific / streams / 1e9:.3f} B per stream × {streams}), shared "
        f"{(total - n_specific) / 1e6:.1f} M (text embedding)"
    )

    gpus = args.gpus
    sharded = sum(shard_numel(p, gpus) for p in named.values())
    print(
        f"  memory of parameters + gradients + AdamW (two fp32 moments), without activations; "
        f"FSDP2 over {gpus} GPUs: largest shard {sharded / 1e9:.3f} B elements "
        f"(= total / {total / sharded:.2f})"
    )
    print(f"    {'':44}{'bytes/param':>12}{'1 GPU GiB':>11}{f'per GPU ({gpus}) GiB':>20}")
    for label, params, grads in (
        ("fp32 master weights (this trainer, bf16 too)", 4, 4),
        ("bf16 parameters and gradients", 2, 2),
    ):
        per = params + grads + 8
        print(f"    {label:44}{per:12d}{total * per / 2**30:11.1f}{sharded * per / 2**30:20.1f}")
    block = sum(p.numel() for p in model.blocks[0].parameters())
    print(
        f"    + FSDP2 all-gathers whole blocks for compute: {block * 2 / 2**30:.2f} GiB per block "
        "in bf16 (its gradient as much again), about two blocks live with prefetch"
    )
    print("    activations: not computed here (meta tensors have no allocator to measure)")

    measured_forward, measured_step = count_flops(model, args.latent, frames, text_tokens)
    analytic = analytic_forward(c, tokens, frames, text_tokens)
    forward = analytic["blocks"] + analytic["rest"]
    recompute = analytic["blocks"] if model.gradient_checkpointing else 0
    step = 3 * forward + recompute  # backward ≈ 2 × forward, + one forward of every block
    batch = config.data.batch_size
    print(
        "  FLOPs per sample (FlopCounterMode on meta: matmuls and attention only) against "
        "the analytic count"
    )
    print(f"    {'':28}{'measured TFLOP':>15}{'analytic TFLOP':>15}{'ratio':>7}")
    rows = (("forward", measured_forward, forward), ("training step", measured_step, step))
    for label, measured, counted in rows:
        tflop = f"{measured / 1e12:15.2f}{counted / 1e12:15.2f}"
        print(f"    {label:28}{tflop}{measured / counted:7.3f}")
    label = f"step, global batch {batch}"
    print(f"    {label:28}{measured_step * batch / 1e12:15.1f}{step * batch / 1e12:15.1f}")
    attention = c.num_layers * 4 * (streams * tokens) ** 2 * c.dim
    print(
        f"    analytic forward: joint self-attention {attention / forward:.0%}, step / forward "
        f"{step / forward:.2f} (backward 2×{', + 1 recomputed forward' if recompute else ''})"
    )

    seconds = measured_step * batch / (gpus * args.mfu * args.peak_tflops * 1e12)
    print(
        f"  ESTIMATE, not a measurement: {gpus} × H100 at {args.mfu:.0%} MFU of "
        f"{args.peak_tflops:.0f} TFLOP/s (bf16 dense), counting the recomputed forward as work: "
        f"{seconds:.2f} s per step of {batch} samples, "
        f"{seconds * config.steps / 3600:.1f} h for the config's {config.steps} steps"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny-synthetic", help="named config or YAML")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="for --config")
    parser.add_argument("--device", default="cpu", help="where the --config run is timed")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size-config", default="wan2.1-1.3b", help="named config or YAML")
    parser.add_argument(
        "--latent",
        type=int,
        nargs=4,
        default=(16, 13, 30, 40),
        metavar=("C", "T", "H", "W"),
        help="latent clip (default: Wan VAE of 49 × 240 × 320 pixels)",
    )
    parser.add_argument(
        "--context-groups",
        type=int,
        default=None,
        help="extra latent frames the trainer appends (default: 1 for the Wan VAE, else 0)",
    )
    parser.add_argument("--text-tokens", type=int, default=0, help="0: no text (the trainer's)")
    parser.add_argument("--gpus", type=int, default=4, help="FSDP2 processes (paper: 4)")
    parser.add_argument("--mfu", type=float, default=0.4)
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE / 1e12)
    args = parser.parse_args()

    print(f"torch {torch.__version__}")
    measure_steps(
        load_config(args.config, args.overrides),
        args.warmup,
        args.repeats,
        torch.device(args.device),
    )
    size_report(args)


if __name__ == "__main__":
    main()
