"""Legible pictures: text, nearest-neighbour upscaling, labelled grids of tiles and colour bars.

Every picture a person is shown is built here from tiles (uint8 ``(3, H, W)``): tiles are
upscaled by an integer factor (nearest neighbour, so a model-size pixel stays one visible
block, never a blur that looks like detail), rows get a label on the left, columns a header,
and colour bars stand on the right with ticks in the values' units. Text is drawn with
matplotlib's bundled DejaVu Sans (the ``viz`` extra installs matplotlib), which has the
arrows, degree and multiplication signs the labels use. Pillow draws; nothing here is global.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

# Tiles are upscaled by an integer factor until their long side is at least this many pixels:
# a 32 × 32 model tile becomes 160 × 160, a 240 × 320 one stays as it is.
TILE_SIDE = 160
FONT_SIZE = 15
TITLE_SIZE = 18
GAP = 4  # white pixels between tiles
PAD = 6  # white pixels around text
_WHITE = 255
_BAR_WIDTH = 18  # pixels of a colour bar's gradient
_MIN_TICK_SPACING = 18  # pixels between tick labels of a colour bar


@dataclass(frozen=True)
class Box:
    """Where a tile lies in a picture: rows ``top : top + height``, columns ``left : left +
    width``."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, image: Tensor) -> Tensor:
        """The box's pixels of a (..., H, W) image."""
        return image[..., self.top : self.top + self.height, self.left : self.left + self.width]


@dataclass(frozen=True, eq=False)
class Figure:
    """A picture and where its tiles are.

    image: (3, H, W) uint8. boxes: tile key (``"row/column"``, see ``labelled_grid``) → Box.
    """

    image: Tensor
    boxes: dict[str, Box] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class GridRow:
    """One row of a labelled grid: ``tiles`` (one per column, ``None`` = left blank) under
    ``label``; ``tiles=None`` makes a heading that spans the row. key: the row's part of its
    tiles' box keys (default the label)."""

    label: str
    tiles: Sequence[Tensor | None] | None = None
    key: str | None = None


# ------------------------------------------------------------------------------- pixels


def upscale_factor(height: int, width: int, side: int = TILE_SIDE) -> int:
    """The smallest integer factor that brings an ``height × width`` tile's long side to
    ``side`` pixels (1 when it is there already)."""
    if height < 1 or width < 1:
        raise ValueError(f"tile is {height} × {width} (expected ≥ 1 pixel a side)")
    return max(1, math.ceil(side / max(height, width)))


def upscale(image: Tensor, factor: int) -> Tensor:
    """(..., H, W) → (..., factor·H, factor·W) by repeating every pixel (nearest neighbour)."""
    if factor == 1:
        return image
    return image.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


@lru_cache(maxsize=8)
def font(size: int = FONT_SIZE):
    """DejaVu Sans at ``size`` pixels (matplotlib's bundled copy), as a Pillow font."""
    try:
        from matplotlib import font_manager
        from PIL import ImageFont
    except ImportError as error:
        raise ImportError(
            'labelled pictures need matplotlib and Pillow: pip install "any4d[viz]"'
        ) from error
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return ImageFont.truetype(path, size)


def text_size(text: str, size: int = FONT_SIZE) -> tuple[int, int]:
    """``(width, height)`` in pixels of ``text`` drawn at ``size`` (height: the font's line)."""
    left, _, right, _ = font(size).getbbox(text)
    ascent, descent = font(size).getmetrics()
    return right - left, ascent + descent


def _canvas(height: int, width: int):
    from PIL import Image

    return Image.new("RGB", (width, height), (_WHITE,) * 3)


