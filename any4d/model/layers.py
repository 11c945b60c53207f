"""Per-stream layers of the Mixture-of-Transformers.

Activations are kept **stream-major**: ``(S, N, D)`` with ``S`` the streams present in this
forward pass and ``N`` the tokens of one stream (batch × sequence). Every stream-specific weight
is stacked on a leading stream axis, so a per-stream linear layer is one batched matmul
(``baddbmm``) with no per-token gather or scatter. ``index`` — a ``slice`` when the present
streams are consecutive (a view of the weights, the common case) or a ``LongTensor`` of
indices — selects the weights of the streams present; stream *names* never reach this level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

StreamIndex = slice | Tensor


class StreamLinear(nn.Module):
    """``num_streams`` independent ``Linear(in_features, out_features)`` layers.

    weight: (S_all, out_features, in_features); bias: (S_all, out_features).
    """

    def __init__(self, num_streams: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(num_streams, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_streams, out_features))
        self.reset_parameters()

    def reset_parameters(self, std: float | None = None) -> None:
        """Xavier-uniform weights (Wan's ``init_weights``), or normal(std); zero bias."""
        if self.weight.is_meta:
            return
        with torch.no_grad():
            if std is None:
                bound = math.sqrt(6.0 / (self.in_features + self.out_features))
                self.weight.uniform_(-bound, bound)
            else:
                self.weight.normal_(0.0, std)
            self.bias.zero_()

    def forward(self, x: Tensor, index: StreamIndex) -> Tensor:
        """x: (S, N, in_features), stream ``i`` of ``x`` uses weights ``index[i]``.

        Returns (S, N, out_features).
        """
        weight, bias = self.weight[index], self.bias[index]
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    def shared_input(self, x: Tensor, index: StreamIndex) -> Tensor:
        """The same input for every stream: x (N, in_features) → (S, N, out_features).

        One matmul against the concatenated weights instead of S copies of ``x``.
        """
        weight, bias = self.weight[index], self.bias[index]
        num = weight.shape[0]
        out = F.linear(x, weight.reshape(-1, self.in_features), bias.reshape(-1))
        return out.unflatten(-1, (num, self.out_features)).movedim(-2, 0)

    def extra_repr(self) -> str:
        return f"streams={self.weight.shape[0]}, in={self.in_features}, out={self.out_features}"


class StreamRMSNorm(nn.Module):
    """RMSNorm over the last dim with a learnable weight per stream (Wan's q/k norm).

    weight: (S_all, dim).
    """

    def __init__(self, num_streams: int, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_streams, dim))

    def forward(self, x: Tensor, index: StreamIndex) -> Tensor:
        """x: (S, N, dim) → (S, N, dim)."""
        out = F.rms_norm(x, x.shape[-1:], eps=self.eps)
        return out * self.weight[index].unsqueeze(1).to(out.dtype)


class StreamLayerNorm(nn.Module):
    """LayerNorm over the last dim in float32, affine per stream (Wan's cross-attention norm).

    weight, bias: (S_all, dim).
    """

    def __init__(self, num_streams: int, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_streams, dim))
        self.bias = nn.Parameter(torch.zeros(num_streams, dim))

    def forward(self, x: Tensor, index: StreamIndex) -> Tensor:
        """x: (S, N, dim) → (S, N, dim) in x's dtype; the statistics are taken in float32."""
        out = fp32_layer_norm(x, self.eps)
        weight = self.weight[index].unsqueeze(1).float()
        bias = self.bias[index].unsqueeze(1).float()
        return (out * weight + bias).type_as(x)


def timestep_features(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of Wan's timestep ``1000·t``, ordered ``[cos, sin]``.

    t: (...) flow time in [0, 1]. Returns (..., dim) float32 with frequencies
    ``10000^(−i / (dim/2))`` (diffusers ``Timesteps(flip_sin_to_cos=True,
    downscale_freq_shift=0)``).
    """
    half = dim // 2
    exponent = torch.arange(half, dtype=torch.float32, device=t.device) / half
    frequencies = torch.exp(-math.log(10000.0) * exponent)
    angles = (1000.0 * t.float()).unsqueeze(-1) * frequencies
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def fp32_layer_norm(x: Tensor, eps: float) -> Tensor:
    """LayerNorm over the last dim without affine parameters, computed and returned in float32
    (x of any dtype)."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


def modulation_chunks(table: Tensor, index: StreamIndex, time: Tensor) -> tuple[Tensor, ...]:
    """adaLN parameters of the streams ``index``: their learnt table plus the projected time.

    table: (S_all, n, D) parameter (Wan's ``modulation``, diffusers' ``scale_shift_table``).
    time:  (S, b, t, h, w, n or 1, D) float32 time embedding of every token: a block's
           ``time_modulation`` (n = 6), or the head's ``temb`` with a unit axis (n = 2).
    Returns n tensors (S, b, t, h, w, D) in float32, in the table's order (shift, scale, …).
    """
    per_stream = table[index].float()[:, None, None, None, None]  # (S, 1, 1, 1, 1, n, D)
    return (per_stream + time).unbind(-2)


def modulate(normed: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``normed · (1 + scale) + shift`` (all broadcast against each other)."""
    return normed * (1 + scale) + shift
