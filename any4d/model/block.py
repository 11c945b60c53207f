"""One Mixture-of-Transformers block: Wan2.1's block with a copy of every weight per stream.

Stream-specific: the adaLN modulation table, Q/K/V/O and q/k norms of both attentions, the
cross-attention LayerNorm and the FFN. Shared: one self-attention over the tokens of all streams
present, so RGB tokens attend to depth and ray tokens and back (DESIGN §4).

Activations are ``(S, B, T', H', W', D)``: stream-major, then the token grid. The grid layout lets
per-token modulation be given at any broadcastable resolution — one value per latent frame,
``(S, B, T', 1, 1, D)``, costs nothing per token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from any4d.model.config import TransformerConfig
from any4d.model.layers import (
    StreamIndex,
    StreamLayerNorm,
    StreamLinear,
    StreamRMSNorm,
    modulate,
)
from any4d.model.rope import apply_rope


class StreamAttention(nn.Module):
    """Q/K/V/O projections and q/k RMSNorms (over all heads, as Wan), one set per stream."""

    def __init__(self, num_streams: int, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = StreamLinear(num_streams, dim, dim)
        self.k = StreamLinear(num_streams, dim, dim)
        self.v = StreamLinear(num_streams, dim, dim)
        self.o = StreamLinear(num_streams, dim, dim)
        self.norm_q = StreamRMSNorm(num_streams, dim, eps)
        self.norm_k = StreamRMSNorm(num_streams, dim, eps)

    def joint(self, x: Tensor, streams: StreamIndex, batch: int, rope: tuple[Tensor, Tensor]):
        """Self-attention over the tokens of every stream at once.

        x: (S, B·L, D). rope: cos, sin (L, head_dim / 2). Returns (S, B·L, D).
        """
        num, tokens, dim = x.shape
        length = tokens // batch
        shape = (num, batch, length, self.num_heads, dim // self.num_heads)
        q = apply_rope(self.norm_q(self.q(x, streams), streams).view(shape), *rope)
        k = apply_rope(self.norm_k(self.k(x, streams), streams).view(shape), *rope)
        v = self.v(x, streams).view(shape)

        def heads_first(y: Tensor) -> Tensor:  # (S, B, L, H, d) → (B, H, S·L, d)
            return y.permute(1, 3, 0, 2, 4).flatten(2, 3)

        out = F.scaled_dot_product_attention(heads_first(q), heads_first(k), heads_first(v))
        out = out.unflatten(2, (num, length)).permute(2, 0, 3, 1, 4)  # (S, B, L, H, d)
        return self.o(out.reshape(num, tokens, dim), streams)

    def cross(self, x: Tensor, context: Tensor, streams: StreamIndex) -> Tensor:
        """Each stream's tokens attend to the text; no RoPE, no mask (as Wan).

        x: (S, B·L, D); context: (B, L_text, D) embedded text. Returns (S, B·L, D).
        """
        num, tokens, dim = x.shape
        batch, text_len, _ = context.shape
        head_dim = dim // self.num_heads

        def heads_first(y: Tensor, length: int) -> Tensor:  # (S, B·n, D) → (S·B, H, n, d)
            return y.reshape(num * batch, length, self.num_heads, head_dim).transpose(1, 2)

        flat = context.reshape(batch * text_len, dim)
        q = heads_first(self.norm_q(self.q(x, streams), streams), tokens // batch)
        k = heads_first(self.norm_k(self.k.shared_input(flat, streams), streams), text_len)
        v = heads_first(self.v.shared_input(flat, streams), text_len)
        out = F.scaled_dot_product_attention(q, k, v)  # (S·B, H, L, d)
        return self.o(out.transpose(1, 2).reshape(num, tokens, dim), streams)


class StreamFFN(nn.Module):
    """Linear → GELU(tanh) → Linear, one per stream."""

    def __init__(self, num_streams: int, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.fc1 = StreamLinear(num_streams, dim, ffn_dim)
        self.fc2 = StreamLinear(num_streams, ffn_dim, dim)

    def forward(self, x: Tensor, streams: StreamIndex) -> Tensor:
        """x: (S, N, D) → (S, N, D)."""
        return self.fc2(F.gelu(self.fc1(x, streams), approximate="tanh"), streams)


class MoTBlock(nn.Module):
    """Wan2.1 block (adaLN-Zero self-attention, un-gated text cross-attention, FFN) per stream."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.eps = config.eps
        # Wan's ``modulation`` / diffusers' ``scale_shift_table``: added to the projected time.
        self.modulation = nn.Parameter(torch.randn(num, 6, dim) / dim**0.5)
        self.self_attn = StreamAttention(num, dim, config.num_heads, config.eps)
        if config.text_dim is not None:
            self.cross_norm = StreamLayerNorm(num, dim, config.eps)
            self.cross_attn = StreamAttention(num, dim, config.num_heads, config.eps)
        else:
            self.cross_norm = self.cross_attn = None
        self.ffn = StreamFFN(num, dim, config.ffn_dim)

    def forward(
        self,
        x: Tensor,
        time: Tensor,
        streams: StreamIndex,
        rope: tuple[Tensor, Tensor],
        context: Tensor | None,
    ) -> Tensor:
        """One block.

        x:       (S, B, T', H', W', D) tokens of the streams present.
        time:    (S, B, t, h, w, 6, D) float32 projected time embedding, ``(t, h, w)``
                 broadcastable to ``(T', H', W')`` (one value per frame, per token, …).
        streams: which of the model's streams ``x`` holds (slice or index tensor).
        rope:    cos, sin (T'·H'·W', head_dim / 2).
        context: (B, L_text, D) embedded text, or None (a model without text).
        Returns x's shape.
        """
        num, batch, dim = x.shape[0], x.shape[1], x.shape[-1]
        table = self.modulation[streams].float().view(num, 1, 1, 1, 1, 6, dim)
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = (table + time).unbind(-2)

        def normed(y: Tensor) -> Tensor:  # parameter-free LayerNorm in float32
            return F.layer_norm(y.float(), (dim,), eps=self.eps)

        def flat(y: Tensor) -> Tensor:  # (S, B, T', H', W', D) → (S, B·L, D)
            return y.reshape(num, -1, dim)

        h = modulate(normed(x), shift_sa, scale_sa).type_as(x)
        attended = self.self_attn.joint(flat(h), streams, batch, rope).view_as(x)
        x = (x.float() + attended * gate_sa).type_as(x)

        if self.cross_attn is not None:
            h = self.cross_norm(flat(x), streams)
            x = x + self.cross_attn.cross(h, context, streams).view_as(x)

        h = modulate(normed(x), shift_ff, scale_ff).type_as(x)
        x = (x.float() + self.ffn(flat(h), streams).view_as(x).float() * gate_ff).type_as(x)
        return x
