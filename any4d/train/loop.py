"""The training loop: one process or many (torchrun), flat and readable top to bottom.

Each optimiser step takes the global batch's micro-batches of this process, normalises the loss
by the target counts of the **global** batch (summed over processes before any backward pass),
so the gradient equals that of one process with the whole batch; then clips, steps AdamW with a
linear warm-up, updates the EMA, logs and checkpoints. SIGTERM finishes the current step, saves
and exits; ``resume=True`` continues from the newest checkpoint exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from any4d.diffusion import LossTerms, flow_matching_loss
from any4d.model import Any4DTransformer, preset
from any4d.train.cache import cache_spec, open_cache
from any4d.train.checkpoint import (
    existing_checkpoints,
    initial_weights,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from any4d.train.config import TrainConfig
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
from any4d.train.step import MicroBatch, micro_batch_stream


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its outputs: the last checkpoint, the metrics file, and the step."""

    checkpoint: Path | None
    metrics: Path
    step: int
    interrupted: bool


def build_model(config: TrainConfig, channels: int) -> Any4DTransformer:
    """The transformer of the config: from Wan weights, from an any4d model (fine-tuning), or a
    random init of the preset."""
    section = config.model
    model_config = preset(section.preset, **section.overrides)
    if section.wan_path is not None:
        model = Any4DTransformer.from_wan(section.wan_path, streams=model_config.streams)
        _check_wan_architecture(section, model_config, model.config)
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


def _check_wan_architecture(section, wanted, loaded) -> None:
    """A Wan start fixes the architecture: the preset and its overrides must describe the
    checkpoint (only ``streams`` is chosen freely), else the run would train and record a model
    other than the one it names."""
    differences = []
    for field in dataclasses.fields(wanted):
        name = field.name
        ours, theirs = getattr(wanted, name), getattr(loaded, name)
        if name == "streams" or ours == theirs:
            continue
        where = (
            f"model.overrides.{name}={ours!r}"
            if name in section.overrides
            else f"model.preset={section.preset!r} has {name}={ours!r}"
        )
        differences.append(f"{where} but the checkpoint has {theirs!r}")
    if differences:
        raise ValueError(
            f"model.wan_path={section.wan_path!r} fixes the architecture: "
            + "; ".join(differences)
            + " (drop those overrides, or choose the preset the checkpoint is)"
        )


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


