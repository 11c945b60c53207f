"""Test-time search: draw L hypotheses, keep the one that agrees best with itself (DESIGN §5).

Each candidate is sampled from different noise (candidates batched, ``batch_size`` at a time),
decoded to RGB, depth and cameras (rays → cameras), and scored by reprojection through its
**own** geometry (``any4d.diffusion.scoring``). What is returned per sample is chosen by
``select``:

* ``"best"`` (the paper's test-time search): the candidate with the lowest score;
* ``"mean"``: the mean of all candidates' latents, decoded — a Monte-Carlo estimate of the
  posterior mean, as Marigold's ensembling. One sample from a generative model is a plausible
  scene; the mean is the estimate that per-pixel errors (AbsRel, PSNR) reward, at the price of
  blur where the candidates disagree.

The spread of all candidates is returned as the posterior's uncertainty either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from any4d.diffusion.masks import Mask
from any4d.diffusion.sampler import _unpack_input, sample
from any4d.diffusion.scoring import anchor_pairs, score
from any4d.diffusion.uncertainty import Uncertainty, posterior_spread
from any4d.geometry import Cameras

Decoded = Mapping[str, Tensor | Cameras]
SELECTS = ("best", "mean")


@dataclass(frozen=True, eq=False)
class SearchResult:
    """What ``search`` found.

    latents:     stream → (B, C, T', H, W), per sample the chosen candidate (``select="best"``)
                 or the candidates' mean (``"mean"``).
    decoded:     those latents decoded: "rgb" (B, T, 3, H, W), "depth" (B, T, 1, H, W),
                 "cameras" (batch (B, T); absent when the mean's rays determine no camera).
    scores:      (B, L) every candidate's score (lower is better; inf: no overlap, or the
                 candidate could not be decoded).
    best:        (B,) index of the lowest-scoring candidate (with ``"mean"``, for reference).
    uncertainty: the spread over the decodable candidates.
    failures:    one line per candidate that could not be decoded (and for the mean).
    """

    latents: dict[str, Tensor]
    decoded: dict[str, Tensor | Cameras]
    scores: Tensor
    best: Tensor
    uncertainty: Uncertainty
    failures: list[str]


def _decoder(decode, clip) -> Callable[[dict[str, Tensor]], Decoded]:
    if hasattr(decode, "decode_streams"):  # a tokenizer: decode with the clip's metadata
        if clip is None:
            raise ValueError("decode is a tokenizer: pass the LatentClip as latents")
        return lambda grids: decode.decode_streams(clip, grids)
    if not callable(decode):
        raise ValueError(f"decode is a {type(decode).__name__} (expected a tokenizer or callable)")
    return decode


def _anchors(mask, num_frames: int) -> list[int]:
    """The observed RGB frames (warped from), or frame 0 when no RGB frame is observed."""
    if isinstance(mask, Mask | str):
        clean = sorted(Mask.parse(mask).clean_frames("rgb", num_frames))
        if clean:
            return clean
    return [0]


def search(
    model,
    latents,
    mask,
    decode,
    *,
    candidates: int = 4,
    select: str = "best",
    score_kind: str = "photometric",
    batch_size: int | None = None,
    anchors: Sequence[int] | None = None,
    max_pairs: int = 16,
    generator: torch.Generator | None = None,
    text: Tensor | None = None,
    **sample_kwargs,
) -> SearchResult:
    """Sample ``candidates`` completions and keep the most self-consistent one per sample.

    model, latents, mask, text and ``sample_kwargs`` (steps, solver, shift, guidance, layout,
    frame_index, available, progress): as for ``sample``; ``latents`` may be a ``LatentClip``.
    decode:      a tokenizer (with a ``LatentClip`` as latents) or a callable grids (batch B) →
                 {"rgb", "depth", "cameras"}.
    select:      "best" (the lowest score) or "mean" (the candidates' mean), module docstring.
    score_kind:  "photometric" (the paper's), "geometric" or "combined".
    batch_size:  candidates per sampler call (default: all at once).
    anchors:     frames to warp from (default: the mask's clean RGB frames, else frame 0).
    """
    if candidates < 1:
        raise ValueError(f"candidates={candidates} (expected ≥ 1)")
    if select not in SELECTS:
        raise ValueError(f"select={select!r} (expected one of {SELECTS})")
    clip = latents if hasattr(latents, "grids") else None
    decode = _decoder(decode, clip)
    grids, layout, frame_index, available = _unpack_input(
        latents, sample_kwargs.pop("layout", None), sample_kwargs.pop("frame_index", None),
        sample_kwargs.pop("available", None),
    )  # fmt: skip
    if "noise" in sample_kwargs:
        raise ValueError("search draws its own noise per candidate: pass generator, not noise")
    batch = next(iter(grids.values())).shape[0]
    per_call = candidates if batch_size is None else max(1, batch_size)

    samples: list[dict[str, Tensor]] = []
    for start in range(0, candidates, per_call):
        count = min(per_call, candidates - start)

        def repeat(x: Tensor, count=count) -> Tensor:
            return x.repeat(count, *([1] * (x.dim() - 1)))

        out = sample(
            model,
            {s: repeat(g) for s, g in grids.items()},
            mask,
            generator=generator,
            text=None if text is None else repeat(text),
            layout=layout,
            frame_index=frame_index,
            available=None if available is None else {s: repeat(a) for s, a in available.items()},
            **sample_kwargs,
        )
        samples += [
            {s: g[k * batch : (k + 1) * batch] for s, g in out.items()} for k in range(count)
        ]

    scores = torch.full((batch, candidates), torch.inf)
    decoded: list[Decoded | None] = []
    failures = []
    for k, candidate in enumerate(samples):
        try:
            result = decode(candidate)
        except ValueError as error:  # e.g. rays that determine no camera
            failures.append(f"candidate {k}: {error}")
            decoded.append(None)
            continue
        decoded.append(result)
        rgb, depth, cameras = result["rgb"], result.get("depth"), result.get("cameras")
        if depth is None or cameras is None:
            raise ValueError("search needs depth and cameras: the mask must keep both streams")
        pairs = anchor_pairs(
            rgb.shape[1], anchors or _anchors(mask, rgb.shape[1]), max_pairs=max_pairs
        )
        scores[:, k] = score(score_kind, rgb, depth, cameras, pairs).float().cpu()

    decodable = [k for k, d in enumerate(decoded) if d is not None]
    if not decodable and select == "best":
        raise ValueError("no candidate could be decoded: " + "; ".join(failures))
    best = scores.argmin(dim=1)  # an all-inf row picks the first decodable candidate
    if decodable:
        best = torch.where(torch.isinf(scores.min(dim=1).values), decodable[0], best)
    if select == "mean":
        chosen = {s: torch.stack([c[s] for c in samples]).mean(0) for s in samples[0]}
        try:
            chosen_decoded = dict(decode(chosen))
        except ValueError as error:  # e.g. mean rays that determine no camera: keep the rest
            failures.append(f"mean of the candidates: {error}")
            chosen_decoded = dict(decode({s: chosen[s] for s in ("rgb", "depth") if s in chosen}))
    else:
        chosen = {
            s: torch.stack([samples[int(k)][s][b] for b, k in enumerate(best)]) for s in samples[0]
        }
        chosen_decoded = {}
        for name in ("rgb", "depth"):
            chosen_decoded[name] = torch.stack(
                [decoded[int(k)][name][b] for b, k in enumerate(best)]
            )
        chosen_decoded["cameras"] = Cameras.stack(
            [decoded[int(k)]["cameras"][b] for b, k in enumerate(best)]
        )
    uncertainty = posterior_spread(
        [None if d is None else d["depth"] for d in decoded],
        [None if d is None else d["cameras"] for d in decoded],
    )
    return SearchResult(chosen, chosen_decoded, scores, best, uncertainty, failures)
