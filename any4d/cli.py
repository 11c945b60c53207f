"""The ``any4d`` command: parses arguments and calls the library (no math here).

Subcommands:
  render   render a procedural clip and save its RGB | depth | rays grid as a PNG
  train    train the four-stream model (one process, or many under torchrun)
  cache    encode a training config's clips once (latents, captions) to train from
  demo     every task on held-out procedural scenes with the shipped model: pictures + table
  complete run a task on your video or folder of frames and write every output
  eval     a task over a data split: per-clip JSON and a table beside trivial baselines
  view     an interactive 4D viewer of a saved scene (point clouds over time, frustums)

Heavy modules (torch, the synthetic world) are imported inside each handler so that
``any4d --help`` answers at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

TRAJECTORIES = ("orbit", "dolly", "pan", "random")
# any4d.diffusion's SELECTS and SOLVERS, without importing torch (a test holds them equal).
SELECTS = ("best", "mean")
SOLVERS = ("unipc", "euler")


def _checked(convert, accept, requirement: str):
    """An argparse type: ``convert(text)`` when it is ``accept``ed, else a message that names
    the value and the ``requirement``."""
    noun = "an integer" if convert is int else "a number"

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{value} is not {requirement}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "≥ 1")
_positive_float = _checked(float, lambda v: 0 < v < math.inf, "a finite number > 0")
_finite_float = _checked(float, math.isfinite, "a finite number")


def _sampler(args: argparse.Namespace) -> dict:
    """The sampler settings given on the command line: changes to the checkpoint's."""
    given = {"steps": args.steps, "solver": args.solver, "guidance": args.guidance}
    return {k: v for k, v in given.items() if v is not None}


def _search(args: argparse.Namespace):
    """The search settings given on the command line (``SearchConfig``'s defaults otherwise)."""
    from any4d.diffusion import SearchConfig

    given = {"candidates": args.candidates, "select": args.select}
    return SearchConfig(**{k: v for k, v in given.items() if v is not None})


