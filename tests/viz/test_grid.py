"""Clip grids: layout arithmetic, row contents, frame choice, PNG round trips and errors."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.data import Scene
from any4d.geometry import Cameras, look_at, plucker_rays
from any4d.viz import (
    clip_grid,
    colorize_moments,
    colorize_rays,
    frame_indices,
    save_clip_grid,
    save_png,
)

H, W = 6, 8


def _scene(frames: int = 5, depth: bool = True, cameras: bool = True) -> Scene:
    """A tiny clip: frame t is filled with a grey level that encodes t; an orbiting camera."""
    generator = torch.Generator().manual_seed(0)
    rgb = torch.linspace(-1, 1, frames)[:, None, None, None].expand(frames, 3, H, W).clone()
    depth_map = 1 + 4 * torch.rand(frames, 1, H, W, generator=generator) if depth else None
    cams = None
    if cameras:
        angle = torch.linspace(0.3, 0.8, frames)  # first camera not axis-aligned
        eye = torch.stack([3 * torch.sin(angle), torch.zeros(frames), -3 * torch.cos(angle)], -1)
        c2w = look_at(eye, torch.zeros(3))
        cams = Cameras.from_intrinsics(8.0, 8.0, W / 2, H / 2, c2w)
    return Scene(rgb=rgb, depth=depth_map, cameras=cams)


def _tile(grid: torch.Tensor, row: int, col: int, sep: int = 2) -> torch.Tensor:
    top, left = row * (H + sep), col * (W + sep)
    return grid[:, top : top + H, left : left + W]


@pytest.mark.parametrize(
    "depth, cameras, rays, rows",
    [
        (True, True, True, 4),
        (True, False, True, 2),
        (False, True, True, 3),
        (False, False, True, 1),
        (True, True, False, 2),
    ],
)
def test_grid_shape_is_rows_times_tiles_plus_separators(depth, cameras, rays, rows):
    grid = clip_grid(_scene(5, depth, cameras), max_frames=3, rays=rays, separator=2)
    assert grid.shape == (3, rows * H + (rows - 1) * 2, 3 * W + 2 * 2)
    assert grid.is_floating_point() and 0 <= float(grid.min()) and float(grid.max()) <= 1


def test_grid_shows_every_frame_of_a_short_clip_and_no_more():
    grid = clip_grid(_scene(3), max_frames=8, separator=1)
    assert grid.shape == (3, 4 * H + 3, 3 * W + 2)


def test_separators_are_white_lines_between_tiles():
    grid = clip_grid(_scene(4, depth=False, cameras=False), max_frames=4, separator=3)
    assert grid.shape == (3, H, 4 * W + 9)
    assert torch.all(grid[:, :, W : W + 3] == 1)
    assert not torch.all(grid[:, :, :W] == 1)


def test_frame_indices_are_evenly_spaced_with_first_and_last():
    assert frame_indices(9, 3).tolist() == [0, 4, 8]
    assert frame_indices(4, 8).tolist() == [0, 1, 2, 3]
    assert frame_indices(7, 1).tolist() == [0]
    indices = frame_indices(100, 8).tolist()
    assert indices[0] == 0 and indices[-1] == 99 and len(set(indices)) == 8


def test_grid_rows_hold_the_chosen_frames_of_each_stream():
    scene = _scene(5)
    grid = clip_grid(scene, max_frames=3)  # frames 0, 2, 4
    for col, frame in enumerate([0, 2, 4]):
        torch.testing.assert_close(_tile(grid, 0, col), (scene.rgb[frame] + 1) / 2)
    rays = plucker_rays(scene.cameras.relative_to_first()[torch.tensor([0, 2, 4])], H, W)
    torch.testing.assert_close(_tile(grid, 2, 1), colorize_rays(rays)[1])
    torch.testing.assert_close(_tile(grid, 3, 2), colorize_moments(rays)[2])


def test_ray_rows_are_relative_to_the_first_camera():
    grid = clip_grid(_scene(5, depth=False), max_frames=2)
    # first camera becomes the identity: its centre pixel looks along +z, its moments vanish
    first_rays = _tile(grid, 1, 0)
    torch.testing.assert_close(
        first_rays[:, H // 2, W // 2], torch.tensor([0.5, 0.5, 1.0]), atol=0.1, rtol=0
    )
    torch.testing.assert_close(_tile(grid, 2, 0), torch.full((3, H, W), 0.5))


def test_depth_row_shares_one_scale_over_the_whole_clip():
    scene = _scene(5, cameras=False)
    depth = scene.depth.clone()
    depth[1] = 0.1  # a very near frame that is not shown still sets the scale
    with_near = Scene(rgb=scene.rgb, depth=depth)
    shown = [0, 2, 4]
    a = clip_grid(scene, max_frames=3)
    b = clip_grid(with_near, max_frames=3)
    assert all(not torch.equal(_tile(a, 1, c), _tile(b, 1, c)) for c in range(len(shown)))


def test_max_frames_below_one_is_a_clear_error():
    with pytest.raises(ValueError, match="max_frames is 0"):
        clip_grid(_scene(3), max_frames=0)


def test_clip_grid_rejects_a_non_scene():
    with pytest.raises(ValueError, match="must be an any4d Scene"):
        clip_grid(torch.zeros(3, 3, H, W))


def test_png_round_trip_of_a_uint8_image(tmp_path):
    image = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    path = save_png(image, tmp_path / "nested" / "dir" / "image.png")
    assert path.is_file()
    loaded = np.array(Image.open(path).convert("RGB"))  # (H, W, 3)
    assert loaded.shape == (5, 7, 3)
    assert torch.equal(torch.from_numpy(loaded).permute(2, 0, 1), image)


def test_png_of_a_float_image_rounds_to_uint8(tmp_path):
    image = torch.tensor([0.0, 0.5, 1.0, 0.2]).reshape(1, 2, 2).expand(3, 2, 2)
    loaded = np.asarray(Image.open(save_png(image, tmp_path / "f.png")))
    assert loaded[..., 0].tolist() == [[0, 128], [255, 51]]


def test_save_png_rejects_images_in_another_convention(tmp_path):
    with pytest.raises(ValueError, match=r"expected floats in \[0, 1\]"):
        save_png(torch.full((3, 2, 2), -1.0), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"expected \(3, H, W\)"):
        save_png(torch.zeros(2, 2, 3), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_save_clip_grid_writes_the_grid(tmp_path):
    scene = _scene(5)
    path = save_clip_grid(scene, tmp_path / "grid.png", max_frames=3, separator=1)
    with Image.open(path) as picture:
        assert picture.size == (3 * W + 2, 4 * H + 3)  # Pillow reports (width, height)
        assert picture.mode == "RGB"


def test_missing_pillow_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "any4d\[viz\]"'):
        save_png(torch.zeros(3, 2, 2), tmp_path / "x.png")
