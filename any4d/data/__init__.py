"""Scenes: the ``Scene`` container, the procedural 4D world (``any4d.data.synthetic``), readers
for real datasets and users' videos (``any4d.data.readers``), clip sampling and the training
mixture."""

from any4d.data.clips import Clips, check_clip_length, resize_and_crop, split_of
from any4d.data.mixture import (
    ClipConfig,
    DatasetConfig,
    MixtureConfig,
    build_dataset,
    build_mixture,
    load_mixture,
)
from any4d.data.readers import READERS, build_reader, read_user_scene
from any4d.data.scene import MODALITIES, Scene
from any4d.data.synthetic import SyntheticClips, SyntheticConfig, render_clip

__all__ = [
    "MODALITIES",
    "READERS",
    "ClipConfig",
    "Clips",
    "DatasetConfig",
    "MixtureConfig",
    "Scene",
    "SyntheticClips",
    "SyntheticConfig",
    "build_dataset",
    "build_mixture",
    "build_reader",
    "check_clip_length",
    "load_mixture",
    "read_user_scene",
    "render_clip",
    "resize_and_crop",
    "split_of",
]
