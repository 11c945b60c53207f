"""Where ``any4d eval`` takes its clips: the procedural world's held-out split or a mixture's
``role: eval`` data sets, as (dataset, clip name, scene loader) in a fixed order — the order
``run_benchmark`` splits over processes (a process loads only the clips it scores)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

from any4d.data import Scene
from any4d.eval.runner import regime_stride


def synthetic_clips(
    pipe, count: int, regime: str = "dense", stride_factor: int | None = None
) -> Iterator[tuple[str, str, Callable[[], Scene]]]:
    """("synthetic", clip name, scene loader) of held-out procedural clips at the pipeline's shape;
    ``strided`` samples the world's time ``stride_factor`` times coarser. Settings are checked
    at the call, not at the first clip. The scene is a zero-argument loader (``run_benchmark``
    loads only the clips of its process)."""
    from any4d.data import SyntheticClips, SyntheticConfig

    stride = regime_stride(regime, stride_factor)
    defaults = pipe.defaults
    fps = float(defaults.get("fps", 10.0)) / stride
    sizes = {"num_frames": 5, "height": 32, "width": 32}  # a pipeline that names no clip shape
    shape = {k: int(defaults.get(k, size)) for k, size in sizes.items()}
    config = SyntheticConfig(**shape, fps=fps)
    clips = SyntheticClips(config, split="heldout", size=count)
    return (
        ("synthetic", f"heldout_{i:04d}", functools.partial(clips.__getitem__, i))
        for i in range(count)
    )


def mixture_clips(
    path: str, count: int, regime: str = "dense", stride_factor: int | None = None
) -> Iterator[tuple[str, str, Callable[[], Scene]]]:
    """(dataset, clip name, scene loader) of a mixture's evaluation data sets; ``strided``
    multiplies the mixture's clip stride by ``stride_factor``. Settings are checked at the call,
    and a mixture with nothing to score is an error naming why."""
    from any4d.data import build_dataset, load_mixture

    stride = regime_stride(regime, stride_factor)
    mixture = load_mixture(path)
    clip = mixture.clip
    if stride > 1:
        clip = dataclasses.replace(clip, stride=clip.stride * stride)
    entries = mixture.role("eval")
    if not entries:
        listed = ", ".join(f"{d.name} (role: {d.role})" for d in mixture.datasets)
        raise ValueError(
            f"mixture {path} lists no data set with role: eval, so there is nothing to score "
            f"(its data sets: {listed})"
        )
    datasets = [(entry.name, build_dataset(entry, clip, split="all")) for entry in entries]
    if not any(len(dataset) for _, dataset in datasets):
        span = (clip.length - 1) * clip.stride + 1
        raise ValueError(
            f"no clip to score in mixture {path}: its eval data sets "
            f"{[name for name, _ in datasets]} have no sequence of {span} frames or more "
            f"(clips of {clip.length} frames, {clip.stride} apart, for the {regime} regime)"
        )
    return (
        (name, f"clip_{index:04d}", functools.partial(dataset.__getitem__, index))
        for name, dataset in datasets
        for index in range(min(count, len(dataset)))
    )
