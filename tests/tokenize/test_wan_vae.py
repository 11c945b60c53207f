import pytest
import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors.torch import save_file

from any4d.data import Scene, render_clip
from any4d.geometry import ClipFrame, encode_depth, plucker_rays
from any4d.tokenize import WanVAETokenizer, pack_rays, unpack_rays

T, H, W = 9, 64, 64


def _tiny_vae(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
    )
    return AutoencoderKLWan(**{**config, **overrides})


@pytest.fixture(scope="module")
def vae():
    return _tiny_vae()


@pytest.fixture(scope="module")
def tokenizer(vae):
    return WanVAETokenizer(vae)


@pytest.fixture(scope="module")
def scene():
    return render_clip(2, num_frames=T, height=H, width=W)


@pytest.fixture(scope="module")
def clip(tokenizer, scene):
    return tokenizer.encode(scene)


def _statistics(vae):
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    return mean, std


def test_wan_tokenizer_grids_have_the_causal_latent_shape(tokenizer, clip):
    assert (tokenizer.temporal_stride, tokenizer.spatial_stride) == (4, 8)
    for grid in clip.grids.values():
        assert grid.shape == (1, 16, 3, 8, 8)
    assert clip.pixel_frames == ((0,), (1, 2, 3, 4), (5, 6, 7, 8))
    assert clip.frame_index.tolist() == [0, 1, 2]
    assert clip.depth_valid.shape == (1, 3, 8, 8)


def test_wan_tokenizer_freezes_the_vae(tokenizer):
    assert not tokenizer.vae.training
    assert not any(p.requires_grad for p in tokenizer.vae.parameters())


def test_wan_rgb_latents_are_the_normalised_posterior_mode(vae, scene, clip):
    mean, std = _statistics(vae)
    with torch.no_grad():
        mu = vae.encode(scene.rgb.transpose(0, 1)[None]).latent_dist.mean
    torch.testing.assert_close(clip.grids["rgb"], (mu - mean) / std)


def test_wan_rgb_decoding_matches_the_vae(vae, tokenizer, clip):
    mean, std = _statistics(vae)
    with torch.no_grad():
        video = vae.decode(clip.grids["rgb"] * std + mean).sample.clamp(-1, 1)
    decoded = tokenizer.decode_streams(clip)["rgb"]
    assert decoded.shape == (1, T, 3, H, W)
    torch.testing.assert_close(decoded, video.transpose(1, 2))


def test_wan_depth_is_replicated_to_three_channels_and_averaged_back(vae, tokenizer, scene, clip):
    mean, std = _statistics(vae)
    scale = clip.frame.scale
    encoded = encode_depth(scene.depth, scale)  # (T, 1, H, W)
    with torch.no_grad():
        mu = vae.encode(encoded.expand(-1, 3, -1, -1).transpose(0, 1)[None]).latent_dist.mean
        video = vae.decode(mu).sample.clamp(-1, 1)  # (1, 3, T, H, W)
    torch.testing.assert_close(clip.grids["depth"], (mu - mean) / std)
    expected = clip.frame.decode_depth(video.mean(1, keepdim=True).transpose(1, 2))
    torch.testing.assert_close(tokenizer.decode_streams(clip)["depth"], expected)


def test_wan_rays_unpack_exactly_and_give_back_the_cameras(tokenizer, scene, clip):
    frame = ClipFrame.fit(scene.cameras[None], scene.depth[None])
    cameras = frame.normalize_cameras(scene.cameras[None]).strided(8)
    rays = plucker_rays(cameras, H // 8, W // 8)  # (1, T, 6, 8, 8)
    assert torch.equal(unpack_rays(clip.grids["ray_d"], 4, T), rays[:, :, :3])
    assert torch.equal(unpack_rays(clip.grids["ray_m"], 4, T), rays[:, :, 3:])
    assert (clip.grids["ray_d"][:, 12:] == 0).all()
    cameras = tokenizer.decode_streams(clip)["cameras"][0]
    torch.testing.assert_close(cameras.c2w, scene.cameras.c2w, rtol=0, atol=1e-4)
    torch.testing.assert_close(cameras.K, scene.cameras.K, rtol=1e-4, atol=1e-4)


def test_wan_context_frame_is_appended_to_every_stream(tokenizer, scene, clip):
    context = tokenizer.encode(scene, context_frames=(-1, 8, 0))  # frame 8 once, frame 0 never
    assert context.num_context == 1 and context.num_clip_latents == 3
    assert context.frame_index.tolist() == [0, 1, 2, 2]  # pixel frame 8 sits in latent frame 2
    assert context.pixel_frames[-1] == (8,)
    for name, grid in context.grids.items():
        assert grid.shape == (1, 16, 4, 8, 8)
        torch.testing.assert_close(grid[:, :, :3], clip.grids[name])
    alone = tokenizer.encode_images(scene.rgb[None, 8:9])
    torch.testing.assert_close(context.grids["rgb"][:, :, 3:], alone)
    ray_d = unpack_rays(clip.grids["ray_d"], 4, T)[:, 8:9]
    torch.testing.assert_close(context.grids["ray_d"][:, :, 3:], pack_rays(ray_d, 4, 16))
    assert (context.depth_valid[:, 3] == 1).all()
    # decoding drops the context group
    (decoded,) = tokenizer.decode(context)
    torch.testing.assert_close(decoded.rgb, tokenizer.decode(clip)[0].rgb)


def test_wan_tokenizer_rejects_clips_the_vae_would_truncate(tokenizer, scene):
    with pytest.raises(ValueError, match=r"num_frames is 8 \(expected 1 \+ 4·k"):
        tokenizer.encode(scene.frames(slice(0, 8)))
    with pytest.raises(ValueError, match=r"num_frames is 8"):
        tokenizer.encode_images(scene.rgb[None, :8])
    cropped = Scene(scene.rgb[..., :60, :], scene.depth[..., :60, :])
    with pytest.raises(ValueError, match="height is 60 .*multiple of the spatial stride 8"):
        tokenizer.encode(cropped)
    with pytest.raises(ValueError, match=r"context_frames has -10"):
        tokenizer.encode(scene, context_frames=(-10,))


def test_wan_tokenizer_needs_room_for_the_ray_frames():
    small = _tiny_vae(z_dim=8, latents_mean=[0.0] * 8, latents_std=[1.0] * 8)
    with pytest.raises(ValueError, match=r"z_dim 8 \(expected ≥ 12"):
        WanVAETokenizer(small)
    with pytest.raises(ValueError, match="expected a diffusers AutoencoderKLWan"):
        WanVAETokenizer(torch.nn.Linear(2, 2))


def test_from_pretrained_reads_a_diffusers_vae_and_a_pipeline_directory(vae, tmp_path):
    vae.save_pretrained(tmp_path / "vae")
    for path in (tmp_path / "vae", tmp_path):  # the VAE itself, then a pipeline with vae/
        loaded = WanVAETokenizer.from_pretrained(path, dtype=torch.float64)
        assert loaded.dtype == torch.float64 and loaded.latent_channels == 16
        for key, value in vae.state_dict().items():
            torch.testing.assert_close(loaded.vae.state_dict()[key], value.double())


def test_from_pretrained_names_a_missing_or_foreign_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        WanVAETokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="neither config.json nor vae/config.json"):
        WanVAETokenizer.from_pretrained(tmp_path)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an original Wan2.1 VAE state dict"):
        WanVAETokenizer.from_pretrained(tmp_path / "other.pth")


