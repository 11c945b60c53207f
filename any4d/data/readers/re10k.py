"""RealEstate10K: RGB + pose (SfM scale, not metric).

Layout of the released cameras (CUT3R ``preprocess_re10k.py``; pixelSplat
``convert_poses``)::

    <root>/<split>/<clip_id>.txt    line 1: the YouTube URL; then per frame 19 numbers
                                    "timestamp fx fy cx cy 0 0 <3×4 w2c row-major>"

The frames are not shipped (they come from YouTube, cut at the timestamps). This reader reads
them from a frames folder you provide, one image per timestamp:

    <frames_root>/<split>/<clip_id>/<timestamp>.png     (default frames_root: <root>/frames;
                                                         ``frame_suffix`` may be ".jpg")

Conversions: normalised intrinsics → pixels (× the loaded image's W and H); the 3×4 w2c
(OpenCV axes) → 4×4 (``homogeneous``) → c2w (``w2c_to_c2w``). fps from the timestamps, read as
microseconds (UNCONFIRMED: the official site's unit); no depth, no captions.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from any4d.data.readers.base import Reader, Sequence
from any4d.data.readers.conversions import (
    NORMALISED,
    homogeneous,
    intrinsics_matrix,
    w2c_to_c2w,
)
from any4d.data.readers.decode import CorruptFileError, require_files
from any4d.data.readers.tables import read_table

MICROSECONDS = 1e6


class RealEstate10K(Reader):
    """RealEstate10K clips of one ``split`` ("train" or "test"), named "<split>/<clip_id>"."""

    name = "re10k"
    layout = "<split>/<clip_id>.txt camera files (frames under <frames_root>/<split>/<clip_id>/)"
    provides = ("rgb", "cameras")

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "train",
        frames_root: str | Path | None = None,
        frame_suffix: str = ".png",
        **options,
    ) -> None:
        super().__init__(root, **options)
        self.split = split
        self.frames_root = self.root / "frames" if frames_root is None else Path(frames_root)
        self.frame_suffix = frame_suffix

    def find_sequences(self) -> list[tuple[str, Path]]:
        return [
            (f"{self.split}/{p.stem}", p) for p in sorted((self.root / self.split).glob("*.txt"))
        ]

    def index_sequence(self, name: str, path: Path) -> Sequence:
        table = read_table(path, skip=1, columns=19)  # line 1 is the URL
        if len(table) == 0:
            raise CorruptFileError(path, "has no camera lines (expected 19 numbers per line)")
        timestamps = table[:, 0].astype("int64")
        fx, fy, cx, cy = (table[:, i] for i in range(1, 5))
        w2c = homogeneous(table[:, 7:].reshape(-1, 3, 4))
        folder = self.frames_root / self.split / path.stem
        frames = [folder / f"{t}{self.frame_suffix}" for t in timestamps]
        steps = [b - a for a, b in zip(timestamps, timestamps[1:], strict=False) if b > a]
        return Sequence(
            name=name,
            source=path,
            rgb=require_files(frames, "a RealEstate10K frame named by its timestamp"),
            K=intrinsics_matrix(fx, fy, cx, cy),
            intrinsics_size=NORMALISED,
            c2w=w2c_to_c2w(w2c),
            fps=MICROSECONDS / float(statistics.median(steps)) if steps else 30.0,
        )
