"""``Any4DTransformer``: the four-stream Mixture-of-Transformers DiT built from Wan2.1 blocks.

Call (DESIGN §4)::

    velocities = model(latents, t, text=None, frame_index=None)

``latents`` maps stream name → ``(B, C, T', H', W')``; ``t`` maps the same names → flow time in
``[0, 1]`` per token, ``(B, T'/p_t, H'/p_h, W'/p_w)`` or anything broadcastable to it (``(B,)``
and a float mean one time per sample); the result maps each input stream to a velocity of its
latent's shape. Any subset of the model's streams may be given.

Names: a stream's *name* (``"rgb"``, …) is what callers see; inside, ``index`` selects the
weights of the streams present on the stacked stream axis (``layers``). ``temb`` is the time
embedding (the head's modulation input, as in diffusers); ``time_modulation`` its projection to
the blocks' six adaLN vectors (Wan's ``e0``, diffusers' ``timestep_proj``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from any4d.model.block import MoTBlock
from any4d.model.config import STREAMS, TransformerConfig
from any4d.model.layers import (
    StreamIndex,
    StreamLinear,
    fp32_layer_norm,
    modulate,
    modulation_chunks,
    timestep_features,
)
from any4d.model.rope import rope_angles


class TimeEmbedding(nn.Module):
    """Per stream: sinusoid(1000·t) → Linear → SiLU → Linear = ``temb``;
    SiLU → Linear = ``time_modulation``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.freq_dim = config.freq_dim
        self.linear_1 = StreamLinear(num, config.freq_dim, dim)
        self.linear_2 = StreamLinear(num, dim, dim)
        self.projection = StreamLinear(num, dim, 6 * dim)

    def forward(self, t: Tensor, index: StreamIndex) -> tuple[Tensor, Tensor]:
        """t: (S, b, t, h, w) flow times. Returns float32 ``temb`` (S, b, t, h, w, D) and
        ``time_modulation`` (S, b, t, h, w, 6, D)."""
        shape = t.shape
        features = timestep_features(t, self.freq_dim).flatten(1, -2)  # (S, M, freq_dim)
        # Wan computes the time path in float32 with autocast off; so do we.
        no_autocast = (
            torch.autocast(device_type=t.device.type, enabled=False)
            if t.device.type != "meta"
            else contextlib.nullcontext()
        )
        with no_autocast:
            weights = self.linear_1.weight.dtype
            temb = self.linear_2(F.silu(self.linear_1(features.to(weights), index)), index)
            time_modulation = self.projection(F.silu(temb), index)
        dim = temb.shape[-1]
        return temb.float().view(*shape, dim), time_modulation.float().view(*shape, 6, dim)


