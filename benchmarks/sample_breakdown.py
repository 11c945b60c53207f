"""Where the time of one sampled clip goes: VAE encode, model calls, sampler arithmetic, VAE
decode, camera recovery, scoring and the rest, as shares of the total.

    python benchmarks/sample_breakdown.py                       # CPU: reduced Wan shape
    python benchmarks/sample_breakdown.py --device cuda --num-layers 30 --frames 49 \\
        --height 240 --width 320 --steps 40                     # the paper's shape, on a GPU

The pipeline is ``Any4DPipeline`` end to end with the Wan2.1 transformer's width (dim 1536, 12
heads, FFN 8960, four streams; ``--num-layers`` of its 30 blocks) and a random-initialised
``AutoencoderKLWan`` of Wan2.1's config; weights do not change the cost. Each phase is timed
by wrapping the function that does it (device synchronised around each): the tokenizer's
``encode_images`` / ``decode_images``, the transformer's forward, ``rays_to_cameras`` and the
search's ``score``; "sampler arithmetic" is the sampling loop less its model calls; "other" is
the rest (masking, tokenizing rays and depth, putting observed streams back). ``--candidates``
> 1 adds test-time search (scored candidates). With ``--sync-debug`` on CUDA, the sampling
loop runs under ``torch.cuda.set_sync_debug_mode("warn")`` in one more, untimed clip, and the
synchronisations it warns about are counted. Times are the median of ``--repeats`` after one
warm-up.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import time
import warnings

import torch


class Phases:
    """Seconds per named phase, with the device synchronised around each timed call."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: collections.Counter[str] = collections.Counter()
        self.timing = True  # off: the wrapped functions run as they are (no synchronisation)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            if not self.timing:
                return fn(*args, **kwargs)
            self.sync()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[name] += time.perf_counter() - start

        return timed


def sync_count(clip, phases: Phases) -> int:
    """Synchronisations ``torch.cuda.set_sync_debug_mode("warn")`` reports inside the sampling
    loop of one ``clip()`` run untimed (the timing's own synchronisations would count)."""
    search_module = importlib.import_module("any4d.diffusion.search")
    sample, caught = search_module.sample, []

    def watched(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                return sample(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(0)
            caught.extend(w for w in seen if "synchroniz" in str(w.message))

    search_module.sample, phases.timing = watched, False
    try:
        clip()
    finally:
        search_module.sample, phases.timing = sample, True
    return len(caught)


def build(args, device):
    from diffusers import AutoencoderKLWan

    from any4d.model import Any4DTransformer, preset
    from any4d.pipeline import Any4DPipeline
    from any4d.tokenize import WanVAETokenizer

    torch.manual_seed(0)
    config = preset("wan2.1-1.3b", num_layers=args.num_layers, text_dim=None)
    model = Any4DTransformer(config).to(device)
    vae = AutoencoderKLWan().to(device)  # Wan2.1's config, random weights
    return Any4DPipeline(model, WanVAETokenizer(vae))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--task", default="geometry")
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sync-debug", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)

    import any4d.tokenize.base as tokenizer_base
    from any4d.data import SyntheticClips, SyntheticConfig
    from any4d.diffusion import SearchConfig

    search_module = importlib.import_module("any4d.diffusion.search")  # not the function
    pipe = build(args, device)
    shape = SyntheticConfig(num_frames=args.frames, height=args.height, width=args.width)
    truth = SyntheticClips(shape, split="heldout", size=1)[0]
    scene = pipe.observed(truth, args.task).to(device)
    phases = Phases(device)
    tokenizer, model = pipe.tokenizer, pipe.model
    tokenizer.encode_images = phases.wrap("VAE encode", tokenizer.encode_images)
    tokenizer.decode_images = phases.wrap("VAE decode", tokenizer.decode_images)
    model.forward = phases.wrap("model calls", model.forward)
    tokenizer_base.rays_to_cameras = phases.wrap("camera recovery", tokenizer_base.rays_to_cameras)
    search_module.score = phases.wrap("scoring", search_module.score)
    timed_sample = phases.wrap("sampling loop", search_module.sample)
    search_module.sample = timed_sample
    search = SearchConfig(candidates=args.candidates)

    def clip():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return pipe(
                scene, args.task, sampler={"steps": args.steps}, search=search, progress=False
            )

    clip()  # warm-up
    runs = []
    for _ in range(args.repeats):
        phases.seconds.clear()
        phases.sync()
        start = time.perf_counter()
        clip()
        phases.sync()
        total = time.perf_counter() - start
        runs.append((total, dict(phases.seconds)))
    total, seconds = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    seconds["sampler arithmetic"] = seconds.pop("sampling loop", 0.0) - seconds.get(
        "model calls", 0.0
    )
    seconds["other"] = total - sum(seconds.values())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{name}: '{args.task}', {args.frames} × {args.height} × {args.width}, "
        f"{args.num_layers} of Wan2.1's 30 blocks, {args.steps} UniPC steps, "
        f"{args.candidates} candidate(s); total {total:.2f} s"
    )
    print()
    print("| phase | seconds | share |")
    print("|---|---:|---:|")
    order = ["VAE encode", "model calls", "sampler arithmetic", "VAE decode",
             "camera recovery", "scoring", "other"]  # fmt: skip
    for phase in order:
        value = seconds.get(phase, 0.0)
        print(f"| {phase} | {value:.3f} | {100 * value / total:.1f} % |")
    outside = total - seconds.get("model calls", 0.0)
    print(f"| **outside the model** | {outside:.3f} | **{100 * outside / total:.1f} %** |")
    if args.sync_debug and device.type == "cuda":
        print(
            f"\nsynchronisations inside the sampling loop of one clip: {sync_count(clip, phases)}"
        )


if __name__ == "__main__":
    main()
