"""SpatialVID (HQ): RGB + pose + caption; optional depth. Poses and depth are MegaSaM's.

Layout (SpatialVID ``utils/pack_clip_assets.py``, ``utils/read_depth.py``; HF dataset card)::

    <root>/annotations/group_XXXX/<clip>/indexes.txt     per annotated frame "i frame_in_mp4"
    <root>/annotations/group_XXXX/<clip>/poses.npy       (N, 7) [tx ty tz qx qy qz qw], w2c
    <root>/annotations/group_XXXX/<clip>/intrinsics.npy  (N, 4) [fx/W, fy/H, cx/W, cy/H]
    <root>/annotations/group_XXXX/<clip>/caption.json
    <root>/videos/group_XXXX/<clip>.mp4
    <root>/depths/group_XXXX/<clip>.zip                  one EXR per annotated frame (sorted by
                                                         name), channel Z = inverse depth

Annotations cover a subsampled subset of the video's frames; a sequence is those frames.
Conversions: ``[t, q_xyzw]`` → ``[R|t]`` (``pose_from_quaternion``, scalar last) → c2w
(``w2c_to_c2w``), OpenCV axes (MegaSaM; inferred); normalised → pixel intrinsics; depth
``inverse_depth_to_metres`` (1/Z; non-finite or ≥ 100 m → 0), resized to the video frames by
the base reader. Depth is approximately metric (UNCONFIRMED). fps = the video's fps divided by
the median step between annotated frames.

Captions: ``caption.json`` is the object SpatialVID's caption pipeline writes
(``caption/utils/combine.py`` merges the VQA answer ``{"CamMotion", "SceneDesc"}`` with the
LLM's ``{"OptCamMotion", "SceneSummary", "MotionTrends": [...], "SceneTags": [...],
"ShotImmersion", "LLM"}``; ``caption/tagging/inference.py`` adds ``"CategoryTag": {...}``).
The text is that of ``caption_key`` if given, else of the first of ``CAPTION_KEYS`` —
``SceneSummary`` (one-sentence scene abstract), then ``SceneDesc`` (~100-word description),
then ``ShotImmersion`` — that holds a non-empty string other than "unknown" (the parser leaves
labels it did not find as ""; the project page's sample viewer skips "unknown"). Camera-motion
text (``CamMotion``, ``OptCamMotion``) is left out of the default: it describes the poses, not
the scene. That the released files hold exactly these keys is read from the code that writes
them, not from a downloaded file (UNCONFIRMED).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence, VideoFrames
from any4d.data.readers.conversions import (
    NORMALISED,
    intrinsics_matrix,
    inverse_depth_to_metres,
    pose_from_quaternion,
    w2c_to_c2w,
)
from any4d.data.readers.decode import (
    CorruptFileError,
    read_exr_channel,
    read_json,
    read_zip_member,
    require_dir,
    require_file,
    video_info,
    zip_names,
)
from any4d.data.readers.tables import read_table

# In order of preference; SpatialVID caption/utils/combine.py names them.
CAPTION_KEYS = ("SceneSummary", "SceneDesc", "ShotImmersion")
EMPTY = ("", "unknown")


class SpatialVID(Reader):
    """SpatialVID clips named "group_XXXX/<clip>". ``read_depth``: also decode the depth zips."""

    name = "spatialvid"
    layout = "annotations/group_*/<clip>/{poses.npy, intrinsics.npy, indexes.txt}, videos/…"

    def __init__(
        self,
        root: str | Path,
        *,
        read_depth: bool = False,
        caption_key: str | None = None,
        **options,
    ) -> None:
        super().__init__(root, **options)
        self.read_depth, self.caption_key = read_depth, caption_key

    @property
    def provides(self) -> tuple[str, ...]:
        return ("rgb", "cameras", "text") + (("depth",) if self.read_depth else ())

    def find_sequences(self) -> list[tuple[str, Path]]:
        folders = sorted(p.parent for p in self.root.glob("annotations/*/*/poses.npy"))
        return [(f"{p.parent.name}/{p.name}", p) for p in folders]

    def index_sequence(self, name: str, folder: Path) -> Sequence:
        require_dir(folder, "a SpatialVID annotation folder")
        indexes = read_table(folder / "indexes.txt", columns=2)[:, 1].astype(np.int64)
        poses = _load_npy(folder / "poses.npy", (len(indexes), 7))
        normalised = _load_npy(folder / "intrinsics.npy", (len(indexes), 4))
        w2c = pose_from_quaternion(poses[:, 3:], poses[:, :3], scalar_first=False)
        video = self.root / "videos" / folder.parent.name / f"{folder.name}.mp4"
        _, video_fps = video_info(video)
        steps = [b - a for a, b in zip(indexes, indexes[1:], strict=False) if b > a]
        depth = None
        if self.read_depth:
            archive = self.root / "depths" / folder.parent.name / f"{folder.name}.zip"
            depth = _zip_members(archive, len(indexes))
        return Sequence(
            name=name,
            source=folder,
            rgb=VideoFrames(video, tuple(int(i) for i in indexes)),
            K=intrinsics_matrix(*normalised.unbind(-1)),
            intrinsics_size=NORMALISED,
            c2w=w2c_to_c2w(w2c),
            depth=depth,
            text=self._caption(folder / "caption.json"),
            fps=video_fps / float(statistics.median(steps)) if steps else video_fps,
        )

    def decode_depth(self, handle: tuple[Path, str]) -> Tensor:
        archive, member = handle
        inverse = read_exr_channel(read_zip_member(archive, member), "Z", f"{archive}:{member}")
        return inverse_depth_to_metres(inverse)

    def _caption(self, path: Path) -> str:
        caption = read_json(path, "a SpatialVID caption.json object")
        if not isinstance(caption, dict):
            raise CorruptFileError(
                path, f"holds a JSON {type(caption).__name__} (expected an object of captions)"
            )
        keys = (self.caption_key,) if self.caption_key else CAPTION_KEYS
        for key in keys:
            text = caption.get(key)
            if isinstance(text, str) and text.strip().lower() not in EMPTY:
                return text.strip()
        found = {k: type(v).__name__ for k, v in caption.items()}
        raise CorruptFileError(
            path,
            f"has no non-empty caption string under {list(keys)} (found {found}; pass "
            "caption_key=…)",
        )


def _load_npy(path: Path, shape: tuple[int, int]) -> Tensor:
    require_file(path, f"a SpatialVID array of shape {shape}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise CorruptFileError(path, f"not a readable .npy ({error})") from None
    if array.shape != shape:
        raise CorruptFileError(path, f"has shape {array.shape} (expected {shape})")
    return torch.as_tensor(array, dtype=torch.float64)


def _zip_members(archive: Path, count: int) -> tuple[tuple[Path, str], ...]:
    names = [n for n in zip_names(archive, "SpatialVID depth EXRs") if n.lower().endswith(".exr")]
    if len(names) != count:
        raise CorruptFileError(
            archive, f"holds {len(names)} EXR files (expected one per annotated frame, {count})"
        )
    return tuple((archive, name) for name in names)