def _check_captions(config: TrainConfig, text_encoder) -> None:
    """Sources that list "text" need a text encoder (or a cache with caption features): their
    captions would otherwise be dropped without a word."""
    if text_encoder is not None:
        return
    captioned = [s["name"] for s in cache_spec(config)["sources"] if "text" in s["modalities"]]
    if captioned:
        raise ValueError(
            f"data sources {captioned} list 'text' but model.text_encoder is not set, so their "
            "captions would be ignored: set model.text_encoder=DIR (umT5's text_encoder/ + "
            "tokenizer/, e.g. the Wan2.1 diffusers release) or drop 'text' from their modalities"
        )


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


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or continue) the training run described by ``config``."""
    # Absolute, checked paths: the checkpoints record them and load from any directory.
    config = config.with_absolute_paths()
    processes = init_processes()
    try:
        return _train(config, resume, progress, processes)
    finally:
        shutdown(processes)


def _train(config: TrainConfig, resume: bool, progress: bool, processes: Processes) -> TrainResult:
    device = processes.device
    torch.manual_seed(config.seed)  # the random init: the same on every process
    cache = open_cache(config)  # a latent cache: no VAE and no text encoder in this process
    tokenizer = config.tokenizer.build(device) if cache is None else cache.tokenizer()
    model = build_model(config, tokenizer.latent_channels).to(device)
    if cache is None:
        text_encoder = build_text_encoder(config, model, device)
    else:
        text_encoder = cache.text()
        if text_encoder is not None:
            text_encoder.check_fits(
                model.config.text_dim, f"data.cache={config.data.cache!r}'s captions"
            )
    _check_captions(config, text_encoder)
    streams = list(model.config.streams)
    if config.compile:
        model.compile_blocks()  # before wrapping: FSDP2 shards the compiled blocks
    strategy = choose_strategy(config.strategy, model, processes)
    model = wrap(model, strategy, processes, config.precision)
    raw_model = unwrap(model)  # the Any4DTransformer: its config, the EMA and checkpoint keys
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.optim.weight_decay),
        lr=config.optim.lr,
        betas=config.optim.betas,
    )
    ema = None
    if config.ema_decay is not None:
        ema = {n: p.detach().clone().float() for n, p in raw_model.named_parameters()}
    step, last_checkpoint = _starting_point(config, resume, model, optimizer, ema, processes)
    batches = micro_batch_stream(config, tokenizer, text_encoder, streams, step, processes, cache)
    # Saved in every checkpoint; the clip shape is for pipelines built from it.
    clip = config.data.clip_shape()
    trainer_state = {"world": processes.world, "strategy": strategy, "clip": clip}

    with contextlib.ExitStack() as resources:
        log = _metrics_log(config, processes, resources)
        stop = _stop_on_sigterm(resources)
        bar = tqdm(
            total=config.steps,
            initial=step,
            disable=not (progress and processes.main),
            desc="training",
            dynamic_ncols=True,
        )
        resources.enter_context(bar)
        while step < config.steps:
            started = time.perf_counter()
            micro = [next(batches) for _ in range(config.accumulation)]
            counts = _global_counts(micro, streams, processes)
            sums = torch.zeros(len(streams), dtype=torch.float64, device=device)
            for index, batch in enumerate(micro):
                last = index == len(micro) - 1  # reduce the gradients over processes once
                with contextlib.nullcontext() if last else no_gradient_sync(model, strategy):
                    terms = micro_batch_loss(model, batch, counts, config, device)
                    # Data-parallel wrappers average gradients over processes: undo it, since
                    # the loss is already normalised by the global batch.
                    (terms.total * processes.world).backward()
                sums += torch.stack([terms.sums[s].sum().double() for s in streams])
            grad_norm = optimizer_step(model, optimizer, config, step)
            if ema is not None:
                _update_ema(ema, raw_model, config.ema_decay)
            step += 1

            tokens = config.data.batch_size * len(streams) * _tokens(micro[0], raw_model.config)
            sums = all_reduce_sum(sums, processes)
            record = _record(config, step, sums, counts, grad_norm, started, tokens, device)
            if step % config.log_every == 0 or step == config.steps:
                log(record)
            bar.update(1)
            if record["loss"] is not None:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            stop_now = _agree(stop.raised, processes)
            if step % config.checkpoint_every == 0 or step == config.steps or stop_now:
                last_checkpoint = save_checkpoint(
                    config=config,
                    model=model,
                    inner=raw_model,
                    optimizer=optimizer,
                    ema=ema,
                    step=step,
                    trainer_state=trainer_state,
                    processes=processes,
                )
            if stop_now:
                break
    metrics = Path(config.output_dir) / "metrics.jsonl"
    return TrainResult(last_checkpoint, metrics, step, interrupted=step < config.steps)


# ---------------------------------------------------------------------- set-up


def _starting_point(
    config: TrainConfig,
    resume: bool,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, Tensor] | None,
    processes: Processes,
) -> tuple[int, Path | None]:
    """The step to start at and its checkpoint. ``resume``: the newest checkpoint's, restored
    into ``model`` (wrapped), ``optimizer`` and ``ema``; else step 0, in an output_dir that must
    hold no checkpoints yet (nothing is overwritten)."""
    if resume:
        directory = latest_checkpoint(config)
        resumed = load_checkpoint(
            directory,
            config=config,
            model=model,
            optimizer=optimizer,
            ema=ema,
            processes=processes,
        )
        return resumed.step, directory
    if existing_checkpoints(config):
        raise ValueError(
            f"{Path(config.output_dir) / 'checkpoints'} already holds checkpoints: pass --resume "
            "to continue that run, or choose another output_dir (nothing is overwritten)"
        )
    return 0, None


def _metrics_log(
    config: TrainConfig, processes: Processes, resources: contextlib.ExitStack
) -> Callable[[dict], None]:
    """``log(record)``: on the main process, a line of ``output_dir/metrics.jsonl`` and, with
    ``config.tensorboard``, the record's floats in TensorBoard; closed with ``resources``. Other
    processes log nothing."""
    if not processes.main:
        return lambda record: None
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    writer = resources.enter_context((output / "metrics.jsonl").open("a"))
    board = None
    if config.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        board = resources.enter_context(SummaryWriter(output / "tensorboard"))

    def log(record: dict) -> None:
        writer.write(json.dumps(record) + "\n")
        writer.flush()
        if board is not None:
            for key, value in record.items():
                if isinstance(value, float):
                    board.add_scalar(key, value, record["step"])

    return log


class _StopFlag:
    """Set by SIGTERM: the loop saves after the current step and returns."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, signum, frame) -> None:
        self.raised = True


