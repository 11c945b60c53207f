"""The training loop: one process or many (torchrun), flat and readable top to bottom.

Each optimiser step takes the global batch's micro-batches of this process, normalises the loss
by the target counts of the **global** batch (summed over processes before any backward pass),
so the gradient equals that of one process with the whole batch; then clips, steps AdamW with a
linear warm-up, updates the EMA, logs and checkpoints. SIGTERM finishes the current step, saves
and exits; ``resume=True`` continues from the newest checkpoint exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from any4d.diffusion import flow_matching_loss
from any4d.model import Any4DTransformer, preset
from any4d.train.checkpoint import (
    existing_checkpoints,
    initial_weights,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from any4d.train.config import TokenizerSection, TrainConfig
from any4d.train.data import SlotDataset, SlotSampler, build_sources, micro_batches
from any4d.train.distributed import (
    Processes,
    all_reduce_sum,
    choose_strategy,
    init_processes,
    no_gradient_sync,
    shutdown,
    unwrap,
    wrap,
)
from any4d.train.step import loader_preparation, prepare_micro_batch


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its outputs: the last checkpoint, the metrics file, and the step."""

    checkpoint: Path | None
    metrics: Path
    step: int
    interrupted: bool


def build_tokenizer(section: TokenizerSection, device: torch.device):
    """The tokenizer a training config's ``tokenizer`` section describes."""
    from any4d.tokenize import build_tokenizer as build

    return build(section.kind, stride=section.stride, vae_path=section.vae_path,
                 stream_scales=section.stream_scales, device=device)  # fmt: skip


def build_model(config: TrainConfig, channels: int) -> Any4DTransformer:
    """The transformer of the config: from Wan weights, from an any4d model (fine-tuning), or a
    random init of the preset."""
    section = config.model
    model_config = preset(section.preset, **section.overrides)
    if section.wan_path is not None:
        model = Any4DTransformer.from_wan(section.wan_path, streams=model_config.streams)
    elif section.init_from is not None:
        model = Any4DTransformer(model_config)
        model.load_state_dict(initial_weights(section.init_from, model_config), strict=True)
    else:
        model = Any4DTransformer(model_config)
    if model.config.in_channels != channels:
        raise ValueError(
            f"model has in_channels={model.config.in_channels} but the tokenizer makes "
            f"{channels}-channel latents (set model.overrides.in_channels or the tokenizer)"
        )
    model.gradient_checkpointing = section.gradient_checkpointing
    return model


def build_text_encoder(config: TrainConfig, model: Any4DTransformer, device: torch.device):
    """The frozen umT5 of ``model.text_encoder`` (in bf16 under bf16 training), or None."""
    path = config.model.text_encoder
    if path is None:
        return None
    if model.config.text_dim is None:
        raise ValueError(
            f"model.text_encoder={path!r} but the model has no text conditioning (set "
            "model.overrides.text_dim to the encoder's width, or drop model.text_encoder)"
        )
    from any4d.tokenize.text import TextEncoder

    dtype = torch.bfloat16 if config.precision == "bf16" else None
    encoder = TextEncoder.from_pretrained(path, dtype=dtype, device=device)
    encoder.check_fits(model.config.text_dim, f"model.text_encoder={path!r}")
    encoder.encoder.requires_grad_(False)
    return encoder


