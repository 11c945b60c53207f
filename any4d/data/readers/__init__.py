"""Readers of the real data sets, one module each, yielding ``Scene`` clips in our conventions
(OpenCV axes, camera-to-world, metres, RGB in [−1, 1]); ``READERS`` maps a reader's name (as
used in mixture configs) to its class.

    from any4d.data.readers import build_reader
    reader = build_reader("vkitti2", "/data/vkitti2", cameras=(0,))
    scene = reader.read_clip(reader.sequences()[0], start=0, length=49, stride=2)
"""

from __future__ import annotations

from pathlib import Path

from any4d.data.readers.agibot import AgiBotWorld
from any4d.data.readers.base import Reader, Sequence, SkippedSequenceWarning, VideoFrames
from any4d.data.readers.decode import CorruptFileError
from any4d.data.readers.dl3dv import DL3DV
from any4d.data.readers.omniworld import OmniWorld
from any4d.data.readers.pointodyssey import PointOdyssey
from any4d.data.readers.re10k import RealEstate10K
from any4d.data.readers.scannetpp import ScanNetPP
from any4d.data.readers.sevenscenes import SevenScenes
from any4d.data.readers.spatialvid import SpatialVID
from any4d.data.readers.user import UserClip, read_user_scene
from any4d.data.readers.vipe import ViPE
from any4d.data.readers.vkitti2 import VirtualKitti2

READERS: dict[str, type[Reader]] = {
    reader.name: reader
    for reader in (
        RealEstate10K,
        DL3DV,
        SpatialVID,
        ScanNetPP,
        VirtualKitti2,
        PointOdyssey,
        OmniWorld,
        AgiBotWorld,
        SevenScenes,
        ViPE,
        UserClip,
    )
}


def build_reader(name: str, root: str | Path, **options) -> Reader:
    """The reader registered as ``name`` over ``root``; ``options`` go to its constructor."""
    if name not in READERS:
        raise ValueError(f"unknown reader {name!r} (expected one of {sorted(READERS)})")
    return READERS[name](root, **options)


__all__ = [
    "DL3DV",
    "READERS",
    "AgiBotWorld",
    "CorruptFileError",
    "OmniWorld",
    "PointOdyssey",
    "Reader",
    "RealEstate10K",
    "ScanNetPP",
    "Sequence",
    "SevenScenes",
    "SkippedSequenceWarning",
    "SpatialVID",
    "UserClip",
    "VideoFrames",
    "ViPE",
    "VirtualKitti2",
    "build_reader",
    "read_user_scene",
]
