"""ViPE (NVIDIA Video Pose Engine) results: RGB + metric depth + pose, from one annotation run.

ViPE estimates intrinsics, camera-to-world poses and metric depth for a video or a folder of
frames; the paper annotated DL3DV and ScanNet++ with it, so depth and poses come from one source
and share one (metric) scale. This reads the folder ViPE writes (``vipe infer … -o <root>``, or
``run.py``'s ``pipeline.output.path`` with ``save_artifacts=true``); the data sets ViPE released
are extracted into the same folders by their ``scripts/download_dataset.py``.

Layout (nv-tlabs/vipe, read at commit 157494a: ``vipe/utils/io.py`` ``ArtifactPath``,
``save_artifacts`` and the ``save_*_artifacts`` / ``read_*_artifacts`` it pairs them with)::

    <root>/pose/<name>.npz                data (N, 4, 4) camera-to-world, OpenCV axes;
                                          inds (N,) the frame number of each pose
    <root>/intrinsics/<name>.npz          data (M, 4) [fx, fy, cx, cy] in pixels of the rgb
                                          frames; inds (M,) their frame numbers
    <root>/intrinsics/<name>_camera.txt   optional: lines "<frame>: <CameraType name>"
    <root>/rgb/<name>.mp4                 H.264 video of every frame ViPE processed
    <root>/depth/<name>.zip               "<frame %05d>.exr" per frame, one HALF channel "Z" =
                                          metric depth
    <root>/mask/<name>.{zip,txt}, vipe/<name>_info.pkl, …   instance masks etc.: not read

``root`` is one such output folder, or a tree of them (e.g. one ``vipe infer -o`` per scene,
``<root>/1K/<hash>/pose/images_4.npz``: ViPE names a frame folder's results after the folder).
A sequence is named ``<name>`` in the first case and ``<folder below root>/<name>``
("1K/<hash>/images_4") in the second; it holds the frames that have a pose, sorted by frame
number. Frame ``k`` is frame ``k`` of ``rgb/<name>.mp4`` and its depth the zip member
``%05d.exr``; intrinsics and depth are looked up by frame number.

Conversions: poses are used as stored (``io.py``: "Save OpenCV cam2world matrices";
``scripts/vipe_to_colmap.py`` inverts them to get COLMAP's w2c). K from ``[fx, fy, cx, cy]``,
for the video's resolution, at which depth is also stored (their viewer ``vipe/utils/viser.py``
unprojects each depth map with the rgb frame's size). Depth is along the optical axis
(``vipe/utils/depth.py`` ``get_camera_rays``: "depth is z"). ViPE writes no invalid code:
non-finite values (ViPE's own reader returns NaN maps for unreadable EXRs), values ≤ 0 and
values ≥ ``max_depth`` → 0; the default ``max_depth`` = 1000 m is where ViPE's depth alignment
(``vipe/pipeline/processors.py`` ``AdaptiveDepthProcessor``) clamps inverse depth at 1e-3, i.e.
sky and out-of-range pixels. fps: the rgb video's (the input's fps over the frame step; ViPE
assumes 30 for frame folders, ``vipe/streams/frame_dir_stream.py``) divided by the median step
between posed frames; ``fps=`` overrides it.

Scale: metric as far as ViPE's metric depth priors are (the default pipeline anchors SLAM with
UniDepth-L, ``configs/pipeline/default.yaml``): estimated, not ground truth. Only pinhole
results are read: a ``_camera.txt`` naming another ``CameraType`` (MEI, PANORAMA, …: the
``wide_angle`` / ``panorama`` pipelines) makes the sequence a ``CorruptFileError``.

UNCONFIRMED: the pixel-centre convention of ``cx, cy`` — ViPE's unprojection uses integer pixel
coordinates ``u − cx`` while its initial principal point is ``(W/2, H/2)``
(``IntrinsicEstimationProcessor``); K is taken as stored (≤ 0.5 px either way). The released
data sets (Dynpose-100K++, Wild-SDG-1M, Web360) were checked through ``download_dataset.py``'s
folder names only, not on downloaded files.
"""

from __future__ import annotations

