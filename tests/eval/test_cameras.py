import numpy as np
import pytest
import torch

from any4d.eval import cameras_from_rays, pose_metrics
from any4d.geometry import Cameras, plucker_rays
from tests.eval.trajectories import handheld_trajectory

HEIGHT, WIDTH = 12, 16


def _clip(frames=8):
    c2w = torch.from_numpy(handheld_trajectory(frames, 0))
    return Cameras.from_intrinsics(14.0, 15.0, 8.2, 5.9, c2w)


def test_cameras_from_rays_recover_pose_and_intrinsics():
    cameras = _clip()
    recovered = cameras_from_rays(plucker_rays(cameras, HEIGHT, WIDTH))
    torch.testing.assert_close(recovered.c2w, cameras.c2w)
    torch.testing.assert_close(recovered.K, cameras.K)
    metrics = pose_metrics(recovered.c2w, cameras.c2w)
    assert max(metrics.values()) < 1e-8, metrics


def test_confidence_weights_out_unreliable_rays():
    cameras = _clip()
    rays = plucker_rays(cameras, HEIGHT, WIDTH)
    g = torch.Generator().manual_seed(0)
    corrupted = rays.clone()
    corrupted[..., :, :4] += 0.5 * torch.randn(corrupted[..., :, :4].shape, generator=g).double()
    confidence = torch.ones(HEIGHT, WIDTH, dtype=torch.float64)
    confidence[:, :4] = 0.0
    weighted = pose_metrics(cameras_from_rays(corrupted, confidence).c2w, cameras.c2w)
    unweighted = pose_metrics(cameras_from_rays(corrupted).c2w, cameras.c2w)
    assert max(weighted.values()) < 1e-8
    assert unweighted["rpe_r"] > 0.1


def test_cameras_from_rays_reject_a_non_tensor_confidence():
    rays = plucker_rays(_clip(2), HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="confidence is a ndarray"):
        cameras_from_rays(rays, np.ones((HEIGHT, WIDTH)))
