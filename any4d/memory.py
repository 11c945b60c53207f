"""Peak memory per component at a clip shape, computed on the meta device (nothing allocated).

Weights, gradients and optimiser state are counted from the parameters of the model built on the
meta device. Activations are the peak of the bytes live in tensors the computation creates,
followed op by op (``peak_bytes``: a dispatch mode that adds each new tensor storage and removes
it when its last tensor is freed) over one forward (inference) or one forward + backward
(training, parameters frozen so that only activations and their gradients are counted; the
parameter gradients are their own row). Attention is counted as the fused kernels run it
(flash attention: O(sequence) memory), not as the meta device's decomposition, which would
materialise the attention matrix.

The rows are per accelerator. Training: fp32 master weights, gradients, AdamW's two moments and
the optional EMA, each sharded 1/N by FSDP2 over N processes; the bf16 copies FSDP2 gathers for
the unit it runs (the root's, one block's and the next one's, prefetched) and a block's
unsharded gradients; activations of one micro-batch with and without gradient checkpointing.
Inference: the transformer's weights in the chosen dtype and one guided forward's activations;
the VAE's weights and decode; umT5's weights and one prompt's encode. Per-process overheads (the
CUDA context, NCCL buffers, the allocator's fragmentation) are not counted. ``measure_peak``
measures the same quantities on a real run (CUDA's allocator statistics; on the CPU the
process's peak resident set, reset first), which is how the estimate is checked at a reduced
size (tests, ``benchmarks/memory_table.py``).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GiB = 2**30

# umT5-XXL's encoder as Wan2.1 uses it (shared/WAN.md §umT5).
UMT5_XXL = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
}


@dataclass(frozen=True)
class Row:
    """One line of a memory table: a component, its bytes per accelerator, how it is counted."""

    component: str
    bytes: int
    note: str = ""

    @property
    def gib(self) -> float:
        return self.bytes / GiB


class _LiveBytes(TorchDispatchMode):
    """Follows the storages created inside it: ``now`` bytes live, ``peak`` the most."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage → [bytes, tensors still alive]
        self.now = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.now -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    self.live[key] = [storage.nbytes(), 0]
                    self.now += storage.nbytes()
                self.live[key][1] += 1
                weakref.finalize(tensor, self._release, key)
        self.peak = max(self.peak, self.now)
        return out


@contextlib.contextmanager
def _fused_attention():
    """``F.scaled_dot_product_attention`` on meta tensors as the flash kernel runs it (O(L)
    memory; the meta device would decompose it into the attention matrix). Swapped in the module
    for the duration, so that checkpointed blocks recomputed in backward see it too; other
    devices are passed through."""
    original = F.scaled_dot_product_attention

    def attention(q, k, v, *args, **kwargs):
        if q.device.type == "meta" and not args and not kwargs:
            return torch.ops.aten._scaled_dot_product_flash_attention(q, k, v)[0]
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def peak_bytes(fn: Callable[[], object]) -> int:
    """The peak bytes of the tensors ``fn`` creates and holds (its inputs and the tensors that
    exist before are not counted), followed op by op; on meta tensors nothing is allocated."""
    mode = _LiveBytes()
    with _fused_attention(), mode:
        result = fn()
        del result
    return mode.peak


def measure_peak(fn: Callable[[], object], device: torch.device) -> int:
    """The peak bytes allocated while ``fn`` runs, above what was allocated before: CUDA's
    allocator statistics, or on the CPU the rise of the process's peak resident set (Linux; reset
    first through ``/proc/self/clear_refs``), which counts only the pages touched — allocations
    of a few MB and more, as activations are, are mapped and returned page by page."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status("VmRSS")
    fn()
    return _status("VmHWM") - before


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def weight_bytes(module) -> int:
    """Bytes of ``module``'s parameters (meta ones too)."""
    return sum(p.numel() * p.element_size() for p in module.parameters())


def wan_latent(frames: int, height: int, width: int) -> tuple[int, int, int]:
    """The latent (T', H', W') of a clip under the Wan VAE's strides (4 in time, 8 in space)."""
    return 1 + (frames - 1) // 4, height // 8, width // 8


# ---------------------------------------------------------------------------- the transformer


def meta_model(config):
    """The four-stream transformer of ``config`` on the meta device."""
    from any4d.model import Any4DTransformer

    with torch.device("meta"):
        return Any4DTransformer(config)


