"""The memory table: counted on the meta device, equal to what a real run allocates."""

from __future__ import annotations

import os

import pytest
import torch

from any4d.memory import (
    RUNS,
    GiB,
    activation_bytes,
    inference_table,
    measured_activations,
    meta_model,
    training_rows,
    vae_rows,
)
from any4d.model import Any4DTransformer, preset

REDUCED_OVERRIDES = {"dim": 256, "ffn_dim": 1024, "num_heads": 4, "num_layers": 2}
REDUCED = preset("tiny", **REDUCED_OVERRIDES)
LATENT = (4, 32, 32)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_computed_activations_match_the_peak_measured_on_the_cpu():
    measured = measured_activations("tiny", REDUCED_OVERRIDES, LATENT)
    model = meta_model(REDUCED)
    computed = {
        label: activation_bytes(
            model, LATENT, dtype=torch.float32, train=train, checkpointing=checkpointing
        )
        for label, train, checkpointing in RUNS
    }
    assert measured.keys() == computed.keys()
    for label, value in measured.items():
        assert 0.75 <= value / computed[label] <= 1.35, (label, value, computed[label])
    # Checkpointing saves less, and inference less still: the rows order as they should.
    forward, full, checkpointed = (computed[label] for label, _, _ in RUNS)
    assert forward < checkpointed < full


def test_the_meta_count_equals_the_count_on_real_tensors():
    torch.manual_seed(0)
    real = Any4DTransformer(REDUCED)
    for train in (False, True):
        a = activation_bytes(meta_model(REDUCED), LATENT, dtype=torch.float32, train=train)
        b = activation_bytes(real, LATENT, dtype=torch.float32, train=train)
        assert a == pytest.approx(b, rel=1e-4)
    assert all(p.requires_grad for p in real.parameters())  # left as it was


def test_weight_gradient_and_optimiser_rows_are_what_adamw_allocates():
    torch.manual_seed(0)
    model = Any4DTransformer(REDUCED)
    optimizer = torch.optim.AdamW(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    moments = sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for name, t in state.items()
        if name in ("exp_avg", "exp_avg_sq")
    )
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    count = weights // 4
    for world in (1, 4):
        rows = {r.component: r.bytes for r in training_rows(REDUCED, (2, 4, 4), world=world)}
        shard = -(-count // world)
        assert rows["weights (fp32, sharded)"] == 4 * shard
        assert rows["gradients (fp32, sharded)"] == 4 * shard
        assert rows["AdamW moments (fp32, sharded)"] == moments * shard // count


def test_the_vae_rows_count_its_weights_and_tiling_lowers_the_decode():
    from tests.tokenize.test_wan_vae import _tiny_vae

    vae = _tiny_vae()
    weights = sum(p.numel() * p.element_size() for p in vae.parameters())
    untiled = vae_rows(9, 320, 320, vae=vae)
    assert untiled[0].bytes == weights
    tiled = vae_rows(9, 320, 320, vae=vae, tiling=True)
    assert tiled[1].bytes < untiled[1].bytes


def test_the_low_memory_mode_fits_24_gb_at_the_papers_shape():
    config = preset("wan2.1-1.3b")
    low = inference_table(config, 49, 240, 320, low_memory=True)
    default = inference_table(config, 49, 240, 320)
    assert low.peak <= 24e9 < default.peak
    rows = {r.component: r.bytes for r in low.rows}
    count = sum(p.numel() for p in meta_model(config).parameters())
    assert rows["transformer weights (bfloat16)"] == 2 * count
    assert 5.6e9 < count < 5.7e9 and low.peak / GiB < 13
