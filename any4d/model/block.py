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
    fp32_layer_norm,
    modulate,
    modulation_chunks,
)
from any4d.model.rope import apply_rope


def concat_streams(x: Tensor) -> Tensor:
    """(S, B, L, H, d) → (B, H, S·L, d): the streams' tokens end to end, one sequence per head.

    This permute is what makes the self-attention joint across streams: attention then runs
    over the S·L tokens of every stream present at once (RGB tokens attend to depth and ray
    tokens and back) while each stream keeps its own projections.
    """
    return x.permute(1, 3, 0, 2, 4).flatten(2, 3)


def split_streams(x: Tensor, num_streams: int) -> Tensor:
    """Inverse of ``concat_streams``: (B, H, S·L, d) → (S, B, L, H, d)."""
    return x.unflatten(2, (num_streams, -1)).permute(2, 0, 3, 1, 4)


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

    def joint(self, x: Tensor, index: StreamIndex, batch: int, rope: tuple[Tensor, Tensor]):
        """Self-attention over the tokens of every stream at once.

        x: (S, B·L, D). rope: cos, sin (L, head_dim / 2). Returns (S, B·L, D).
        """
        num, tokens, dim = x.shape
        shape = (num, batch, -1, self.num_heads, dim // self.num_heads)  # (S, B, L, H, d)
        q = apply_rope(self.norm_q(self.q(x, index), index).view(shape), *rope)
        k = apply_rope(self.norm_k(self.k(x, index), index).view(shape), *rope)
        v = self.v(x, index).view(shape)
        # One sequence of the S·L tokens of all streams: here the streams attend to each other.
        q, k, v = concat_streams(q), concat_streams(k), concat_streams(v)  # (B, H, S·L, d)
        out = split_streams(F.scaled_dot_product_attention(q, k, v), num)  # (S, B, L, H, d)
        return self.o(out.reshape(num, tokens, dim), index)

    def cross(self, x: Tensor, context: Tensor, index: StreamIndex) -> Tensor:
        """Each stream's tokens attend to the text; no RoPE, no mask (as Wan).

        x: (S, B·L, D); context: (B, L_text, D) embedded text. Returns (S, B·L, D).
        """
        num, tokens, dim = x.shape
        batch = context.shape[0]
        shape = (num * batch, -1, self.num_heads, dim // self.num_heads)  # (S·B, n, H, d)
        text = context.flatten(0, 1)  # (B·L_text, D), the same for every stream
        q = self.norm_q(self.q(x, index), index).reshape(shape).transpose(1, 2)
        k = self.norm_k(self.k.shared_input(text, index), index).reshape(shape).transpose(1, 2)
        v = self.v.shared_input(text, index).reshape(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (S·B, H, L, d)
        return self.o(out.transpose(1, 2).reshape(num, tokens, dim), index)


class StreamFFN(nn.Module):
    """Linear → GELU(tanh) → Linear, one per stream."""

    def __init__(self, num_streams: int, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.fc1 = StreamLinear(num_streams, dim, ffn_dim)
        self.fc2 = StreamLinear(num_streams, ffn_dim, dim)

    def forward(self, x: Tensor, index: StreamIndex) -> Tensor:
        """x: (S, N, D) → (S, N, D)."""
        return self.fc2(F.gelu(self.fc1(x, index), approximate="tanh"), index)


class MoTBlock(nn.Module):
    """Wan2.1 block (adaLN-Zero self-attention, un-gated text cross-attention, FFN) per stream."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        num, dim = len(config.streams), config.dim
        self.eps = config.eps
        # Wan's ``modulation`` / diffusers' ``scale_shift_table``: added to ``time_modulation``.
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
        time_modulation: Tensor,
        index: StreamIndex,
        rope: tuple[Tensor, Tensor],
        context: Tensor | None,
    ) -> Tensor:
        """One block.

        x:               (S, B, T', H', W', D) tokens of the streams present.
        time_modulation: (S, b, t, h, w, 6, D) float32 projected time embedding, ``(b, t, h, w)``
                         broadcastable to ``(B, T', H', W')`` (one per sample, frame, token, …).
        index:           the weights of the streams ``x`` holds (slice or index tensor).
        rope:            cos, sin (T'·H'·W', head_dim / 2).
        context:         (B, L_text, D) embedded text, or None (a model without text).
        Returns x's shape.
        """
        batch = x.shape[1]
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = modulation_chunks(
            self.modulation, index, time_modulation
        )

        # 1. Self-attention, joint over the streams (adaLN-Zero: shift, scale, gate)
        h = modulate(fp32_layer_norm(x, self.eps), shift_sa, scale_sa).type_as(x)
        attended = self.self_attn.joint(h.flatten(1, -2), index, batch, rope).view_as(x)
        x = (x.float() + attended * gate_sa).type_as(x)

        # 2. Cross-attention to the text, per stream (un-gated, as Wan)
        if self.cross_attn is not None:
            h = self.cross_norm(x.flatten(1, -2), index)
            x = x + self.cross_attn.cross(h, context, index).view_as(x)

        # 3. Feed-forward (adaLN-Zero)
        h = modulate(fp32_layer_norm(x, self.eps), shift_ff, scale_ff).type_as(x)
        x = (x.float() + self.ffn(h.flatten(1, -2), index).view_as(x).float() * gate_ff).type_as(x)
        return x