def _render(args: argparse.Namespace) -> int:
    from any4d.data.synthetic import render_clip
    from any4d.viz import save_clip_grid

    overrides = {
        "num_frames": args.frames,
        "height": args.height,
        "width": args.width,
        "dynamic": not args.static,
    }
    if args.trajectory is not None:
        overrides["trajectories"] = (args.trajectory,)
    scene = render_clip(args.seed, **overrides)
    path = save_clip_grid(scene, args.out, max_frames=args.columns)
    print(f"wrote {path}")
    if args.save_scene is not None:
        print(f"wrote {scene.save(args.save_scene)}")
    caption = f": {scene.text}" if scene.text else ""
    print(f"seed {args.seed}: {scene!r}{caption}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from any4d.train import load_config, train

    config = load_config(args.config, args.overrides)
    result = train(config, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        state = "stopped (SIGTERM) at" if result.interrupted else "finished at"
        print(f"{state} step {result.step}; metrics: {result.metrics}")
        print(f"checkpoint: {result.checkpoint}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from any4d.train import load_config
    from any4d.train.cache import write_cache

    config = load_config(args.config, args.overrides)
    index = write_cache(
        config,
        args.out,
        shard_size=args.shard_size,
        resume=args.resume,
        dtype=args.dtype,
        progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {index}; train from it with data.cache={args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from any4d.demo import markdown, run_demo

    results = run_demo(
        args.checkpoint,
        args.out,
        scenes=args.scenes,
        sampler=_sampler(args),
        seed=args.seed,
        candidates=args.candidates,
    )
    print(markdown(results))
    seconds = results["seconds"]
    print(
        f"wrote {args.out}/table.md, results.json and per task a picture, a video and a GIF "
        f"({seconds:.0f} s)"
    )
    return 0


def _complete(args: argparse.Namespace) -> int:
    from any4d.complete import FrameSelection, complete
    from any4d.windows import WindowConfig

    if args.start is not None:
        raise ValueError(
            f"--start is now --frames: --frames {args.start}: (from frame {args.start})"
        )
    window = WindowConfig(
        length=args.window, overlap=args.overlap, anchors=tuple(args.anchors), stitch=args.stitch
    )
    done = complete(
        args.input,
        task=args.task,
        out=args.out,
        checkpoint=args.checkpoint,
        cameras=args.cameras,
        intrinsics=args.intrinsics,
        depth=args.depth,
        depth_scale=args.depth_scale,
        frames=FrameSelection.parse(args.frames, args.stride, args.max_frames),
        fit=args.fit,
        window=window,
        sampler=_sampler(args),
        search=_search(args),
        seed=args.seed,
        prompt=args.prompt,
        text_encoder=args.text_encoder,
        points_per_frame=args.points_per_frame,
        progress=not args.no_progress,
        device=args.device,
        low_memory=args.low_memory,
    )
    print(done.summary())
    return 0


def _view(args: argparse.Namespace) -> int:
    if args.align and args.reference is None:  # before loading anything
        args.usage_error("--align needs --reference (the scene to align onto)")
    import time

    from any4d.data import Scene
    from any4d.viz.viewer import show_scene

    reference = None if args.reference is None else Scene.load(args.reference)
    viewer = show_scene(
        Scene.load(args.scene),
        reference=reference,
        align=args.align,
        port=args.port,
        host=args.host,
        point_stride=args.point_stride,
        point_size=args.point_size,
        max_points_per_frame=args.max_points,
        fps=args.fps,
    )
    print(f"viewer at http://{args.host}:{viewer.server.get_port()} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        viewer.close()
    return 0


def _eval(args: argparse.Namespace) -> int:
    # Settings are checked before the checkpoint loads, with the options' own names.
    if args.sparse_stride is not None:
        raise ValueError(
            "--sparse-stride is now --stride-factor with --regime strided (--regime sparse is "
            "the paper's: only the first and last RGB frames observed)"
        )
    if args.stride_factor is not None and args.regime != "strided":
        raise ValueError(
            f"--stride-factor {args.stride_factor} applies to --regime strided only (got "
            f"--regime {args.regime}, which takes consecutive frames)"
        )
    from any4d.eval.clips import mixture_clips, synthetic_clips
    from any4d.eval.runner import regime_mask, run_benchmark
    from any4d.pipeline import Any4DPipeline
    from any4d.train.distributed import init_processes, shutdown

    regime_mask(args.task, args.regime)  # e.g. --regime sparse with --task interpolate
    search = _search(args)
    if args.data == "synthetic":  # the data settings are checked before the model loads
        clips = None
    else:
        clips = mixture_clips(args.data, args.clips, args.regime, args.stride_factor)
    text_encoder = False if args.no_text_encoder else args.text_encoder
    processes = init_processes()  # under torchrun: each process scores its share of clips
    try:
        pipe = Any4DPipeline.from_pretrained(
            args.checkpoint,
            device=processes.device,
            text_encoder=text_encoder,
            low_memory=args.low_memory,
        )
        sampler = pipe.sampler_config(_sampler(args))
        if clips is None:
            clips = synthetic_clips(pipe, args.clips, args.regime, args.stride_factor)
        table = run_benchmark(
            pipe,
            clips,
            args.task,
            args.out,
            regime=args.regime,
            stride_factor=args.stride_factor,
            sampler=sampler,
            search=search,
            seed=args.seed,
            progress=False,
            depth_range=args.sweep_depth,
            resume=args.resume,
            rank=processes.rank,
            world=processes.world,
            gather=_gather if processes.distributed else None,
        )
    finally:
        shutdown(processes)
    if table is None:  # not rank 0: rank 0 writes the table
        return 0
    print(table.markdown())
    print(f"wrote {args.out}/table.md, table.csv, table.json and clips/")
    scored = sum(count for (_, method), count in table.counts.items() if method == "any4d")
    if not scored:
        print(
            f"error: the model scored no clip (every clip failed; see 'failed' in "
            f"{args.out}/table.json)",
            file=sys.stderr,
        )
        return 1
    return 0


def _gather(value) -> list:
    """Every process's ``value``, in rank order."""
    import torch.distributed as dist

    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def _run_options(
    parser: argparse.ArgumentParser,
    *,
    out: str,
    candidates: bool = True,
    checkpoint_required: bool = False,
) -> None:
    """The options every command that runs the model shares. Sampler and search settings default
    to the checkpoint's (else ``SamplerConfig``'s / ``SearchConfig``'s): stated there, once."""
    parser.add_argument(
        "--checkpoint",
        required=checkpoint_required,
        default=None,
        help="a pipeline or training checkpoint"
        + ("" if checkpoint_required else " (default: the shipped demo model)"),
    )
    parser.add_argument("--out", default=out, help=f"output folder (default {out})")
    parser.add_argument(
        "--steps", type=_positive_int, default=None, help="sampling steps (default: the model's)"
    )
    parser.add_argument(
        "--solver", choices=SOLVERS, default=None, help="ODE solver (default unipc, as Wan2.1)"
    )
    parser.add_argument(
        "--guidance",
        type=_finite_float,
        default=None,
        help="history guidance weight w ≥ 0 (0: off; default 2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    if candidates:
        parser.add_argument(
            "--candidates",
            type=_positive_int,
            default=None,
            help="sample this many candidates (default 1)",
        )
        parser.add_argument(
            "--select",
            choices=SELECTS,
            default=None,
            help="with several candidates: best = the most self-consistent one (test-time "
            "search, default); mean = their mean (lower per-pixel errors, blurrier pictures)",
        )


def _add_render(commands) -> None:
    render = commands.add_parser(
        "render",
        help="render a procedural clip and save its RGB | depth | rays grid as a PNG",
        description=(
            "Render a clip of the procedural 4D world and save a picture of it: one row per "
            "stream (RGB, depth, ray directions, ray moments), one column per shown frame."
        ),
    )
    render.add_argument("--seed", type=int, default=0, help="world and camera seed (default 0)")
    render.add_argument(
        "--frames", type=_positive_int, default=8, help="frames in the clip (default 8)"
    )
    render.add_argument("--height", type=_positive_int, default=96, help="pixels (default 96)")
    render.add_argument("--width", type=_positive_int, default=128, help="pixels (default 128)")
    render.add_argument("--static", action="store_true", help="a static world (no moving objects)")
    render.add_argument(
        "--trajectory",
        choices=TRAJECTORIES,
        default=None,
        help="camera path (default: drawn by the seed from all of them)",
    )
    render.add_argument(
        "--columns",
        type=_positive_int,
        default=8,
        help="frames shown in the picture, evenly spaced (default 8)",
    )
    render.add_argument(
        "--out", default="synthetic.png", help="PNG to write (default synthetic.png)"
    )
    render.add_argument(
        "--save-scene",
        metavar="PATH.safetensors",
        default=None,
        help="also save the clip itself (Scene.save) to this file",
    )
    render.set_defaults(handler=_render)


def _add_train(commands) -> None:
    training = commands.add_parser(
        "train",
        help="train the four-stream model (one process, or many under torchrun)",
        description=(
            "Train with a named config (tiny-synthetic: CPU, minutes; wan2.1-1.3b: the paper's "
            "recipe on GPUs) or a YAML file, optionally overriding fields as section.field=value. "
            "Several processes: torchrun --nproc_per_node N -m any4d train --config …"
        ),
    )
    _config_options(
        training,
        resume="continue from the newest checkpoint of output_dir",
        overrides="e.g. steps=50 optim.lr=3e-4",
    )
    training.set_defaults(handler=_train)


def _config_options(parser: argparse.ArgumentParser, *, resume: str, overrides: str) -> None:
    """The options of the commands that run a training config: train and cache."""
    parser.add_argument("--config", required=True, help="a named config or a YAML file")
    parser.add_argument("--resume", action="store_true", help=resume)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides)


def _add_cache(commands) -> None:
    cache = commands.add_parser(
        "cache",
        help="encode a training config's clips once (Wan VAE latents, captions) for training",
        description=(
            "Encode every clip a training config draws from — codec latents of RGB and depth, "
            "cameras, clip scales, caption features — into sharded safetensors files with an "
            "index; train on them with data.cache=DIR (no VAE or text encoder in training). "
            "Several processes or nodes: torchrun … -m any4d cache --config … (each rank its "
            "shards)."
        ),
    )
    _config_options(
        cache,
        resume="keep the complete shards already in --out",
        overrides="config overrides, as for train",
    )
    cache.add_argument("--out", required=True, help="the cache directory")
    cache.add_argument(
        "--shard-size", type=_positive_int, default=64, help="clips per shard (default 64)"
    )
    cache.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="of the stored latents (bfloat16: half the size)",
    )
    cache.set_defaults(handler=_cache)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="every task on held-out procedural scenes with the shipped model: pictures + table",
        description=(
            "Complete held-out procedural clips for every task (video, geometry, depth, "
            "interpolate, extrapolate, depth_to_video, sparse_geometry) with the shipped tiny "
            "checkpoint (or --checkpoint), score each beside trivial baselines and check the "
            "quality floors. CPU, about 90 seconds."
        ),
    )
    _run_options(demo, out="any4d-demo", candidates=False)
    demo.add_argument("--scenes", type=_positive_int, default=6, help="held-out clips per task")
    demo.add_argument(
        "--candidates",
        type=_positive_int,
        default=1,
        help="also score geometry and interpolate as the mean of this many samples (default "
        "1: one sample only; K costs those two tasks K times the time)",
    )
    demo.set_defaults(handler=_demo)


TASKS_HELP = (
    "video: generate the rest of the clip, its depth and cameras from frame 0; "
    "geometry: depth + cameras from the video; depth: depth given the cameras; "
    "interpolate: the frames between the first and last, given the cameras; "
    "extrapolate: the frames after the first, given the cameras; depth_to_video: the video "
    "from frame 0 and the depth; sparse_geometry: everything from the first and last frame; "
    "or a mask spec such as 'rgb:0,-1 rays:all' (the clean frames per stream)"
)


def _add_complete(commands) -> None:
    completing = commands.add_parser(
        "complete",
        help="run a task on your video or folder of frames and write every output",
        description="Complete a clip of your own. Tasks — " + TASKS_HELP,
    )
    completing.add_argument("input", help="a video file or a folder of frames")
    completing.add_argument("--task", default="geometry", help="a task name or a mask spec")
    _run_options(completing, out="any4d-out")
    completing.add_argument(
        "--device",
        default=None,
        help="where to sample: cuda, cuda:N or cpu (default: CUDA when there is one)",
    )
    completing.add_argument(
        "--low-memory",
        action="store_true",
        help="bf16 transformer; the transformer, VAE and text encoder kept on the CPU and "
        "brought to --device only for their phase; tiled VAE (the paper's model in ~13 GiB)",
    )
    completing.add_argument(
        "--cameras",
        default=None,
        help="poses: our JSON, a nerfstudio transforms.json or a COLMAP text folder",
    )
    completing.add_argument(
        "--intrinsics",
        default=None,
        metavar="FX,FY,CX,CY",
        help="pixels of the input frames (replaces the cameras file's K)",
    )
    completing.add_argument(
        "--depth",
        default=None,
        help="a folder of .npy metres or 16-bit PNGs, or one .npz of the clip (as complete writes)",
    )
    completing.add_argument(
        "--depth-scale",
        type=_positive_float,
        default=1000.0,
        help="PNG depth codes per metre (default 1000: millimetres)",
    )
    completing.add_argument(
        "--frames",
        default=None,
        metavar="A:B",
        help="the input's frames A … B−1 (default: all; A: or :B leave an end open)",
    )
    completing.add_argument("--stride", type=_positive_int, default=1, help="frame step")
    completing.add_argument(
        "--max-frames", type=_positive_int, default=None, help="at most this many frames"
    )
    completing.add_argument("--start", type=int, default=None, help=argparse.SUPPRESS)
    completing.add_argument(
        "--fit",
        choices=("pad", "crop"),
        default="pad",
        help="how frames meet the model's size: pad (default: the whole frame, resized and "
        "padded) or crop (the centre); results come back at the input's resolution",
    )
    completing.add_argument(
        "--window",
        type=_positive_int,
        default=None,
        help="frames per window (default: the model's)",
    )
    completing.add_argument(
        "--overlap",
        type=_checked(int, lambda v: v >= 0, "≥ 0"),
        default=None,
        help="frames each window observes from the one before (default: half a window)",
    )
    completing.add_argument(
        "--anchors",
        type=_checked(int, lambda v: v >= 0, "a frame ≥ 0"),
        nargs="*",
        default=[],
        metavar="FRAME",
        help="clip frames every window observes once completed (e.g. 0)",
    )
    completing.add_argument(
        "--stitch",
        choices=("context", "sim3"),
        default="context",
        help="context (default): each window observes what is completed; sim3: independent "
        "windows aligned by a robust Sim(3) on their overlap (the baseline)",
    )
    completing.add_argument(
        "--points-per-frame",
        type=_positive_int,
        default=20_000,
        help="points of each frame in points.ply (default 20000)",
    )
    completing.add_argument(
        "--prompt",
        default=None,
        help="text, for a model with text conditioning (needs --text-encoder)",
    )
    completing.add_argument(
        "--text-encoder",
        default=None,
        help="a local folder with umT5's text_encoder/ + tokenizer/ (e.g. the Wan2.1 release)",
    )
    completing.add_argument("--no-progress", action="store_true")
    completing.set_defaults(handler=_complete)


def _add_eval(commands) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="a task over a data split: per-clip JSON and a table beside trivial baselines",
        description=(
            "geometry: depth (Geo4D's protocol) and camera pose (evo's ATE / RPE) on every frame, "
            "beside a constant depth, a static and a constant-velocity camera; interpolate: "
            "PSNR / SSIM of the frames between the first and last, beside a cross-fade."
        ),
    )
    _run_options(evaluate, out="any4d-eval", checkpoint_required=True)
    evaluate.add_argument(
        "--data", default="synthetic", help="'synthetic' (held-out procedural) or a mixture YAML"
    )
    evaluate.add_argument("--task", choices=("geometry", "interpolate"), default="geometry")
    evaluate.add_argument(
        "--regime",
        choices=("dense", "sparse", "strided"),
        default="dense",
        help="what the model observes (default dense; the paper's Tables 3-4): dense = the "
        "task's own mask (geometry: every RGB frame; interpolate: first + last RGB frame and "
        "every camera); sparse = geometry from only the first and last RGB frames (refused for "
        "interpolate, which observes no more than that already); strided = dense on frames "
        "--stride-factor apart; depth and pose are scored on every frame in each",
    )
    evaluate.add_argument(
        "--stride-factor",
        type=_positive_int,
        default=None,
        metavar="N",
        help="--regime strided: take frames N times further apart than the data's own sampling "
        "(default 4)",
    )
    # Renamed: kept only to say so (the old --regime sparse was today's --regime strided).
    evaluate.add_argument("--sparse-stride", default=None, help=argparse.SUPPRESS)
    evaluate.add_argument("--clips", type=_positive_int, default=8, help="clips per data set")
    evaluate.add_argument(
        "--sweep-depth",
        type=_positive_float,
        nargs=2,
        default=None,
        metavar=("NEAR", "FAR"),
        help="interpolate: also score a plane sweep (stereo from the first and last frame and "
        "the cameras) over these z-depths, in the data's units",
    )
    evaluate.add_argument(
        "--resume",
        action="store_true",
        help="keep the clips already scored in --out and score only the rest (without it, an "
        "--out holding scored clips is refused)",
    )
    evaluate.add_argument(
        "--low-memory",
        action="store_true",
        help="as any4d complete --low-memory, on each process's device (the paper's model fits "
        "a 24 GB card)",
    )
    text = evaluate.add_mutually_exclusive_group()
    text.add_argument(
        "--text-encoder",
        default=None,
        metavar="DIR",
        help="a directory with text_encoder/ + tokenizer/ (e.g. the Wan2.1 diffusers one) to "
        "encode the clips' captions (default: the one the checkpoint names)",
    )
    text.add_argument("--no-text-encoder", action="store_true", help="null text for every clip")
    evaluate.set_defaults(handler=_eval)


def _add_view(commands) -> None:
    view = commands.add_parser(
        "view",
        help="an interactive 4D viewer of a saved scene (point clouds over time, frustums)",
        description="Serve a Scene (e.g. scene.safetensors from any4d complete) to a browser: "
        "point clouds and cameras per frame, playback, a legend.",
    )
    view.add_argument("scene", help="a Scene file (.safetensors)")
    view.add_argument("--reference", default=None, help="a second Scene drawn in blue")
    view.add_argument(
        "--align",
        action="store_true",
        help="move the scene (cameras and points) onto --reference by the Sim(3) of the camera "
        "centres, as the pose metrics do",
    )
    view.add_argument(
        "--fps", type=_positive_float, default=None, help="playback rate (default: the scene's)"
    )
    view.add_argument(
        "--point-size",
        type=_positive_float,
        default=None,
        help="in world units (default: a pixel's footprint at the median depth)",
    )
    view.add_argument(
        "--max-points",
        type=_positive_int,
        default=50_000,
        metavar="N",
        help="at most N points per frame, a fixed random draw (default 50000)",
    )
    port = _checked(int, lambda v: 0 <= v <= 65535, "a port in 0..65535")
    view.add_argument("--port", type=port, default=8080, help="0: any free port (default 8080)")
    view.add_argument("--host", default="localhost", help="0.0.0.0 to serve the network")
    view.add_argument("--point-stride", type=_positive_int, default=1, help="every n-th pixel")
    view.set_defaults(handler=_view, usage_error=view.error)


def build_parser() -> argparse.ArgumentParser:
    """The ``any4d`` argument parser with one sub-parser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="any4d",
        description="RGB video, depth and camera pose as one 4D scene.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _add_render,
        _add_train,
        _add_cache,
        _add_demo,
        _add_complete,
        _add_eval,
        _add_view,
    ):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``any4d`` with ``argv`` (default: the process arguments); returns the exit status.

    Usage errors exit through argparse (status 2, message on stderr); a library ``ValueError``
    (a bad combination of settings) is reported in one line with status 1.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may sit between options (``train --config x steps=5 --resume lr=…``).
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if stray or (extra and args.command not in ("train", "cache")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"any4d {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
