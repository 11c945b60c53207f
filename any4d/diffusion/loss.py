"""The training objective: velocity MSE on target groups, normalised per stream (paper §3.3).

``L = Σ_s w_s · L_s`` with ``L_s`` the mean squared error between predicted and true velocity
``v* = ε − z₀`` over the target groups of stream ``s`` (clean and absent groups, and samples
without ground truth, never count). Default weights are the paper's ``¼`` per stream, so a batch
where a stream has no target simply adds nothing for it.

Data-parallel training normalises by the count over the **global** batch (``denominators``),
so that the gradient does not depend on how the batch is split over processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.diffusion.masks import State
from any4d.tokenize import STREAMS


@dataclass(frozen=True)
class LossTerms:
    """The loss and what it is made of.

    total:       the weighted loss (a scalar with grad).
    per_stream:  stream → its MSE (detached; NaN where the stream had no target).
    sums:        stream → (B,) summed squared error of each sample's targets (detached): zero
                 for a sample whose groups of that stream are not targets.
    counts:      stream → the weighted number of target elements of this batch (a float).
    """

    total: Tensor
    per_stream: dict[str, Tensor]
    sums: dict[str, Tensor]
    counts: dict[str, float]


def target_weights(
    states: Mapping[str, Tensor],
    shape: Mapping[str, torch.Size],
    pixel_weights: Mapping[str, Tensor] | None = None,
    channel_weights: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Per stream, (B, 1 or C, T', H, W) weights: 1 (or the pixel weight) inside target groups,
    0 elsewhere; C channels where ``channel_weights`` (stream → (C,)) gives the stream's (e.g.
    0 on the ray streams' zero padding). ``shape``: each stream's latent shape (B, C, T', H, W)."""
    out = {}
    for s, row in states.items():
        b, _, t, h, w = shape[s]
        target = (row == State.TARGET).to(torch.float32)  # (B, T')
        weight = target[:, None, :, None, None].expand(b, 1, t, h, w)
        if pixel_weights is not None and s in pixel_weights:
            weight = weight * pixel_weights[s].to(weight)[:, None]
        if channel_weights is not None and s in channel_weights:
            weight = weight * channel_weights[s].to(weight)[None, :, None, None, None]
        out[s] = weight
    return out


def _count(weight: Tensor, channels: int) -> float:
    """Weighted target elements of a (B, 1 or C, …) weight, channels included."""
    return float(weight.sum()) * (channels if weight.shape[1] == 1 else 1)


def target_counts(
    states: Mapping[str, Tensor],
    shape: Mapping[str, torch.Size],
    pixel_weights: Mapping[str, Tensor] | None = None,
    channel_weights: Mapping[str, Tensor] | None = None,
) -> dict[str, float]:
    """Stream → weighted number of target elements (channels included) — the denominators."""
    weights = target_weights(states, shape, pixel_weights, channel_weights)
    return {s: _count(w, shape[s][1]) for s, w in weights.items()}


def flow_matching_loss(
    prediction: Mapping[str, Tensor],
    latents: Mapping[str, Tensor],
    noise: Mapping[str, Tensor],
    states: Mapping[str, Tensor],
    weights: Mapping[str, float] | None = None,
    pixel_weights: Mapping[str, Tensor] | None = None,
    denominators: Mapping[str, float] | None = None,
    channel_weights: Mapping[str, Tensor] | None = None,
) -> LossTerms:
    """Velocity MSE over target groups.

    prediction, latents, noise: stream → (B, C, T', H, W): the model's velocity, the clean
        latents z₀ and the noise ε that made its input.
    states:        stream → (B, T') ``State`` values.
    weights:       stream → w_s (default ¼ each, the paper's).
    pixel_weights: optional stream → (B, T', H, W) weights in [0, 1] inside target groups (e.g.
        the fraction of valid depth under each latent cell).
    denominators:  stream → the count to divide by (default: this batch's ``target_counts``);
        data-parallel training passes the global batch's.
    channel_weights: optional stream → (C,) weights of its channels (the tokenizer's
        ``channel_weights``: the ray streams' zero padding counts for nothing).
    """
    if set(prediction) != set(latents) or set(prediction) != set(noise):
        raise ValueError(
            f"prediction has streams {sorted(prediction)}, latents {sorted(latents)}, noise "
            f"{sorted(noise)} (expected the same)"
        )
    missing = [s for s in prediction if s not in states]
    if missing:
        raise ValueError(f"states has no entry for streams {missing}")
    weights = dict.fromkeys(STREAMS, 0.25) if weights is None else dict(weights)
    shapes = {s: v.shape for s, v in prediction.items()}
    on_device = {s: states[s].to(v.device) for s, v in prediction.items()}
    masks = target_weights(on_device, shapes, pixel_weights, channel_weights)
    counts = {s: _count(m, shapes[s][1]) for s, m in masks.items()}
    denominators = counts if denominators is None else denominators
    total = None
    per_stream, sums = {}, {}
    for s, v in prediction.items():
        error = (v.float() - (noise[s] - latents[s]).float()).square()  # (B, C, T', H, W)
        per_sample = (error * masks[s]).sum(dim=(1, 2, 3, 4))  # (B,)
        sums[s] = per_sample.detach()
        if denominators[s] > 0:
            term = per_sample.sum() / denominators[s]
            per_stream[s] = term.detach() if counts[s] > 0 else torch.tensor(float("nan"))
        else:
            term = (error * 0).sum()  # keeps the graph connected (DDP needs every parameter used)
            per_stream[s] = torch.tensor(float("nan"))
        weighted = weights.get(s, 0.0) * term
        total = weighted if total is None else total + weighted
    return LossTerms(total=total, per_stream=per_stream, sums=sums, counts=counts)
