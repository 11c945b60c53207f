"""Pictures of scenes: colour-mapped depth and rays, clip grids, PNG files (DESIGN §6).

Needs the ``viz`` extra (matplotlib for colormaps, Pillow for PNGs); both are imported only by
the functions that use them, so importing this package never requires them.
"""

from any4d.viz.colormap import colorize_depth, colorize_moments, colorize_rays, depth_range
from any4d.viz.grid import (
    clip_grid,
    frame_indices,
    save_clip_grid,
    save_png,
    tile_grid,
    to_uint8,
)

__all__ = [
    "clip_grid",
    "colorize_depth",
    "colorize_moments",
    "colorize_rays",
    "depth_range",
    "frame_indices",
    "save_clip_grid",
    "save_png",
    "tile_grid",
    "to_uint8",
]
