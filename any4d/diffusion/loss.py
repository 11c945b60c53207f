"""The training objective: velocity MSE on target groups, normalised per stream (paper §3.3).

``L = Σ_s w_s · L_s`` with ``L_s`` the mean squared error between predicted and true velocity
``v* = ε − z₀`` over the target groups of stream ``s`` (clean and absent groups, and samples
without ground truth, never count). Default weights are the paper's ``¼`` per stream, so a batch
where a stream has no target simply adds nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.diffusion.masks import STREAMS, State


@dataclass(frozen=True)
class LossTerms:
    """total: the weighted loss (a scalar with grad). per_stream: stream → its MSE (detached,
    NaN where the stream had no target). counts: stream → target elements that counted."""

    total: Tensor
    per_stream: dict[str, Tensor]
    counts: dict[str, int]


def flow_matching_loss(
    prediction: Mapping[str, Tensor],
    latents: Mapping[str, Tensor],
    noise: Mapping[str, Tensor],
    states: Mapping[str, Tensor],
    weights: Mapping[str, float] | None = None,
    pixel_weights: Mapping[str, Tensor] | None = None,
) -> LossTerms:
    """Velocity MSE over target groups.

    prediction, latents, noise: stream → (B, C, T', H, W): the model's velocity, the clean
        latents z₀ and the noise ε that made its input.
    states:        stream → (B, T') ``State`` values.
    weights:       stream → w_s (default ¼ each, the paper's).
    pixel_weights: optional stream → (B, T', H, W) weights in [0, 1] inside target groups (e.g.
        the fraction of valid depth under each latent cell); the stream's MSE is then weighted
        by them.
    """
    if set(prediction) != set(latents) or set(prediction) != set(noise):
        raise ValueError(
            f"prediction has streams {sorted(prediction)}, latents {sorted(latents)}, noise "
            f"{sorted(noise)} (expected the same)"
        )
    weights = dict.fromkeys(STREAMS, 0.25) if weights is None else dict(weights)
    total = None
    per_stream, counts = {}, {}
    for s, v in prediction.items():
        if s not in states:
            raise ValueError(f"states has no entry for stream {s!r}")
        target = (states[s].to(v.device) == State.TARGET).to(torch.float32)  # (B, T')
        mask = target[:, None, :, None, None].expand(-1, 1, -1, *v.shape[-2:])  # (B,1,T',H,W)
        if pixel_weights is not None and s in pixel_weights:
            mask = mask * pixel_weights[s].to(mask)[:, None]
        error = (v.float() - (noise[s] - latents[s]).float()).square()  # (B, C, T', H, W)
        denominator = mask.sum() * v.shape[1]
        counts[s] = int(round(float(denominator)))
        if counts[s] == 0:
            per_stream[s] = torch.tensor(float("nan"))
            term = (error * 0).sum()  # keeps the graph connected (DDP needs every parameter used)
        else:
            term = (error * mask).sum() / denominator
            per_stream[s] = term.detach()
        weighted = weights.get(s, 0.0) * term
        total = weighted if total is None else total + weighted
    return LossTerms(total=total, per_stream=per_stream, counts=counts)
