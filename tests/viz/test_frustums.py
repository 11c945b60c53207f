"""Camera frustums: geometry of the segments, Sim(3) alignment, the PNG plot."""

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.eval import Similarity
from any4d.geometry import Cameras, look_at, project
from any4d.viz.frustums import align_cameras, frustum_corners, frustum_lines, plot_cameras
from tests.cameras_factory import random_cameras, random_rotations

H, W = 24, 32


def _orbit(frames: int = 8) -> Cameras:
    """Cameras on an arc around the origin, looking at it (a curved, non-planar-degenerate path)."""
    angle = torch.linspace(0.0, 1.5, frames, dtype=torch.float64)
    eye = torch.stack([3 * torch.sin(angle), 0.3 * angle, -3 * torch.cos(angle)], -1)
    return Cameras.from_intrinsics(30.0, 28.0, 15.0, 13.0, look_at(eye, torch.zeros(3).double()))


def _moved(cameras: Cameras, seed: int = 0) -> Cameras:
    """The same rig seen in another world frame: rotated, scaled by 2.5 and shifted."""
    rotation = random_rotations((), torch.Generator().manual_seed(seed))
    similarity = Similarity(rotation, torch.tensor([1.0, -2.0, 0.5]).double(), 2.5)
    return Cameras(cameras.K, similarity.apply_to_poses(cameras.c2w))


def test_frustum_corners_project_back_to_the_image_corners():
    cameras = random_cameras((5,), seed=3, height=H, width=W, skew=True)
    corners = frustum_corners(cameras, (H, W), depth=1.7)  # (5, 4, 3)
    points = corners.transpose(-1, -2)[..., None, :]  # (5, 3, 1, 4) as project expects
    uv, z = project(points, cameras)
    expected = torch.tensor([[0.0, 0.0], [W, 0.0], [W, H], [0.0, H]], dtype=torch.float64)
    torch.testing.assert_close(uv[:, :, 0].transpose(-1, -2), expected.expand(5, 4, 2))
    torch.testing.assert_close(z, torch.full_like(z, 1.7))


def test_frustum_lines_start_at_the_centre_and_trace_the_border():
    cameras = random_cameras((2, 3), seed=4, height=H, width=W)
    lines = frustum_lines(cameras, (H, W), depth=0.5)
    corners = frustum_corners(cameras, (H, W), depth=0.5)
    assert lines.shape == (2, 3, 8, 2, 3)
    apex = cameras.centers[..., None, :].expand(2, 3, 4, 3)
    torch.testing.assert_close(lines[..., :4, 0, :], apex)
    torch.testing.assert_close(lines[..., :4, 1, :], corners)
    torch.testing.assert_close(lines[..., 4:, 0, :], corners)
    torch.testing.assert_close(lines[..., 4:, 1, :], corners[..., [1, 2, 3, 0], :])


def test_frustum_rejects_bad_sizes_and_depths():
    cameras = random_cameras((2,), seed=5)
    with pytest.raises(ValueError, match="expected a positive finite z-depth"):
        frustum_lines(cameras, (H, W), depth=0.0)
    with pytest.raises(ValueError, match=r"expected \(height, width\) ≥ 1 pixel"):
        frustum_lines(cameras, (0, W), depth=1.0)
    with pytest.raises(ValueError, match=r"expected \(height, width\)"):
        frustum_lines(cameras, 32, depth=1.0)


@pytest.mark.parametrize("straight", [False, True])
def test_alignment_undoes_a_similarity(straight):
    reference = _orbit()
    if straight:  # a dolly shot: centres on one line, where Umeyama has no unique rotation
        eye = torch.linspace(0, 2, 8, dtype=torch.float64)[:, None] * torch.tensor([0.3, 0, 1.0])
        reference = Cameras(reference.K, look_at(eye, eye + torch.tensor([0.1, 0, 1.0])))
    moved = _moved(reference)
    assert not torch.allclose(moved.centers, reference.centers, atol=0.1)
    aligned = align_cameras(moved, reference)
    torch.testing.assert_close(aligned.centers, reference.centers)
    torch.testing.assert_close(aligned.R, reference.R)


def test_alignment_needs_frame_by_frame_cameras():
    with pytest.raises(ValueError, match=r"expected the same \(N,\)"):
        align_cameras(_orbit(8), _orbit(7))


def test_plot_is_a_png_of_the_requested_size_in_both_colours(tmp_path):
    reference = _orbit()
    path = plot_cameras(
        tmp_path / "plots" / "cameras.png", _moved(reference), reference, width=480, height=360
    )
    assert path == tmp_path / "plots" / "cameras.png" and path.stat().st_size > 1000
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.size == (480, 360)
        pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3).astype(int)
    for colour in ((214, 39, 40), (31, 119, 180)):  # tab:red (predicted), tab:blue (true)
        assert (np.abs(pixels - colour).sum(-1) < 30).sum() > 20, colour
    assert [p.name for p in path.parent.iterdir()] == ["cameras.png"]  # no temporary left


def test_plot_with_alignment_and_a_single_camera(tmp_path):
    reference = _orbit()
    aligned = plot_cameras(tmp_path / "a.png", _moved(reference), reference, align=True)
    single = plot_cameras(tmp_path / "b.png", reference[:1], labels=("camera", "unused"))
    for path in (aligned, single):
        with Image.open(path) as picture:
            assert picture.size == (800, 600)


def test_plot_rejects_bad_requests(tmp_path):
    cameras = _orbit()
    with pytest.raises(ValueError, match="align=True needs reference"):
        plot_cameras(tmp_path / "x.png", cameras, align=True)
    with pytest.raises(ValueError, match=r"expected \(N,\) with N ≥ 1"):
        plot_cameras(tmp_path / "x.png", cameras.reshape(2, 4))
    with pytest.raises(ValueError, match="expected two names"):
        plot_cameras(tmp_path / "x.png", cameras, labels=("one",))
    assert not (tmp_path / "x.png").exists()
