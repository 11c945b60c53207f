"""Scenes: the ``Scene`` container and the procedural 4D world (``any4d.data.synthetic``)."""

from any4d.data.scene import MODALITIES, Scene
from any4d.data.synthetic import SyntheticClips, SyntheticConfig, render_clip

__all__ = ["MODALITIES", "Scene", "SyntheticClips", "SyntheticConfig", "render_clip"]
