"""``any4d complete``: run a task on a user's whole video (or folder of frames), write every output.

    any4d complete walk.mp4 --task geometry --checkpoint DIR --out walk-4d

The clip is read with ``any4d.data.readers.UserClip`` (optional cameras, intrinsics, depth): by
default every frame (``frames="A:B"``, ``stride`` and ``max_frames`` choose fewer), at its own
resolution. It is completed in windows of the model's length (``any4d.windows``), each frame
fitted to the model's size (``any4d.data.fit``: the whole frame, resized and padded, unless
``fit="crop"``), and the results come back at the input's resolution. Frames are decoded and
outputs written per window, so memory does not grow with the video.

Every check of the inputs — files, sizes, counts, units, distortion, the output folder, memory
for the candidates — runs before the model is loaded. Outputs are written to a temporary folder
beside ``out`` and moved into place at the end: a failed run leaves an earlier ``out`` as it was.

    frames/NNNNNN.png        the completed RGB frames at the input's resolution (the video's
                             frame numbers; observed frames exactly as read)
    depth/NNNNNN.png         depth as 16-bit millimetre PNGs (0 = invalid)
    depth.npz                depth of every frame, (N, H, W) float32, in the clip's units
    points.ply               the coloured point cloud (at most ``points_per_frame`` per frame)
    cameras/                 COLMAP text, nerfstudio transforms.json, TUM trajectory, our JSON
    cameras.png              the camera frustums and trajectory
    scene.safetensors        the completed Scene at the model's resolution (``any4d view``)
    grid.png, video.mp4      RGB | depth | ray directions | ray moments of the input's frames
                             (scaled to 320 px), labelled, one depth colour bar; the video at
                             the clip's fps, slowed to last at least 4 s
    result.json              input, frames, sizes, windows, task, settings, units, failures,
                             per window each candidate's score (None with one candidate)
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from any4d.complete_outputs import CompletionWriter
from any4d.data import Scene
from any4d.diffusion import Mask, SamplerConfig, SearchConfig
from any4d.windows import WindowConfig

# At most this many points of each frame go into points.ply (a long video stays viewable).
POINTS_PER_FRAME = 20_000


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of the input: ``start:stop`` every ``stride``, at most ``max_frames``.

    ``parse("10:90")``; ``stop`` None = to the end. fps is divided by ``stride``."""

    start: int = 0
    stop: int | None = None
    stride: int = 1
    max_frames: int | None = None

    @classmethod
    def parse(
        cls, text: str | None, stride: int = 1, max_frames: int | None = None
    ) -> FrameSelection:
        """ "A:B", "A:" or ":B" (video frame numbers, B exclusive) → a selection."""
        if text is None:
            return cls(0, None, stride, max_frames)
        start, sep, stop = str(text).partition(":")
        try:
            first = int(start) if start.strip() else 0
            last = int(stop) if stop.strip() else None
        except ValueError:
            first = last = -1
        if not sep or first < 0 or (last is not None and last <= first):
            raise ValueError(
                f"--frames {text!r} (expected A:B with 0 ≤ A < B, frame numbers of the input; "
                "A: or :B leave that end open)"
            )
        return cls(first, last, stride, max_frames)

    def __post_init__(self) -> None:
        for name, low in (("stride", 1), ("max_frames", 1), ("start", 0)):
            value = getattr(self, name)
            if value is None and name == "max_frames":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"--{name.replace('_', '-')} is {value!r} (expected an integer ≥ {low})"
                )

    def indices(self, count: int) -> list[int]:
        """The chosen frame numbers of an input of ``count`` frames."""
        stop = count if self.stop is None else self.stop
        if self.start >= count or stop > count:
            stop_text = "" if self.stop is None else self.stop
            raise ValueError(
                f"--frames {self.start}:{stop_text} asks for frames up to "
                f"{max(self.start, stop - 1)} but the input has {count} frames (0 … {count - 1})"
            )
        indices = list(range(self.start, stop, self.stride))
        return indices if self.max_frames is None else indices[: self.max_frames]