# ---------------------------------------------------------------- original Wan2.1 checkpoint

_RESIDUAL = {
    "norm1": "residual.0",
    "conv1": "residual.2",
    "norm2": "residual.3",
    "conv2": "residual.6",
}
_RESIDUAL.update({"conv_shortcut": "shortcut"})


def _to_original_key(key: str) -> str:
    """Inverse of diffusers' ``convert_wan_vae_to_diffusers`` for the Wan2.1 architecture."""
    parts = key.split(".")
    top = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
    if parts[0] in top:
        return ".".join([top[parts[0]], *parts[1:]])
    coder, block, rest = parts[0], parts[1], parts[2:]
    if block == "conv_in":
        return ".".join([coder, "conv1", *rest])
    if block in ("norm_out", "conv_out"):
        return ".".join([coder, "head", "0" if block == "norm_out" else "2", *rest])
    if block == "mid_block":
        kind, index, layer = rest[0], int(rest[1]), rest[2:]
        if kind == "attentions":
            return ".".join([coder, "middle", "1", *layer])
        return ".".join([coder, "middle", str(2 * index), _RESIDUAL[layer[0]], *layer[1:]])
    if block == "down_blocks":
        index, layer = rest[0], rest[1:]
        if layer[0] in _RESIDUAL:
            return ".".join([coder, "downsamples", index, _RESIDUAL[layer[0]], *layer[1:]])
        return ".".join([coder, "downsamples", index, *layer])
    if block == "up_blocks":
        stage, kind = int(rest[0]), rest[1]
        if kind == "upsamplers":
            return ".".join([coder, "upsamples", str(4 * stage + 3), *rest[3:]])
        index, layer = 4 * stage + int(rest[2]), rest[3:]
        return ".".join([coder, "upsamples", str(index), _RESIDUAL[layer[0]], *layer[1:]])
    raise KeyError(key)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_from_pretrained_reads_an_original_wan21_checkpoint(tmp_path, suffix):
    torch.manual_seed(1)
    reference = AutoencoderKLWan(base_dim=4)  # Wan2.1's layout, narrower
    state = reference.state_dict()
    original = {_to_original_key(k): v for k, v in state.items()}
    assert convert_wan_vae_to_diffusers(original).keys() == state.keys()  # the inverse is right
    path = tmp_path / f"Wan2.1_VAE{suffix}"
    if suffix == ".pth":
        torch.save(original, path)
    else:
        save_file({k: v.contiguous() for k, v in original.items()}, path)
    loaded = WanVAETokenizer.from_pretrained(path)
    for key, value in state.items():
        assert torch.equal(loaded.vae.state_dict()[key], value), key
    images = torch.rand(1, 1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(
        loaded.encode_images(images), WanVAETokenizer(reference).encode_images(images)
    )


def test_wan_context_groups_of_a_mixed_batch_stay_zero_where_data_is_absent(tokenizer, scene):
    bare = Scene(scene.rgb.flip(-1))
    clip = tokenizer.encode([bare, scene], context_frames=(4,))
    assert clip.frame_index.tolist() == [0, 1, 2, 1]
    for name in ("depth", "ray_d", "ray_m"):
        assert clip.available[name].tolist() == [False, True]
        assert (clip.grids[name][0] == 0).all() and (clip.grids[name][1, :, 3] != 0).any()
    assert (clip.depth_valid[0] == 0).all() and (clip.depth_valid[1] == 1).all()
    first, second = tokenizer.decode(clip)
    assert first.modalities == ("rgb",) and second.modalities == scene.modalities
