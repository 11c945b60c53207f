"""``Any4DPipeline``: a scene in, the completed scene out — tokenizer + model + sampler + search.

    pipe = Any4DPipeline.from_pretrained("runs/demo/checkpoints/step_004000")
    result = pipe(scene, task="geometry", sampler={"steps": 20}, search=SearchConfig(candidates=4))
    result.scene.depth, result.scene.cameras, result.scores, result.uncertainty

``sampler`` is a ``SamplerConfig`` (steps, solver, shift, history guidance), or a dict of changes
to the pipeline's own (``pipe.sampler``: the defaults it was saved with). ``search`` is a
``SearchConfig``: with several candidates, ``select="best"`` keeps the most self-consistent one
(the paper's test-time search) and ``select="mean"`` their mean (``any4d.diffusion.search``).

A clip of any length and size works: frames are fitted to the model's size (``fit="pad"``: the
whole frame, resized and padded; ``any4d.data.fit``) and a clip longer than the model's is
completed window by window, each window observing what the ones before completed
(``window=WindowConfig(...)``; ``any4d.windows``); results come back for every frame at the
scene's size. ``pipe.windows(...)`` yields them window by window (``any4d complete`` streams a
video that way).

``task`` is a preset name (``any4d.diffusion.PRESETS``) or a mask spec (``"rgb:0,-1 rays:all"``):
what the scene observes (its clean groups) must be in the scene. Observed modalities come back
exactly as given; the rest is generated. Only what the task observes reaches the model — the rest
of the scene is dropped first (``pipe.observed``), so not even its scale leaks in. The clip scale
follows DESIGN §1's rule for what is observed, exactly as in training: depth and cameras come
back in the scene's own units when the task observes depth or moving cameras
(``Completion.units`` "depth" / "cameras"), and up to one global scale from RGB alone
("relative": the predicted median depth is then about 1). Generated cameras are expressed in the
scene's world (its first camera's frame when it gives none: the first camera is the identity).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from any4d.data import Scene
from any4d.data.fit import FrameFit
from any4d.decoding import decode_generated
from any4d.diffusion import Latents, Layout, Mask, SamplerConfig, SearchConfig, Uncertainty
from any4d.diffusion import search as search_candidates
from any4d.geometry import Cameras
from any4d.model import Any4DTransformer
from any4d.offload import Offload
from any4d.pipeline_files import (
    load_parts,
    recorded_text_encoder,
    write_pipeline,
)
from any4d.tokenize.batch import STREAM_MODALITY, Observed
from any4d.windows import Window, WindowConfig, concatenate, plan_windows, roll

# How many more samples a window whose rays determine no camera gets.
CAMERA_RETRIES = 2


@dataclass(frozen=True, eq=False)
class Completion:
    """What the pipeline returns.

    scene:       the completed scene: RGB (T, 3, H, W), depth (T, 1, H, W), cameras (T,).
    task:        the mask that was solved.
    scores:      (L,) reprojection score of each candidate (None with one candidate).
    best:        index of the lowest-scoring candidate (the kept one, with ``select="best"``).
    uncertainty: spread over the candidates (None with one candidate).
    latents:     stream → (1, C, T', H', W') the completed latent grids.
    failures:    what could not be decoded (e.g. rays that determine no camera: then the
                 scene's cameras are None, or the observed ones if it had them), or given
                 but not used (the scene's text, without a text encoder).
    units:       where the clip scale came from (``any4d.geometry.UNITS``): "depth" or
                 "cameras" — depth and cameras are in the input's units —, or "relative".
                 For several windows: the first window's (the others observe its scale).
    windows:     how many windows the clip was completed in; with more than one (or a size
                 other than the model's) there are no ``latents`` and no ``uncertainty``.
    samples:     how many times it was sampled (a window whose rays determine no camera is
                 sampled again, ``CAMERA_RETRIES``); summed over the windows.
    """

    scene: Scene
    task: Mask
    scores: Tensor | None
    best: int
    uncertainty: Uncertainty | None
    latents: dict[str, Tensor]
    failures: list[str]
    units: str = "relative"
    windows: int = 1
    samples: int = 1


class Any4DPipeline:
    """A tokenizer and a transformer, and the defaults they were trained with.

    defaults: e.g. {"num_frames": 5, "height": 32, "width": 32, "steps": 20} — the clip shape
    the model knows (``any4d complete`` resizes inputs to it) and ``SamplerConfig`` settings.
    """

    def __init__(
        self,
        model: Any4DTransformer,
        tokenizer,
        defaults: dict[str, Any] | None = None,
        text_encoder=None,
    ):
        channels = getattr(tokenizer, "latent_channels", None)
        if channels != model.config.in_channels:
            raise ValueError(
                f"the tokenizer makes {channels}-channel latents but the model expects "
                f"{model.config.in_channels}"
            )
        if text_encoder is not None:
            text_encoder.check_fits(model.config.text_dim)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.defaults = dict(defaults or {})
        self.text_encoder = text_encoder
        self.text_encoder_path: str | None = None  # where it was loaded from, if known
        self.offload: Offload | None = None  # set by enable_low_memory

    @property
    def device(self) -> torch.device:
        """Where clips are sampled (in low-memory mode the weights wait on the CPU)."""
        if self.offload is not None:
            return self.offload.device
        return next(self.model.parameters()).device

    def enable_low_memory(
        self, device: str | torch.device = "cuda", *, dtype: torch.dtype = torch.bfloat16,
        vae_tiling: bool = True,
    ) -> Any4DPipeline:  # fmt: skip
        """Low-memory inference on ``device``: the transformer's weights in ``dtype`` (the
        sampler stays in float32), the transformer, the VAE and the text encoder kept on the CPU
        and brought to ``device`` only for their phase (umT5 for the prompt, then the
        transformer and the VAE for a clip), the VAE encoding and decoding in spatial tiles
        (``vae_tiling``; diffusers' ``enable_tiling``). The computed peak at 49 × 240 × 320 is in
        the README's memory table. Returns the pipeline."""
        self.model.to(dtype)
        if vae_tiling and hasattr(self.tokenizer, "enable_tiling"):
            self.tokenizer.enable_tiling()
        components = {"model": self.model}
        if hasattr(self.tokenizer, "to"):
            components["tokenizer"] = self.tokenizer
        if self.text_encoder is not None:
            components["text_encoder"] = self.text_encoder
        self.offload = Offload(device, components)
        return self

    def _use(self, *names: str) -> None:
        """Low-memory mode: bring the components of this phase to the device."""
        if self.offload is not None:
            self.offload.use(*(n for n in names if n in self.offload.components))

    def compile(self, **options) -> Any4DPipeline:
        """Compile the transformer's blocks with ``torch.compile`` (``compile_blocks``); the
        first call at each clip shape compiles. Returns the pipeline."""
        self.model.compile_blocks(**options)
        return self

    def to(self, device) -> Any4DPipeline:
        self.offload = None  # everything on one device: low-memory mode ends
        self.model.to(device)
        if hasattr(self.tokenizer, "to"):
            self.tokenizer.to(device)
        if self.text_encoder is not None:
            self.text_encoder.to(device)
        return self

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        ema: bool = True,
        device: str | torch.device = "cpu",
        text_encoder: str | Path | bool | None = None,
        low_memory: bool = False,
    ) -> Any4DPipeline:
        """Load from a local directory (nothing is downloaded):

        * our pipeline (``pipeline.json`` + ``model/``), as ``save_pretrained`` writes it;
        * a training checkpoint (``step_N/`` with ``trainer.json``): its EMA weights when kept
          and ``ema``, its tokenizer and clip shape from the training config;
        * a Wan2.1 diffusers directory (``transformer/`` + ``vae/``): every stream from Wan, and
          the umT5 text encoder when ``text_encoder/`` + ``tokenizer/`` are there too.

        text_encoder: a local directory holding ``text_encoder/`` + ``tokenizer/`` (e.g. the Wan2.1
        diffusers directory) to load umT5 from; None: the one the directory names (a training
        checkpoint's ``model.text_encoder``, a saved pipeline's, a Wan directory's own), if any;
        False: none. low_memory: load every weight on the CPU and sample on ``device`` in
        low-memory mode (``enable_low_memory``).
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"pipeline directory {directory} does not exist")
        sampling_device, device = device, ("cpu" if low_memory else device)
        pipe = cls(*load_parts(directory, ema, device))
        if text_encoder is None:
            text_encoder = recorded_text_encoder(directory)
        if text_encoder not in (None, False):
            from any4d.tokenize.text import TextEncoder

            encoder = TextEncoder.from_pretrained(text_encoder, device=device)
            pipe = cls(pipe.model, pipe.tokenizer, pipe.defaults, text_encoder=encoder)
            pipe.text_encoder_path = str(Path(text_encoder).resolve())
        return pipe.enable_low_memory(sampling_device) if low_memory else pipe

    def save_pretrained(self, directory: str | Path) -> Path:
        """``pipeline.json`` + ``model/`` (+ ``vae/`` for the Wan VAE tokenizer); a text encoder
        loaded from a directory is recorded by its absolute path (``from_pretrained`` loads it
        again). Returns the directory."""
        recorded = {} if self.text_encoder is None else {"text_encoder": self.text_encoder_path}
        return write_pipeline(directory, self.model, self.tokenizer, self.defaults, recorded)

    # ------------------------------------------------------------------ running

    def check_task(self, scene: Scene, task: str | Mask) -> Mask:
        """The task as a ``Mask``; an error when it observes what the scene does not have."""
        mask = Mask.parse(task)
        for stream in mask.clean:
            need = STREAM_MODALITY[stream]
            if need != "rgb" and getattr(scene, need) is None:
                raise ValueError(
                    f"task {str(task)!r} observes {stream} (needs the scene's {need}) but the "
                    f"scene has no {need}: give it, or choose a task that generates it"
                )
        return mask

    def observed(self, scene: Scene, task: str | Mask) -> Scene:
        """The scene with only what ``task`` observes: depth without depth groups clean and
        cameras without ray groups clean are dropped. Evaluation feeds this, so that not even
        the clip scale (DESIGN §1) of unobserved data reaches the model; ``__call__`` applies
        it itself."""
        mask = self.check_task(scene, task)
        return dataclasses.replace(
            scene,
            depth=scene.depth if "depth" in mask.clean else None,
            cameras=scene.cameras if "ray_d" in mask.clean else None,
        )

    @property
    def sampler(self) -> SamplerConfig:
        """The sampler settings this pipeline was saved with (``SamplerConfig``'s otherwise)."""
        return SamplerConfig(
            **{k: self.defaults[k] for k in SamplerConfig.settings() if k in self.defaults}
        )

    def sampler_config(self, sampler: SamplerConfig | Mapping[str, Any] | None) -> SamplerConfig:
        """``sampler`` as given, the pipeline's own with a dict of changes, or its own (None)."""
        return resolve_sampler(self.sampler, sampler)

    @property
    def clip_length(self) -> int | None:
        """Frames per window: the clip length the model was trained on (None: unknown)."""
        length = self.defaults.get("num_frames")
        return None if length is None else int(length)

    @property
    def size(self) -> tuple[int, int] | None:
        """(H, W) the model runs at: its training size (None: unknown, the input's own)."""
        if "height" not in self.defaults or "width" not in self.defaults:
            return None
        return int(self.defaults["height"]), int(self.defaults["width"])

    def plan(
        self,
        num_frames: int,
        frame_size: tuple[int, int],
        window: WindowConfig | None = None,
        fit: str = "pad",
    ) -> tuple[list[Window], FrameFit]:
        """The windows of a clip of ``num_frames`` frames of ``frame_size`` (H, W), and how its
        frames fit the model's size (``any4d.windows``, ``any4d.data.fit``)."""
        window = WindowConfig() if window is None else window
        if not isinstance(window, WindowConfig):
            raise ValueError(f"window is a {type(window).__name__} (expected a WindowConfig)")
        length = window.length or self.clip_length or num_frames
        plan = plan_windows(num_frames, window, length, self.tokenizer.temporal_stride)
        return plan, FrameFit.plan(tuple(frame_size), self.size or tuple(frame_size), fit)

    @torch.no_grad()
    def __call__(
        self,
        scene: Scene,
        task: str | Mask = "geometry",
        *,
        sampler: SamplerConfig | Mapping[str, Any] | None = None,
        search: SearchConfig | None = None,
        seed: int = 0,
        prompt: str | None = None,
        progress: bool = True,
        window: WindowConfig | None = None,
        fit: str = "pad",
    ) -> Completion:
        """Complete ``scene`` for ``task`` (module docstring). Deterministic given ``seed``.

        sampler: a ``SamplerConfig``, a dict of changes to ``self.sampler``, or None (it).
        search:  candidates, select and score (``SearchConfig``; default one sample).
        prompt:  text for a model with text conditioning (``text_dim``), encoded by the
                 pipeline's umT5; None: the scene's own ``text``, if any (without a text encoder
                 it is then unused, which ``failures`` says).
        window:  how a clip longer than the model's is split (``WindowConfig``: length,
                 overlap, anchors, stitch); one window when it is no longer.
        fit:     how frames of another size meet the model's: "pad" (all of the frame) or
                 "crop" (``any4d.data.fit``); results come back at the scene's size."""
        if not isinstance(scene, Scene):
            raise ValueError(f"scene must be a Scene, got {type(scene).__name__}")
        mask = self.check_task(scene, task)
        plan, frame_fit = self.plan(scene.num_frames, (scene.height, scene.width), window, fit)
        if len(plan) == 1 and frame_fit.identity:  # the model's own clip: nothing to fit
            return self._complete(scene, task, self.sampler_config(sampler), search, seed,
                                  self._text(prompt, scene.text), progress)  # fmt: skip
        parts = list(
            self.windows(
                plan, scene.frames, mask, frame_fit, window,
                sampler=sampler, search=search, seed=seed, prompt=prompt, text=scene.text,
                progress=progress,
            )
        )  # fmt: skip
        failures = list(dict.fromkeys(f for p in parts for f in p.failures))
        single = parts[0] if len(parts) == 1 else None
        return Completion(
            scene=concatenate(parts),
            task=mask,
            scores=None if single is None else single.scores,
            best=0,
            uncertainty=None,
            latents={},
            failures=failures,
            units=parts[0].units,
            windows=len(parts),
            samples=sum(p.samples for p in parts),
        )

    def windows(
        self,
        plan: list[Window],
        read,
        mask: Mask,
        fit: FrameFit,
        window: WindowConfig | None = None,
        *,
        sampler: SamplerConfig | Mapping[str, Any] | None = None,
        search: SearchConfig | None = None,
        seed: int = 0,
        prompt: str | None = None,
        text: str | None = None,
        progress: bool = True,
    ):
        """Complete a clip window by window, reading its frames per window: yields one
        ``any4d.windows.WindowResult`` per window (its new frames at the input's size).

        plan, fit: from ``plan``. read: clip frame indices → those frames (a ``Scene``).
        Window ``i`` is sampled with seed ``seed + i``. Other arguments as for ``__call__``;
        ``text``: the clip's own text (used when no ``prompt`` is given)."""
        from tqdm.auto import tqdm

        sampler = self.sampler_config(sampler)
        features = self._text(prompt, text)
        stitch = "context" if window is None else window.stitch
        seeds = iter(range(seed, seed + len(plan)))
        covered = fit.coverage()

        def complete(scene: Scene, window_mask: Mask) -> Completion:
            # A window whose rays determine no camera is sampled again (other seeds): one
            # such window would otherwise leave the whole clip without cameras.
            first = next(seeds)
            for attempt in range(CAMERA_RETRIES + 1):
                result = self._complete(
                    scene, window_mask, sampler, search, first + attempt * len(plan), features,
                    progress and len(plan) == 1, covered,
                )  # fmt: skip
                if result.scene.cameras is not None or not _camera_failure(result):
                    break
            if attempt:
                note = "decoded" if result.scene.cameras is not None else "not decoded"
                result = dataclasses.replace(
                    result,
                    failures=result.failures
                    + [f"cameras: {note} after {attempt} more sample(s) of a window"],
                    samples=attempt + 1,
                )
            return result

        parts = roll(plan, read, mask, complete, fit, plan[-1].frames[-1] + 1, stitch)
        bar = tqdm(parts, total=len(plan), desc="windows", disable=not progress or len(plan) == 1)
        yield from bar

    def _complete(
        self,
        scene: Scene,
        task: str | Mask,
        sampler: SamplerConfig,
        search: SearchConfig | None,
        seed: int,
        text: tuple[Tensor | None, list],
        progress: bool,
        covered: Tensor | None = None,
    ) -> Completion:
        """One clip at a size the tokenizer takes: encode, sample (and search), decode.
        covered: (H, W) 1 where the input lies, 0 on padding (cameras are fitted to the rays
        of the covered pixels only); None: everywhere."""
        search = resolve_search(search)
        text, failures = text
        self._use("model", "tokenizer")
        device = self.device
        mask = self.check_task(scene, task)
        scene = self.observed(scene, mask).to(device)
        observed = Observed.of(mask, scene.num_frames)
        _check_observed_depth(scene, observed.depth, task)
        layout = Layout.for_stride(scene.num_frames, self.tokenizer.temporal_stride)
        context = mask.context_frames(layout)
        clip = self.tokenizer.encode(scene, context_frames=context, observed=observed)
        # Streams the scene lacks are targets: check_task made sure none of them is observed.
        clip = clip.with_streams(self.model.config.streams)
        weights = None if covered is None else _ray_weights(covered, clip.grids["ray_d"])
        found = search_candidates(
            self.model,
            Latents.of(clip),
            mask,
            functools.partial(
                decode_generated, self.tokenizer, clip, mask, scene, ray_weights=weights
            ),
            sampler,
            search,
            generator=torch.Generator(device=device).manual_seed(seed),
            text=text,
            progress=progress,
        )
        return Completion(
            scene=_keep_observed(scene, found.decoded, mask),
            task=mask,
            scores=None if found.scores is None else found.scores[0],
            best=int(found.best[0]),
            uncertainty=found.uncertainty,
            latents=found.latents,
            failures=failures + found.failures,
            units=clip.units[0],
        )

    def _text(self, prompt: str | None, scene_text: str | None) -> tuple[Tensor | None, list]:
        """(1, L, text_dim) features of ``prompt`` (else the scene's text) and what went unused."""
        if prompt is not None and not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string or None, got {type(prompt).__name__}")
        if prompt is not None and self.model.config.text_dim is None:
            raise ValueError("prompt given but this model has no text conditioning (text_dim=None)")
        if prompt is not None and self.text_encoder is None:
            raise ValueError(
                "prompt given but the pipeline has no text encoder: load one with "
                "Any4DPipeline.from_pretrained(..., text_encoder=<dir with text_encoder/ + "
                "tokenizer/>)"
            )
        text = prompt if prompt is not None else scene_text
        if not text or self.model.config.text_dim is None:
            return None, []
        if self.text_encoder is None:
            return None, ["text: the scene's text was not used (the pipeline has no text encoder)"]
        self._use("text_encoder")
        features = self.text_encoder.encode(text)
        return features.to(self.device, next(self.model.parameters()).dtype), []


def resolve_sampler(
    base: SamplerConfig, sampler: SamplerConfig | Mapping[str, Any] | None
) -> SamplerConfig:
    """``sampler`` as given, ``base`` with a dict of changes (each checked), or ``base``."""
    if sampler is None or isinstance(sampler, SamplerConfig):
        return sampler or base
    if not isinstance(sampler, Mapping):
        raise ValueError(
            f"sampler is a {type(sampler).__name__} (expected a SamplerConfig, a dict of "
            "changes to the pipeline's, or None)"
        )
    unknown = sorted(set(sampler) - set(SamplerConfig.settings()))
    if unknown:
        raise ValueError(
            f"sampler has unknown settings {unknown} (expected {SamplerConfig.settings()})"
        )
    return dataclasses.replace(base, **sampler)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` checked (None: CUDA when there is one, else the CPU)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a device (expected e.g. 'cuda', 'cuda:1', 'cpu')"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: no CUDA device here (use 'cpu')")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    if device.type not in ("cuda", "cpu", "mps", "xpu"):
        raise ValueError(f"device {str(device)!r} (expected a cuda, cpu, mps or xpu device)")
    return device


def resolve_search(search: SearchConfig | None) -> SearchConfig:
    """``search`` as given, or the default (one sample); anything else is an error."""
    search = SearchConfig() if search is None else search
    if not isinstance(search, SearchConfig):
        raise ValueError(f"search is a {type(search).__name__} (expected a SearchConfig)")
    return search


def _camera_failure(result: Completion) -> bool:
    return any(f.startswith("cameras:") for f in result.failures)


def _ray_weights(covered: Tensor, grid: Tensor) -> Tensor:
    """(H, W) pixel coverage → (H', W') weights of the ray grid's cells (their covered share,
    cells less than half covered dropped)."""
    size = tuple(grid.shape[-2:])
    share = torch.nn.functional.adaptive_avg_pool2d(covered[None, None].float(), size)[0, 0]
    return torch.where(share >= 0.5, share, 0.0).to(grid.device)


def _check_observed_depth(scene: Scene, frames, task) -> None:
    """Observed depth must hold a valid value: it sets the clip scale (DESIGN §1), and clean
    groups of invalid depth would tell the model that everything is at distance 0."""
    if not frames or scene.depth is None:
        return
    if not (scene.depth[sorted(frames)] > 0).any():
        raise ValueError(
            f"task {str(task)!r} observes depth in frames {sorted(frames)}, but the scene's depth "
            "there has no valid (> 0) value (0 marks invalid depth): give valid depth, or a "
            "task that generates it"
        )


def _keep_observed(scene: Scene, decoded: dict, mask: Mask) -> Scene:
    """The decoded scene with every observed modality put back exactly as given."""
    rgb = decoded["rgb"][0]
    observed = sorted(mask.clean_frames("rgb", scene.num_frames))
    if observed:
        rgb = rgb.clone()
        rgb[observed] = scene.rgb[observed].to(rgb.dtype)
    depth = decoded.get("depth")
    depth = None if depth is None else depth[0]
    if scene.depth is not None and depth is not None:
        frames = sorted(mask.clean_frames("depth", scene.num_frames))
        depth = depth.clone()
        depth[frames] = scene.depth[frames].to(depth.dtype)
    cameras = decoded.get("cameras")
    cameras = None if cameras is None else cameras[0]
    ray_frames = mask.clean_frames("ray_d", scene.num_frames)
    if cameras is None and len(ray_frames) == scene.num_frames:
        cameras = scene.cameras
    if scene.cameras is not None and cameras is not None and ray_frames:
        K, c2w = cameras.K.clone(), cameras.c2w.clone()
        frames = sorted(ray_frames)
        K[frames] = scene.cameras.K[frames].to(K.dtype)
        c2w[frames] = scene.cameras.c2w[frames].to(c2w.dtype)
        cameras = Cameras.unchecked(K, c2w)
    rgb = rgb.clamp(-1, 1)
    return Scene(rgb=rgb, depth=depth, cameras=cameras, text=scene.text, fps=scene.fps)
