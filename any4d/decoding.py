"""Decode only what a task generates: a fully observed stream comes back as it was given.

A completion puts every observed group back exactly as given (``pipeline._keep_observed``), so
decoding a stream the task observes in every frame is wasted work — for ``geometry`` and
``depth`` the RGB video, the most expensive Wan-VAE decode of a clip (and, with test-time
search, once per candidate). Here such streams are taken from the observation instead: RGB
without a VAE decode, depth without one, cameras without fitting them to rays. Streams the task
generates in any frame are decoded (their observed frames are put back afterwards).
"""

from __future__ import annotations

from torch import Tensor

from any4d.data import Scene
from any4d.diffusion import Mask
from any4d.geometry import Cameras
from any4d.tokenize import LatentClip


def fully_observed(mask: Mask, scene: Scene) -> set[str]:
    """The streams of ``mask`` that ``scene`` observes in every frame: "rgb", "depth", and
    "ray_d" / "ray_m" together (when the scene has the cameras)."""
    frames = scene.num_frames

    def every(stream: str) -> bool:
        return len(mask.clean_frames(stream, frames)) == frames

    out = set()
    if every("rgb"):
        out.add("rgb")
    if scene.depth is not None and every("depth"):
        out.add("depth")
    if scene.cameras is not None and every("ray_d"):
        out |= {"ray_d", "ray_m"}
    return out


def decode_generated(
    tokenizer,
    clip: LatentClip,
    mask: Mask,
    scene: Scene,
    grids: dict[str, Tensor],
    *,
    ray_weights: Tensor | None = None,
) -> dict[str, Tensor | Cameras]:
    """Sampled grids → the decoded streams, observed ones taken from ``scene`` (module doc).

    tokenizer, clip: the tokenizer and the one clip (batch 1) the grids were sampled for.
    mask:  the task. scene: what it observes, on the clip's device.
    grids: stream → (k, C, T', H', W'): k candidates of the clip, decoded in one batch.
    ray_weights: per-ray confidence for ``rays_to_cameras`` (broadcastable to (k, T, H', W')).
    Returns "rgb" (k, T, 3, H, W), "depth" (k, T, 1, H, W) if a depth grid is given, "cameras"
    (batch (k, T)) if rays are — what ``Tokenizer.decode_streams`` returns.
    """
    if clip.batch_size != 1:
        raise ValueError(f"clip has batch {clip.batch_size} (expected one clip)")
    count = next(iter(grids.values())).shape[0]
    kept = fully_observed(mask, scene)
    todo = {s: g for s, g in grids.items() if s not in kept}
    clips = clip.repeat(count)
    out = {}
    # Rays first: when they determine no camera (a ValueError) no codec pass is lost, and the
    # caller's retry without rays decodes RGB and depth once.
    rays = {s: todo.pop(s) for s in ("ray_d", "ray_m") if s in todo}
    if rays:
        out.update(tokenizer.decode_streams(clips, rays, ray_weights=ray_weights))
    if todo:
        out.update(tokenizer.decode_streams(clips, todo))
    dtype = clip.frame.scale.dtype

    def copies(x: Tensor) -> Tensor:
        return x.to(dtype)[None].expand(count, *x.shape)

    if "rgb" in kept:
        out["rgb"] = copies(scene.rgb)
    if "depth" in kept and "depth" in grids:
        out["depth"] = copies(scene.depth)
    if "ray_d" in kept and "ray_d" in grids:
        cameras = scene.cameras.to(dtype=dtype)
        out["cameras"] = Cameras.unchecked(copies(cameras.K), copies(cameras.c2w))
    return out


__all__ = ["decode_generated", "fully_observed"]
