"""Frames of any size to the model's and back: the whole frame kept (pad), intrinsics exact both
ways, depth for every input pixel, invalid depth never blended in."""

from __future__ import annotations

import pytest
import torch

from any4d.data.fit import FrameFit
from any4d.data.synthetic import render_clip
from any4d.geometry import ray_directions


@pytest.mark.parametrize("source", [(24, 56), (56, 24), (32, 32), (17, 45)])
@pytest.mark.parametrize("mode", ["pad", "crop"])
def test_cameras_come_back_exactly(source, mode):
    scene = render_clip(1, num_frames=2, height=source[0], width=source[1])
    fit = FrameFit.plan(source, (32, 32), mode)
    small = fit.apply(scene)
    assert small.rgb.shape == (2, 3, 32, 32) and small.depth.shape == (2, 1, 32, 32)
    back = fit.restore_cameras(small.cameras)
    torch.testing.assert_close(back.K, scene.cameras.K, atol=1e-4, rtol=1e-5)


def test_pad_keeps_the_whole_frame_and_marks_the_padding():
    fit = FrameFit.plan((272, 640), (32, 32), "pad")
    assert fit.resized == (14, 32) and fit.offset == (9, 0)
    coverage = fit.coverage()
    assert coverage.sum() == 14 * 32 and coverage[9:23].all() and not coverage[:9].any()


def test_padded_rays_point_where_the_input_pixels_look():
    scene = render_clip(2, num_frames=1, height=24, width=56)
    fit = FrameFit.plan((24, 56), (32, 32))
    small = fit.apply(scene)
    rays = ray_directions(small.cameras, 32, 32)[0]  # (3, 32, 32)
    rows, cols = fit.covered
    # The covered block's centre ray is the input's centre ray (both grids share the camera).
    inside = rays[:, rows, cols]
    original = ray_directions(scene.cameras, 24, 56)[0]
    centre = inside.mean((1, 2)) / inside.mean((1, 2)).norm()
    expected = original.mean((1, 2)) / original.mean((1, 2)).norm()
    torch.testing.assert_close(centre, expected, atol=2e-3, rtol=0)


def test_depth_comes_back_for_every_input_pixel_without_blending_invalid():
    fit = FrameFit.plan((24, 56), (32, 32))
    depth = torch.full((1, 1, 32, 32), 2.0)
    depth[..., 16:, :] = 4.0
    depth[..., 10, 5] = 0.0  # one invalid pixel inside the covered block
    restored = fit.restore_depth(depth)
    assert restored.shape == (1, 1, 24, 56)
    valid = restored[restored > 0]
    assert valid.min() >= 2.0 and valid.max() <= 4.0  # no blend towards 0
    assert (restored > 0).float().mean() > 0.95


def test_crop_leaves_the_outside_invalid_and_takes_the_input_rgb_there():
    scene = render_clip(3, num_frames=1, height=24, width=56)
    fit = FrameFit.plan((24, 56), (32, 32), "crop")
    small = fit.apply(scene)
    depth = fit.restore_depth(small.depth)
    assert (depth[..., :4] == 0).all() and (depth[..., 20:36] > 0).all()
    rgb = fit.restore_rgb(torch.zeros_like(small.rgb), scene.rgb)
    assert torch.equal(rgb[..., :4], scene.rgb[..., :4])


def test_sizes_are_checked():
    fit = FrameFit.plan((24, 56), (32, 32))
    with pytest.raises(ValueError, match="depth is 24x56"):
        fit.restore_depth(torch.ones(1, 1, 24, 56))
    with pytest.raises(ValueError, match="fit is 'stretch'"):
        FrameFit.plan((24, 56), (32, 32), "stretch")


def test_edge_aware_upsampling_follows_the_colour_edge():
    # A vertical edge at column 10 of 40: low-res depth 1 | 3 (cells of 4 columns blur it).
    guide = torch.full((1, 3, 8, 40), -1.0)
    guide[..., 10:] = 1.0
    depth_low = torch.ones(1, 1, 2, 10)
    depth_low[..., 3:] = 3.0  # cells 0-2 cover columns 0-11: column 10-11's cell is 'near'
    guide_low = torch.full((1, 3, 2, 10), -1.0)
    guide_low[..., 3:] = 1.0
    fit = FrameFit.plan((8, 40), (2, 10))
    bilinear = fit.restore_depth(depth_low)
    joint = fit.restore_depth(depth_low, guide=guide, model_rgb=guide_low)
    assert 1.2 < float(bilinear[0, 0, 4, 11]) < 2.8  # blurred across the edge
    assert float(joint[0, 0, 4, 9]) == pytest.approx(1.0, abs=1e-3)
    assert float(joint[0, 0, 4, 12]) == pytest.approx(3.0, abs=1e-3)
