"""Scenes: the ``Scene`` container and the procedural 4D world."""

from any4d.data.scene import MODALITIES, Scene

__all__ = ["MODALITIES", "Scene"]
