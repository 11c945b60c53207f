"""Does ``any4d complete`` stay flat in time per frame and in memory as the video gets longer?

Writes procedural videos of ``k ×`` the model's window (default 2×, 4×, 8×) at a resolution
well above the model's (default 240 × 320), runs ``complete`` on each in a fresh process (the
shipped model, ``geometry``) and prints, per length, seconds per frame and peak memory — the
process's peak resident set, and its peak above the resident set just before the run (what
streaming must keep flat) — with each one's ratio to the shortest video, measured in the same
run.

    python benchmarks/window_scaling.py --factors 2 4 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from any4d.complete import FrameSelection, complete

def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

video, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
base, peak, running = rss(), [0], [True]
def watch():
    while running[0]:
        peak[0] = max(peak[0], rss())
        time.sleep(0.01)
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
start = time.perf_counter()
done = complete(video, task="geometry", out=out, sampler={"steps": steps}, progress=False)
samples = sum(json.loads((Path(out) / "result.json").read_text())["samples"])
seconds = time.perf_counter() - start
running[0] = False
watcher.join()
print(json.dumps({"seconds": seconds, "frames": done.frames, "windows": done.windows,
                  "samples": samples,
                  "peak": max(peak[0], rss()), "base": base}))
"""


def write_video(path: Path, frames: int, height: int, width: int, fps: int) -> None:
    import av

    from any4d.data.synthetic import render_clip

    clip = render_clip(11, num_frames=frames, height=height, width=width, fps=float(fps))
    pixels = ((clip.rgb.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in pixels:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    from any4d.demo import shipped_checkpoint
    from any4d.pipeline_files import read_defaults

    window = int(read_defaults(shipped_checkpoint())["num_frames"])
    print(f"shipped model, windows of {window} frames, video {args.width}x{args.height}, "
          f"{args.steps} steps, geometry")  # fmt: skip
    print("| video | frames | windows | samples | s / frame | s / frame / sample "
          "| peak RSS (MiB) | peak above start (MiB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    first = None
    with tempfile.TemporaryDirectory() as folder:
        for factor in args.factors:
            video = Path(folder) / f"clip{factor}.mp4"
            write_video(video, window * factor, args.height, args.width, fps=10)
            out = Path(folder) / f"out{factor}"
            command = [sys.executable, "-c", CHILD, str(video), str(out), str(args.steps)]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            per_frame = row["seconds"] / row["frames"]
            # Windows whose rays give no camera are sampled again: per sample is the cost rate.
            per_sample = per_frame * row["windows"] / row["samples"]
            peak, above = row["peak"] / 2**20, (row["peak"] - row["base"]) / 2**20
            first = first or (per_frame, per_sample, peak, above)
            print(
                f"| {factor}× | {row['frames']} | {row['windows']} | {row['samples']} | "
                f"{per_frame:.3f} ({per_frame / first[0]:.2f}×) | "
                f"{per_sample:.3f} ({per_sample / first[1]:.2f}×) | "
                f"{peak:.0f} ({peak / first[2]:.2f}×) | {above:.0f} ({above / first[3]:.2f}×) |"
            )


if __name__ == "__main__":
    main()