# Parameters that are offsets or scales, not weight matrices: no weight decay (as DiT, GPT-2).
_NO_DECAY = ("bias", "norm", "modulation")


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on weight matrices; none on biases, norms and modulation tables."""
    decay, plain = [], []
    for name, parameter in model.named_parameters():
        (plain if any(part in name for part in _NO_DECAY) else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def learning_rate(config: TrainConfig, step: int) -> float:
    """The rate of optimiser step ``step`` (0-based): linear warm-up over ``warmup_steps``, then
    constant (the paper's schedule) or a cosine from ``lr`` to ``min_lr`` at step ``steps``."""
    optim = config.optim
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return optim.lr
    progress = min(1.0, (step - optim.warmup_steps) / max(1, config.steps - optim.warmup_steps))
    return optim.min_lr + (optim.lr - optim.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class _StopFlag:
    """Set by SIGTERM: the loop saves after the current step and returns."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, signum, frame) -> None:
        self.raised = True


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or continue) the training run described by ``config``."""
    processes = init_processes()
    try:
        return _train(config, resume, progress, processes)
    finally:
        shutdown(processes)


def _train(config: TrainConfig, resume: bool, progress: bool, processes: Processes):
    device = processes.device
    torch.manual_seed(config.seed)  # the random init: the same on every process
    tokenizer = build_tokenizer(config.tokenizer, device)
    model = build_model(config, tokenizer.latent_channels).to(device)
    text_encoder = build_text_encoder(config, model, device)
    streams = list(model.config.streams)
    strategy = choose_strategy(config.strategy, model, processes)
    wrapped = wrap(model, strategy, processes, config.precision)
    optimizer = torch.optim.AdamW(
        parameter_groups(wrapped, config.optim.weight_decay),
        lr=config.optim.lr,
        betas=config.optim.betas,
    )
    ema = None
    if config.ema_decay is not None:
        ema = {n: p.detach().clone().float() for n, p in unwrap(wrapped).named_parameters()}

    start, last_checkpoint = 0, None
    if resume:
        directory = latest_checkpoint(config)
        resumed = load_checkpoint(directory, config=config, model=wrapped, optimizer=optimizer,
                                  ema=ema, processes=processes)  # fmt: skip
        start, last_checkpoint = resumed.step, directory
    elif existing_checkpoints(config):
        raise ValueError(
            f"{Path(config.output_dir) / 'checkpoints'} already holds checkpoints: pass --resume "
            "to continue that run, or choose another output_dir (nothing is overwritten)"
        )

    noise = config.noise.noise_config()
    sources = build_sources(config.data, tokenizer.temporal_stride)
    clip = config.data.clip_shape()  # recorded in every checkpoint, for pipelines built from it
    sampler = SlotSampler(config.data.batch_size, processes.world, processes.rank,
                          config.accumulation, start, config.steps)  # fmt: skip
    prepare = loader_preparation(config.tokenizer.kind, text_encoder, tokenizer=tokenizer,
                                 streams=streams, noise=noise, seed=config.seed)  # fmt: skip
    batches = micro_batches(SlotDataset(sources, config.seed), sampler, config.data.num_workers,
                            prepare, pin_memory=device.type == "cuda")  # fmt: skip

    output = Path(config.output_dir)
    metrics_path = output / "metrics.jsonl"
    writer = board = None
    if processes.main:
        output.mkdir(parents=True, exist_ok=True)
        writer = metrics_path.open("a")
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            board = SummaryWriter(output / "tensorboard")
    stop = _StopFlag()
    try:
        previous_handler = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (e.g. a notebook worker): no SIGTERM saving
        previous_handler = None
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if config.precision == "bf16"
        else contextlib.nullcontext()
    )
    bar = tqdm(total=config.steps, initial=start, disable=not (progress and processes.main),
               desc="training", dynamic_ncols=True)  # fmt: skip
    step = start
    try:
        while step < config.steps:
            started = time.perf_counter()
            micro = []
            for _ in range(config.accumulation):
                if prepare is not None:
                    micro.append(next(batches).to(device, non_blocking=True))
                    continue
                slots, scenes = next(batches)
                micro.append(prepare_micro_batch(
                    scenes, slots, step, tokenizer=tokenizer, streams=streams, noise=noise,
                    seed=config.seed, device=device, text_encoder=text_encoder,
                ))  # fmt: skip
            local = torch.tensor([[sum(m.counts[s] for m in micro) for s in streams]],
                                 dtype=torch.float64, device=device)  # fmt: skip
            counts = dict(zip(streams, all_reduce_sum(local, processes)[0].tolist(), strict=True))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)

            sums = torch.zeros(len(streams), dtype=torch.float64, device=device)
            for index, batch in enumerate(micro):
                last = index == len(micro) - 1
                sync = contextlib.nullcontext() if last else no_gradient_sync(wrapped, strategy)
                with sync:
                    with autocast:
                        prediction = wrapped(batch.noisy, batch.model_times, text=batch.text,
                                             frame_index=batch.frame_index)  # fmt: skip
                    terms = flow_matching_loss(
                        prediction, batch.latents, batch.noise, batch.states,
                        weights=config.noise.stream_weights, pixel_weights=batch.pixel_weights,
                        denominators=counts, channel_weights=batch.channel_weights,
                    )  # fmt: skip
                    # Data-parallel wrappers average gradients over processes: undo it, since
                    # the loss is already normalised by the global batch.
                    (terms.total * processes.world).backward()
                sums += torch.stack([terms.sums[s].sum().double() for s in streams])
            grad_norm = torch.nn.utils.clip_grad_norm_(wrapped.parameters(), config.optim.grad_clip)
            if hasattr(grad_norm, "full_tensor"):
                grad_norm = grad_norm.full_tensor()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                with torch.no_grad():
                    for name, parameter in unwrap(wrapped).named_parameters():
                        ema[name].lerp_(parameter.detach().float(), 1 - config.ema_decay)
            step += 1

            sums = all_reduce_sum(sums, processes)
            per_stream = {
                s: (float(sums[i]) / counts[s] if counts[s] > 0 else None)
                for i, s in enumerate(streams)
            }
            loss = sum(config.noise.stream_weights.get(s, 0.0) * (v or 0.0)
                       for s, v in per_stream.items())  # fmt: skip
            elapsed = time.perf_counter() - started
            tokens = config.data.batch_size * len(streams) * _tokens(micro[0], model.config)
            record = {
                "step": step,
                "loss": loss,
                **{f"loss_{s}": v for s, v in per_stream.items()},
                "lr": learning_rate(config, step - 1),
                "grad_norm": float(grad_norm),
                "tokens_per_s": tokens / elapsed,
                "seconds": elapsed,
                "memory_gb": _memory_gb(device),
            }
            if processes.main and (step % config.log_every == 0 or step == config.steps):
                writer.write(json.dumps(record) + "\n")
                writer.flush()
                if board is not None:
                    for key, value in record.items():
                        if isinstance(value, float):
                            board.add_scalar(key, value, step)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            stop_now = _agree(stop.raised, processes)
            if step % config.checkpoint_every == 0 or step == config.steps or stop_now:
                last_checkpoint = save_checkpoint(
                    config=config, model=wrapped, inner=unwrap(wrapped), optimizer=optimizer,
                    ema=ema, step=step, trainer_state={"world": processes.world,
                                                       "strategy": strategy, "clip": clip},
                    processes=processes,
                )  # fmt: skip
            if stop_now:
                break
    finally:
        bar.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        if writer is not None:
            writer.close()
        if board is not None:
            board.close()
    return TrainResult(last_checkpoint, metrics_path, step, interrupted=step < config.steps)


def _tokens(batch, config) -> int:
    """Tokens per sample and stream of a micro-batch."""
    _, _, t, h, w = batch.latents["rgb"].shape
    p_t, p_h, p_w = config.patch_size
    return (t // p_t) * (h // p_h) * (w // p_w)


def _memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB → GB (Linux)


def _agree(flag: bool, processes: Processes) -> bool:
    """True on every process when any process got SIGTERM (they must save together)."""
    if not processes.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=processes.device)
    return bool(all_reduce_sum(value, processes)[0] > 0)