def model_inputs(config, latent: tuple[int, int, int], context: int, batch: int, dtype, device):
    """(latents, times, frame_index) of ``batch`` clips of latent size (T', H', W') plus
    ``context`` context-group frames, as the trainer and the pipeline build them."""
    frames, height, width = latent
    total = frames + context
    latents = {
        s: torch.zeros(batch, config.in_channels, total, height, width, device=device, dtype=dtype)
        for s in config.streams
    }
    times = {s: torch.full((batch, total, 1, 1), 0.5, device=device) for s in config.streams}
    index = torch.tensor(list(range(frames)) + [frames - 1] * context, device=device)
    return latents, times, index


def activation_bytes(
    model,
    latent: tuple[int, int, int],
    *,
    context: int = 1,
    batch: int = 1,
    dtype: torch.dtype = torch.bfloat16,
    train: bool = False,
    checkpointing: bool = False,
) -> int:
    """Peak activation bytes of ``model`` (on any device; meta: computed) for ``batch`` clips of
    latent size ``latent``: one forward without gradients, or (``train``) forward + backward of
    the mean squared velocity with frozen parameters, with or without gradient checkpointing."""
    device = next(model.parameters()).device
    frozen = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    before = model.gradient_checkpointing
    model.gradient_checkpointing = checkpointing
    latents, times, index = model_inputs(model.config, latent, context, batch, dtype, device)

    def forward():
        with torch.no_grad():
            return model(latents, times, frame_index=index)

    def forward_backward():
        for x in latents.values():
            x.requires_grad_(True)
        out = model(latents, times, frame_index=index)
        loss = sum(v.float().square().mean() for v in out.values())
        loss.backward()
        for x in latents.values():
            x.grad = None

    try:
        return peak_bytes(forward_backward if train else forward)
    finally:
        model.gradient_checkpointing = before
        for p, flag in zip(model.parameters(), frozen, strict=True):
            p.requires_grad_(flag)


def _unit_counts(model) -> tuple[int, int]:
    """Parameters of the root unit (outside the blocks) and of the largest block."""
    total = sum(p.numel() for p in model.parameters())
    blocks = [sum(p.numel() for p in block.parameters()) for block in model.blocks]
    return total - sum(blocks), max(blocks)


