"""Sampler: equals diffusers' plain loop, clamps clean groups, guides in one batched forward."""

from __future__ import annotations

import pytest
import torch

from any4d.data.synthetic import render_clip
from any4d.diffusion import Latents, Mask, SamplerConfig, State, make_scheduler, sample
from any4d.tokenize import PixelTokenizer

SHAPE = (2, 4, 3, 5, 5)


class LinearVelocity:
    """A deterministic stand-in for the model: mixes channels, frames and streams, records calls.
    A frame's velocity depends on every other frame's values *and times* (as attention makes the
    real model's), so a test can see what a branch tells the model about its context."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.channels = torch.randn(4, 4, generator=g) * 0.3
        self.calls = []

    def __call__(self, latents, t, text=None, frame_index=None):
        batch = next(iter(latents.values())).shape[0]
        times = {s: v.clone() for s, v in t.items()}
        self.calls.append({"batch": batch, "frame_index": frame_index, "t": times})
        # Every frame and stream, each weighted by how clean the model is told it is.
        context = sum(
            ((1 - t[s][:, None]) * x).mean(dim=2, keepdim=True) for s, x in latents.items()
        )
        return {
            s: torch.einsum("ij,bjthw->bithw", self.channels, x)
            + (1 - t[s][:, None]) * x
            + 0.1 * context
            for s, x in latents.items()
        }


def noise_for(streams, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {s: torch.randn(SHAPE, generator=g) for s in streams}


@pytest.mark.parametrize("solver", ["unipc", "euler"])
def test_all_targets_reproduce_the_plain_diffusers_loop(solver):
    model = LinearVelocity()
    noise = noise_for(["rgb"])
    config = SamplerConfig(steps=12, solver=solver, guidance=2.0)
    ours = sample(
        model, Latents({"rgb": torch.zeros(SHAPE)}), "", config, noise=noise, progress=False
    )["rgb"]
    scheduler = make_scheduler(solver, 12, 3.0)
    x = noise["rgb"].clone()
    for timestep in scheduler.timesteps:
        t = torch.full((2, 3, 1, 1), float(timestep) / 1000)
        x = scheduler.step(model({"rgb": x}, {"rgb": t})["rgb"], timestep, x).prev_sample
    assert (ours - x).abs().max() <= 1e-5


def test_clean_groups_equal_the_observation_exactly():
    observed = noise_for(["rgb", "depth"], seed=5)
    out = sample(
        LinearVelocity(),
        Latents(observed),
        "rgb:0,-1 depth:1",
        SamplerConfig(steps=5, guidance=1.5),
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    assert torch.equal(out["rgb"][:, :, [0, 2]], observed["rgb"][:, :, [0, 2]])
    assert torch.equal(out["depth"][:, :, 1], observed["depth"][:, :, 1])
    assert not torch.equal(out["rgb"][:, :, 1], observed["rgb"][:, :, 1])


def test_targets_do_not_depend_on_observed_values_of_target_groups():
    a = noise_for(["rgb"], seed=2)
    b = {"rgb": a["rgb"].clone()}
    b["rgb"][:, :, 1:] = 100.0  # target groups: ignored
    config = SamplerConfig(steps=4, guidance=2.0)
    kwargs = dict(noise=noise_for(["rgb"], seed=3), progress=False)
    torch.testing.assert_close(
        sample(LinearVelocity(), Latents(a), "rgb:0", config, **kwargs)["rgb"],
        sample(LinearVelocity(), Latents(b), "rgb:0", config, **kwargs)["rgb"],
    )


def test_history_guidance_is_one_batched_forward_with_the_dfot_formula():
    model = LinearVelocity()
    observed = noise_for(["rgb"], seed=4)
    noise = noise_for(["rgb"], seed=6)
    steps, w = 3, 2.0
    config = SamplerConfig(steps=steps, solver="euler", guidance=w)
    out = sample(model, Latents(observed), "rgb:0", config, noise=noise, progress=False)["rgb"]
    assert [c["batch"] for c in model.calls] == [4] * steps
    # The same run written out by hand.
    clean = torch.zeros(SHAPE, dtype=torch.bool)
    clean[:, :, 0] = True
    x = torch.where(clean, observed["rgb"], noise["rgb"])
    scheduler = make_scheduler("euler", steps, 3.0)
    for timestep in scheduler.timesteps:
        t = torch.full((2, 3, 1, 1), float(timestep) / 1000)
        t[:, 0] = 0
        t_free = t.clone()
        t_free[:, 0] = 1
        history = model({"rgb": x}, {"rgb": t})["rgb"]
        free = model({"rgb": torch.where(clean, noise["rgb"], x)}, {"rgb": t_free})["rgb"]
        stepped = scheduler.step(history + w * (history - free), timestep, x).prev_sample
        x = torch.where(clean, x, stepped)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)


def test_the_unguided_branch_is_told_its_context_is_noise():
    """v_∅ sees the clean groups replaced by their noise at t = 1 (DESIGN §5): told t = 0, the
    other frames' velocities would change (the test model lets them see every frame's time)."""
    model = LinearVelocity()
    observed, noise = Latents(noise_for(["rgb"], seed=4)), noise_for(["rgb"], seed=6)
    sample(model, observed, "rgb:0", SamplerConfig(steps=2), noise=noise, progress=False)
    for call in model.calls:
        history, free = call["t"]["rgb"].chunk(2)
        assert (history[:, 0] == 0).all() and (free[:, 0] == 1).all()
        assert torch.equal(history[:, 1:], free[:, 1:]) and (history[:, 1:] > 0).all()


def test_absent_groups_stay_their_noise_at_t_one():
    """Absent groups (no data: e.g. a context group of a stream that does not observe it) are
    Gaussian placeholders at t = 1 throughout: never stepped like targets, never clamped."""
    model = LinearVelocity()
    noise = noise_for(["rgb", "depth"], seed=2)
    states = {
        "rgb": torch.tensor([State.CLEAN, State.TARGET, State.CLEAN]),
        "depth": torch.tensor([State.TARGET, State.TARGET, State.ABSENT]),
    }
    observed = noise_for(["rgb", "depth"], seed=3)
    config = SamplerConfig(steps=4, guidance=2.0)
    out = sample(model, Latents(observed), states, config, noise=noise, progress=False)
    assert torch.equal(out["depth"][:, :, 2], noise["depth"][:, :, 2])
    assert not torch.equal(out["depth"][:, :, :2], noise["depth"][:, :, :2])
    for call in model.calls:
        assert (call["t"]["depth"][:, 2] == 1).all()


def test_guidance_is_skipped_without_clean_context():
    model = LinearVelocity()
    config = SamplerConfig(steps=3, guidance=2.0)
    sample(model, Latents({"rgb": torch.zeros(SHAPE)}), "", config, progress=False)
    assert [c["batch"] for c in model.calls] == [2, 2, 2]


def test_same_generator_seed_same_sample():
    def run(seed):
        return sample(
            LinearVelocity(),
            Latents(noise_for(["rgb"])),
            "video",
            SamplerConfig(steps=3),
            progress=False,
            generator=torch.Generator().manual_seed(seed),
        )["rgb"]

    assert torch.equal(run(7), run(7)) and not torch.equal(run(7), run(8))


def test_latent_clip_input_uses_its_layout_and_frame_index():
    clip = PixelTokenizer(stride=2).encode(render_clip(seed=0, num_frames=3, height=16, width=16))
    model = LinearVelocity()
    model.channels = torch.zeros(12, 12)
    out = sample(model, Latents.of(clip), "geometry", SamplerConfig(steps=2), progress=False)
    assert set(out) == {"rgb", "depth", "ray_d", "ray_m"}
    assert torch.equal(out["rgb"], clip.grids["rgb"])  # geometry: all RGB clean
    assert torch.equal(model.calls[0]["frame_index"], clip.frame_index)


def test_bad_arguments_are_clear_errors():
    model = LinearVelocity()
    zeros = Latents({"rgb": torch.zeros(SHAPE)})
    with pytest.raises(ValueError, match="solver='ddim'"):
        SamplerConfig(solver="ddim")
    with pytest.raises(ValueError, match="noise has"):
        sample(model, zeros, "", noise={"rgb": torch.zeros(1)}, progress=False)
    with pytest.raises(ValueError, match="no target"):
        sample(model, zeros, Mask({"rgb": "all"}), progress=False)
    with pytest.raises(ValueError, match="expected Latents"):
        sample(model, {"rgb": torch.zeros(SHAPE)}, "", progress=False)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"steps": 0}, "steps=0"),
        ({"steps": 2.5}, "steps=2.5"),
        ({"steps": True}, "steps=True"),
        ({"shift": 0.0}, "shift=0.0"),
        ({"shift": float("inf")}, "shift=inf"),
        ({"guidance": float("nan")}, "guidance=nan"),
        ({"guidance": -1.0}, "guidance=-1.0"),
        ({"guidance": "2"}, "guidance='2'"),
    ],
)
def test_sampler_config_names_the_bad_setting(setting, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**setting)


def test_latents_default_to_one_latent_frame_per_pixel_frame_and_repeat_whole():
    grids = noise_for(["rgb", "depth"])
    latents = Latents(grids, available={s: torch.tensor([True, False]) for s in grids})
    assert latents.layout.pixel_frames == ((0,), (1,), (2,))
    doubled = latents.repeat(2)
    assert doubled.batch_size == 4 and doubled.layout == latents.layout
    assert torch.equal(doubled.grids["depth"][2:], grids["depth"])
    assert doubled.available["rgb"].tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="non-empty dict"):
        Latents({})
    with pytest.raises(ValueError, match=r"grids\['depth'\] is \(2, 4, 5\)"):
        Latents({"rgb": grids["rgb"], "depth": torch.zeros(2, 4, 5)})
