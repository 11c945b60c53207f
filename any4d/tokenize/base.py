"""``Tokenizer``: scenes ⇄ ``LatentClip``, the logic every tokenizer shares (DESIGN §1–§3).

A concrete tokenizer only says how RGB-like videos become latents and back (``encode_images`` /
``decode_images``) and its strides; everything else is here:

* normalisation — each clip is expressed relative to its first camera (a clip without cameras
  keeps an identity reference) and divided by its clip scale ``s`` (``ClipFrame``), which
  follows DESIGN §1's rule for what the clip observes (``Observed``; ``fit_frames``);
* depth → ``D̃`` replicated to 3 channels, so it passes an RGB image codec;
* rays — never through the codec: Plücker rays of the normalised cameras at the latent grid's
  pixel centres, packed in time (``any4d.tokenize.rays``);
* context groups (DESIGN §3) — with temporal stride r > 1 a listed pixel frame other than 0 is
  also encoded alone and appended as an extra latent frame to every stream.

Grids take the scenes' rgb dtype (depth and cameras are cast to it) and device; the codec runs
in its own and results are cast back, so rays and metadata keep their precision whatever the
codec runs in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from any4d.data.scene import Scene
from any4d.geometry import Cameras, ClipFrame, plucker_rays, rays_to_cameras, resolve_frames
from any4d.tokenize.batch import Observed, check_batch, fit_frames, frame_rows
from any4d.tokenize.clip import STREAMS, LatentClip
from any4d.tokenize.rays import (
    RAY_CHANNELS,
    causal_pixel_frames,
    latent_frame_of,
    num_latent_frames,
    pack_rays,
    unpack_rays,
)


class Tokenizer(ABC):
    """Base class: subclasses set the strides and channels and implement the image codec.

    temporal_stride: pixel frames per latent frame (after the first, which holds one).
    spatial_stride:  pixels per latent cell along H and W.
    latent_channels: channels C of every stream's grid.
    """

    temporal_stride: int
    spatial_stride: int
    latent_channels: int
    # stream → factor the stream's grid is multiplied by (divided by on decoding), so that every
    # stream reaches the model at a similar scale (as a VAE's latents_std does for its latents).
    # Ray moments (÷ s) and D̃ are small next to unit noise: e.g. {"ray_m": 8.0, "depth": 2.5}.
    stream_scales: dict[str, float] = {}

    def set_stream_scales(self, scales: dict[str, float] | None) -> None:
        """Validate and set ``stream_scales`` (positive factors of known streams)."""
        scales = dict(scales or {})
        for name, value in scales.items():
            if name not in STREAMS or not float(value) > 0:
                raise ValueError(
                    f"stream_scales[{name!r}]={value!r} (expected a positive factor for one of "
                    f"{STREAMS})"
                )
        self.stream_scales = {k: float(v) for k, v in scales.items()}

    @abstractmethod
    def encode_images(self, images: Tensor) -> Tensor:
        """(B, T, 3, H, W) in [-1, 1] → (B, C, T', H', W') latents, in ``images``' dtype."""

    @abstractmethod
    def decode_images(self, latents: Tensor) -> Tensor:
        """(B, C, T', H', W') → (B, T, 3, H, W) clamped to [-1, 1], in ``latents``' dtype."""

    def latent_size(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(T', H', W') of a clip, or a ``ValueError`` if the codec cannot take it exactly."""
        latent_frames = num_latent_frames(num_frames, self.temporal_stride)
        for name, size in (("height", height), ("width", width)):
            if size < 1 or size % self.spatial_stride:
                raise ValueError(
                    f"{name} is {size} (expected a positive multiple of the spatial stride "
                    f"{self.spatial_stride})"
                )
        return latent_frames, height // self.spatial_stride, width // self.spatial_stride

    def channel_weights(self, streams: Sequence[str]) -> dict[str, Tensor]:
        """Stream → (C,) float32, 1 on the channels that carry data: the ray streams' first
        ``3 · temporal_stride`` (the rest is zero padding, ``any4d.tokenize.rays``). Streams
        whose every channel carries data are left out. For losses over real channels only."""
        used = RAY_CHANNELS * self.temporal_stride
        out = {}
        for s in streams:
            if s in ("ray_d", "ray_m") and used < self.latent_channels:
                weights = torch.zeros(self.latent_channels)
                weights[:used] = 1.0
                out[s] = weights
        return out

    # ------------------------------------------------------------------ encoding

    def encode(
        self,
        scenes: Scene | Sequence[Scene],
        context_frames: Sequence[int] = (),
        observed: Observed | Sequence[Observed] | None = None,
        targets: bool = False,
    ) -> LatentClip:
        """Scenes → latent grids.

        scenes:         one Scene or a sequence of B scenes sharing T, H, W, dtype and device.
        context_frames: pixel frames (negative = from the end) that must condition the model on
                        their own; with temporal stride r > 1 each one other than 0 is appended
                        as an extra latent frame (sorted, duplicates once). Stride 1: none needed.
        observed:       what each scene observes, which sets its clip scale (DESIGN §1; one for
                        all scenes or one each); default: everything it has.
        targets:        the scenes' unobserved data is ground truth (training), which fixes
                        relative units (``fit_frames``).
        Returns a ``LatentClip`` with grids (B, C, T' + extra, H', W').
        """
        scenes = check_batch(scenes)
        first = scenes[0]
        num_frames, height, width = first.num_frames, first.height, first.width
        self.latent_size(num_frames, height, width)  # a clear error for a size it cannot take
        context = self._context(context_frames, num_frames)
        if isinstance(observed, Observed):
            observed = [observed] * len(scenes)
        frame, units = fit_frames(scenes, observed, targets)

        def with_context(x: Tensor, encode: Callable[[Tensor], Tensor]) -> Tensor:
            """x (n, T, c, h, w) → encode(x) with one latent frame per context frame appended."""
            grid = encode(x)
            if not context:
                return grid
            alone = rearrange(x[:, context], "n k c h w -> (n k) 1 c h w")
            extra = rearrange(encode(alone), "(n k) c 1 h w -> n c k h w", k=len(context))
            return torch.cat([grid, extra], dim=2)

        def scatter(rows: list[int], values: Tensor) -> Tensor:
            """values for the scenes ``rows`` → a (B, …) tensor, zeros for the other scenes."""
            out = values.new_zeros(len(scenes), *values.shape[1:])
            out[rows] = values
            return out

        def flags(rows: list[int]) -> Tensor:
            return scatter(rows, torch.ones(len(rows), dtype=torch.bool, device=first.rgb.device))

        rgb = torch.stack([scene.rgb for scene in scenes])  # (B, T, 3, H, W)
        images = {"rgb": with_context(rgb, self.encode_images)}
        available = {"rgb": flags(list(range(len(scenes))))}
        depth_valid = None

        with_depth = [i for i, scene in enumerate(scenes) if scene.depth is not None]
        if with_depth:
            depth = torch.stack([scenes[i].depth.to(rgb.dtype) for i in with_depth])
            encoded = frame_rows(frame, with_depth).encode_depth(depth)
            images["depth"] = scatter(
                with_depth, with_context(encoded.expand(-1, -1, 3, -1, -1), self.encode_images)
            )
            available["depth"] = flags(with_depth)
            depth_valid = scatter(with_depth, self.valid_fraction(depth, context))

        return self.assemble(
            images,
            available,
            [scene.cameras for scene in scenes],
            frame,
            units,
            num_frames=num_frames,
            image_size=(height, width),
            context=context,
            depth_valid=depth_valid,
            text=tuple(scene.text for scene in scenes),
            fps=tuple(float(scene.fps) for scene in scenes),
        )

    def valid_fraction(self, depth: Tensor, context: Sequence[int] = ()) -> Tensor:
        """depth (n, T, 1, H, W) metres → (n, T' + len(context), H', W') fraction of valid
        (> 0) pixels under each latent cell, a context group's from its frame alone."""
        valid = (depth > 0).to(depth.dtype)
        grid = self._pool_valid(valid)
        if context:
            alone = rearrange(valid[:, list(context)], "n k c h w -> (n k) 1 c h w")
            extra = rearrange(self._pool_valid(alone), "(n k) c 1 h w -> n c k h w", k=len(context))
            grid = torch.cat([grid, extra], dim=2)
        return grid[:, 0]

    def assemble(
        self,
        images: dict[str, Tensor],
        available: dict[str, Tensor],
        cameras: Sequence[Cameras | None],
        frame: ClipFrame,
        units: tuple[str, ...],
        *,
        num_frames: int,
        image_size: tuple[int, int],
        context: Sequence[int] = (),
        depth_valid: Tensor | None = None,
        text: tuple[str | None, ...] = (),
        fps: tuple[float, ...] = (),
    ) -> LatentClip:
        """Codec latents of B clips + their cameras → the ``LatentClip`` ``encode`` returns.

        images:    "rgb" and optionally "depth" (D̃ at each clip's scale): (B, C, T' + k, H', W')
                   codec latents with the k context groups appended, zeros for clips without.
        available: "rgb" / "depth" → (B,) bool.
        cameras:   per clip, its cameras in the world (None: no rays); their rays are computed
                   here at the latent grid, normalised by ``frame``.
        frame, units: each clip's normalisation (``fit_frames``). context: the validated pixel
        frames of the context groups (``_context``). Other arguments: ``LatentClip``'s fields.
        Encoding a scene and assembling its precomputed latents give the same clip, so a latent
        cache (``any4d.tokenize.precomputed``) trains on exactly what encoding would give.
        """
        reference = images["rgb"]
        batch, device = reference.shape[0], reference.device
        dtype = frame.scale.dtype  # rays in the clip's precision, whatever the codec gave
        latent_h, latent_w = reference.shape[-2:]
        r, channels = self.temporal_stride, self.latent_channels
        grids, available = dict(images), dict(available)
        with_cameras = [i for i, c in enumerate(cameras) if c is not None]
        if with_cameras:
            stacked = Cameras.stack([cameras[i].to(dtype=dtype) for i in with_cameras])
            normalized = frame_rows(frame, with_cameras).normalize_cameras(stacked)
            rays = plucker_rays(normalized.strided(self.spatial_stride), latent_h, latent_w)
            flags = torch.zeros(batch, dtype=torch.bool, device=device)
            flags[with_cameras] = True
            for name, half in (("ray_d", rays[:, :, :3]), ("ray_m", rays[:, :, 3:])):
                packed = pack_rays(half, r, channels)
                if context:
                    alone = rearrange(half[:, list(context)], "n k c h w -> (n k) 1 c h w")
                    extra = pack_rays(alone, r, channels)
                    extra = rearrange(extra, "(n k) c 1 h w -> n c k h w", k=len(context))
                    packed = torch.cat([packed, extra], dim=2)
                grid = packed.new_zeros(batch, *packed.shape[1:])
                grid[with_cameras] = packed
                grids[name], available[name] = grid, flags
        latent_frames = num_latent_frames(num_frames, r)
        index = list(range(latent_frames)) + [latent_frame_of(p, r) for p in context]
        return LatentClip(
            grids={k: v * self.stream_scales.get(k, 1.0) for k, v in grids.items()},
            available=available,
            frame_index=torch.tensor(index, dtype=torch.long, device=device),
            pixel_frames=causal_pixel_frames(num_frames, r) + tuple((p,) for p in context),
            num_frames=num_frames,
            image_size=tuple(image_size),
            frame=frame,
            num_context=len(context),
            depth_valid=depth_valid,
            text=tuple(text),
            fps=tuple(fps),
            units=tuple(units),
        )

    def _context(self, context_frames: Sequence[int], num_frames: int) -> list[int]:
        """Validated, sorted, de-duplicated pixel frames that need their own latent frame."""
        for p in context_frames:
            if not isinstance(p, int) or isinstance(p, bool):
                raise ValueError(
                    f"context_frames has {p!r} (expected pixel frame indices in "
                    f"[-{num_frames}, {num_frames}) for a clip of {num_frames} frames)"
                )
        resolved = set(resolve_frames(context_frames, num_frames, "context_frames"))
        # Frame 0 is already its own latent frame; with stride 1 every frame is.
        return sorted(resolved - {0}) if self.temporal_stride > 1 else []

    def _pool_valid(self, valid: Tensor) -> Tensor:
        """valid (n, T, 1, H, W) in {0, 1} → (n, 1, T', H', W') fraction valid per latent cell."""
        n, t = valid.shape[:2]
        pooled = F.avg_pool2d(valid.flatten(0, 1), self.spatial_stride)
        pooled = pooled.reshape(n, t, *pooled.shape[-2:])  # (n, T, H', W')
        groups = causal_pixel_frames(t, self.temporal_stride)
        return torch.stack([pooled[:, list(g)].mean(1) for g in groups], dim=1)[:, None]

    # ------------------------------------------------------------------ decoding

    def decode_streams(
        self,
        clip: LatentClip,
        grids: dict[str, Tensor] | None = None,
        ray_weights: Tensor | None = None,
    ) -> dict[str, Tensor | Cameras]:
        """Latent grids → batched pixel-space streams, in the original world and metres.

        clip:        the metadata (frame, sizes, pixel frames) the grids belong to.
        grids:       stream → (B, C, T', H', W') — or (n·B, …): n candidates of every
                     clip, candidate-major, decoded in one batch —, with or without the clip's
                     context groups (they are dropped); default: the clip's own grids. Only the
                     streams given are decoded (leave out what need not come back: an observed
                     stream costs a codec pass); ray_d and ray_m go together. Every stream given
                     is decoded for every clip, so the rays of each clip must determine a camera
                     (a zero grid of a clip without cameras does not: decode such batches with
                     ``decode``).
        ray_weights: optional per-ray confidence (B, T, H', W') (broadcastable) for
                     ``rays_to_cameras``.
        Returns "rgb" (B, T, 3, H, W) in [-1, 1] if an rgb grid is given; "depth" (B, T, 1, H, W)
        metres (0 = invalid) if a depth grid is; "cameras" (batch (B, T), intrinsics for H × W)
        if rays are.
        """
        grids = clip.grids if grids is None else grids
        batch = next(iter(grids.values())).shape[0] if grids else clip.batch_size
        if batch > clip.batch_size and batch % clip.batch_size == 0:
            clip = clip.repeat(batch // clip.batch_size)  # candidates of each clip, in one pass
        grids = self._clip_grids(clip, grids, need_rgb=False)
        every = list(range(clip.batch_size))
        return self._decode(clip, grids, ray_weights, {"depth": every, "cameras": every})

    def decode(
        self,
        clip: LatentClip,
        grids: dict[str, Tensor] | None = None,
        ray_weights: Tensor | None = None,
    ) -> list[Scene]:
        """Latent grids → one ``Scene`` per clip (arguments as in ``decode_streams``).

        Without ``grids`` the clip's own grids are decoded and a scene gets back only the
        modalities it had. Explicit ``grids`` are predictions: every stream given is decoded for
        every scene, whatever the input provided.
        """
        own = grids is None
        grids = self._clip_grids(clip, clip.grids if own else grids)
        rows = {}
        for name, stream in (("depth", "depth"), ("cameras", "ray_d")):
            if stream not in grids:
                continue
            rows[name] = [
                b for b in range(clip.batch_size) if not own or bool(clip.available[stream][b])
            ]
        streams = self._decode(clip, grids, ray_weights, rows)

        def pick(name: str, b: int):
            return streams[name][rows[name].index(b)] if b in rows.get(name, ()) else None

        return [
            Scene(
                rgb=streams["rgb"][b],
                depth=pick("depth", b),
                cameras=pick("cameras", b),
                text=clip.text[b] if clip.text else None,
                fps=clip.fps[b] if clip.fps else 10.0,
            )
            for b in range(clip.batch_size)
        ]

    def _decode(
        self,
        clip: LatentClip,
        grids: dict[str, Tensor],
        ray_weights: Tensor | None,
        rows: dict[str, list[int]],
    ) -> dict[str, Tensor | Cameras]:
        """Decode rgb for every clip, and depth / cameras for the clips ``rows`` lists.

        Returns, where the grids have them, rgb (B, …), depth (n_depth, …) and cameras
        (n_cameras, T) in the order of their rows.
        """
        dtype = clip.frame.scale.dtype
        out: dict[str, Tensor | Cameras] = {}
        if "rgb" in grids:
            out["rgb"] = self._decode_video(grids["rgb"], clip)
        # Geometry in the clip's own dtype even under autocast (bf16 poses would also mix
        # dtypes with the clip's intrinsics); the codec above may run in autocast.
        exact = torch.autocast(next(iter(grids.values())).device.type, enabled=False)
        if "depth" in grids and rows.get("depth"):
            depth_rows = rows["depth"]
            encoded = self._decode_video(grids["depth"][depth_rows], clip).mean(2, keepdim=True)
            with exact:
                out["depth"] = frame_rows(clip.frame, depth_rows).decode_depth(encoded.to(dtype))
        if "ray_d" in grids and rows.get("cameras"):
            camera_rows = rows["cameras"]
            halves = [
                unpack_rays(grids[s][camera_rows], self.temporal_stride, clip.num_frames)
                for s in ("ray_d", "ray_m")
            ]
            rays = torch.cat(halves, dim=2).to(dtype)  # (n, T, 6, H', W')
            if ray_weights is not None:
                full = (clip.batch_size, clip.num_frames, *rays.shape[-2:])
                try:
                    ray_weights = torch.broadcast_to(ray_weights, full)[camera_rows]
                except RuntimeError:
                    raise ValueError(
                        f"ray_weights has shape {tuple(ray_weights.shape)} (expected "
                        f"broadcastable to {full})"
                    ) from None
            with exact:
                grid_cameras = rays_to_cameras(rays, ray_weights)
                cameras = grid_cameras.resized_to(tuple(rays.shape[-2:]), clip.image_size)
                out["cameras"] = frame_rows(clip.frame, camera_rows).denormalize_cameras(cameras)
        return out

    def _clip_grids(
        self, clip: LatentClip, grids: dict[str, Tensor], need_rgb: bool = True
    ) -> dict[str, Tensor]:
        """Validate prediction grids against the clip and drop its context groups."""
        unknown = [s for s in grids if s not in STREAMS]
        missing_rgb = need_rgb and "rgb" not in grids
        if unknown or missing_rgb or not grids or (("ray_d" in grids) != ("ray_m" in grids)):
            expected = "'rgb' and any of " if need_rgb else "any of "
            raise ValueError(
                f"grids has streams {tuple(grids)} (expected {expected}{STREAMS}, ray_d and "
                "ray_m together)"
            )
        b, t_all, h, w = clip.grid_shape
        t_clip = clip.num_clip_latents
        out = {}
        for name in STREAMS:
            if name not in grids:
                continue
            grid = grids[name]
            if (
                grid.dim() != 5
                or grid.shape[0] != b
                or grid.shape[2] not in (t_all, t_clip)
                or grid.shape[3:] != (h, w)
            ):
                raise ValueError(
                    f"grids[{name!r}] has shape {tuple(grid.shape)} (expected ({b}, C, {t_all} or "
                    f"{t_clip}, {h}, {w}) to match the clip)"
                )
            scale = self.stream_scales.get(name, 1.0)
            out[name] = grid[:, :, :t_clip].to(clip.frame.scale.dtype) / scale
        return out

    def _decode_video(self, grid: Tensor, clip: LatentClip) -> Tensor:
        video = self.decode_images(grid)
        expected = (grid.shape[0], clip.num_frames, 3, *clip.image_size)
        if tuple(video.shape) != expected:
            raise ValueError(
                f"decode_images gave shape {tuple(video.shape)} (expected {expected}); "
                "is this the tokenizer that encoded the clip?"
            )
        return video
