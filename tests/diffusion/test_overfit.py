"""End to end on CPU: a tiny model overfits one procedural clip, then the sampler recovers its
geometry from its RGB (issue 5's acceptance)."""

from __future__ import annotations

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import (
    Latents,
    NoiseConfig,
    SamplerConfig,
    add_noise,
    flow_matching_loss,
    sample,
    sample_patterns,
    sample_times,
)
from any4d.diffusion.uncertainty import rotation_angle_deg
from any4d.model import Any4DTransformer, preset
from any4d.tokenize import PixelTokenizer

STEPS, BATCH = 400, 8


@pytest.fixture(scope="module")
def overfit():
    torch.manual_seed(0)
    # A static room, the camera moving forward ~0.9 m over 4 frames (fps 3), 16 × 16 pixels.
    scene = render_clip(3, num_frames=4, height=16, width=16, dynamic=False, fps=3.0)
    tokenizer = PixelTokenizer(stride=2)
    clip = tokenizer.encode(scene)
    model = Any4DTransformer(preset("tiny"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=STEPS, pct_start=0.1
    )
    config = NoiseConfig(patterns={"geometry": 1.0})
    generator = torch.Generator().manual_seed(0)
    grids = {s: g.repeat(BATCH, 1, 1, 1, 1) for s, g in clip.grids.items()}
    available = {s: torch.ones(BATCH, dtype=torch.bool) for s in grids}
    losses = []
    for _ in range(STEPS):
        states, _ = sample_patterns(clip, available, config, generator)
        t = sample_times(states, config, generator)
        noisy, noise = add_noise(grids, t, generator)
        prediction = model(noisy, {s: v[:, :, None, None] for s, v in t.items()})
        terms = flow_matching_loss(prediction, grids, noise, states)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(terms.total.detach()))
    model.eval()
    completed = sample(
        model,
        Latents.of(clip),
        "geometry",
        SamplerConfig(steps=20, guidance=0.0),
        progress=False,
        generator=torch.Generator().manual_seed(1),
    )
    return scene, tokenizer.decode_streams(clip, completed), losses


def test_loss_falls_tenfold(overfit):
    _, _, losses = overfit
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last * 10 <= first, (first, last)


def test_geometry_from_rgb_beats_trivial_baselines(overfit):
    scene, decoded, _ = overfit
    valid = scene.depth > 0
    absrel = ((decoded["depth"][0] - scene.depth).abs() / scene.depth)[valid].mean()
    constant = scene.depth[valid].median()
    constant_absrel = ((constant - scene.depth).abs() / scene.depth)[valid].mean()
    assert absrel <= 0.5 * constant_absrel, (float(absrel), float(constant_absrel))

    cameras = decoded["cameras"][0]
    centres = (cameras.centers - scene.cameras.centers).norm(dim=-1).mean()
    static = (scene.cameras.centers - scene.cameras.centers[0]).norm(dim=-1).mean()
    assert centres <= 0.5 * static, (float(centres), float(static))
    focal_error = (cameras.focal / scene.cameras.focal - 1).abs().max()
    assert focal_error <= 0.15, float(focal_error)
    assert rotation_angle_deg(cameras.R, scene.cameras.R).max() <= 10.0
