"""``Any4DTransformer``: the four-stream Mixture-of-Transformers DiT built from Wan2.1 blocks.

Call (DESIGN §4)::

    velocities = model(latents, t, text=None)

``latents`` maps stream name → ``(B, C, T', H', W')``; ``t`` maps the same names → flow time in
``[0, 1]`` per token, ``(B, T'/p_t, H'/p_h, W'/p_w)`` or anything broadcastable to it (``(B,)``
and a float mean one time per sample); the result maps each input stream to a velocity of its
latent's shape. Any subset of the model's streams may be given.
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
from any4d.model.layers import StreamIndex, StreamLinear, modulate, timestep_features
from any4d.model.rope import rope_angles


class TimeEmbedding(nn.Module):
    """Per stream: sinusoid(1000·t) → Linear → SiLU → Linear = ``temb``; SiLU → Linear = ``e0``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.freq_dim = config.freq_dim
        self.linear_1 = StreamLinear(num, config.freq_dim, dim)
        self.linear_2 = StreamLinear(num, dim, dim)
        self.projection = StreamLinear(num, dim, 6 * dim)

    def forward(self, t: Tensor, streams: StreamIndex) -> tuple[Tensor, Tensor]:
        """t: (S, b, t, h, w) flow times. Returns float32 ``temb`` (S, b, t, h, w, D) and the
        block modulation ``e0`` (S, b, t, h, w, 6, D)."""
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
            temb = self.linear_2(F.silu(self.linear_1(features.to(weights), streams)), streams)
            e0 = self.projection(F.silu(temb), streams)
        dim = temb.shape[-1]
        return temb.float().view(*shape, dim), e0.float().view(*shape, 6, dim)


class OutputHead(nn.Module):
    """LayerNorm → adaLN from ``temb`` (shift, scale; no gate) → Linear to patch values."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.eps = config.eps
        self.modulation = nn.Parameter(torch.randn(num, 2, dim) / dim**0.5)
        self.linear = StreamLinear(num, dim, config.patch_numel)

    def forward(self, x: Tensor, temb: Tensor, streams: StreamIndex) -> Tensor:
        """x: (S, B, T', H', W', D); temb: (S, b, t, h, w, D). Returns (S, B, T', H', W', P)."""
        num, dim = x.shape[0], x.shape[-1]
        table = self.modulation[streams].float().view(num, 1, 1, 1, 1, 2, dim)
        shift, scale = (table + temb.unsqueeze(-2)).unbind(-2)
        h = modulate(F.layer_norm(x.float(), (dim,), eps=self.eps), shift, scale).type_as(x)
        out = self.linear(h.reshape(num, -1, dim), streams)
        return out.view(*x.shape[:-1], -1)


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
        Returns stream → (B, C, T', H', W') in the model's stream order.
        """
        config = self.config
        names, streams = self._select_streams(latents, t)
        batch, _, frames, height, width = latents[names[0]].shape
        p_t, p_h, p_w = config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)

        patches = torch.stack(
            [
                rearrange(
                    latents[n],
                    "b c (t pt) (h ph) (w pw) -> b t h w (c pt ph pw)",
                    pt=p_t,
                    ph=p_h,
                    pw=p_w,
                )
                for n in names
            ]
        )  # (S, B, T', H', W', P)
        num = len(names)
        x = self.patch_embedding(patches.reshape(num, -1, config.patch_numel), streams)
        x = x.view(num, batch, *grid, config.dim)

        times = self._stack_times(names, t, batch, grid, x.device)  # (S, b, t, h, w)
        temb, e0 = self.time_embedding(times, streams)
        context = self._embed_text(text, batch, x)
        rope = rope_angles(
            self._frame_index(frame_index, grid[0], x.device),
            grid[1],
            grid[2],
            config.rope_dims,
            config.rope_theta,
        )

        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, e0, streams, rope, context, use_reentrant=False)
            else:
                x = block(x, e0, streams, rope, context)

        out = self.head(x, temb, streams)  # (S, B, T', H', W', P)
        return {
            name: rearrange(
                out[i],
                "b t h w (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
                pt=p_t,
                ph=p_h,
                pw=p_w,
            )
            for i, name in enumerate(names)
        }

    # ------------------------------------------------------------------ input checks

    def _select_streams(self, latents, t) -> tuple[list[str], StreamIndex]:
        """Names of the streams given (model order) and the index of their weights."""
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
        names = [s for s in config.streams if s in latents]
        first = latents[names[0]]
        p_t, p_h, p_w = config.patch_size
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
        _, _, frames, height, width = first.shape
        if frames % p_t or height % p_h or width % p_w or min(frames, height, width) == 0:
            raise ValueError(
                f"latent grid (T, H, W) = {(frames, height, width)} is not a positive multiple "
                f"of patch_size={config.patch_size}"
            )
        indices = [config.streams.index(n) for n in names]
        if indices == list(range(indices[0], indices[-1] + 1)):
            return names, slice(indices[0], indices[-1] + 1)
        return names, torch.tensor(indices, device=first.device)

    def _stack_times(self, names, t, batch, grid, device) -> Tensor:
        """The streams' flow times broadcast to one common shape (S, b, t, h, w), float32."""
        full = (batch, *grid)
        shapes = []
        for name in names:
            value = torch.as_tensor(t[name], dtype=torch.float32, device=device)
            if value.dim() == 1 and value.shape[0] in (1, batch):
                value = value.view(-1, 1, 1, 1)  # (B,): one time per sample
            elif value.dim() == 0:
                value = value.view(1, 1, 1, 1)
            fits = value.dim() == 4 and all(
                s in (1, f) for s, f in zip(value.shape, full, strict=False)
            )
            if not fits:
                raise ValueError(
                    f"t[{name!r}] has shape {tuple(value.shape)} (expected (B,), a float, or a "
                    f"shape broadcastable to the token grid (B, T', H', W') = {full})"
                )
            shapes.append(value)
        common = torch.broadcast_shapes(*(v.shape for v in shapes))
        return torch.stack([v.expand(common) for v in shapes])

    def _embed_text(self, text: Tensor | None, batch: int, x: Tensor) -> Tensor | None:
        """(B, L_text, text_dim) → (B, L_text, D); None → the null embedding."""
        text_dim = self.config.text_dim
        if text_dim is None:
            if text is not None:
                raise ValueError("text was given but this model has no text cross-attention")
            return None
        if text is None:
            # Wan pads the text with zeros and attends to every position: an all-zero context
            # of any length gives the same cross-attention output, so one token suffices.
            text = torch.zeros(batch, 1, text_dim, device=x.device)
        if text.dim() != 3 or text.shape[0] not in (1, batch) or text.shape[2] != text_dim:
            raise ValueError(
                f"text has shape {tuple(text.shape)} (expected (B={batch}, L, {text_dim}))"
            )
        weight = self.text_embedding[0].weight
        return self.text_embedding(text.to(weight.dtype)).expand(batch, -1, -1)

    def _frame_index(self, frame_index: Tensor | None, frames: int, device) -> Tensor:
        if frame_index is None:
            return torch.arange(frames, device=device)
        frame_index = torch.as_tensor(frame_index, device=device)
        if frame_index.shape != (frames,) or frame_index.is_floating_point():
            raise ValueError(
                f"frame_index has shape {tuple(frame_index.shape)} and dtype {frame_index.dtype} "
                f"(expected ({frames},) integers, one RoPE time index per latent frame)"
            )
        return frame_index
