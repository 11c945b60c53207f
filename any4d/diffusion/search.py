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
from any4d.diffusion.sampler import Latents, SamplerConfig, sample, tile
from any4d.diffusion.scoring import SCORES, anchor_pairs, score
from any4d.diffusion.uncertainty import Uncertainty, posterior_spread
from any4d.geometry import Cameras

Decoded = Mapping[str, Tensor | Cameras]
SELECTS = ("best", "mean")


@dataclass(frozen=True)
class SearchConfig:
    """How many hypotheses to draw and which to keep; every default is stated here.

    candidates: samples drawn per clip (1: one sample, nothing scored or chosen).
    select:     "best" (the lowest score: the paper's test-time search) or "mean" (the
                candidates' mean), module docstring.
    score:      "photometric" (the paper's), "geometric" or "combined"
                (``any4d.diffusion.scoring``).
    batch_size: candidates per sampler call (None: all at once).
    max_pairs:  reprojection pairs scored per candidate, at most.
    """

    candidates: int = 1
    select: str = "best"
    score: str = "photometric"
    batch_size: int | None = None
    max_pairs: int = 16

    def __post_init__(self) -> None:
        for name in ("candidates", "max_pairs", "batch_size"):
            value = getattr(self, name)
            if name == "batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} (expected an integer ≥ 1)")
        if self.select not in SELECTS:
            raise ValueError(f"select={self.select!r} (expected one of {SELECTS})")
        if self.score not in SCORES:
            raise ValueError(f"score={self.score!r} (expected one of {SCORES})")


@dataclass(frozen=True, eq=False)
class SearchResult:
    """What ``search`` found.

    latents:     stream → (B, C, T', H', W'), per sample the chosen candidate (``select="best"``)
                 or the candidates' mean (``"mean"``).
    decoded:     those latents decoded: "rgb" (B, T, 3, H, W), "depth" (B, T, 1, H, W),
                 "cameras" (batch (B, T); absent when the rays determine no camera).
    scores:      (B, L) every candidate's score (lower is better; inf: no overlap, or the
                 candidate could not be decoded); None with one candidate.
    best:        (B,) index of the lowest-scoring candidate (with ``"mean"``, for reference).
    uncertainty: the spread over the decodable candidates; None with one candidate.
    failures:    one line per candidate that could not be decoded (and for the mean), or for
                 the one sample whose rays determine no camera.
    """

    latents: dict[str, Tensor]
    decoded: dict[str, Tensor | Cameras]
    scores: Tensor | None
    best: Tensor
    uncertainty: Uncertainty | None
    failures: list[str]


def _anchors(mask, num_frames: int) -> list[int]:
    """The observed RGB frames (warped from), or frame 0 when no RGB frame is observed."""
    if isinstance(mask, Mask | str):
        clean = sorted(Mask.parse(mask).clean_frames("rgb", num_frames))
        if clean:
            return clean
    return [0]


def _decode_or_keep(decode, grids: dict[str, Tensor], failures: list[str], label: str) -> dict:
    """Decode ``grids``; when they do not decode (rays that determine no camera) keep RGB and
    depth, and say so in ``failures`` as ``"{label}: {error}"``."""
    try:
        return dict(decode(grids))
    except ValueError as error:
        failures.append(f"{label}: {error}")
        return dict(decode({s: grids[s] for s in ("rgb", "depth") if s in grids}))


def _decode_candidates(
    decode, samples: list[dict[str, Tensor]], per_call: int, batch: int, failures: list[str]
) -> list[Decoded | None]:
    """Each candidate decoded — ``per_call`` of them in one ``decode`` call, candidate-major
    (n·B) — or None where it cannot be (its error in ``failures``). A group with a candidate
    that does not decode is decoded one by one, to tell which."""
    out: list[Decoded | None] = []
    for start in range(0, len(samples), per_call):
        group = samples[start : start + per_call]
        try:
            joined = decode({s: torch.cat([c[s] for c in group]) for s in group[0]})
        except ValueError:  # e.g. rays that determine no camera: find the candidate
            joined = None
        if joined is not None:
            for k in range(len(group)):
                rows = slice(k * batch, (k + 1) * batch)
                out.append({n: v[rows] for n, v in joined.items()})
            continue
        for k, candidate in enumerate(group, start=start):
            try:
                out.append(decode(candidate))
            except ValueError as error:
                failures.append(f"candidate {k}: {error}")
                out.append(None)
    return out


def search(
    model,
    latents: Latents,
    mask,
    decode: Callable[[dict[str, Tensor]], Decoded],
    sampler: SamplerConfig | None = None,
    config: SearchConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    text: Tensor | None = None,
    anchors: Sequence[int] | None = None,
    progress: bool = True,
) -> SearchResult:
    """Sample ``config.candidates`` completions and keep the most self-consistent one per sample.

    model, latents, mask, sampler, generator, text, progress: as for ``sample``.
    decode:  grids (batch B, or n·B: n candidates, candidate-major) → {"rgb", "depth",
             "cameras"} of the same batch, e.g. a tokenizer's ``decode_streams`` bound to the
             clip; a ``ValueError`` means "no camera". Candidates are decoded
             ``config.batch_size`` at a time (all at once by default).
    config:  candidates, select, score (default ``SearchConfig()``: one sample, decoded).
    anchors: frames to warp from (default: the mask's clean RGB frames, else frame 0).
    """
    config = config or SearchConfig()
    candidates, batch = config.candidates, latents.batch_size
    per_call = candidates if config.batch_size is None else config.batch_size
    samples: list[dict[str, Tensor]] = []
    for start in range(0, candidates, per_call):
        count = min(per_call, candidates - start)
        out = sample(
            model,
            latents.repeat(count),
            mask,
            sampler,
            generator=generator,
            text=None if text is None else tile(text, count),
            progress=progress,
        )
        samples += [
            {s: g[k * batch : (k + 1) * batch] for s, g in out.items()} for k in range(count)
        ]
    failures: list[str] = []
    if candidates == 1:  # one sample: nothing to score or choose
        decoded = _decode_or_keep(decode, samples[0], failures, "cameras")
        best = torch.zeros(batch, dtype=torch.long)
        return SearchResult(samples[0], decoded, None, best, None, failures)

    scores = torch.full((batch, candidates), torch.inf)
    decoded = _decode_candidates(decode, samples, per_call, batch, failures)
    for k, result in enumerate(decoded):
        if result is None:
            continue
        rgb, depth, cameras = result["rgb"], result.get("depth"), result.get("cameras")
        if depth is None or cameras is None:
            raise ValueError("search needs depth and cameras: the mask must keep both streams")
        frames = anchors or _anchors(mask, rgb.shape[1])
        pairs = anchor_pairs(rgb.shape[1], frames, max_pairs=config.max_pairs)
        scores[:, k] = score(config.score, rgb, depth, cameras, pairs).float().cpu()

    decodable = [k for k, d in enumerate(decoded) if d is not None]
    if not decodable and config.select == "best":
        raise ValueError("no candidate could be decoded: " + "; ".join(failures))
    best = scores.argmin(dim=1)  # an all-inf row picks the first decodable candidate
    if decodable:
        best = torch.where(torch.isinf(scores.min(dim=1).values), decodable[0], best)
    if config.select == "mean":
        chosen = {s: torch.stack([c[s] for c in samples]).mean(0) for s in samples[0]}
        chosen_decoded = _decode_or_keep(decode, chosen, failures, "mean of the candidates")
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
