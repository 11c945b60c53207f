"""7-Scenes (Microsoft RGB-D): RGB + depth + pose, metric; evaluation only.

Layout (CUT3R ``eval/mv_recon/data.py``; SimpleRecon ``7scenes_preprocessing.py``)::

    <root>/<scene>/{TrainSplit.txt, TestSplit.txt}      lines "sequence1" → seq-01
    <root>/<scene>/seq-XX/frame-%06d.color.png          640×480
    <root>/<scene>/seq-XX/frame-%06d.pose.txt           4×4 camera-to-world, OpenCV axes
    <root>/<scene>/seq-XX/frame-%06d.depth.proj.png     uint16 mm registered to RGB, 0 = invalid
                                                        (SimpleRecon's preprocessing writes it)
    <root>/<scene>/seq-XX/frame-%06d.depth.png          raw sensor depth, uint16 mm, 65535 =
                                                        invalid, NOT registered to the RGB camera

Conversions: none for poses (already c2w, OpenCV); millimetres → metres; 65535 and 0 → 0,
optionally depths beyond ``max_depth`` (CUT3R: 10 m) → 0. The data set ships no calibration:
K is the commonly used f = 525, principal point (320, 240) for 640×480 (CUT3R, SimpleRecon).
fps = 30 (UNCONFIRMED: Kinect, nominal).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import intrinsics_matrix, invalid_to_zero, millimetres_to_metres
from any4d.data.readers.decode import (
    CorruptFileError,
    read_uint16_png,
    require_dir,
    require_file,
    require_files,
)
from any4d.data.readers.tables import read_table

SCENES = ("chess", "fire", "heads", "office", "pumpkin", "redkitchen", "stairs")
FOCAL, CENTRE, SIZE = 525.0, (320.0, 240.0), (480, 640)
RAW_INVALID = 65535
FPS = 30.0
DEPTH_FILES = {"projected": "depth.proj.png", "raw": "depth.png"}


class SevenScenes(Reader):
    """7-Scenes. ``split``: "train", "test" (the scenes' split files) or None (every seq-XX);
    ``depth``: "projected" (registered, default) or "raw"; ``max_depth`` in metres."""

    name = "7scenes"
    layout = "<scene>/seq-XX/frame-XXXXXX.{color.png, depth.proj.png, pose.txt}"
    provides = ("rgb", "depth", "cameras")

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = "test",
        depth: str = "projected",
        max_depth: float | None = None,
        **options,
    ) -> None:
        super().__init__(root, **options)
        if split not in ("train", "test", None):
            raise ValueError(f"split is {split!r} (expected 'train', 'test' or None)")
        if depth not in DEPTH_FILES:
            raise ValueError(f"depth is {depth!r} (expected one of {tuple(DEPTH_FILES)})")
        self.split, self.depth, self.max_depth = split, depth, max_depth

    def find_sequences(self) -> list[tuple[str, Path]]:
        found = []
        for scene in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if self.split is None:
                folders = sorted(scene.glob("seq-*/"))
            else:
                listed = scene / f"{self.split.capitalize()}Split.txt"
                if not listed.is_file() and not any(scene.glob("seq-*")):
                    continue  # not a 7-Scenes scene folder
                folders = [scene / f"seq-{n:02d}" for n in _split_numbers(listed)]
            found += [(f"{scene.name}/{folder.name}", folder) for folder in folders]
        return found

    def index_sequence(self, name: str, folder: Path) -> Sequence:
        require_dir(folder, "a 7-Scenes sequence folder seq-XX")
        colour = sorted(folder.glob("frame-*.color.png"))
        stems = [p.name.removesuffix(".color.png") for p in colour]
        poses = [folder / f"{stem}.pose.txt" for stem in stems]
        c2w = torch.stack([_read_pose(p) for p in require_files(poses, "a 7-Scenes pose")])
        depth = [folder / f"{stem}.{DEPTH_FILES[self.depth]}" for stem in stems]
        what = "registered depth (run SimpleRecon's 7scenes_preprocessing.py, or depth='raw')"
        return Sequence(
            name=name,
            source=folder,
            rgb=tuple(colour),
            K=intrinsics_matrix(FOCAL, FOCAL, *CENTRE).expand(len(stems), 3, 3),
            intrinsics_size=SIZE,
            c2w=c2w,
            depth=require_files(depth, what if self.depth == "projected" else "raw depth"),
            fps=FPS,
        )

    def decode_depth(self, handle: Path) -> Tensor:
        code = read_uint16_png(handle)
        metres = millimetres_to_metres(code)
        invalid = (code == RAW_INVALID) | (code == 0)
        if self.max_depth is not None:
            invalid |= metres > self.max_depth
        return invalid_to_zero(metres, invalid)


def _split_numbers(path: Path) -> list[int]:
    """Sequence numbers of a split file: lines "sequence1", "sequence2", …"""
    require_file(path, "a 7-Scenes split file (lines 'sequenceN')")
    numbers = []
    for line in path.read_text(encoding="utf-8", errors="replace").split():
        match = re.fullmatch(r"sequence(\d+)", line.strip())
        if match is None:
            raise CorruptFileError(path, f"has the line {line!r} (expected 'sequenceN')")
        numbers.append(int(match.group(1)))
    return numbers


def _read_pose(path: Path) -> Tensor:
    table = read_table(path, columns=4)
    if table.shape != (4, 4):
        raise CorruptFileError(path, f"holds a {table.shape} table (expected a 4×4 pose)")
    return torch.as_tensor(table)
