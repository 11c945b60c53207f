import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from any4d.tokenize import (
    causal_pixel_frames,
    latent_frame_of,
    num_latent_frames,
    pack_rays,
    pixel_frames_of,
    unpack_rays,
)


def _rays(batch, frames, height=2, width=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, height, width, generator=g, dtype=torch.float64)


@settings(max_examples=40, deadline=None)
@given(
    stride=st.sampled_from([1, 2, 3, 4]),
    k=st.integers(0, 3),
    extra=st.integers(0, 5),
    batch=st.integers(1, 2),
    seed=st.integers(0, 2**31 - 1),
)
def test_unpack_rays_inverts_pack_rays(stride, k, extra, batch, seed):
    rays = _rays(batch, 1 + stride * k, seed=seed)
    channels = 3 * stride + extra
    packed = pack_rays(rays, stride, channels)
    assert packed.shape == (batch, channels, 1 + k, 2, 3)
    assert (packed[:, 3 * stride :] == 0).all()  # padding
    torch.testing.assert_close(
        unpack_rays(packed, stride, 1 + stride * k), rays, rtol=1e-12, atol=0
    )


def test_pack_rays_slot_layout_follows_the_causal_frame_rule():
    rays = _rays(1, 9)
    packed = pack_rays(rays, 4, 16)  # (1, 16, 3, H, W)
    for slot in range(4):
        # latent frame 0 repeats pixel frame 0 in every slot
        assert torch.equal(packed[:, 3 * slot : 3 * slot + 3, 0], rays[:, 0])
        # latent frame j ≥ 1 holds pixel frames 4j − 3 … 4j in slots 0 … 3
        assert torch.equal(packed[:, 3 * slot : 3 * slot + 3, 1], rays[:, 1 + slot])
        assert torch.equal(packed[:, 3 * slot : 3 * slot + 3, 2], rays[:, 5 + slot])
    assert torch.equal(packed[:, 0:3, 2], rays[:, 5])  # pixel frame 5: latent 2, slot 0


def test_pack_rays_with_stride_one_is_the_frames_zero_padded():
    rays = _rays(2, 4)
    packed = pack_rays(rays, 1, 5)
    assert torch.equal(packed[:, :3], rays.transpose(1, 2))
    assert (packed[:, 3:] == 0).all()


def test_unpack_rays_averages_the_slots_of_latent_frame_zero():
    packed = torch.zeros(1, 12, 2, 1, 1)
    for slot in range(4):
        packed[:, 3 * slot : 3 * slot + 3, 0] = float(slot)
    unpacked = unpack_rays(packed, 4, 5)
    assert torch.equal(unpacked[:, 0], torch.full((1, 3, 1, 1), 1.5))


def test_latent_and_pixel_frame_maps_partition_the_clip():
    stride, num_frames = 4, 13
    latents = num_latent_frames(num_frames, stride)
    covered = [p for j in range(latents) for p in pixel_frames_of(j, stride)]
    assert covered == list(range(num_frames))
    assert pixel_frames_of(0, stride) == (0,) and pixel_frames_of(2, stride) == (5, 6, 7, 8)
    for j in range(latents):
        assert all(latent_frame_of(p, stride) == j for p in pixel_frames_of(j, stride))
    assert [latent_frame_of(p, 1) for p in range(4)] == [0, 1, 2, 3]


def test_causal_pixel_frames_lists_each_latent_frames_pixel_frames():
    assert causal_pixel_frames(9, 4) == ((0,), (1, 2, 3, 4), (5, 6, 7, 8))
    assert causal_pixel_frames(3, 1) == ((0,), (1,), (2,))
    with pytest.raises(ValueError, match=r"num_frames is 8 \(expected 1 \+ 4·k"):
        causal_pixel_frames(8, 4)


def test_pack_rays_rejects_off_rule_frame_counts_and_too_few_channels():
    with pytest.raises(ValueError, match=r"num_frames is 8 \(expected 1 \+ 4·k"):
        pack_rays(_rays(1, 8), 4, 16)
    with pytest.raises(ValueError, match=r"channels is 11 \(expected ≥ 12"):
        pack_rays(_rays(1, 9), 4, 11)
    with pytest.raises(ValueError, match=r"rays has shape \(1, 9, 6, 2, 3\)"):
        pack_rays(torch.zeros(1, 9, 6, 2, 3), 4, 16)
    with pytest.raises(ValueError, match="temporal_stride is 0"):
        pack_rays(_rays(1, 1), 0, 16)


def test_unpack_rays_rejects_a_grid_of_another_length():
    packed = pack_rays(_rays(1, 9), 4, 16)
    with pytest.raises(ValueError, match=r"packed has shape \(1, 16, 3, 2, 3\)"):
        unpack_rays(packed, 4, 13)
    with pytest.raises(ValueError, match="pixel_frame is -1"):
        latent_frame_of(-1, 4)