import os
import statistics
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from any4d.data.readers.base import Reader, Sequence, VideoFrames
from any4d.data.readers.conversions import intrinsics_matrix, invalid_to_zero
from any4d.data.readers.decode import (
    CorruptFileError,
    read_exr_channel,
    read_zip_member,
    require_file,
    video_info,
    zip_names,
)

MAX_DEPTH = 1000.0  # 1 / the inverse-depth clamp (1e-3) of ViPE's depth alignment
PINHOLE = "PINHOLE"
# The folders of one ViPE output (vipe/utils/io.py ArtifactPath), skipped when searching results.
ARTIFACT_FOLDERS = frozenset(
    {"rgb", "pose", "depth", "intrinsics", "flow", "mask", "vipe", "eval", "vipe_aux_vis"}
)


class ViPE(Reader):
    """Every ViPE result under ``root``, named by ViPE's artifact name (the video's stem or the
    frame folder's name), prefixed by its output folder's path below ``root`` if nested.

    read_depth: also read ``depth/<name>.zip`` (False for pose-only runs).
    max_depth:  depths at or beyond this many metres become invalid (0).
    fps:        frames per second of the posed frames, instead of the rgb video's.
    """

    name = "vipe"
    layout = "{pose,intrinsics}/<name>.npz, rgb/<name>.mp4, depth/<name>.zip"

    def __init__(
        self,
        root: str | Path,
        *,
        read_depth: bool = True,
        max_depth: float = MAX_DEPTH,
        fps: float | None = None,
        **options,
    ) -> None:
        super().__init__(root, **options)
        if not isinstance(max_depth, (int, float)) or not max_depth > 0:
            raise ValueError(f"max_depth is {max_depth!r} (expected a number of metres > 0)")
        if fps is not None and (not isinstance(fps, (int, float)) or not fps > 0):
            raise ValueError(f"fps is {fps!r} (expected a number > 0, or None for the video's)")
        self.read_depth, self.max_depth, self.fps = bool(read_depth), float(max_depth), fps

    @property
    def provides(self) -> tuple[str, ...]:
        return ("rgb", "cameras") + (("depth",) if self.read_depth else ())

    def find_sequences(self) -> list[tuple[str, Path]]:
        found = []
        for folder, subfolders, _ in os.walk(self.root):
            here = Path(folder)
            if "pose" in subfolders:
                prefix = here.relative_to(self.root).as_posix()
                for path in (here / "pose").glob("*.npz"):
                    found.append((path.stem if prefix == "." else f"{prefix}/{path.stem}", path))
            # ViPE's own folders hold files, never further results: do not walk them
            subfolders[:] = sorted(d for d in subfolders if d not in ARTIFACT_FOLDERS)
        return sorted(found)

    def index_sequence(self, name: str, pose_path: Path) -> Sequence:
        base, artifact = pose_path.parent.parent, pose_path.stem
        frames, c2w = _load_artifact(pose_path, "poses", (4, 4))
        order = np.argsort(frames, kind="stable")
        frames, c2w = frames[order], c2w[order]
        intrinsics_path = base / "intrinsics" / f"{artifact}.npz"
        intrinsics_frames, intrinsics = _load_artifact(intrinsics_path, "intrinsics", None)
        _check_pinhole(intrinsics_path, base / "intrinsics" / f"{artifact}_camera.txt")
        if intrinsics.shape[1:] != (4,):
            raise CorruptFileError(
                intrinsics_path,
                f"holds intrinsics of shape {tuple(intrinsics.shape)} (expected (M, 4) "
                "[fx, fy, cx, cy] of a pinhole camera)",
            )
        row = {int(f): i for i, f in enumerate(intrinsics_frames)}
        missing = [int(f) for f in frames if int(f) not in row]
        if missing:
            raise CorruptFileError(
                intrinsics_path, f"has no intrinsics for posed frame {missing[0]} of {pose_path}"
            )
        fx, fy, cx, cy = intrinsics[[row[int(f)] for f in frames]].unbind(-1)
        video = base / "rgb" / f"{artifact}.mp4"
        count, video_fps = video_info(video)
        if frames[-1] >= count:
            raise CorruptFileError(
                video, f"has {count} frames but {pose_path} poses frame {int(frames[-1])}"
            )
        steps = [int(b - a) for a, b in zip(frames, frames[1:], strict=False)]
        fps = self.fps or (video_fps / float(statistics.median(steps)) if steps else video_fps)
        depth = None
        if self.read_depth:
            depth = _depth_members(base / "depth" / f"{artifact}.zip", frames)
        return Sequence(
            name=name,
            source=pose_path,
            rgb=VideoFrames(video, tuple(int(f) for f in frames)),
            K=intrinsics_matrix(fx, fy, cx, cy),
            c2w=c2w,
            depth=depth,
            fps=fps,
        )

    def decode_depth(self, handle: tuple[Path, str]) -> Tensor:
        archive, member = handle
        depth = read_exr_channel(read_zip_member(archive, member), "Z", f"{archive}:{member}")
        return invalid_to_zero(depth, (depth <= 0) | (depth >= self.max_depth))