def _tensor(image) -> Tensor:
    """A Pillow RGB image → (3, H, W) uint8."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()


def text_image(text: str, width: int, *, size: int = FONT_SIZE, align: str = "left") -> Tensor:
    """(3, h, width) uint8: ``text`` in black on white, one line, ``align`` left / centre /
    right; h is the font's line plus padding. Text longer than ``width`` is cut at the edge."""
    from PIL import ImageDraw

    text_width, line = text_size(text, size)
    image = _canvas(line + 2 * PAD // 2, width)
    x = {"left": PAD, "centre": (width - text_width) // 2, "right": width - text_width - PAD}
    ImageDraw.Draw(image).text((max(x[align], 0), PAD // 2), text, font=font(size), fill=0)
    return _tensor(image)


def _paste(canvas: Tensor, tile: Tensor, top: int, left: int) -> Box:
    height, width = tile.shape[-2:]
    canvas[:, top : top + height, left : left + width] = tile
    return Box(top, left, height, width)


def stack(images: Sequence[Tensor], *, axis: str = "vertical", gap: int = GAP) -> Tensor:
    """(3, H_i, W_i) uint8 images one below (or beside) the other, top (left) aligned, on
    white with ``gap`` pixels between them."""
    if not images:
        raise ValueError("stack needs at least one image")
    vertical = axis == "vertical"
    if axis not in ("vertical", "horizontal"):
        raise ValueError(f"axis is {axis!r} (expected 'vertical' or 'horizontal')")
    along = [i.shape[-2] if vertical else i.shape[-1] for i in images]
    across = max(i.shape[-1] if vertical else i.shape[-2] for i in images)
    length = sum(along) + gap * (len(images) - 1)
    shape = (3, length, across) if vertical else (3, across, length)
    canvas = torch.full(shape, _WHITE, dtype=torch.uint8)
    offset = 0
    for image, size in zip(images, along, strict=True):
        _paste(canvas, image, offset if vertical else 0, 0 if vertical else offset)
        offset += size + gap
    return canvas


# -------------------------------------------------------------------------------- grids


def labelled_grid(
    rows: Sequence[GridRow],
    columns: Sequence[str],
    *,
    title: str | None = None,
    side: Sequence[Tensor] = (),
    factor: int | None = None,
) -> Figure:
    """Tiles in a grid with a label per row, a header per column, a title and side panels.

    rows: ``GridRow``s top to bottom; every tile is (3, H, W) uint8, all of one size. columns:
    the C headers (every row with tiles has C of them). factor: nearest-neighbour upscaling of
    the tiles (default ``upscale_factor`` of their size). side: pictures (e.g. colour bars)
    at the right of the grid from the first row of tiles, top to bottom while they fit beside
    the grid, else side by side. Headings
    (``GridRow(label)`` without tiles) span the grid in bold-sized text.

    Returns a Figure whose boxes hold each tile's place under the key ``"{row key}/{c}"``, c
    the column's index.
    """
    tiles = [t for row in rows if row.tiles is not None for t in row.tiles if t is not None]
    if not tiles:
        raise ValueError("labelled_grid needs at least one tile")
    height, width = tiles[0].shape[-2:]
    for row in rows:
        if row.tiles is None:
            continue
        if len(row.tiles) != len(columns):
            raise ValueError(
                f"row {row.label!r} has {len(row.tiles)} tiles (expected one per column: "
                f"{len(columns)})"
            )
        for tile in row.tiles:
            if tile is not None and (tile.dtype != torch.uint8 or tile.shape != (3, height, width)):
                raise ValueError(
                    f"row {row.label!r} has a {tile.dtype} tile of shape {tuple(tile.shape)} "
                    f"(expected uint8 (3, {height}, {width}) like the first tile)"
                )
    factor = upscale_factor(height, width) if factor is None else factor
    height, width = height * factor, width * factor

    label_width = max([text_size(row.label)[0] for row in rows if row.tiles is not None] + [0])
    label_width += 2 * PAD
    header = text_size("Ag")[1] + PAD
    heading = text_size("Ag", TITLE_SIZE)[1] + PAD
    grid_width = label_width + len(columns) * (width + GAP)
    title_height = heading if title else 0
    grid_height = header + sum((height + GAP) if row.tiles is not None else heading for row in rows)
    # Side panels go top to bottom while they fit beside the grid, else side by side.
    vertical = sum(s.shape[-2] + GAP for s in side) <= grid_height - header
    if vertical:
        side_width = max((s.shape[-1] for s in side), default=0)
        side_height = sum(s.shape[-2] + GAP for s in side)
    else:
        side_width = sum(s.shape[-1] + GAP for s in side) - GAP
        side_height = max(s.shape[-2] for s in side) + GAP
    total_width = grid_width + (side_width + GAP if side_width else 0)
    canvas = torch.full(
        (3, title_height + max(grid_height, header + side_height), total_width),
        _WHITE,
        dtype=torch.uint8,
    )
    if title:
        _paste(canvas, text_image(title, total_width, size=TITLE_SIZE), 0, 0)
    top = title_height
    for c, name in enumerate(columns):
        _paste(
            canvas, text_image(name, width, align="centre"), top, label_width + c * (width + GAP)
        )
    top += header
    boxes = {}
    for row in rows:
        if row.tiles is None:
            _paste(canvas, text_image(row.label, grid_width, size=TITLE_SIZE), top, 0)
            top += heading
            continue
        label = text_image(row.label, label_width, align="right")
        _paste(canvas, label, top + max(0, (height - label.shape[-2]) // 2), 0)
        for c, tile in enumerate(row.tiles):
            if tile is None:
                continue
            left = label_width + c * (width + GAP)
            boxes[f"{row.key or row.label}/{c}"] = _paste(canvas, upscale(tile, factor), top, left)
        top += height + GAP
    offset = 0
    for panel in side:
        if vertical:
            _paste(canvas, panel, title_height + header + offset, grid_width + GAP)
            offset += panel.shape[-2] + GAP
        else:
            _paste(canvas, panel, title_height + header, grid_width + GAP + offset)
            offset += panel.shape[-1] + GAP
    return Figure(canvas, boxes)


# --------------------------------------------------------------------------- colour bars


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round values inside ``[low, high]`` about ``count`` of them (1, 2, 2.5 or 5 × 10^k
    apart), for a colour bar's labels."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise ValueError(f"tick range is [{low}, {high}] (expected finite low ≤ high)")
    if high == low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _format(value: float) -> str:
    return f"{value:.3g}"


def colour_bar(
    colours: Tensor,
    ticks: Sequence[tuple[float, str]],
    label: str,
    *,
    height: int = 240,
) -> Tensor:
    """A vertical colour bar with labelled ticks and its label on top.

    colours: (N, 3) float in [0, 1], bottom of the bar first. ticks: (position, text) pairs,
    position in [0, 1] from the bottom (1 = top). Returns (3, h, w) uint8.
    """
    from PIL import Image, ImageDraw

    if colours.dim() != 2 or colours.shape[-1] != 3:
        raise ValueError(f"colours has shape {tuple(colours.shape)} (expected (N, 3))")
    label_height = text_size(label)[1] + PAD
    tick_width = max([text_size(text)[0] for _, text in ticks] + [0])
    width = max(text_size(label)[0] + 2 * PAD, _BAR_WIDTH + 10 + tick_width + 2 * PAD)
    total = label_height + height + text_size("0")[1]
    image = _canvas(total, width)
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD // 2), label, font=font(), fill=0)
    top, left = label_height + text_size("0")[1] // 2, PAD
    index = torch.linspace(colours.shape[0] - 1, 0, height).round().long()  # top row = last
    gradient = (colours[index] * 255).round().to(torch.uint8).numpy()  # (height, 3)
    bar = np.repeat(gradient[:, None, :], _BAR_WIDTH, axis=1)  # (height, width, 3)
    image.paste(Image.fromarray(np.ascontiguousarray(bar)), (left, top))
    draw.rectangle((left, top, left + _BAR_WIDTH - 1, top + height - 1), outline=0)
    last = None
    for position, text in sorted(ticks, key=lambda t: -t[0]):
        y = top + round((1 - position) * (height - 1))
        if last is not None and y - last < _MIN_TICK_SPACING:
            continue
        last = y
        draw.line((left + _BAR_WIDTH, y, left + _BAR_WIDTH + 5, y), fill=0)
        text_height = text_size(text)[1]
        draw.text((left + _BAR_WIDTH + 8, y - text_height // 2), text, font=font(), fill=0)
    return _tensor(image)


def depth_bar(near: float, far: float, table: Tensor, unit: str, *, height: int = 240) -> Tensor:
    """The colour bar of inverse-depth colouring (``colorize_depth``): ``near`` at the top.

    table: (N, 3) the colormap's lookup table, low (far) end first. unit: ``"m"`` or
    ``"relative"``; ticks are round depths, placed where their inverse falls.
    """
    inv_near, inv_far = 1.0 / near, 1.0 / far
    span = inv_near - inv_far
    if span <= 1e-12 * inv_near:
        ticks = [(0.5, _format(near))]
    else:
        # Evenly spaced along the bar (in inverse depth), each at a depth of two digits.
        ticks = {}
        for k in range(6):
            depth = float(f"{1.0 / (inv_far + k / 5 * span):.2g}")
            position = (1.0 / depth - inv_far) / span
            if -0.01 <= position <= 1.01:
                ticks[_format(depth)] = min(max(position, 0.0), 1.0)
        ticks = [(position, text) for text, position in ticks.items()]
    label = "depth (m)" if unit == "m" else f"depth ({unit})"
    return colour_bar(table, ticks, label, height=height)


def linear_bar(
    low: float,
    high: float,
    table: Tensor,
    label: str,
    *,
    height: int = 240,
    percent: bool = False,
    saturates: bool = True,
) -> Tensor:
    """The colour bar of a linear colouring from ``low`` (bottom) to ``high`` (top); with
    ``saturates`` the top tick reads "≥ high" (values beyond it share the top colour)."""
    ticks = []
    for value in nice_ticks(low, high, 5):
        text = f"{100 * value:.0f} %" if percent else _format(value)
        if saturates and math.isclose(value, high):
            text = "≥ " + text
        ticks.append(((value - low) / (high - low), text))
    return colour_bar(table, ticks, label, height=height)
