"""Test-time search: picks the self-consistent candidate, reports every score and the spread."""

from __future__ import annotations

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import search
from any4d.tokenize import PixelTokenizer


class Oracle:
    """Velocity towards the true latents; candidate k's depth is off by a factor 1 + 0.3·k."""

    def __init__(self, clip, wrong_depth_from: int = 1):
        self.truth = clip.grids
        self.batch = clip.batch_size
        self.wrong_from = wrong_depth_from

    def __call__(self, latents, t, text=None, frame_index=None):
        out = {}
        for s, x in latents.items():
            rows = torch.arange(x.shape[0]) // self.batch  # candidate index of each row
            target = self.truth[s].repeat(x.shape[0] // self.batch, 1, 1, 1, 1)
            if s == "depth":
                factor = torch.where(rows >= self.wrong_from, 1 + 0.3 * rows, 1.0)
                # D̃ of a depth scaled by f: 2 / (1 + f·(1 − D̃)/(1 + D̃)) − 1
                ratio = (1 - target) / (1 + target)
                target = 2 / (1 + factor.view(-1, 1, 1, 1, 1) * ratio) - 1
            level = t[s][:, None].clamp_min(1e-3)  # (N, 1, T', 1, 1)
            out[s] = (x - target) / level
        return out


@pytest.fixture(scope="module")
def setting():
    scene = render_clip(1, num_frames=4, height=32, width=48, dynamic=False)
    tokenizer = PixelTokenizer(stride=2)
    return scene, tokenizer, tokenizer.encode(scene)


def test_search_keeps_the_self_consistent_candidate(setting):
    scene, tokenizer, clip = setting
    result = search(
        Oracle(clip),
        clip,
        "geometry",
        tokenizer,
        candidates=3,
        solver="euler",
        steps=4,
        guidance=0.0,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert result.scores.shape == (1, 3)
    assert int(result.best[0]) == 0
    assert (result.scores[0, 1:] > result.scores[0, 0]).all()
    depth = result.decoded["depth"][0]
    valid = scene.depth > 0
    relative = ((depth - scene.depth).abs() / scene.depth.clamp_min(1e-6))[valid]
    assert float(relative.max()) < 1e-3
    assert result.uncertainty.depth_std is not None
    assert float(result.uncertainty.depth_std.mean()) > 0.05 * float(scene.depth.mean())
    assert result.failures == []


def test_candidates_in_small_batches_equal_one_batch(setting):
    """The oracle's Euler run ends exactly on its target whatever the noise, so the scores of
    candidates sampled one at a time equal those sampled together."""
    _, tokenizer, clip = setting
    kwargs = dict(candidates=3, solver="euler", steps=3, guidance=0.0, progress=False)
    together = search(
        Oracle(clip),
        clip,
        "geometry",
        tokenizer,
        generator=torch.Generator().manual_seed(1),
        **kwargs,
    )
    apart = search(
        Oracle(clip, wrong_depth_from=99),
        clip,
        "geometry",
        tokenizer,
        generator=torch.Generator().manual_seed(1),
        batch_size=1,
        **kwargs,
    )
    assert together.scores.shape == apart.scores.shape == (1, 3)
    assert torch.isfinite(apart.scores).all()


def test_undecodable_candidates_are_reported_not_fatal(setting):
    _, tokenizer, clip = setting
    calls = []

    def decode(grids):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    result = search(
        Oracle(clip),
        clip,
        "geometry",
        decode,
        candidates=3,
        solver="euler",
        steps=2,
        guidance=0.0,
        progress=False,
    )
    assert torch.isinf(result.scores[0, 1])
    assert result.failures == ["candidate 1: rays determine no camera"]


def test_search_rejects_noise_and_bad_candidates(setting):
    _, tokenizer, clip = setting
    with pytest.raises(ValueError, match="candidates=0"):
        search(Oracle(clip), clip, "geometry", tokenizer, candidates=0)
    with pytest.raises(ValueError, match="draws its own noise"):
        search(Oracle(clip), clip, "geometry", tokenizer, noise={})
