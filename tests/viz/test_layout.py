"""Legible pictures: integer upscaling, labelled grids that put every tile where their boxes
say, colour bars whose ticks sit on the colour of their value."""

import pytest
import torch

from any4d.viz.colormap import colorize_depth, colormap_table
from any4d.viz.layout import (
    GridRow,
    depth_bar,
    labelled_grid,
    linear_bar,
    nice_ticks,
    stack,
    text_image,
    upscale,
    upscale_factor,
)


def _tile(value: int, height: int = 8, width: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(value)
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)


def test_upscale_factor_reaches_the_side_and_never_shrinks():
    assert upscale_factor(32, 32, 160) == 5
    assert upscale_factor(14, 32, 160) == 5  # the long side decides
    assert upscale_factor(240, 320, 160) == 1
    assert upscale_factor(31, 31, 160) == 6  # 5 × 31 = 155 < 160
    with pytest.raises(ValueError, match="tile is 0 × 4"):
        upscale_factor(0, 4)


def test_upscale_repeats_every_pixel_as_a_block():
    image = _tile(0, 3, 4)
    big = upscale(image, 3)
    assert big.shape == (3, 9, 12)
    assert torch.equal(big[:, ::3, ::3], image)
    assert torch.equal(big[:, 2::3, 1::3], image)  # every pixel of a block is the original


def test_labelled_grid_puts_each_upscaled_tile_in_its_box():
    rows = [
        GridRow("first"),
        GridRow("RGB", [_tile(1), _tile(2), None], key="a/rgb"),
        GridRow("depth", [_tile(3), _tile(4), _tile(5)], key="a/depth"),
    ]
    side = [torch.zeros(3, 40, 20, dtype=torch.uint8)]
    figure = labelled_grid(rows, ["frame 0", "frame 1", "frame 2"], title="title", side=side)
    factor = upscale_factor(8, 12)
    assert set(figure.boxes) == {"a/rgb/0", "a/rgb/1", "a/depth/0", "a/depth/1", "a/depth/2"}
    for key, tile in (("a/rgb/0", _tile(1)), ("a/rgb/1", _tile(2)), ("a/depth/2", _tile(5))):
        assert torch.equal(figure.boxes[key].crop(figure.image), upscale(tile, factor))
    # The blank cell is white; the labels left of the tiles hold dark (text) pixels.
    box = figure.boxes["a/rgb/1"]
    blank = figure.image[:, box.top : box.top + box.height, box.left + box.width + 4 :]
    assert (blank[:, :, : box.width] == 255).all()
    label = figure.image[:, box.top : box.top + box.height, : figure.boxes["a/rgb/0"].left]
    assert (label < 100).any()
    # Headers above the first row of tiles hold text too.
    assert (
        figure.image[:, : figure.boxes["a/rgb/0"].top, box.left : box.left + box.width] < 100
    ).any()


def test_labelled_grid_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="row 'x' has 1 tiles"):
        labelled_grid([GridRow("x", [_tile(0)])], ["a", "b"])
    with pytest.raises(ValueError, match="expected uint8"):
        labelled_grid([GridRow("x", [_tile(0), _tile(1, 9, 12)])], ["a", "b"])


def test_stack_lays_images_out_with_white_gaps():
    a, b = _tile(0, 4, 6), _tile(1, 5, 3)
    tall = stack([a, b], gap=2)
    assert tall.shape == (3, 11, 6)
    assert torch.equal(tall[:, :4, :6], a) and torch.equal(tall[:, 6:, :3], b)
    assert (tall[:, 4:6] == 255).all()
    wide = stack([a, b], axis="horizontal", gap=1)
    assert wide.shape == (3, 5, 10)


def test_text_image_draws_dark_text_of_the_asked_width():
    image = text_image("depth (m) ↑ 12°", 200)
    assert image.shape[0] == 3 and image.shape[2] == 200
    assert (image < 80).sum() > 50


def test_nice_ticks_are_round_and_inside_the_range():
    assert nice_ticks(0.0, 1.0, 6) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.37, 3.3) == [1.0, 2.0, 3.0]  # steps of 1, 2, 2.5, 5 × 10^k
    assert nice_ticks(0.37, 3.3, 12) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    with pytest.raises(ValueError, match="tick range"):
        nice_ticks(2.0, 1.0)


def _gradient(bar: torch.Tensor) -> tuple[int, int]:
    """First and last row inside the bar's black outline: the longest black run of the
    outline's left column (x = 6)."""
    black = (bar[:, :, 6] == 0).all(0).tolist()
    best, start = (0, 0), None
    for y, dark in enumerate([*black, False]):
        if dark and start is None:
            start = y
        elif not dark and start is not None:
            best = max(best, (y - start, start))
            start = None
    length, first = best
    return first + 1, first + length - 2


def _bar_colour_at(bar: torch.Tensor, y: int) -> torch.Tensor:
    top, bottom = _gradient(bar)
    return bar[:, min(max(y, top), bottom), 10].float()


def _tick_rows(bar: torch.Tensor) -> list[int]:
    """Rows with a tick mark: dark pixels just right of the gradient."""
    dark = (bar[:, :, 6 + 18 + 2] < 60).all(0)
    return [int(y) for y in torch.nonzero(dark).flatten()]


def test_depth_bar_ticks_sit_on_the_colour_of_their_depth():
    near, far = 0.8, 12.0
    table = colormap_table("turbo", dtype=torch.float32, device="cpu")
    bar = depth_bar(near, far, table, "m", height=300)
    rows = _tick_rows(bar)
    assert len(rows) >= 4
    # Every tick's gradient colour is colorize_depth of a round depth within the range.
    candidates = torch.tensor([float(f"{d:.2g}") for d in torch.linspace(near, far, 2000)])
    colours = colorize_depth(candidates[:, None, None, None], near=near, far=far)[:, :, 0, 0]
    for y in rows:
        colour = _bar_colour_at(bar, y) / 255
        assert (colours - colour).abs().amax(1).min() < 0.03


def test_linear_bar_marks_saturation():
    table = colormap_table("viridis", dtype=torch.float32, device="cpu")
    bar = linear_bar(0.0, 0.5, table, "error", height=200, percent=True)
    assert bar.shape[1] > 200 and bar.dtype == torch.uint8
    top, bottom = _gradient(bar)
    assert bottom - top + 3 == 200
    assert (_bar_colour_at(bar, top) / 255 - table[-1]).abs().max() < 0.02  # yellow on top
    assert (_bar_colour_at(bar, bottom) / 255 - table[0]).abs().max() < 0.02