class OutputHead(nn.Module):
    """LayerNorm → adaLN from ``temb`` (shift, scale; no gate) → Linear to patch values."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.eps = config.eps
        self.modulation = nn.Parameter(torch.randn(num, 2, dim) / dim**0.5)
        self.linear = StreamLinear(num, dim, config.patch_numel)

    def forward(self, x: Tensor, temb: Tensor, index: StreamIndex) -> Tensor:
        """x: (S, B, T', H', W', D); temb: (S, b, t, h, w, D). Returns (S, B, T', H', W', P)."""
        shift, scale = modulation_chunks(self.modulation, index, temb.unsqueeze(-2))
        h = modulate(fp32_layer_norm(x, self.eps), shift, scale).type_as(x)
        return self.linear(h.flatten(1, -2), index).unflatten(1, x.shape[1:-1])


def _time_grid(t: Tensor | float, device: torch.device) -> Tensor:
    """One stream's flow time as float32 (b, t, h, w), broadcastable to (B, T', H', W')."""
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    return t.view(-1, 1, 1, 1) if t.dim() <= 1 else t  # (B,) or a float: one time per sample


class Any4DTransformer(nn.Module):
    """Wan2.1 DiT with one copy of every weight per stream and one shared self-attention.

    Build it from a config (random init, Wan's scheme), from a Wan2.1 checkpoint
    (``from_wan``) or from our own checkpoint (``from_pretrained``).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config must be a TransformerConfig, got {type(config).__name__}")
        self.config = config
        num, dim = len(config.streams), config.dim
        self.patch_embedding = StreamLinear(num, config.patch_numel, dim)
        self.time_embedding = TimeEmbedding(config)
        if config.text_dim is not None:  # shared: the text is the same for every stream
            self.text_embedding = nn.Sequential(
                nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
            )
        else:
            self.text_embedding = None
        self.blocks = nn.ModuleList(MoTBlock(config) for _ in range(config.num_layers))
        self.head = OutputHead(config)
        self.gradient_checkpointing = False
        self._init_like_wan()

    def _init_like_wan(self) -> None:
        """Wan's ``init_weights``: Xavier linears (StreamLinear's default), normal(0.02) time and
        text embeddings, a zero output layer (so a fresh model predicts zero velocity)."""
        if self.head.linear.weight.is_meta:
            return
        for layer in (self.time_embedding.linear_1, self.time_embedding.linear_2):
            layer.reset_parameters(std=0.02)
        if self.text_embedding is not None:
            for layer in (self.text_embedding[0], self.text_embedding[2]):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.head.linear.weight)

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def from_wan(
        cls,
        path: str | Path,
        streams: tuple[str, ...] = STREAMS,
        *,
        config: TransformerConfig | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> Any4DTransformer:
        """Every stream initialised as a copy of a local Wan2.1 transformer (see ``wan_import``)."""
        from any4d.model.wan_import import load_wan

        return load_wan(cls, path, streams=streams, config=config, dtype=dtype, device=device)

    def compile_blocks(self, **options) -> Any4DTransformer:
        """Compile each transformer block in place with ``torch.compile`` (``options``: its
        keyword arguments, e.g. ``mode="max-autotune"``). Per block, as FSDP2 shards them:
        parameter names and checkpoints are unchanged, and one compiled graph serves every
        block of the same shapes. Returns the model."""
        for block in self.blocks:
            block.compile(**options)
        return self

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (atomically) into ``directory``."""
        from any4d.model.checkpoint import save_pretrained

        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
    ) -> Any4DTransformer:
        """Load what ``save_pretrained`` wrote; every key must match."""
        from any4d.model.checkpoint import from_pretrained

        return from_pretrained(cls, directory, dtype=dtype, device=device)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        latents: dict[str, Tensor],
        t: dict[str, Tensor | float],
        text: Tensor | None = None,
        frame_index: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Velocities of every stream given.

        latents:     stream → (B, C, T', H', W'), the same (B, T', H', W') for every stream.
        t:           stream → flow time, (B, T'/p_t, H'/p_h, W'/p_w) or broadcastable to it,
                     or (B,), or a float. Same keys as ``latents``.
        text:        (B, L_text, text_dim) text features (zero rows = no text, like Wan's
                     padding), or None: the null embedding (all-zero features) for every sample.
        frame_index: (T'/p_t,) integer RoPE time position of each latent frame; default
                     ``arange``. Extra context groups repeat the index of the frame they hold.
        Returns stream → (B, C, T', H', W') in the model's stream order, in the latents' dtype
        (latents are cast to the weights' dtype: a bf16 model takes the sampler's fp32 latents).
        """
        config = self.config
        self._check_inputs(latents, t, text, frame_index)
        names = [name for name in config.streams if name in latents]
        dtype = latents[names[0]].dtype
        weights = self.patch_embedding.weight.dtype
        patches = self.patchify(
            [latents[name].to(weights) for name in names]
        )  # (S, B, T', H', W', P)
        batch, frames, height, width = patches.shape[1:-1]  # the token grid, from here on
        index = self._weight_index(names, patches.device)
        x = self.patch_embedding(patches.flatten(1, -2), index)  # (S, B·T'·H'·W', D)
        x = x.unflatten(1, patches.shape[1:-1])  # (S, B, T', H', W', D)
        times = [_time_grid(t[name], x.device) for name in names]  # (b, t, h, w) each
        times = torch.stack(torch.broadcast_tensors(*times))  # (S, b, t, h, w)
        temb, time_modulation = self.time_embedding(times, index)  # (S, b, t, h, w, [6,] D)
        context = self._embed_text(text, batch, x.device)  # (B, L_text, D) or None
        if frame_index is None:
            frame_index = torch.arange(frames, device=x.device)
        frame_index = torch.as_tensor(frame_index, device=x.device)  # (T',)
        rope = rope_angles(frame_index, height, width, config.rope_dims, config.rope_theta)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, time_modulation, index, rope, context, use_reentrant=False)
            else:
                x = block(x, time_modulation, index, rope, context)  # (S, B, T', H', W', D)
        x = self.head(x, temb, index)  # (S, B, T', H', W', P)
        return {name: y.to(dtype) for name, y in zip(names, self.unpatchify(x), strict=True)}

    def patchify(self, latents: list[Tensor]) -> Tensor:
        """S latents (B, C, T, H, W) → patches (S, B, T/p_t, H/p_h, W/p_w, P), the values of a
        patch ordered (C, p_t, p_h, p_w) as Wan's Conv3d patch embedding reads them."""
        p_t, p_h, p_w = self.config.patch_size
        pattern = "b c (t pt) (h ph) (w pw) -> b t h w (c pt ph pw)"
        return torch.stack([rearrange(x, pattern, pt=p_t, ph=p_h, pw=p_w) for x in latents])

    def unpatchify(self, x: Tensor) -> list[Tensor]:
        """Head output (S, B, T', H', W', P) → S latents (B, C, T'·p_t, H'·p_h, W'·p_w), the
        values of a patch ordered (p_t, p_h, p_w, C) as Wan's head writes them (not
        ``patchify``'s order)."""
        p_t, p_h, p_w = self.config.patch_size
        pattern = "b t h w (pt ph pw c) -> b c (t pt) (h ph) (w pw)"
        return [rearrange(y, pattern, pt=p_t, ph=p_h, pw=p_w) for y in x]

    def _weight_index(self, names: list[str], device: torch.device) -> StreamIndex:
        """The weights of the streams ``names`` (in model order) on the stacked stream axis: a
        slice (a view) when they are consecutive, else an index tensor."""
        indices = [self.config.streams.index(name) for name in names]
        if indices == list(range(indices[0], indices[-1] + 1)):
            return slice(indices[0], indices[-1] + 1)
        return torch.tensor(indices, device=device)

    def _embed_text(self, text: Tensor | None, batch: int, device: torch.device) -> Tensor | None:
        """(B or 1, L_text, text_dim) → (B, L_text, D); None → the null embedding; None for a
        model without text."""
        if self.text_embedding is None:
            return None
        if text is None:
            # Wan pads the text with zeros and attends to every position: an all-zero context
            # of any length gives the same cross-attention output, so one token suffices.
            text = torch.zeros(batch, 1, self.config.text_dim, device=device)
        weight = self.text_embedding[0].weight
        return self.text_embedding(text.to(weight.dtype)).expand(batch, -1, -1)

    # ------------------------------------------------------------------ input checks

    def _check_inputs(self, latents, t, text, frame_index) -> None:
        """A ValueError naming the argument, its value and what was expected, for any input
        ``forward`` cannot take (see its docstring)."""
        config = self.config
        if not isinstance(latents, dict) or not latents:
            raise ValueError("latents must be a non-empty dict of stream name → (B, C, T, H, W)")
        if not isinstance(t, dict):
            raise ValueError(f"t must be a dict of stream name → flow time, got {type(t).__name__}")
        for name in latents:
            if name not in STREAMS:
                raise ValueError(f"unknown stream {name!r} in latents (expected {list(STREAMS)})")
            if name not in config.streams:
                raise ValueError(
                    f"stream {name!r} in latents but the model has weights only for "
                    f"{list(config.streams)}"
                )
        if set(t) != set(latents):
            raise ValueError(
                f"t has streams {sorted(t)} but latents has {sorted(latents)} (expected the same)"
            )

        names = [name for name in config.streams if name in latents]
        first = latents[names[0]]
        for name in names:
            value = latents[name]
            if not isinstance(value, Tensor) or value.dim() != 5:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"latents[{name!r}] is {shape} (expected (B, C, T, H, W))")
            if value.shape[1] != config.in_channels:
                raise ValueError(
                    f"latents[{name!r}] has {value.shape[1]} channels "
                    f"(expected in_channels={config.in_channels})"
                )
            if value.shape[0] != first.shape[0] or value.shape[2:] != first.shape[2:]:
                raise ValueError(
                    f"latents[{name!r}] has shape {tuple(value.shape)} but "
                    f"latents[{names[0]!r}] has {tuple(first.shape)} "
                    "(expected the same batch and grid (B, ·, T, H, W) for every stream)"
                )
            if value.dtype != first.dtype or value.device != first.device:
                raise ValueError(
                    f"latents[{name!r}] is {value.dtype} on {value.device} but "
                    f"latents[{names[0]!r}] is {first.dtype} on {first.device}"
                )
        batch, _, frames, height, width = first.shape
        p_t, p_h, p_w = config.patch_size
        if frames % p_t or height % p_h or width % p_w or min(frames, height, width) == 0:
            raise ValueError(
                f"latent grid (T, H, W) = {(frames, height, width)} is not a positive multiple "
                f"of patch_size={config.patch_size}"
            )

        grid = (batch, frames // p_t, height // p_h, width // p_w)  # (B, T', H', W')
        for name in names:
            shape = tuple(torch.as_tensor(t[name]).shape)
            per_sample = len(shape) == 0 or (len(shape) == 1 and shape[0] in (1, batch))
            per_token = len(shape) == 4 and all(
                s in (1, g) for s, g in zip(shape, grid, strict=True)
            )
            if not (per_sample or per_token):
                raise ValueError(
                    f"t[{name!r}] has shape {shape} (expected (B,), a float, or a "
                    f"shape broadcastable to the token grid (B, T', H', W') = {grid})"
                )

        text_dim = config.text_dim
        if text is not None and text_dim is None:
            raise ValueError("text was given but this model has no text cross-attention")
        if text is not None and (
            text.dim() != 3 or text.shape[0] not in (1, batch) or text.shape[2] != text_dim
        ):
            raise ValueError(
                f"text has shape {tuple(text.shape)} (expected (B={batch}, L, {text_dim}))"
            )

        if frame_index is not None:
            frame_index = torch.as_tensor(frame_index)
            if frame_index.shape != (grid[1],) or frame_index.is_floating_point():
                raise ValueError(
                    f"frame_index has shape {tuple(frame_index.shape)} and dtype "
                    f"{frame_index.dtype} (expected ({grid[1]},) integers, one RoPE time index "
                    "per latent frame)"
                )