def training_rows(
    config,
    latent: tuple[int, int, int],
    *,
    world: int = 1,
    context: int = 1,
    batch: int = 1,
    ema: bool = False,
    checkpointing: bool = True,
    activations: int | None = None,
) -> list[Row]:
    """Per-accelerator memory of a training step under FSDP2 over ``world`` processes (fp32
    master weights, bf16 compute, AdamW), one micro-batch of ``batch`` clips. activations:
    ``training_activations`` of the same settings when already counted (they do not depend on
    ``world``); None: counted here."""
    model = meta_model(config)
    count = sum(p.numel() for p in model.parameters())
    root, block = _unit_counts(model)
    shard = -(-count // world)
    rows = [
        Row("weights (fp32, sharded)", 4 * shard, f"{count / 1e9:.2f} B parameters / {world}"),
        Row("gradients (fp32, sharded)", 4 * shard, "reduce-scattered in fp32"),
        Row("AdamW moments (fp32, sharded)", 8 * shard, "exp_avg + exp_avg_sq"),
    ]
    if ema:
        rows.append(Row("EMA (fp32, sharded)", 4 * shard, "ema_decay set"))
    rows.append(
        Row(
            "gathered units",
            2 * (root + 2 * block) + 6 * block,
            "bf16 root + running block + prefetched one; a block's unsharded gradients, bf16 "
            "and their fp32 reduce-scatter copy",
        )
    )
    if activations is None:
        activations = training_activations(
            config, latent, context=context, batch=batch, checkpointing=checkpointing
        )
    label = "with" if checkpointing else "without"
    rows.append(Row(f"activations ({label} checkpointing)", activations, f"batch {batch}, bf16"))
    return rows


def training_activations(
    config, latent: tuple[int, int, int], *, context: int = 1, batch: int = 1,
    checkpointing: bool = True,
) -> int:  # fmt: skip
    """Activation bytes of one training micro-batch, bf16 compute (FSDP2's param_dtype)."""
    model = meta_model(config).to(torch.bfloat16)
    return activation_bytes(
        model, latent, context=context, batch=batch, train=True, checkpointing=checkpointing
    )


def inference_rows(
    config,
    latent: tuple[int, int, int],
    *,
    context: int = 1,
    batch: int = 2,
    dtype: torch.dtype = torch.bfloat16,
) -> list[Row]:
    """The transformer at inference: weights in ``dtype`` and the activations of one forward of
    ``batch`` (2: one candidate under history guidance)."""
    model = meta_model(config).to(dtype)
    count = sum(p.numel() for p in model.parameters())
    activations = activation_bytes(model, latent, context=context, batch=batch, dtype=dtype)
    name = str(dtype).removeprefix("torch.")
    return [
        Row(
            f"transformer weights ({name})", weight_bytes(model), f"{count / 1e9:.2f} B parameters"
        ),
        Row("transformer activations", activations, f"one forward of batch {batch}"),
    ]


# ------------------------------------------------------------------------- the VAE and umT5


def vae_rows(
    frames: int, height: int, width: int, *, dtype=torch.float32, tiling: bool = False, vae=None,
    work: bool = True,
) -> list[Row]:  # fmt: skip
    """The Wan2.1 VAE (``AutoencoderKLWan``'s default config unless ``vae`` is given): weights,
    and (``work``) the peak of decoding one clip of ``frames`` × ``height`` × ``width``, tiled
    or not. A given ``vae`` is cast to ``dtype``; its tiling setting is left as it was."""
    if vae is None:
        from diffusers import AutoencoderKLWan

        with torch.device("meta"):
            vae = AutoencoderKLWan()
    vae = vae.to(dtype)
    count = sum(p.numel() for p in vae.parameters())
    weights = Row("VAE weights", weight_bytes(vae), f"{count / 1e6:.0f} M parameters")
    if not work:
        return [weights]
    config = vae.config
    t = 1 + (frames - 1) // int(config.scale_factor_temporal)
    stride = int(config.scale_factor_spatial)
    z = torch.zeros(1, config.z_dim, t, height // stride, width // stride, dtype=dtype)
    z = z.to(next(vae.parameters()).device)

    def decode():
        with torch.no_grad():
            return vae.decode(z).sample

    was_tiling = vae.use_tiling
    vae.use_tiling = False
    if tiling:
        vae.enable_tiling()
    try:
        decoded = peak_bytes(decode)
    finally:
        vae.use_tiling = was_tiling
    label = "tiled" if tiling else "untiled"
    return [weights, Row(f"VAE decode ({label})", decoded, f"{frames} × {height} × {width}")]


def umt5_rows(
    *, dtype=torch.bfloat16, tokens: int = 512, config: dict | None = None, work: bool = True
) -> list[Row]:
    """umT5-XXL's encoder (``config``: a ``UMT5Config``'s fields): weights and (``work``) one
    prompt's encode of ``tokens`` tokens."""
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        encoder = UMT5EncoderModel(UMT5Config(**(config or UMT5_XXL))).to(dtype)
    encoder.eval()
    count = sum(p.numel() for p in encoder.parameters())
    weights = Row("umT5 weights", weight_bytes(encoder), f"{count / 1e9:.2f} B parameters")
    if not work:
        return [weights]
    ids = torch.zeros(1, tokens, dtype=torch.long, device="meta")

    def encode():
        with torch.no_grad():
            return encoder(input_ids=ids).last_hidden_state  # every token valid: the most work

    return [weights, Row("umT5 encode", peak_bytes(encode), f"one prompt of {tokens} tokens")]


# ----------------------------------------------------------------------------- whole tables


@dataclass(frozen=True)
class Table:
    """Rows, the peak they make (``peak_note``: which rows are resident at the peak)."""

    title: str
    rows: list[Row]
    peak: int
    peak_note: str

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| component | GiB | counted as |", "|---|---:|---|"]
        lines += [f"| {r.component} | {r.gib:.2f} | {r.note} |" for r in self.rows]
        lines.append(f"| **peak** | **{self.peak / GiB:.2f}** | {self.peak_note} |")
        return "\n".join(lines)


def inference_table(
    config,
    frames: int = 49,
    height: int = 240,
    width: int = 320,
    *,
    low_memory: bool = False,
    guidance: bool = True,
    text: bool = True,
    vae=None,
    umt5: dict | None = None,
) -> Table:
    """One sampled clip on one accelerator. Default pipeline: fp32 transformer weights and
    compute, the VAE and umT5 resident beside it. ``low_memory`` (``enable_low_memory``): bf16
    transformer, each phase's weights on the accelerator only for that phase, tiled VAE."""
    latent = wan_latent(frames, height, width)
    dtype = torch.bfloat16 if low_memory else torch.float32
    model = inference_rows(config, latent, batch=2 if guidance else 1, dtype=dtype)
    vae_part = vae_rows(frames, height, width, tiling=low_memory, vae=vae)
    text_part = umt5_rows(config=umt5) if text else []
    rows = model + vae_part + text_part
    weights = [r.bytes for r in (model[0], vae_part[0])]
    work = [model[1].bytes, vae_part[1].bytes]
    if low_memory:
        sampling = sum(weights) + max(work)
        encoding = sum(r.bytes for r in text_part)
        peak = max(sampling, encoding)
        note = (
            "max(transformer + VAE + the larger of their work, umT5 + its encode): one phase "
            "on the accelerator at a time"
        )
    else:
        resident = sum(weights) + (text_part[0].bytes if text else 0)
        peak = resident + max(work + ([text_part[1].bytes] if text else []))
        note = "every weight resident + the largest work"
    title = (
        f"inference, {frames} × {height} × {width}, "
        f"{'low-memory mode' if low_memory else 'default pipeline'}"
    )
    return Table(title, rows, peak, note)


def training_table(
    config,
    frames: int = 49,
    height: int = 240,
    width: int = 320,
    *,
    world: int = 1,
    checkpointing: bool = True,
    ema: bool = False,
    batch: int = 1,
    encoders: bool = False,
    vae=None,
    umt5: dict | None = None,
    activations: int | None = None,
) -> Table:
    """One training step per accelerator under FSDP2 over ``world``; ``encoders``: the VAE and
    umT5 resident beside the model (encoding on the fly) — none with ``data.cache``.
    activations: as for ``training_rows``."""
    latent = wan_latent(frames, height, width)
    rows = training_rows(
        config, latent, world=world, batch=batch, ema=ema, checkpointing=checkpointing,
        activations=activations,
    )  # fmt: skip
    if encoders:
        rows += vae_rows(frames, height, width, vae=vae, work=False)
        rows += umt5_rows(config=umt5, work=False)
    peak = sum(r.bytes for r in rows)
    title = (
        f"training, {frames} × {height} × {width}, batch {batch}, FSDP2 over {world}, "
        f"{'with' if checkpointing else 'without'} checkpointing, "
        f"{'encoding on the fly' if encoders else 'from a cache'}"
    )
    return Table(title, rows, peak, "sum of the rows")


# ------------------------------------------------------------------- measuring the estimate

# The runs the estimate is checked on: (label, train, checkpointing).
RUNS = (
    ("forward (no grad)", False, False),
    ("forward + backward", True, False),
    ("forward + backward, checkpointing", True, True),
)


def measured_activations(preset_name: str, overrides: dict, latent: tuple[int, int, int]) -> dict:
    """label → peak activation bytes measured on this CPU for each of ``RUNS`` (fp32, batch 1),
    of ``preset(preset_name, **overrides)``: in a fresh process whose glibc maps every
    allocation of 64 KiB or more on its own and unmaps it when freed, so that its peak resident
    set follows the live tensors; each run once first (loading kernels is not its memory)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import any4d

    code = (
        "import json, sys; from any4d.memory import _measure_here; "
        "print(json.dumps(_measure_here(*json.loads(sys.argv[1]))))"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536")
    root = str(Path(any4d.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    argument = json.dumps([preset_name, overrides, list(latent)])
    result = subprocess.run(
        [sys.executable, "-c", code, argument], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"the measuring process failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _measure_here(preset_name: str, overrides: dict, latent: list[int]) -> dict:
    from any4d.model import Any4DTransformer, preset

    torch.manual_seed(0)
    model = Any4DTransformer(preset(preset_name, **overrides))
    out = {}
    for label, train, checkpointing in RUNS:

        def run(train=train, checkpointing=checkpointing):
            activation_bytes(
                model, tuple(latent), dtype=torch.float32, train=train,
                checkpointing=checkpointing,
            )  # fmt: skip

        run()
        out[label] = measure_peak(run, torch.device("cpu"))
    return out
