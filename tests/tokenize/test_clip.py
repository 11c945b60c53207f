from dataclasses import replace

import pytest
import torch

from any4d.data import Scene, render_clip
from any4d.model import STREAMS as MODEL_STREAMS
from any4d.tokenize import STREAMS, LatentClip, PixelTokenizer, Tokenizer


@pytest.fixture(scope="module")
def clip():
    scene = render_clip(1, num_frames=3, height=8, width=8)
    return PixelTokenizer().encode([scene, Scene(scene.rgb)])


def test_the_model_keeps_a_copy_of_the_streams_equal_to_the_tokenizers():
    # any4d.model may import nothing of any4d (DESIGN §7), so it cannot import STREAMS.
    assert MODEL_STREAMS == STREAMS


def test_latent_clip_reports_its_layout(clip):
    assert clip.streams == ("rgb", "depth", "ray_d", "ray_m")
    assert clip.grid_shape == (2, 3, 8, 8) and clip.batch_size == 2
    assert clip.num_clip_latents == 3 and clip.image_size == (8, 8) and clip.num_frames == 3
    assert clip.text[1] is None and isinstance(clip.text[0], str)
    assert clip.available["depth"].dtype == torch.bool


def test_latent_clip_to_casts_grids_and_keeps_flags(clip):
    moved = clip.to(dtype=torch.float64)
    assert all(g.dtype == torch.float64 for g in moved.grids.values())
    assert moved.depth_valid.dtype == torch.float64
    assert moved.available["ray_d"].tolist() == [True, False]
    assert moved.frame_index.dtype == torch.int64


def test_latent_clip_rejects_streams_out_of_order_or_unpaired(clip):
    grids, available = clip.grids, clip.available
    with pytest.raises(ValueError, match="expected 'rgb' first"):
        replace(clip, grids={"depth": grids["depth"], "rgb": grids["rgb"]})
    with pytest.raises(ValueError, match="both ray_d and ray_m"):
        replace(
            clip,
            grids={"rgb": grids["rgb"], "ray_d": grids["ray_d"]},
            available={"rgb": available["rgb"], "ray_d": available["ray_d"]},
        )
    with pytest.raises(ValueError, match="available has streams"):
        replace(clip, available={"rgb": available["rgb"]})


def test_latent_clip_rejects_misaligned_grids_and_metadata(clip):
    grids = dict(clip.grids, depth=clip.grids["depth"][:, :, :2])
    with pytest.raises(ValueError, match=r"grids\['depth'\] has shape \(2, 3, 2, 8, 8\)"):
        replace(clip, grids=grids)
    with pytest.raises(ValueError, match="one per latent frame"):
        replace(clip, frame_index=clip.frame_index[:2])
    with pytest.raises(ValueError, match="num_context is 3"):
        replace(clip, num_context=3)
    with pytest.raises(ValueError, match=r"depth_valid has shape \(2, 3, 8, 4\)"):
        replace(clip, depth_valid=clip.depth_valid[..., :4])


def test_tokenizer_is_abstract():
    with pytest.raises(TypeError):
        Tokenizer()
    assert isinstance(PixelTokenizer(), Tokenizer)
    assert isinstance(LatentClip, type)


def test_with_streams_adds_zero_unavailable_grids_and_build_tokenizer_checks_its_kind():
    from any4d.tokenize import build_tokenizer

    scene = render_clip(0, num_frames=2, height=8, width=8)
    clip = PixelTokenizer(2).encode(replace(scene, depth=None))
    full = clip.with_streams(("rgb", "depth", "ray_d", "ray_m"))
    assert torch.equal(full.grids["depth"], torch.zeros_like(clip.grids["rgb"]))
    assert not full.available["depth"].any() and full.available["ray_d"].all()
    assert torch.equal(full.grids["ray_m"], clip.grids["ray_m"])
    assert isinstance(build_tokenizer("pixel", stride=2), PixelTokenizer)
    with pytest.raises(ValueError, match="tokenizer kind 'jpeg'"):
        build_tokenizer("jpeg")
    with pytest.raises(ValueError, match="needs vae_path"):
        build_tokenizer("wan_vae")
