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


def test_mean_selection_decodes_the_mean_of_the_candidates(setting):
    """Each oracle candidate ends exactly on its own target (depth scaled by 1, 1.3, 1.6), so
    the mean is known in closed form: RGB and rays are the truth, depth the targets' mean."""
    scene, tokenizer, clip = setting
    result = search(
        Oracle(clip),
        clip,
        "geometry",
        tokenizer,
        candidates=3,
        select="mean",
        solver="euler",
        steps=3,
        guidance=0.0,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    truth = clip.grids["depth"]
    ratio = (1 - truth) / (1 + truth)
    expected = torch.stack([2 / (1 + f * ratio) - 1 for f in (1.0, 1.3, 1.6)]).mean(0)
    torch.testing.assert_close(result.latents["depth"], expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(result.latents["rgb"], clip.grids["rgb"], atol=1e-4, rtol=0)
    decoded = tokenizer.decode_streams(clip, result.latents)
    torch.testing.assert_close(result.decoded["depth"], decoded["depth"])
    # The mean of candidates that overestimate depth lies between the truth and the worst.
    valid = scene.depth > 0
    ratio = (result.decoded["depth"][0] / scene.depth.clamp_min(1e-6))[valid]
    assert 1.05 < float(ratio.median()) < 1.6
    torch.testing.assert_close(result.decoded["cameras"].c2w[0], scene.cameras.c2w, atol=1e-3,
                               rtol=0)  # fmt: skip
    # Scores and the spread are still every candidate's; best still names the lowest score.
    assert result.scores.shape == (1, 3) and int(result.best[0]) == 0
    assert result.uncertainty.depth_std is not None


def test_a_mean_without_cameras_keeps_rgb_and_depth_and_says_so(setting):
    _, tokenizer, clip = setting
    calls = []

    def decode(grids):
        calls.append(sorted(grids))
        if len(calls) == 4:  # the three candidates decode, their mean's rays do not
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    result = search(Oracle(clip), clip, "geometry", decode, candidates=3, select="mean",
                    solver="euler", steps=2, guidance=0.0, progress=False)  # fmt: skip
    assert result.failures == ["mean of the candidates: rays determine no camera"]
    assert calls[-1] == ["depth", "rgb"]
    assert set(result.decoded) == {"rgb", "depth"}

    def cameraless(grids):  # no candidate decodes: "best" has nothing to keep, "mean" has
        if "ray_d" in grids:
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    kwargs = dict(candidates=2, solver="euler", steps=2, guidance=0.0, progress=False)
    with pytest.raises(ValueError, match="no candidate could be decoded"):
        search(Oracle(clip), clip, "geometry", cameraless, **kwargs)
    result = search(Oracle(clip), clip, "geometry", cameraless, select="mean", **kwargs)
    assert torch.isinf(result.scores).all() and len(result.failures) == 3
    assert set(result.decoded) == {"rgb", "depth"}
    with pytest.raises(ValueError, match="select='median'"):
        search(Oracle(clip), clip, "geometry", tokenizer, candidates=2, select="median")
