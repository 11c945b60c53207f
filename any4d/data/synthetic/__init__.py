"""A procedural 4D world, the project's embedded data set.

A textured room with spheres, boxes and panels (some moving), seen by a camera that orbits,
dollies, pans or drifts; rendered exactly by ray casting (RGB, z-depth, cameras, a caption).

    from any4d.data.synthetic import SyntheticConfig, render_clip, SyntheticClips
    scene = render_clip(3, num_frames=5, dynamic=False, trajectories=("orbit",))
"""

from any4d.data.synthetic.clip import ClipSpec, sample_clip
from any4d.data.synthetic.config import SyntheticConfig
from any4d.data.synthetic.dataset import (
    SPLIT_SIZE,
    SPLITS,
    SyntheticClips,
    render_clip,
    render_spec,
)
from any4d.data.synthetic.render import render
from any4d.data.synthetic.trajectories import TRAJECTORIES
from any4d.data.synthetic.world import World

__all__ = [
    "SPLITS",
    "SPLIT_SIZE",
    "TRAJECTORIES",
    "ClipSpec",
    "SyntheticClips",
    "SyntheticConfig",
    "World",
    "render",
    "render_clip",
    "render_spec",
    "sample_clip",
]
