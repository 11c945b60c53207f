"""Test-time search: picks the self-consistent candidate, reports every score and the spread."""

from __future__ import annotations

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import Latents, SamplerConfig, SearchConfig, search
from any4d.tokenize import PixelTokenizer


def run(model, clip, decode=None, *, steps=4, seed=None, **settings):
    """``search`` on ``clip`` with an Euler sampler without guidance; ``decode`` defaults to the
    pixel tokenizer's decoding of ``clip``."""
    decode = decode or (lambda grids: PixelTokenizer(stride=2).decode_streams(clip, grids))
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    sampler = SamplerConfig(steps=steps, solver="euler", guidance=0.0)
    return search(
        model,
        Latents.of(clip),
        "geometry",
        decode,
        sampler,
        SearchConfig(**settings),
        generator=generator,
        progress=False,
    )


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
    result = run(Oracle(clip), clip, candidates=3, steps=4, seed=0)
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
    together = run(Oracle(clip), clip, candidates=3, steps=3, seed=1)
    apart = run(
        Oracle(clip, wrong_depth_from=99), clip, candidates=3, steps=3, seed=1, batch_size=1
    )
    assert together.scores.shape == apart.scores.shape == (1, 3)
    assert torch.isfinite(apart.scores).all()


def test_undecodable_candidates_are_reported_not_fatal(setting):
    _, tokenizer, clip = setting
    calls = []

    def decode(grids):  # candidate 1 does not decode: nor does a batch holding it
        calls.append(grids["rgb"].shape[0])
        if len(calls) in (1, 3):
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    result = run(Oracle(clip), clip, decode, candidates=3, steps=2)
    assert torch.isinf(result.scores[0, 1]) and torch.isfinite(result.scores[0, [0, 2]]).all()
    assert result.failures == ["candidate 1: rays determine no camera"]
    # All three in one call; it fails, so each is decoded alone to tell which.
    assert calls == [3, 1, 1, 1]


def test_candidates_decode_in_one_batch_equal_to_one_by_one(setting):
    _, tokenizer, clip = setting
    sizes = []

    def decode(grids):
        sizes.append(grids["rgb"].shape[0])
        together = tokenizer.decode_streams(clip, grids)
        for k in range(grids["rgb"].shape[0]):
            alone = tokenizer.decode_streams(clip, {s: g[k : k + 1] for s, g in grids.items()})
            for name in ("rgb", "depth"):
                torch.testing.assert_close(together[name][k : k + 1], alone[name])
            torch.testing.assert_close(together["cameras"].c2w[k], alone["cameras"].c2w[0])
        return together

    result = run(Oracle(clip), clip, decode, candidates=4, steps=2, seed=3)
    assert sizes == [4] and torch.isfinite(result.scores).all()
    run(Oracle(clip), clip, decode, candidates=4, steps=2, seed=3, batch_size=3)
    assert sizes[1:] == [3, 1]


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"candidates": 0}, "candidates=0"),
        ({"candidates": 2.0}, "candidates=2.0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"max_pairs": 0}, "max_pairs=0"),
        ({"select": "median"}, "select='median'"),
        ({"score": "sharpness"}, "score='sharpness'"),
    ],
)
def test_search_config_names_the_bad_setting(setting, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**setting)


def test_one_candidate_is_one_sample_decoded_with_nothing_scored(setting):
    """search(candidates=1) is the single-sample path: the sampler's output, decoded; no score,
    no spread; rays that determine no camera leave RGB and depth, said in failures."""
    _, tokenizer, clip = setting
    result = run(Oracle(clip), clip, steps=2, seed=3)
    alone = sample_alone(clip, steps=2, seed=3)
    for s, grid in alone.items():
        assert torch.equal(result.latents[s], grid), s
    assert result.scores is None and result.uncertainty is None and result.failures == []
    assert int(result.best[0]) == 0 and set(result.decoded) == {"rgb", "depth", "cameras"}

    def cameraless(grids):
        if "ray_d" in grids:
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    result = run(Oracle(clip), clip, cameraless, steps=2)
    assert result.failures == ["cameras: rays determine no camera"]
    assert set(result.decoded) == {"rgb", "depth"}


def sample_alone(clip, steps, seed):
    from any4d.diffusion import sample

    sampler = SamplerConfig(steps=steps, solver="euler", guidance=0.0)
    generator = torch.Generator().manual_seed(seed)
    latents = Latents.of(clip)
    return sample(Oracle(clip), latents, "geometry", sampler, generator=generator, progress=False)


def test_mean_selection_decodes_the_mean_of_the_candidates(setting):
    """Each oracle candidate ends exactly on its own target (depth scaled by 1, 1.3, 1.6), so
    the mean is known in closed form: RGB and rays are the truth, depth the targets' mean."""
    scene, tokenizer, clip = setting
    result = run(Oracle(clip), clip, candidates=3, select="mean", steps=3, seed=0)
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
    cameras = result.decoded["cameras"]
    torch.testing.assert_close(cameras.c2w[0], scene.cameras.c2w, atol=1e-3, rtol=0)
    # Scores and the spread are still every candidate's; best still names the lowest score.
    assert result.scores.shape == (1, 3) and int(result.best[0]) == 0
    assert result.uncertainty.depth_std is not None


def test_a_mean_without_cameras_keeps_rgb_and_depth_and_says_so(setting):
    _, tokenizer, clip = setting
    calls = []

    def decode(grids):
        calls.append(sorted(grids))
        if len(calls) == 2:  # the three candidates decode (one call), their mean's rays do not
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    result = run(Oracle(clip), clip, decode, candidates=3, select="mean", steps=2)
    assert result.failures == ["mean of the candidates: rays determine no camera"]
    assert calls[-1] == ["depth", "rgb"]
    assert set(result.decoded) == {"rgb", "depth"}

    def cameraless(grids):  # no candidate decodes: "best" has nothing to keep, "mean" has
        if "ray_d" in grids:
            raise ValueError("rays determine no camera")
        return tokenizer.decode_streams(clip, grids)

    with pytest.raises(ValueError, match="no candidate could be decoded"):
        run(Oracle(clip), clip, cameraless, candidates=2, steps=2)
    result = run(Oracle(clip), clip, cameraless, candidates=2, select="mean", steps=2)
    assert torch.isinf(result.scores).all() and len(result.failures) == 3
    assert set(result.decoded) == {"rgb", "depth"}
