import pytest
import torch

from any4d.data import Scene, render_clip
from any4d.geometry import ClipFrame, encode_depth, plucker_rays
from any4d.tokenize import STREAMS, PixelTokenizer

T, H, W = 4, 16, 24


@pytest.fixture(scope="module")
def scene():
    return render_clip(5, num_frames=T, height=H, width=W)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pixel_tokenizer_round_trips_rgb_depth_and_cameras(scene, stride, dtype):
    scene = scene.to(dtype=dtype)
    tokenizer = PixelTokenizer(stride)
    (decoded,) = tokenizer.decode(tokenizer.encode(scene))
    # float64 poses cast up from the renderer's float32 are orthonormal to ~1e-7 only
    tol = 1e-4 if dtype == torch.float32 else 1e-6
    assert decoded.modalities == scene.modalities and decoded.fps == scene.fps
    torch.testing.assert_close(decoded.rgb, scene.rgb, rtol=0, atol=0)
    torch.testing.assert_close(decoded.depth, scene.depth, rtol=tol / 10, atol=tol)
    torch.testing.assert_close(decoded.cameras.c2w, scene.cameras.c2w, rtol=0, atol=tol)
    torch.testing.assert_close(decoded.cameras.K, scene.cameras.K, rtol=tol, atol=tol)