def _stop_on_sigterm(resources: contextlib.ExitStack) -> _StopFlag:
    """A flag SIGTERM raises from now on; the previous handler is back when ``resources`` close."""
    stop = _StopFlag()
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (e.g. a notebook worker): no SIGTERM saving
        return stop
    if previous is not None:  # None: a handler not installed from Python, which cannot be reset
        resources.callback(signal.signal, signal.SIGTERM, previous)
    return stop


# ---------------------------------------------------------------------- one optimiser step


def _global_counts(
    micro: Sequence[MicroBatch], streams: Sequence[str], processes: Processes
) -> dict[str, float]:
    """Stream → weighted target elements of the global batch (this process's micro-batches,
    summed over processes): the loss denominators, known before any backward pass."""
    local = [[sum(m.counts[s] for m in micro) for s in streams]]
    local = torch.tensor(local, dtype=torch.float64, device=processes.device)
    return dict(zip(streams, all_reduce_sum(local, processes)[0].tolist(), strict=True))


def precision_context(config: TrainConfig, device: torch.device):
    """bf16 autocast on ``device`` when the config trains in bf16; else nothing."""
    if config.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def micro_batch_loss(
    model: nn.Module,
    batch: MicroBatch,
    counts: dict[str, float],
    config: TrainConfig,
    device: torch.device,
) -> LossTerms:
    """The flow-matching loss of one micro-batch on ``device``, normalised by ``counts`` (stream
    → weighted target elements of the global batch), the forward in the config's precision."""
    with precision_context(config, device):
        prediction = model(
            batch.noisy, batch.model_times, text=batch.text, frame_index=batch.frame_index
        )
    return flow_matching_loss(
        prediction,
        batch.latents,
        batch.noise,
        batch.states,
        weights=config.noise.stream_weights,
        pixel_weights=batch.pixel_weights,
        denominators=counts,
        channel_weights=batch.channel_weights,
    )


def optimizer_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, step: int
) -> Tensor:
    """Clip the accumulated gradients to ``optim.grad_clip``, step AdamW at the rate of step
    ``step`` (0-based) and clear them. Returns the gradient norm before clipping (a scalar)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
        grad_norm = grad_norm.full_tensor()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def _update_ema(ema: dict[str, Tensor], model: nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 − decay)·weights``, in fp32, parameter by parameter."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            ema[name].lerp_(parameter.detach().float(), 1 - decay)


# ---------------------------------------------------------------------- logging


def _record(
    config: TrainConfig,
    step: int,
    sums: Tensor,
    counts: dict[str, float],
    grad_norm: Tensor,
    started: float,
    tokens: int,
    device: torch.device,
) -> dict:
    """The metrics of the optimiser step that ended at ``step``: ``loss``, the weighted mean of
    the per-stream losses over the streams with targets (comparable across steps); ``objective``,
    the weighted sum the step minimised; and each stream's (None where the global batch had no
    target of it), from ``sums`` (S,) summed
    squared errors over the global batch and ``counts``; the rate, the gradient norm, and the
    throughput of ``tokens`` since ``started`` (``time.perf_counter``)."""
    per_stream = {
        s: (float(sums[i]) / counts[s] if counts[s] > 0 else None) for i, s in enumerate(counts)
    }
    weights = config.noise.stream_weights
    # The objective sums the weighted losses of the streams this batch has targets of, so it
    # jumps with the batch's composition; "loss" is their weighted mean, which does not: equal
    # per-stream losses give the same "loss" whichever streams a batch happens to hold.
    present = {s: v for s, v in per_stream.items() if v is not None and weights.get(s, 0.0) > 0}
    objective = sum(weights[s] * v for s, v in present.items())
    total_weight = sum(weights[s] for s in present)
    loss = objective / total_weight if total_weight > 0 else None
    seconds = time.perf_counter() - started
    return {
        "step": step,
        "loss": loss,
        "objective": objective,
        **{f"loss_{s}": v for s, v in per_stream.items()},
        "lr": learning_rate(config, step - 1),
        "grad_norm": float(grad_norm),
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "memory_gb": _memory_gb(device),
    }


def _tokens(batch: MicroBatch, config) -> int:
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