def _load_artifact(
    path: Path, what: str, item_shape: tuple[int, ...] | None
) -> tuple[np.ndarray, Tensor]:
    """(frame numbers (N,) int64, data (N, …) float64) of a ViPE ``.npz`` with keys
    ``data`` and ``inds``; ``item_shape``: the shape each ``data[i]`` must have, if fixed."""
    require_file(path, f"ViPE {what} (an .npz with arrays 'data' and 'inds')")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive.files
            data = archive["data"] if "data" in names else None
            inds = archive["inds"] if "inds" in names else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptFileError(
            path, f"not a readable .npz ({error}); expected ViPE {what}"
        ) from None
    if data is None or inds is None:
        raise CorruptFileError(path, f"holds arrays {names} (expected 'data' and 'inds')")
    if inds.ndim != 1 or not np.issubdtype(inds.dtype, np.integer) or (inds < 0).any():
        raise CorruptFileError(
            path, f"has inds {inds.dtype} {inds.shape} (expected (N,) frame numbers ≥ 0)"
        )
    if len(np.unique(inds)) != len(inds) or len(inds) == 0:
        raise CorruptFileError(path, f"has {len(inds)} inds (expected distinct frame numbers)")
    expected = (len(inds),) + (item_shape if item_shape is not None else data.shape[1:])
    if data.shape != expected or not np.issubdtype(data.dtype, np.floating):
        raise CorruptFileError(
            path, f"has data {data.dtype} {data.shape} (expected floats of shape {expected})"
        )
    return inds.astype(np.int64), torch.as_tensor(data, dtype=torch.float64)


def _check_pinhole(intrinsics_path: Path, camera_path: Path) -> None:
    """Refuse results of a non-pinhole camera model (``_camera.txt`` lines "frame: TYPE")."""
    if not camera_path.is_file():
        return  # ViPE's own reader then assumes PINHOLE
    try:
        lines = camera_path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise CorruptFileError(camera_path, f"is not text ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        frame, _, kind = line.partition(":")
        if not frame.strip().isdigit() or not kind.strip():
            raise CorruptFileError(
                camera_path, f"line {number} is {line[:80]!r} (expected '<frame>: <camera type>')"
            )
        if kind.strip() != PINHOLE:
            raise CorruptFileError(
                camera_path,
                f"gives camera type {kind.strip()} for frame {frame.strip()} (expected "
                f"{PINHOLE}: {intrinsics_path.name} of other models is not a pinhole K)",
            )


def _depth_members(archive: Path, frames: np.ndarray) -> tuple[tuple[Path, str], ...]:
    """(archive, member) of each posed frame's depth, by the member's frame number."""
    members = {}
    for member in zip_names(archive, "ViPE depth EXRs named <frame %05d>.exr"):
        stem, _, suffix = member.rpartition(".")
        if suffix.lower() != "exr":
            continue
        if not stem.isdigit():
            raise CorruptFileError(archive, f"holds {member!r} (expected <frame %05d>.exr names)")
        members[int(stem)] = member
    missing = [int(f) for f in frames if int(f) not in members]
    if missing:
        raise CorruptFileError(
            archive,
            f"has no depth for frame {missing[0]} ({len(missing)} posed frames missing; "
            f"holds {len(members)} EXRs)",
        )
    return tuple((archive, members[int(f)]) for f in frames)