def test_pixel_tokenizer_grids_are_aligned_space_to_depth(scene):
    clip = PixelTokenizer(2).encode(scene)
    assert clip.streams == STREAMS
    for grid in clip.grids.values():
        assert grid.shape == (1, 12, T, H // 2, W // 2)
    assert clip.frame_index.tolist() == list(range(T)) and clip.num_context == 0
    assert clip.pixel_frames == tuple((t,) for t in range(T))
    assert clip.depth_valid.shape == (1, T, H // 2, W // 2) and (clip.depth_valid == 1).all()
    # channel c·4 + i·2 + j of a cell is pixel (2y + i, 2x + j) of channel c
    torch.testing.assert_close(
        clip.grids["rgb"][0, 4 * 1 + 2 * 1 + 0, 2], scene.rgb[2, 1, 1::2, ::2]
    )


def test_pixel_tokenizer_depth_is_the_clip_normalised_depth_in_three_channels(scene):
    clip = PixelTokenizer(1).encode(scene)
    scale = scene.depth.median()  # lower middle, as clip_scale
    torch.testing.assert_close(clip.frame.scale, scale[None])
    expected = encode_depth(scene.depth, scale).transpose(0, 1).expand(3, -1, -1, -1)
    torch.testing.assert_close(clip.grids["depth"][0], expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_pixel_tokenizer_rays_are_plucker_rays_of_normalised_strided_cameras(scene, stride):
    clip = PixelTokenizer(stride).encode(scene)
    frame = ClipFrame.fit(scene.cameras[None], scene.depth[None])
    cameras = frame.normalize_cameras(scene.cameras[None]).strided(stride)
    rays = plucker_rays(cameras, H // stride, W // stride)[0].transpose(0, 1)  # (6, T, H', W')
    torch.testing.assert_close(clip.grids["ray_d"][0, :3], rays[:3])
    torch.testing.assert_close(clip.grids["ray_m"][0, :3], rays[3:])
    assert (clip.grids["ray_d"][:, 3:] == 0).all() and (clip.grids["ray_m"][:, 3:] == 0).all()
    # the first camera is the origin of the clip frame: its moments vanish
    assert clip.grids["ray_m"][0, :, 0].abs().max() < 1e-6


def test_pixel_tokenizer_batches_scenes_with_different_modalities(scene):
    no_depth = Scene(scene.rgb, cameras=scene.cameras, text="no depth")
    no_cameras = Scene(scene.rgb.flip(-1), depth=2 * scene.depth)
    tokenizer = PixelTokenizer(2)
    clip = tokenizer.encode([scene, no_depth, no_cameras])
    assert clip.available["depth"].tolist() == [True, False, True]
    assert clip.available["ray_d"].tolist() == [True, True, False]
    assert (clip.grids["depth"][1] == 0).all() and (clip.depth_valid[1] == 0).all()
    assert (clip.grids["ray_d"][2] == 0).all() and (clip.grids["ray_m"][2] == 0).all()
    # without cameras: identity reference, s = median depth
    torch.testing.assert_close(clip.frame.reference[2], torch.eye(4))
    torch.testing.assert_close(clip.frame.scale[2], 2 * scene.depth.median())

    full, rgb_cameras, rgb_depth = tokenizer.decode(clip)
    assert (full.modalities, rgb_cameras.modalities) == (scene.modalities, no_depth.modalities)
    assert rgb_depth.modalities == ("rgb", "depth")
    torch.testing.assert_close(rgb_depth.depth, no_cameras.depth, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rgb_cameras.cameras.c2w, scene.cameras.c2w, rtol=0, atol=1e-4)


def test_pixel_tokenizer_without_depth_or_cameras_uses_identity_and_unit_scale(scene):
    clip = PixelTokenizer().encode(Scene(scene.rgb))
    assert clip.streams == ("rgb",) and clip.depth_valid is None
    torch.testing.assert_close(clip.frame.reference, torch.eye(4)[None])
    assert clip.frame.scale.tolist() == [1.0]


def test_pixel_tokenizer_depth_valid_is_the_valid_fraction_per_cell(scene):
    depth = scene.depth.clone()
    depth[1, 0, 0, 0] = 0  # one of the four pixels of cell (0, 0) of frame 1
    depth[2, 0, 2:4, 2:4] = 0  # all of cell (1, 1) of frame 2
    clip = PixelTokenizer(2).encode(Scene(scene.rgb, depth))
    assert clip.depth_valid[0, 1, 0, 0] == 0.75 and clip.depth_valid[0, 2, 1, 1] == 0
    assert clip.depth_valid.sum() == clip.depth_valid.numel() - 1.25
    (decoded,) = PixelTokenizer(2).decode(clip)
    assert decoded.depth[1, 0, 0, 0] == 0 and (decoded.depth[2, 0, 2:4, 2:4] == 0).all()


def test_decode_of_explicit_grids_decodes_every_stream_for_every_scene(scene):
    tokenizer = PixelTokenizer()
    clip = tokenizer.encode([scene, Scene(scene.rgb, cameras=scene.cameras)])
    predicted = dict(clip.grids)
    _, second = tokenizer.decode(clip, grids=predicted)
    # a zero D̃ grid is depth s everywhere (the second clip's scale: its trajectory extent)
    torch.testing.assert_close(second.depth, clip.frame.scale[1].expand(T, 1, H, W))
    rgb_only = tokenizer.decode(clip, grids={"rgb": clip.grids["rgb"]})
    assert all(s.modalities == ("rgb", "text") or s.modalities == ("rgb",) for s in rgb_only)


def test_decode_uses_ray_weights_to_ignore_corrupted_rays(scene):
    tokenizer = PixelTokenizer()
    clip = tokenizer.encode(scene)
    grids = dict(clip.grids)
    noise = torch.randn(
        grids["ray_d"][..., :8, :].shape, generator=torch.Generator().manual_seed(0)
    )
    grids["ray_d"] = grids["ray_d"].clone()
    grids["ray_d"][..., :8, :] += 0.3 * noise
    weights = torch.ones(1, T, H, W)
    weights[..., :8, :] = 0
    (decoded,) = tokenizer.decode(clip, grids=grids, ray_weights=weights)
    torch.testing.assert_close(decoded.cameras.c2w, scene.cameras.c2w, rtol=0, atol=1e-4)


def test_pixel_tokenizer_rejects_mismatched_scenes_and_sizes(scene):
    tokenizer = PixelTokenizer(2)
    other = render_clip(6, num_frames=T, height=H, width=W + 3)
    with pytest.raises(ValueError, match=r"scenes\[1\] has rgb \(4, 3, 16, 27\)"):
        tokenizer.encode([scene, other])
    with pytest.raises(ValueError, match="width is 27 .*multiple of the spatial stride 2"):
        tokenizer.encode(other)
    with pytest.raises(ValueError, match="expected a Scene or a non-empty sequence"):
        tokenizer.encode([])
    with pytest.raises(ValueError, match="stride is 0"):
        PixelTokenizer(0)


def test_pixel_tokenizer_needs_no_context_groups_but_checks_their_indices(scene):
    tokenizer = PixelTokenizer()
    clip = tokenizer.encode(scene, context_frames=(0, -1))
    assert clip.num_context == 0 and clip.grids["rgb"].shape[2] == T
    with pytest.raises(ValueError, match=r"context_frames has 4 \(expected .* \[-4, 4\)"):
        tokenizer.encode(scene, context_frames=(4,))


def test_decode_rejects_grids_that_do_not_match_the_clip(scene):
    tokenizer = PixelTokenizer()
    clip = tokenizer.encode(scene)
    with pytest.raises(ValueError, match=r"grids\['rgb'\] has shape \(1, 3, 3, 16, 24\)"):
        tokenizer.decode(clip, grids={"rgb": clip.grids["rgb"][:, :, :3]})
    with pytest.raises(ValueError, match="ray_d and ray_m together"):
        tokenizer.decode(clip, grids={"rgb": clip.grids["rgb"], "ray_d": clip.grids["ray_d"]})


def test_stream_scales_multiply_grids_and_decode_back():
    from any4d.data.synthetic import render_clip
    from any4d.tokenize import PixelTokenizer

    scene = render_clip(1, num_frames=3, height=16, width=16)
    plain = PixelTokenizer(2).encode(scene)
    scaled_tokenizer = PixelTokenizer(2, {"ray_m": 7.0, "depth": 2.5})
    scaled = scaled_tokenizer.encode(scene)
    torch.testing.assert_close(scaled.grids["ray_m"], 7.0 * plain.grids["ray_m"])
    torch.testing.assert_close(scaled.grids["depth"], 2.5 * plain.grids["depth"])
    assert torch.equal(scaled.grids["rgb"], plain.grids["rgb"])
    back = scaled_tokenizer.decode(scaled)[0]
    torch.testing.assert_close(back.depth, scene.depth, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(back.cameras.c2w, scene.cameras.c2w, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="stream_scales"):
        PixelTokenizer(2, {"normals": 2.0})
