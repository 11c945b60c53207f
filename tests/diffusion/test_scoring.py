"""Scores rank true geometry above perturbed geometry; uncertainty measures spread."""

from __future__ import annotations

import math

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import (
    anchor_pairs,
    combined_score,
    geometric_score,
    photometric_score,
    posterior_spread,
)
from any4d.geometry import Cameras


def batch_of(scenes):
    rgb = torch.stack([s.rgb for s in scenes])
    depth = torch.stack([s.depth for s in scenes])
    cameras = Cameras.stack([s.cameras for s in scenes])
    return rgb, depth, cameras


def perturbations(scene):
    """The true geometry, then depth scaled by 1.3 in one frame, a 5° camera turn, noisy depth."""
    yield scene.depth, scene.cameras
    depth = scene.depth.clone()
    depth[1:] *= 1.3
    yield depth, scene.cameras
    angle = math.radians(5)
    turn = torch.eye(4)
    turn[0, 0] = turn[2, 2] = math.cos(angle)
    turn[0, 2], turn[2, 0] = math.sin(angle), -math.sin(angle)
    c2w = scene.cameras.c2w.clone()
    c2w[1:] = c2w[1:] @ turn
    yield scene.depth, Cameras(scene.cameras.K, c2w)
    g = torch.Generator().manual_seed(0)
    yield (
        scene.depth * (1 + 0.2 * torch.randn(scene.depth.shape, generator=g)).clamp_min(0.1),
        scene.cameras,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_rank_true_geometry_first(seed):
    scene = render_clip(seed, num_frames=4, height=48, width=64, dynamic=False)
    hypotheses = list(perturbations(scene))
    rgb = scene.rgb.expand(len(hypotheses), -1, -1, -1, -1)
    depth = torch.stack([d for d, _ in hypotheses])
    cameras = Cameras.stack([c for _, c in hypotheses])
    pairs = anchor_pairs(4, anchors=(0,))
    for scores in (
        photometric_score(rgb, depth, cameras, pairs),
        geometric_score(depth, cameras, pairs),
        combined_score(rgb, depth, cameras, pairs),
    ):
        assert int(scores.argmin()) == 0, scores
        assert torch.isfinite(scores).all()


def test_geometric_score_is_zero_for_exact_static_geometry_and_scale_invariant():
    scene = render_clip(3, num_frames=3, height=32, width=48, dynamic=False)
    rgb, depth, cameras = batch_of([scene])
    pairs = anchor_pairs(3, anchors=(0, 2))
    exact = geometric_score(depth, cameras, pairs)
    assert float(exact) < 0.02  # bilinear sampling at depth edges only
    scaled = geometric_score(depth * 2, cameras.scaled(2.0), pairs)
    torch.testing.assert_close(scaled, exact, atol=1e-4, rtol=1e-3)


def test_no_overlap_scores_inf():
    scene = render_clip(4, num_frames=2, height=16, width=16, dynamic=False)
    rgb, depth, cameras = batch_of([scene])
    c2w = cameras.c2w.clone()
    c2w[0, 1, :3, 3] += 1e4  # the second camera far away, looking elsewhere
    far = Cameras(cameras.K, c2w)
    assert torch.isinf(photometric_score(rgb, depth, far, [(0, 1)])).all()


def test_anchor_pairs():
    assert anchor_pairs(3, anchors=(0, -1)) == [(0, 1), (0, 2), (2, 0), (2, 1)]
    assert len(anchor_pairs(50, anchors=range(50), max_pairs=16)) == 16
    with pytest.raises(ValueError, match="anchors"):
        anchor_pairs(3, anchors=(5,))


def test_posterior_spread_measures_depth_and_camera_disagreement():
    scene = render_clip(5, num_frames=2, height=8, width=8)
    depth = scene.depth[None]
    cameras = scene.cameras[None]
    same = posterior_spread([depth, depth, depth], [cameras, cameras, cameras])
    assert same.depth_std.abs().max() == 0
    assert same.center_std.abs().max() < 1e-6 and same.rotation_spread_deg.abs().max() < 0.1
    shifted = Cameras(cameras.K, cameras.c2w.clone())
    shifted.c2w[..., 0, 3] += 0.2
    spread = posterior_spread([depth, depth * 1.5, None], [cameras, shifted, None])
    torch.testing.assert_close(spread.depth_std, depth * 0.25)
    torch.testing.assert_close(spread.center_std, torch.full((1, 2), 0.1), atol=1e-5, rtol=1e-5)
    one = posterior_spread([depth], [cameras])
    assert one.depth_std is None and one.center_std is None
