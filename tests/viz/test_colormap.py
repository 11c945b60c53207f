"""Depth and ray colouring: ordering, invalid pixels, shared scales, known colours."""

import subprocess
import sys

import matplotlib
import pytest
import torch

from any4d.geometry import Cameras, look_at, plucker_rays
from any4d.viz import colorize_depth, colorize_moments, colorize_rays, depth_range


def _turbo(position: float) -> torch.Tensor:
    return torch.tensor(matplotlib.colormaps["turbo"](position)[:3], dtype=torch.float32)


def _ramp(frames: int = 2, height: int = 4, width: int = 5) -> torch.Tensor:
    """(frames, 1, height, width) depth from 1 m to 10 m."""
    return torch.linspace(1, 10, frames * height * width).reshape(frames, 1, height, width)


def test_colorize_depth_shape_dtype_and_range():
    colour = colorize_depth(_ramp())
    assert colour.shape == (2, 3, 4, 5)
    assert colour.dtype == torch.float32
    assert 0 <= float(colour.min()) and float(colour.max()) <= 1


def test_nearer_pixel_gets_the_high_end_of_the_colormap():
    depth = torch.tensor([[[[1.0, 2.0, 8.0]]]])  # (1, 1, 1, 3)
    colour = colorize_depth(depth, near=1.0, far=8.0)
    torch.testing.assert_close(colour[0, :, 0, 0], _turbo(1.0))
    torch.testing.assert_close(colour[0, :, 0, 2], _turbo(0.0))
    assert not torch.allclose(colour[0, :, 0, 0], colour[0, :, 0, 2])


def test_colour_follows_inverse_depth():
    # near = 1 m and far = 4 m span inverse depth 1 … 0.25 m⁻¹; its midpoint 0.625 m⁻¹ is 1.6 m,
    # which must land at the colormap's middle (a linear-in-depth map would put 2.5 m there).
    depth = torch.tensor([[[[1.6]]]])
    colour = colorize_depth(depth, near=1.0, far=4.0)
    torch.testing.assert_close(colour[0, :, 0, 0], _turbo(0.5), atol=0.02, rtol=0)


def test_invalid_pixels_are_black():
    depth = _ramp()
    depth[0, 0, 1, 2] = 0
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[1, 0, 3, 4] = False
    colour = colorize_depth(depth, mask)
    assert colour[0, :, 1, 2].abs().max() == 0
    assert colour[1, :, 3, 4].abs().max() == 0
    # turbo never reaches pure black, so every valid pixel is visibly non-black
    valid_brightness = colour.sum(dim=1)
    assert int((valid_brightness == 0).sum()) == 2


def test_all_invalid_depth_is_all_black():
    colour = colorize_depth(torch.zeros(3, 1, 2, 2))
    assert colour.shape == (3, 3, 2, 2) and colour.abs().max() == 0
    assert depth_range(torch.zeros(3, 1, 2, 2)) is None


def test_one_colour_scale_across_frames():
    # Frame 0 is near, frame 1 far; both hold the same 3 m pixel, which must get one colour
    # (per-frame normalisation would give it the far end in frame 0 and the near end in frame 1).
    depth = torch.stack([torch.full((1, 4, 4), 1.0), torch.full((1, 4, 4), 9.0)])
    depth[0, 0, 0, 0] = depth[1, 0, 0, 0] = 3.0
    colour = colorize_depth(depth)
    torch.testing.assert_close(colour[0, :, 0, 0], colour[1, :, 0, 0])
    assert not torch.allclose(colour[0, :, 1, 1], colour[1, :, 1, 1])


def test_outliers_do_not_set_the_range():
    depth = torch.linspace(1, 2, 400).reshape(1, 1, 20, 20).clone()
    depth[0, 0, 0, 0] = 1e4  # one sky pixel
    near, far = depth_range(depth)
    assert 1 <= near < 1.1 and 1.9 < far <= 2


def test_constant_depth_gets_the_middle_colour():
    colour = colorize_depth(torch.full((1, 1, 2, 2), 5.0))
    torch.testing.assert_close(colour[0, :, 1, 1], _turbo(0.5), atol=0.01, rtol=0)


def test_colorize_depth_uses_the_named_colormap():
    depth = torch.tensor([[[[1.0, 4.0]]]])
    gray = colorize_depth(depth, cmap="gray", near=1.0, far=4.0)
    torch.testing.assert_close(gray[0, :, 0, 0], torch.ones(3))
    torch.testing.assert_close(gray[0, :, 0, 1], torch.zeros(3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cmap": "no-such-map"}, "not a matplotlib colormap"),
        ({"near": 5.0, "far": 2.0}, "near ≤ far"),
        ({"near": 0.0, "far": 2.0}, "0 < near"),
    ],
)
def test_colorize_depth_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        colorize_depth(_ramp(), **kwargs)


def test_colorize_depth_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 1, H, W\)"):
        colorize_depth(torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="valid has shape"):
        colorize_depth(_ramp(), torch.ones(7, 1, 4, 5, dtype=torch.bool))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r'pip install "any4d\[viz\]"'):
        colorize_depth(_ramp())


def test_importing_viz_does_not_import_matplotlib_or_pillow():
    code = "import sys, any4d.viz; print('matplotlib' in sys.modules, 'PIL' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def _forward_camera_rays(height: int = 3, width: int = 3) -> torch.Tensor:
    c2w = look_at(torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]), torch.tensor([0.0, 0.0, 5.0]))
    cameras = Cameras.from_intrinsics(10.0, 10.0, width / 2, height / 2, c2w)
    return plucker_rays(cameras, height, width)  # (2, 6, H, W)


def test_ray_colour_of_the_optical_axis_is_blue_half():
    rays = _forward_camera_rays()
    colour = colorize_rays(rays)
    assert colour.shape == (2, 3, 3, 3)
    # the centre pixel of the camera at the origin looks down +z: d = (0, 0, 1) → (0.5, 0.5, 1)
    torch.testing.assert_close(colour[0, :, 1, 1], torch.tensor([0.5, 0.5, 1.0]))
    # a pixel right of centre points toward +x (red up), one below toward +y (green up)
    assert colour[0, 0, 1, 2] > 0.5 and colour[0, 1, 2, 1] > 0.5


def test_moments_are_grey_at_the_origin_and_scaled_by_the_max_norm():
    rays = _forward_camera_rays()
    colour = colorize_moments(rays)
    assert colour.shape == (2, 3, 3, 3)
    torch.testing.assert_close(colour[0], torch.full((3, 3, 3), 0.5))  # camera at the origin
    signed = colour[1] * 2 - 1  # back to m / max|m|
    assert abs(float(signed.norm(dim=0).max()) - 1) < 1e-5
    torch.testing.assert_close(colorize_moments(rays * 7), colour)  # scale-free


def test_all_zero_moments_are_grey():
    rays = torch.zeros(1, 6, 2, 2)
    rays[:, 2] = 1
    torch.testing.assert_close(colorize_moments(rays), torch.full((1, 3, 2, 2), 0.5))


def test_ray_colouring_rejects_non_ray_tensors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 6, H, W\)"):
        colorize_rays(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 6, H, W\)"):
        colorize_moments(torch.zeros(1, 3, 2, 2))
