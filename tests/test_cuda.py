"""The same code on a CUDA device: equal to CPU in fp32, close in bf16, and training there.

Every test needs a CUDA device; on a machine without one (CI) they are reported as skipped.
The rest of the suite also runs on such a machine, where ``any4d train`` picks the GPU.
"""

from __future__ import annotations

import json

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import Latents, SamplerConfig, sample
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import STREAMS, PixelTokenizer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b|, in float32 on the CPU."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def inputs(config, frames=3, size=8, device="cpu", dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latents = {
        s: torch.randn(2, config.in_channels, frames, size, size, generator=generator)
        for s in STREAMS
    }
    times = {s: torch.rand(2, frames, 1, 1, generator=generator) * 1000 for s in STREAMS}
    return (
        {s: v.to(device, dtype) for s, v in latents.items()},
        {s: v.to(device) for s, v in times.items()},
    )


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = Any4DTransformer(preset("tiny", dim=128, num_heads=2, num_layers=3)).eval()
    with torch.no_grad():  # Wan's init zeroes the output head: outputs would all be 0
        for parameter in net.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.05)
    return net


@pytest.fixture(autouse=True)
def exact_matmuls():
    """fp32 comparisons need fp32 products, not TF32."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = saved


def test_forward_and_gradients_on_cuda_equal_cpu_in_fp32(model):
    gpu = Any4DTransformer(model.config).cuda().eval()
    gpu.load_state_dict(model.state_dict())
    outputs, grads = [], []
    for net, device in ((model, "cpu"), (gpu, "cuda")):
        latents, times = inputs(net.config, device=device)
        net.zero_grad()
        out = net(latents, times)
        targets = inputs(net.config, device=device, seed=1)[0]
        sum((v - targets[s]).square().mean() for s, v in out.items()).backward()
        outputs.append(out)
        grads.append({n: p.grad.detach().cpu() for n, p in net.named_parameters()})
    for s in STREAMS:
        assert outputs[1][s].device.type == "cuda"
        # fp32 on both, TF32 off; CUDA's attention kernels sum in another order (H100: 2.4e-4)
        assert relative(outputs[1][s], outputs[0][s]) < 1e-3, s
    assert all(g.any() for g in grads[0].values())
    # Per parameter, ‖g_cuda − g_cpu‖ / ‖g_cpu‖ (a max-abs ratio is noise on tiny entries).
    errors = {n: float((grads[1][n] - g).norm() / g.norm()) for n, g in grads[0].items()}
    worst = max(errors, key=errors.get)
    print(f"worst gradient: {worst} {errors[worst]:.2e}")
    assert errors[worst] < 1e-2, (worst, errors[worst])


def test_bf16_weights_and_autocast_stay_close_to_fp32(model):
    gpu = Any4DTransformer(model.config).cuda().eval()
    gpu.load_state_dict(model.state_dict())
    latents, times = inputs(gpu.config, device="cuda")
    with torch.no_grad():
        reference = gpu(latents, times)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            autocast = gpu(latents, times)
        gpu.to(torch.bfloat16)
        low = gpu({s: v.bfloat16() for s, v in latents.items()}, times)
    for s in STREAMS:
        assert autocast[s].isfinite().all() and low[s].dtype == torch.bfloat16
        assert relative(autocast[s], reference[s]) < 5e-2, s
        assert relative(low[s], reference[s]) < 5e-2, s
        # ... and bf16 is not silently fp32: the results do differ.
        assert relative(low[s], reference[s]) > 0


def test_sampler_on_cuda_equals_cpu_given_the_same_noise(model):
    gpu = Any4DTransformer(model.config).cuda().eval()
    gpu.load_state_dict(model.state_dict())
    latents, _ = inputs(model.config, frames=3)
    noise = {s: torch.randn_like(v) for s, v in latents.items()}
    config = SamplerConfig(steps=4, guidance=2.0)
    cpu = sample(model, Latents(latents), "interpolate", config, noise=noise, progress=False)
    on_gpu = Latents({s: v.cuda() for s, v in latents.items()})
    noise = {s: v.cuda() for s, v in noise.items()}
    cuda = sample(gpu, on_gpu, "interpolate", config, noise=noise, progress=False)
    for s in STREAMS:
        assert cuda[s].device.type == "cuda"
        assert relative(cuda[s], cpu[s]) < 1e-3, s


def test_pipeline_on_cuda_keeps_observations_and_repeats_with_a_seed(model):
    pipe = Any4DPipeline(
        Any4DTransformer(model.config),
        PixelTokenizer(2),
        {"num_frames": 5, "height": 16, "width": 16, "steps": 3},
    )
    pipe.model.load_state_dict(model.state_dict())
    pipe.to("cuda")
    scene = render_clip(1, num_frames=5, height=16, width=16)
    a = pipe(scene, task="interpolate", seed=1, progress=False)
    b = pipe(scene, task="interpolate", seed=1, progress=False)
    assert a.scene.rgb.device.type == "cuda"
    assert torch.equal(a.scene.rgb, b.scene.rgb)
    assert torch.equal(a.scene.rgb[[0, -1]].cpu(), scene.rgb[[0, -1]])
    assert torch.equal(a.scene.cameras.c2w.cpu(), scene.cameras.c2w)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        low = pipe(scene, task="depth", seed=1, progress=False)
    assert torch.equal(low.scene.rgb.cpu(), scene.rgb)
    assert low.scene.depth.isfinite().all() and (low.scene.depth >= 0).all()


def test_pixel_tokenizer_round_trips_on_cuda():
    scene = render_clip(2, num_frames=5, height=16, width=16)
    tokenizer = PixelTokenizer(2)
    clip = tokenizer.encode(scene.to("cuda"))
    assert clip.grids["rgb"].device.type == "cuda"
    decoded = tokenizer.decode_streams(clip)
    assert relative(decoded["rgb"][0], scene.rgb) < 1e-5
    assert relative(decoded["depth"][0], scene.depth) < 1e-4


def test_training_runs_on_cuda_in_bf16_and_resumes(tmp_path):
    from any4d.train import load_config, train

    overrides = [
        "data.batch_size=4",
        "data.num_frames=3",
        "data.height=16",
        "data.width=16",
        "optim.warmup_steps=1",
        "steps=4",
        "checkpoint_every=2",
        "precision=bf16",
        f"output_dir={tmp_path}",
    ]
    first = train(load_config("tiny-synthetic", overrides + ["steps=2"]), progress=False)
    assert first.step == 2
    second = train(load_config("tiny-synthetic", overrides), resume=True, progress=False)
    assert second.step == 4 and not second.interrupted
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records][-1] == 4
    assert all(r["memory_gb"] > 0 for r in records)  # measured on the GPU: it trained there
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
