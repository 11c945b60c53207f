"""Pictures of scenes and exports to the tools people use (DESIGN §6).

Colour-mapped depth and rays, clip grids (PNG), RGB | depth | rays videos (mp4 / gif), camera
frustum plots; legible figures of a completion against the truth on one colour scale
(``figures``, ``camera_figure``, laid out by ``layout``); and exports: point clouds (.ply),
COLMAP text, nerfstudio transforms.json, TUM trajectories, our cameras JSON, depth as .npz
and 16-bit PNG; an interactive 4D viewer (viser, the ``viewer`` extra).

Needs the ``viz`` extra (matplotlib, Pillow, PyAV); each is imported only by the functions that
use it, so importing this package never requires them.
"""

from any4d.viz.camera_figure import camera_errors, plot_camera_comparison
from any4d.viz.colormap import colorize_depth, colorize_moments, colorize_rays, depth_range
from any4d.viz.exports_cameras import (
    write_cameras_json,
    write_colmap_text,
    write_transforms_json,
    write_tum,
)
from any4d.viz.exports_geometry import (
    DepthNpzWriter,
    PlyWriter,
    read_depth_npz,
    read_depth_png16,
    read_ply,
    scene_point_cloud,
    subsample_points,
    write_depth_npz,
    write_depth_png16,
    write_ply,
)
from any4d.viz.figures import (
    Comparison,
    Scales,
    compare,
    comparison_figure,
    scales_of,
    scene_figure,
    write_comparison,
)
from any4d.viz.frustums import align_cameras, frustum_corners, frustum_lines, plot_cameras
from any4d.viz.grid import (
    clip_grid,
    frame_indices,
    save_clip_grid,
    save_png,
    tile_grid,
    to_uint8,
)
from any4d.viz.video import (
    comparison_frames,
    comparison_video,
    save_video,
    scene_frames,
    scene_video,
    stream_video,
)
from any4d.viz.viewer import Viewer, add_scene, show_scene

__all__ = [
    "Comparison",
    "Scales",
    "camera_errors",
    "compare",
    "comparison_figure",
    "plot_camera_comparison",
    "scales_of",
    "scene_figure",
    "stream_video",
    "write_comparison",
    "DepthNpzWriter",
    "PlyWriter",
    "Viewer",
    "add_scene",
    "show_scene",
    "align_cameras",
    "clip_grid",
    "colorize_depth",
    "colorize_moments",
    "colorize_rays",
    "comparison_frames",
    "comparison_video",
    "depth_range",
    "frame_indices",
    "frustum_corners",
    "frustum_lines",
    "plot_cameras",
    "read_depth_npz",
    "read_depth_png16",
    "read_ply",
    "save_clip_grid",
    "save_png",
    "save_video",
    "scene_frames",
    "scene_point_cloud",
    "scene_video",
    "subsample_points",
    "tile_grid",
    "to_uint8",
    "write_cameras_json",
    "write_colmap_text",
    "write_depth_npz",
    "write_depth_png16",
    "write_ply",
    "write_transforms_json",
    "write_tum",
]