def parse_intrinsics(text: str | None) -> tuple[float, float, float, float] | None:
    """ "fx,fy,cx,cy" (pixels of the input frames) → a tuple; clear errors otherwise."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(map(math.isfinite, values)) or min(values[:2]) <= 0:
        raise ValueError(f"--intrinsics {text!r} (expected fx,fy,cx,cy in pixels, fx, fy > 0)")
    return values


@dataclass(frozen=True)
class Completed:
    """What ``complete`` did: the line it prints, and where everything went."""

    out: Path
    frames: int
    size: tuple[int, int]
    windows: int
    written: tuple[str, ...]
    failures: tuple[str, ...]

    def summary(self) -> str:
        height, width = self.size
        view = self.out / "scene.safetensors"
        failed = ""
        if self.failures:
            more = (
                f" (and {len(self.failures) - 1} more in result.json)"
                if len(self.failures) > 1
                else ""
            )
            failed = f"; {self.failures[0]}{more}"
        return (
            f"completed {self.frames} frames at {width}x{height} in {self.windows} window"
            f"{'s' if self.windows != 1 else ''}: wrote {self.out}/ ({', '.join(self.written)})"
            f"{failed}; view it with: any4d view {view}"
        )


def complete(
    path: str | Path,
    *,
    task: str,
    out: str | Path,
    checkpoint: str | Path | None = None,
    cameras: str | Path | None = None,
    intrinsics: str | None = None,
    depth: str | Path | None = None,
    depth_scale: float = 1000.0,
    frames: FrameSelection | None = None,
    fit: str = "pad",
    window: WindowConfig | None = None,
    sampler: SamplerConfig | Mapping[str, Any] | None = None,
    search: SearchConfig | None = None,
    seed: int = 0,
    prompt: str | None = None,
    text_encoder: str | Path | None = None,
    points_per_frame: int = POINTS_PER_FRAME,
    progress: bool = True,
    device: str | None = None,
    low_memory: bool = False,
) -> Completed:
    """Run ``task`` on the clip at ``path`` and write the outputs into ``out``.

    frames: which frames (default all). fit: "pad" or "crop". window: ``WindowConfig``.
    sampler, search, seed: as for ``Any4DPipeline.__call__`` (a dict of sampler changes keeps
    the checkpoint's other settings). prompt / text_encoder: text for a model with text
    conditioning, and a local directory with umT5's ``text_encoder/`` + ``tokenizer/``.
    device: where to sample ("cuda", "cuda:1", "cpu"; None: CUDA when there is one).
    low_memory: ``Any4DPipeline.enable_low_memory`` on that device (bf16 transformer, each
    component on the device only for its phase, tiled VAE)."""
    from any4d.data.readers.user import UserClip
    from any4d.demo import shipped_checkpoint
    from any4d.pipeline import Any4DPipeline, resolve_device, resolve_sampler, resolve_search
    from any4d.pipeline_files import read_defaults

    # ---- every check before the model is loaded
    frames = FrameSelection() if frames is None else frames
    mask = _check_task(task)
    resolve_sampler(SamplerConfig(), sampler)  # its settings now, the checkpoint's later
    search = resolve_search(search)
    device = resolve_device(device)
    for option, given in (("input", path), ("--cameras", cameras), ("--depth", depth)):
        if given is not None and not Path(given).exists():
            raise ValueError(f"{option} {given} does not exist")
    reader = UserClip(
        path,
        cameras=cameras,
        intrinsics=parse_intrinsics(intrinsics),
        depth=depth,
        depth_scale=depth_scale,
    )
    sequence = reader.sequences()[0]
    indices = frames.indices(sequence.num_frames)
    _check_provides(mask, reader.provides)
    checkpoint = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
    if text_encoder is not None and not Path(text_encoder).is_dir():
        raise ValueError(
            f"--text-encoder {text_encoder} does not exist (expected a local folder with "
            "text_encoder/ + tokenizer/)"
        )
    defaults = read_defaults(checkpoint)
    # Frame 0 read whole now, so that its files' checks (depth size, depth PNG bit depth) run
    # before the model loads; its size is the clip's.
    first = reader.read_frames(sequence, [indices[0]])
    height, width = first.height, first.width
    _check_memory(search, defaults, len(indices))
    out = Path(out)
    staging = _staging_folder(out)
    try:
        _check_disk(staging, len(indices), height, width)
        # ---- the run
        pipe = Any4DPipeline.from_pretrained(
            checkpoint, text_encoder=text_encoder, device=device, low_memory=low_memory
        )
        sampler = pipe.sampler_config(sampler)
        plan, frame_fit = pipe.plan(len(indices), (height, width), window, fit)
        fps = sequence.fps / frames.stride
        writer = CompletionWriter(
            staging, indices, (height, width), fps, sequence.fps, points_per_frame,
            title=f"any4d complete · {Path(path).name} · {task}",
        )  # fmt: skip

        def read(positions: list[int]) -> Scene:
            return reader.read_frames(sequence, [indices[i] for i in positions], fps=fps)

        with reader.streaming(), writer:
            parts = pipe.windows(
                plan, read, mask, frame_fit, window,
                sampler=sampler, search=search, seed=seed, prompt=prompt,
                text=sequence.text, progress=progress,
            )  # fmt: skip
            for part in parts:
                writer.add(part)
        record = {
            "input": str(path),
            "task": task,
            "mask": str(mask),
            "frames": {
                "start": indices[0],
                "stop": indices[-1] + 1,
                "stride": frames.stride,
                "count": len(indices),
                "of": sequence.num_frames,
            },
            "fps": fps,
            "size": [height, width],
            "model_size": list(frame_fit.target),
            "fit": fit,
            "windows": [
                {"frames": [indices[f] for f in w.frames], "context": w.context} for w in plan
            ],
            "window": dataclasses.asdict(window or WindowConfig()),
            **dataclasses.asdict(sampler),
            **dataclasses.asdict(search),
            "seed": seed,
            "prompt": prompt,
            **writer.record(),
        }
        writer.write_json("result.json", record)
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Completed(
        out=out,
        frames=len(indices),
        size=(height, width),
        windows=len(plan),
        written=tuple(writer.written),
        failures=tuple(writer.failures),
    )


# ---------------------------------------------------------------------- checks


def _check_task(task) -> Mask:
    if not isinstance(task, str) or not task.strip():
        raise ValueError(
            f"--task is {task!r} (expected a task name such as 'geometry' or a mask spec such "
            "as 'rgb:all')"
        )
    mask = Mask.parse(task)
    if not mask.clean:
        raise ValueError(
            f"--task {task!r} observes nothing, so the input would not be used (expected a task "
            "that observes some of it, e.g. 'geometry' or 'rgb:0')"
        )
    return mask


def _check_provides(mask: Mask, provides: tuple[str, ...]) -> None:
    options = {"depth": "--depth", "cameras": "--cameras"}
    for stream, need in (("depth", "depth"), ("ray_d", "cameras")):
        if stream in mask.clean and need not in provides:
            raise ValueError(
                f"task {str(mask)!r} observes {need} but none was given: pass {options[need]}, "
                "or choose a task that generates it"
            )


def _available_memory() -> int:
    """Bytes of memory available now (Linux ``MemAvailable``; else the physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_memory(search: SearchConfig, defaults: dict, frames: int) -> None:
    """Refuse candidates whose decoded windows alone would not fit in memory: every candidate
    keeps one window of all four streams (3 + 1 + 3 + 3 channels) in float32 at the model's
    size, and the sampler twice that for history guidance."""
    length = min(frames, int(defaults.get("num_frames", frames)))
    pixels = int(defaults.get("height", 1)) * int(defaults.get("width", 1))
    per_candidate = 3 * length * 10 * pixels * 4
    need, have = search.candidates * per_candidate, _available_memory()
    if need > have:
        most = max(1, have // per_candidate)
        raise ValueError(
            f"--candidates {search.candidates} needs at least {need / 2**30:.1f} GiB for the "
            f"candidates' windows but {have / 2**30:.1f} GiB is available (expected at most "
            f"about {most} candidates here)"
        )


def _staging_folder(out: Path) -> Path:
    """A new empty folder beside ``out`` to write into (checks that ``out`` can be written)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file (expected a folder to write into)")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as error:
        raise ValueError(f"--out {out} cannot be written ({error.strerror}: {parent})") from None


def _check_disk(folder: Path, frames: int, height: int, width: int) -> None:
    """Refuse a run whose outputs would not fit on the disk (estimated from their sizes)."""
    per_frame = height * width * (3 + 2 + 4) + POINTS_PER_FRAME * 15
    need, free = frames * per_frame, shutil.disk_usage(folder).free
    if need > free:
        raise ValueError(
            f"--out {folder.parent}: the outputs need about {need / 2**20:.0f} MiB but the disk "
            f"has {free / 2**20:.0f} MiB free"
        )


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` (if any) by ``staging``: two renames, the old folder removed last."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
