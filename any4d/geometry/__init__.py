"""4D geometry: cameras, Plücker rays and their inverse, clip normalisation, reprojection.

Imports nothing else of any4d.
"""

from any4d.geometry.cameras import Cameras, check_rotations, look_at, rigid_inverse
from any4d.geometry.rays import pixel_grid, plucker_rays, ray_directions

__all__ = [
    "Cameras",
    "check_rotations",
    "look_at",
    "pixel_grid",
    "plucker_rays",
    "ray_directions",
    "rigid_inverse",
]
