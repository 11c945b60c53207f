"""4D geometry: cameras, Plücker rays and their inverse, clip normalisation, reprojection,
plane-sweep view synthesis, frame indices of a clip, similarity transforms between point sets.

Imports nothing else of any4d.
"""

from any4d.geometry.cameras import Cameras, check_rotations, look_at, rigid_inverse
from any4d.geometry.frame_indices import resolve_frames
from any4d.geometry.normalize import (
    CAMERA_SECONDS,
    UNITS,
    ClipFrame,
    camera_scale,
    decode_depth,
    denormalize_rays,
    encode_depth,
    median_depth,
    normalize_rays,
    observed_scale,
    path_length,
)
from any4d.geometry.plane_sweep import inverse_depth_planes, plane_sweep
from any4d.geometry.rays import pixel_grid, plucker_rays, ray_directions
from any4d.geometry.rays_to_cameras import rays_to_cameras
from any4d.geometry.reproject import photometric_error, project, unproject, warp
from any4d.geometry.similarity import Similarity, robust_umeyama, umeyama

__all__ = [
    "Cameras",
    "ClipFrame",
    "Similarity",
    "check_rotations",
    "CAMERA_SECONDS",
    "UNITS",
    "camera_scale",
    "median_depth",
    "observed_scale",
    "path_length",
    "decode_depth",
    "denormalize_rays",
    "encode_depth",
    "inverse_depth_planes",
    "look_at",
    "normalize_rays",
    "photometric_error",
    "pixel_grid",
    "plane_sweep",
    "plucker_rays",
    "project",
    "ray_directions",
    "rays_to_cameras",
    "resolve_frames",
    "rigid_inverse",
    "robust_umeyama",
    "umeyama",
    "unproject",
    "warp",
]
