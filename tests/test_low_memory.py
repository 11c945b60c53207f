"""Low-memory inference: bf16 transformer, each phase's weights on the device only for that
phase, tiled VAE — the same completion as the default pipeline, to bf16's precision."""

from __future__ import annotations

import pytest
import torch

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.model import Any4DTransformer, preset
from any4d.offload import Offload
from any4d.pipeline import Any4DPipeline
from any4d.tokenize import WanVAETokenizer
from any4d.tokenize.text import TextEncoder
from tests.tokenize.test_text import tiny_umt5
from tests.tokenize.test_wan_vae import _tiny_vae


class Part:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def to(self, device):
        self.log.append((self.name, str(device)))
        return self


def test_offload_keeps_one_phase_on_the_device_and_moves_nothing_twice():
    log = []
    offload = Offload("cuda", {n: Part(n, log) for n in ("model", "vae", "text")})  # no GPU used
    assert sorted(log) == [("model", "cpu"), ("text", "cpu"), ("vae", "cpu")]
    log.clear()
    offload.use("text")
    offload.use("model", "vae")
    offload.use("model", "vae")  # already there: no move
    assert log[0] == ("text", "cuda") and log[1] == ("text", "cpu")
    assert sorted(log[2:]) == [("model", "cuda"), ("vae", "cuda")]
    assert offload.on_device == {"model", "vae"}
    with pytest.raises(ValueError, match=r"no component \['unet'\]"):
        offload.use("unet")


def _pipe(tmp_path):
    tiny_umt5(tmp_path)
    torch.manual_seed(0)
    model = Any4DTransformer(preset("tiny", in_channels=16, text_dim=32))
    return Any4DPipeline(
        model,
        WanVAETokenizer(_tiny_vae()),
        {"num_frames": 5, "height": 16, "width": 16, "steps": 2},
        text_encoder=TextEncoder.from_pretrained(tmp_path, max_length=16),
    )


def test_low_memory_mode_completes_as_the_default_pipeline(tmp_path, monkeypatch):
    scene = SyntheticClips(SyntheticConfig(num_frames=5, height=16, width=16), "heldout")[0]
    expected = _pipe(tmp_path)(scene, "geometry", prompt="a room", progress=False)
    pipe = _pipe(tmp_path).enable_low_memory("cpu")
    assert {p.dtype for p in pipe.model.parameters()} == {torch.bfloat16}
    assert pipe.tokenizer.vae.use_tiling and pipe.device == torch.device("cpu")
    phases = []
    use = Offload.use
    monkeypatch.setattr(Offload, "use", lambda self, *n: phases.append(set(n)) or use(self, *n))
    got = pipe(scene, "geometry", prompt="a room", progress=False)
    assert phases == [{"text_encoder"}, {"model", "tokenizer"}]  # umT5, then the rest
    assert got.scene.depth.dtype == expected.scene.depth.dtype == torch.float32
    torch.testing.assert_close(got.scene.depth, expected.scene.depth, rtol=0.05, atol=0.05)
    assert torch.equal(got.scene.rgb, expected.scene.rgb)  # observed: put back as given
    pipe.to("cpu")  # one device again: low-memory mode ends
    assert pipe.offload is None


def test_from_pretrained_can_load_straight_into_low_memory_mode(tmp_path):
    _pipe(tmp_path).save_pretrained(tmp_path / "saved")
    pipe = Any4DPipeline.from_pretrained(
        tmp_path / "saved", device="cpu", text_encoder=tmp_path, low_memory=True
    )
    assert pipe.offload is not None and pipe.offload.components.keys() == {
        "model",
        "tokenizer",
        "text_encoder",
    }
    assert {p.dtype for p in pipe.model.parameters()} == {torch.bfloat16}
