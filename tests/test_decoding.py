"""Only what a task generates is decoded: observed streams come back without a codec pass."""

from __future__ import annotations

import pytest
import torch

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.diffusion import SearchConfig
from any4d.model import Any4DTransformer, preset
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import WanVAETokenizer
from any4d.tokenize import base as tokenizer_base
from tests.tokenize.test_wan_vae import _tiny_vae


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    model = Any4DTransformer(preset("tiny", in_channels=16))
    defaults = {"num_frames": 5, "height": 16, "width": 16, "steps": 2}
    return Any4DPipeline(model, WanVAETokenizer(_tiny_vae()), defaults)


@pytest.fixture(scope="module")
def scene():
    return SyntheticClips(SyntheticConfig(num_frames=5, height=16, width=16), split="heldout")[0]


def _count(monkeypatch, pipe):
    calls = {"decode_images": [], "rays_to_cameras": 0}
    decode_images = pipe.tokenizer.decode_images
    rays_to_cameras = tokenizer_base.rays_to_cameras

    def counted_decode(latents):
        calls["decode_images"].append(latents.shape[0])
        return decode_images(latents)

    def counted_rays(*args, **kwargs):
        calls["rays_to_cameras"] += 1
        return rays_to_cameras(*args, **kwargs)

    monkeypatch.setattr(pipe.tokenizer, "decode_images", counted_decode)
    monkeypatch.setattr(tokenizer_base, "rays_to_cameras", counted_rays)
    return calls


@pytest.mark.parametrize(
    "task, decodes, camera_fits",
    [
        ("geometry", 1, 1),  # depth through the VAE, cameras from rays; RGB as given
        ("depth", 1, 0),  # RGB and cameras as given
        ("video", 2, 1),  # RGB and depth generated
        ("depth_to_video", 1, 1),  # depth as given
    ],
)
def test_the_vae_decodes_only_the_streams_a_task_generates(
    pipe, scene, monkeypatch, task, decodes, camera_fits
):
    calls = _count(monkeypatch, pipe)
    result = pipe(scene, task=task, progress=False)
    assert len(calls["decode_images"]) == decodes
    assert calls["rays_to_cameras"] == camera_fits
    assert result.scene.depth is not None
    # The untrained model's rays may determine no camera: then no codec pass is redone.
    cameras = result.scene.cameras is not None
    assert cameras or any(f.startswith("cameras:") for f in result.failures)
    if task in ("geometry", "depth"):
        assert torch.equal(result.scene.rgb, scene.rgb)


def test_search_decodes_its_candidates_in_one_batch(monkeypatch):
    from any4d.demo import shipped_checkpoint

    pipe = Any4DPipeline.from_pretrained(shipped_checkpoint())
    shape = {k: pipe.defaults[k] for k in ("num_frames", "height", "width")}
    scene = SyntheticClips(SyntheticConfig(**shape), split="heldout")[0]
    calls = _count(monkeypatch, pipe)
    result = pipe(scene, task="geometry", search=SearchConfig(candidates=3), progress=False)
    assert calls["decode_images"] == [3]  # depth only, the three candidates together
    assert result.scores.shape == (3,) and torch.isfinite(result.scores).all()
    assert torch.equal(result.scene.rgb, scene.rgb)
