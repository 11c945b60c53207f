"""Camera figures: per-frame errors that are the pose metrics' terms, turns that no alignment
can hide, a PNG of the asked size."""

import math

import pytest
import torch
from PIL import Image

from any4d.eval.pose_metrics import pose_metrics
from any4d.geometry import Cameras
from any4d.viz.camera_figure import camera_errors, plot_camera_comparison, rotation_angles
from tests.cameras_factory import random_cameras


def _turning(count: int = 8, degrees_per_frame: float = 5.0) -> Cameras:
    """A camera moving along a curve and turning about its y axis at a constant rate."""
    c2w = torch.eye(4, dtype=torch.float64).repeat(count, 1, 1)
    for i in range(count):
        angle = math.radians(degrees_per_frame * i)
        c, s = math.cos(angle), math.sin(angle)
        c2w[i, :3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
        c2w[i, :3, 3] = torch.tensor([0.3 * i, 0.05 * i * i, 0.1 * i], dtype=torch.float64)
    return Cameras.from_intrinsics(20.0, 20.0, 16.0, 12.0, c2w)


def _similar(cameras: Cameras, scale: float = 2.5) -> Cameras:
    turn = torch.eye(4, dtype=torch.float64)
    turn[:3, :3] = random_cameras((1,), seed=3).R[0]
    turn[:3, 3] = torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    return cameras.scaled(scale).transform_world(turn)


def test_rotation_angles_are_geodesic_degrees():
    truth = _turning()
    angles = rotation_angles(truth.R, truth.R[:1])
    torch.testing.assert_close(angles, 5.0 * torch.arange(8, dtype=torch.float64))


def test_a_similar_trajectory_has_no_error():
    truth = _turning()
    errors = camera_errors(_similar(truth), truth)
    assert float(errors.centre_error.abs().max()) < 1e-9
    assert float(errors.step_rotation_error.max()) < 1e-5
    torch.testing.assert_close(errors.turned_predicted, errors.turned_true)
    assert errors.travel_cosine == pytest.approx(
        float(
            torch.nn.functional.cosine_similarity(
                _similar(truth).centers[-1] - _similar(truth).centers[0],
                truth.centers[-1] - truth.centers[0],
                dim=0,
            )
        )
    )


def test_errors_are_the_terms_of_ate_and_rpe_r():
    truth = _turning()
    predicted = _turning(degrees_per_frame=2.0)  # turns too little, moves the same
    predicted = Cameras.unchecked(predicted.K, predicted.c2w.clone())
    predicted.c2w[:, :3, 3] += 0.02 * torch.randn(
        8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    errors = camera_errors(predicted, truth)
    metrics = pose_metrics(predicted.c2w, truth.c2w)
    assert errors.ate == pytest.approx(metrics["ate"], rel=1e-6)
    rms = math.sqrt(float(errors.step_rotation_error.square().mean()))
    assert rms == pytest.approx(metrics["rpe_r"], rel=1e-4)
    assert float(errors.turned_true[-1]) == pytest.approx(35.0)
    assert float(errors.turned_predicted[-1]) == pytest.approx(14.0)
    assert torch.allclose(
        errors.step_rotation_error, torch.full((7,), 3.0, dtype=torch.float64), atol=1e-6
    )


def test_plot_camera_comparison_writes_a_png_of_the_asked_size(tmp_path):
    truth = _turning()
    path = plot_camera_comparison(
        tmp_path / "cams.png",
        _similar(truth),
        truth,
        fps=10.0,
        title="a title",
        width=900,
        height=700,
    )
    with Image.open(path) as image:
        assert image.size == (900, 700)
        pixels = torch.from_numpy(__import__("numpy").array(image.convert("RGB")))
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 80)
    assert int(red.sum()) > 200 and int(blue.sum()) > 200  # both trajectories are drawn
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary left


def test_plot_camera_comparison_refuses_mismatched_cameras(tmp_path):
    truth = _turning()
    with pytest.raises(ValueError, match="expected the same N"):
        plot_camera_comparison(tmp_path / "x.png", truth[:4], truth)
    with pytest.raises(ValueError, match="predicted must be Cameras"):
        plot_camera_comparison(tmp_path / "x.png", "cameras", truth)
