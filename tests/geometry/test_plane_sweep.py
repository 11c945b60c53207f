"""Plane-sweep view synthesis: exact planes found, the middle view rendered, bad arguments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from any4d.data import SyntheticClips, SyntheticConfig
from any4d.geometry import Cameras, inverse_depth_planes, plane_sweep, warp

DEPTH = 3.0  # the textured wall's z-depth in every camera


def _wall_views(height=24, width=32):
    """A smooth texture on a fronto-parallel wall seen by a middle camera and two cameras moved
    ±0.3 sideways (3.2 px of disparity each way): images, cameras (left, middle, right)."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, height // 4, width // 4, generator=g, dtype=torch.float64)
    middle = F.interpolate(coarse, (height, width), mode="bicubic", align_corners=False)[0]
    middle = (middle * 2 - 1).clamp(-1, 1)
    c2w = torch.eye(4, dtype=torch.float64).expand(3, 4, 4).clone()
    c2w[0, 0, 3], c2w[2, 0, 3] = -0.3, 0.3
    cameras = Cameras.from_intrinsics(32.0, 32.0, width / 2, height / 2, c2w)
    wall = torch.full((1, height, width), DEPTH, dtype=torch.float64)
    sides = [warp(middle, wall, cameras[1], cameras[i])[0] for i in (0, 2)]  # middle → side
    return torch.stack([sides[0], middle, sides[1]]), cameras


def test_the_sweep_finds_the_wall_and_renders_the_middle_view():
    images, cameras = _wall_views()
    planes = inverse_depth_planes(1.0, 10.0, 64)
    planes = torch.sort(torch.cat([planes, torch.tensor([DEPTH], dtype=torch.float64)])).values
    rendered, depth, views = plane_sweep(
        images[[0, 2]], cameras[[0, 2]], cameras[[1]], planes, weights=torch.tensor([[0.5, 0.5]])
    )
    assert rendered.shape == (1, 3, 24, 32) and depth.shape == views.shape == (1, 1, 24, 32)
    inside = (views == 2)[0, 0]
    inside[:, :6] = inside[:, -6:] = False  # the border columns the side views did not see
    assert inside.sum() > 0.5 * inside.numel()
    found = depth[0, 0][inside]
    assert (found == DEPTH).float().mean() > 0.9, found.unique()
    error = (rendered[0, :, inside] - images[1][:, inside]).abs()
    assert error.max() < 0.1 and error.mean() < 0.03, error  # bilinear resampling, twice


def test_weights_choose_the_colour_and_one_plane_is_a_plain_warp():
    images, cameras = _wall_views()
    wall = torch.tensor([DEPTH], dtype=torch.float64)
    left_only, _, views = plane_sweep(
        images[[0, 2]], cameras[[0, 2]], cameras[[1]], wall, weights=torch.tensor([[1.0, 0.0]])
    )
    plain, seen = warp(
        images[0], torch.full((1, 24, 32), DEPTH, dtype=torch.float64), cameras[0], cameras[1]
    )
    both = (views[0] == 2) & seen
    torch.testing.assert_close(left_only[0][both.expand(3, -1, -1)], plain[both.expand(3, -1, -1)])
    assert ((views[0] > 0) == (seen | (views[0] == 1))).all()


def test_on_procedural_clips_the_sweep_beats_a_cross_fade():
    """Two held-out clips, the middle frame from the first and last (interpolate's inputs). (Its
    depth is only a guess on untextured walls, where every plane agrees.)"""
    clips = SyntheticClips(
        SyntheticConfig(num_frames=5, height=32, width=32, fps=4.0), split="heldout", size=2
    )
    planes = inverse_depth_planes(0.9, 6.0, 48)
    for index in range(2):
        clip = clips[index]
        rendered, depth, views = plane_sweep(
            clip.rgb[[0, 4]], clip.cameras[[0, 4]], clip.cameras[[2]], planes
        )
        fade = 0.5 * (clip.rgb[0] + clip.rgb[4])
        ours = torch.where(views[0] > 0, rendered[0], fade)
        assert (views == 2).float().mean() > 0.2 and ((depth >= 0.9) & (depth <= 6.0)).all()
        assert (ours - clip.rgb[2]).square().mean() < 0.6 * (fade - clip.rgb[2]).square().mean()


def test_bad_arguments_are_clear_errors():
    images, cameras = _wall_views()
    planes = inverse_depth_planes(1.0, 10.0, 4)
    two, two_cameras, target = images[[0, 2]], cameras[[0, 2]], cameras[[1]]
    with pytest.raises(ValueError, match=r"sources has shape \(1, 3, 24, 32\)"):
        plane_sweep(images[:1], cameras[:1], target, planes)
    with pytest.raises(ValueError, match="source_cameras has batch shape"):
        plane_sweep(two, cameras, target, planes)
    with pytest.raises(ValueError, match="target_cameras has batch shape"):
        plane_sweep(two, two_cameras, cameras.reshape(1, 3), planes)
    with pytest.raises(ValueError, match="planes has shape"):
        plane_sweep(two, two_cameras, target, -planes)
    with pytest.raises(ValueError, match=r"weights has shape \(2, 2\)"):
        plane_sweep(two, two_cameras, target, planes, weights=torch.ones(2, 2))
    with pytest.raises(ValueError, match="window=2"):
        plane_sweep(two, two_cameras, target, planes, window=2)
    for near, far, count in ((0.0, 1.0, 4), (2.0, 1.0, 4), (1.0, float("inf"), 4), (1.0, 2.0, 1)):
        with pytest.raises(ValueError, match="near=|count="):
            inverse_depth_planes(near, far, count)
