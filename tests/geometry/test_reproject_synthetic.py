"""Reprojection against the procedural world's exact depth and cameras (static clips)."""

import math

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras, photometric_error, warp

SRC, TGT = [0, 0, 4, 2], [2, 4, 0, 1]  # frame pairs: source → target


def _rotated(cameras: Cameras, degrees: float) -> Cameras:
    """Each camera turned by ``degrees`` about its own y axis."""
    a = math.radians(degrees)
    turn = torch.eye(4)
    turn[0, 0], turn[0, 2], turn[2, 0], turn[2, 2] = (
        math.cos(a),
        math.sin(a),
        -math.sin(a),
        math.cos(a),
    )
    return Cameras(cameras.K, cameras.c2w @ turn)


def _shifted(cameras: Cameras, metres: float) -> Cameras:
    c2w = cameras.c2w.clone()
    c2w[..., :3, 3] += metres * c2w[..., :3, 0]  # along each camera's own x axis
    return Cameras(cameras.K, c2w)


def _errors(src_scene, tgt_scene, src_cameras=None):
    """Photometric error of every (source → target) pair, occlusions masked."""
    src_cameras = src_scene.cameras[SRC] if src_cameras is None else src_cameras
    warped, valid = warp(
        src_scene.rgb[SRC],
        tgt_scene.depth[TGT],
        src_cameras,
        tgt_scene.cameras[TGT],
        src_depth=src_scene.depth[SRC],
    )
    assert valid.float().mean() > 0.5  # the pairs overlap: the error is measured on most pixels
    return photometric_error(warped, tgt_scene.rgb[TGT], valid)


@pytest.mark.parametrize("trajectory", ["orbit", "dolly", "pan", "random"])
@pytest.mark.parametrize("seed", [0, 1])
def test_warp_with_true_geometry_is_near_zero_and_perturbed_cameras_are_not(trajectory, seed):
    kwargs = dict(num_frames=5, dynamic=False, trajectories=(trajectory,))
    target = render_clip(seed, height=48, width=64, **kwargs)
    # The same world and path rendered 4× finer as the source: bilinear sampling of the source
    # is then accurate, so what remains of the error is the geometry's.
    source = render_clip(seed, height=192, width=256, **kwargs)
    truth = _errors(source, target)
    assert truth.max() < 0.02, truth  # RGB spans [-1, 1]: < 1 % of the range
    turned = _errors(source, target, _rotated(source.cameras[SRC], 2.0))
    moved = _errors(source, target, _shifted(source.cameras[SRC], 0.1))
    assert (turned > 5 * truth).all() and (moved > 5 * truth).all(), (truth, turned, moved)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warp_at_one_resolution_prefers_the_true_cameras(seed):
    scene = render_clip(seed, num_frames=5, height=48, width=64, dynamic=False)
    truth = _errors(scene, scene)
    turned = _errors(scene, scene, _rotated(scene.cameras[SRC], 2.0))
    assert (turned > 2 * truth).all(), (truth, turned)
