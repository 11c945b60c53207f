"""Training noise: patterns per sample, levels per group, noising."""

from __future__ import annotations

import pytest
import torch

from any4d.diffusion import Layout, NoiseConfig, State, add_noise, sample_patterns, sample_times
from any4d.diffusion.noise import shift_time
from any4d.tokenize import STREAMS as TOKEN_STREAMS

STREAMS = list(TOKEN_STREAMS)


def availability(*rows):
    return {s: torch.tensor([s in row for row in rows]) for s in STREAMS}


def test_shift_matches_design_formula_and_keeps_the_ends():
    t = torch.linspace(0, 1, 11)
    torch.testing.assert_close(shift_time(t, 3.0), 3 * t / (1 + 2 * t))
    assert shift_time(torch.tensor(0.5), 3.0) > 0.5


def test_patterns_respect_each_samples_modalities():
    g = torch.Generator().manual_seed(0)
    available = availability(("rgb",), ("rgb", "ray_d", "ray_m"), STREAMS)
    seen = [set(), set(), set()]
    for _ in range(60):
        states, names = sample_patterns(Layout.for_stride(5), available, NoiseConfig(), g)
        for b, name in enumerate(names):
            seen[b].add(name)
        assert (states["depth"][0] == State.ABSENT).all() and (
            states["ray_d"][0] == State.ABSENT
        ).all()
        assert (states["depth"][1] == State.ABSENT).all()
    assert seen[0] == {"video"}
    assert seen[1] == {"video", "geometry", "interpolate", "extrapolate"}
    assert seen[2] == {"video", "geometry", "interpolate", "extrapolate", "depth_to_video"}


def test_pattern_weights_are_followed():
    g = torch.Generator().manual_seed(1)
    config = NoiseConfig(patterns={"video": 3.0, "geometry": 1.0})
    available = availability(*[STREAMS] * 400)
    _, names = sample_patterns(Layout.for_stride(3), available, config, g)
    assert 0.68 < names.count("video") / 400 < 0.82


def test_one_generator_per_sample_draws_as_one_call_per_sample():
    """The trainer's batched call equals sample-by-sample calls with each sample's generator."""
    layout = Layout.for_stride(5)
    available = availability(("rgb",), STREAMS, ("rgb", "ray_d", "ray_m"), STREAMS, STREAMS)
    generators = [torch.Generator().manual_seed(10 + b) for b in range(5)]
    states, names = sample_patterns(layout, available, NoiseConfig(), generators)
    for b in range(5):
        one = {s: v[b : b + 1] for s, v in available.items()}
        own = torch.Generator().manual_seed(10 + b)
        alone, name = sample_patterns(layout, one, NoiseConfig(), own)
        assert name == names[b : b + 1]
        assert all(torch.equal(alone[s][0], states[s][b]) for s in STREAMS)
    with pytest.raises(ValueError, match="2 generators for 5 samples"):
        sample_patterns(layout, available, NoiseConfig(), generators[:2])


def test_no_fitting_pattern_is_an_error():
    with pytest.raises(ValueError, match="sample 0 has only \\['rgb'\\]"):
        sample_patterns(
            Layout.for_stride(3), availability(("rgb",)), NoiseConfig(patterns={"geometry": 1})
        )


def test_times_follow_states_and_history_stays_below_targets():
    g = torch.Generator().manual_seed(2)
    b, frames = 256, 4
    states = {
        "rgb": torch.tensor([State.CLEAN, State.TARGET, State.TARGET, State.CLEAN]).repeat(b, 1),
        "depth": torch.full((b, frames), State.TARGET, dtype=torch.uint8),
        "ray_d": torch.full((b, frames), State.ABSENT, dtype=torch.uint8),
    }
    t = sample_times(states, NoiseConfig(context_drop_prob=0.0), g)
    assert (t["ray_d"] == 1).all()
    lowest_target = torch.cat([t["rgb"][:, 1:3], t["depth"]], dim=1).amin(1)
    history = t["rgb"][:, [0, 3]]
    assert (history < lowest_target[:, None]).all()
    clean_fraction = (history == 0).float().mean()
    assert 0.4 < clean_fraction < 0.6
    # Shifted uniform levels: median of shift_time(U, 3) is 0.75.
    assert abs(float(t["depth"].median()) - 0.75) < 0.05


def _context_and_targets(batch: int, rays: State) -> dict[str, torch.Tensor]:
    """RGB clean at frames 0 and 3 (targets between), depth all targets, rays all ``rays``."""
    rgb = torch.tensor([State.CLEAN, State.TARGET, State.TARGET, State.CLEAN])
    return {
        "rgb": rgb.repeat(batch, 1),
        "depth": torch.full((batch, 4), State.TARGET, dtype=torch.uint8),
        "ray_d": torch.full((batch, 4), rays, dtype=torch.uint8),
    }


def test_shared_target_levels_are_one_level_per_sample_for_the_drawn_fraction():
    states = _context_and_targets(512, rays=State.ABSENT)

    def targets(config, seed=5):
        t = sample_times(states, config, torch.Generator().manual_seed(seed))
        return t, torch.cat([t["rgb"][:, 1:3], t["depth"]], dim=1)  # (B, 6) target levels

    # Probability 0 draws nothing more: the times of the default config, bit for bit.
    default, _ = targets(NoiseConfig())
    zero, _ = targets(NoiseConfig(shared_target_prob=0.0))
    assert all(torch.equal(default[s], zero[s]) for s in states)

    t, levels = targets(NoiseConfig(shared_target_prob=1.0, context_drop_prob=0.0))
    assert (levels == levels[:, :1]).all()
    assert abs(float(levels[:, 0].median()) - 0.75) < 0.06  # still shifted uniform levels
    assert (t["rgb"][:, [0, 3]] < levels[:, :1]).all() and (t["ray_d"] == 1).all()

    _, levels = targets(NoiseConfig(shared_target_prob=0.5))
    shared = (levels == levels[:, :1]).all(dim=1).float().mean()
    assert 0.4 < shared < 0.6  # independent levels are never all equal


def test_a_dropped_context_is_pure_noise_as_the_unguided_branch_sees_it():
    states = _context_and_targets(512, rays=State.CLEAN)
    kept = sample_times(
        states, NoiseConfig(context_drop_prob=0.0), torch.Generator().manual_seed(7)
    )
    t = sample_times(states, NoiseConfig(context_drop_prob=0.25), torch.Generator().manual_seed(7))
    context = torch.cat([t["rgb"][:, [0, 3]], t["ray_d"]], dim=1)  # (B, 6) context levels
    dropped = (context == 1).all(dim=1)
    # The whole context of a sample at once (history levels are < 1 otherwise) …
    assert ((context == 1).any(dim=1) == dropped).all()
    assert 0.19 < float(dropped.float().mean()) < 0.31
    # … the targets untouched, and the other samples' times those drawn without dropping.
    assert torch.equal(t["depth"], kept["depth"]) and torch.equal(
        t["rgb"][:, 1:3], kept["rgb"][:, 1:3]
    )
    assert torch.equal(t["ray_d"][~dropped], kept["ray_d"][~dropped])
    with pytest.raises(ValueError, match="context_drop_prob=-0.1"):
        NoiseConfig(context_drop_prob=-0.1)


def test_shared_target_prob_outside_the_unit_interval_is_an_error():
    with pytest.raises(ValueError, match="shared_target_prob=1.5"):
        NoiseConfig(shared_target_prob=1.5)


def test_add_noise_interpolates_per_frame():
    g = torch.Generator().manual_seed(3)
    z0 = {"rgb": torch.randn(2, 3, 4, 5, 5, generator=g)}
    t = {"rgb": torch.tensor([[0.0, 0.25, 1.0, 0.5], [1.0, 1.0, 0.0, 0.0]])}
    noisy, noise = add_noise(z0, t, g)
    level = t["rgb"][:, None, :, None, None]
    torch.testing.assert_close(noisy["rgb"], (1 - level) * z0["rgb"] + level * noise["rgb"])
    assert torch.equal(noisy["rgb"][0, :, 0], z0["rgb"][0, :, 0])
    assert torch.equal(noisy["rgb"][1, :, 0], noise["rgb"][1, :, 0])


def test_add_noise_with_given_noise_interpolates_to_it():
    """The trainer draws ε from each sample's generator and passes it in."""
    g = torch.Generator().manual_seed(4)
    z0 = {"rgb": torch.randn(2, 3, 4, 5, 5, generator=g)}
    eps = {"rgb": torch.randn(2, 3, 4, 5, 5, generator=g)}
    t = {"rgb": torch.tensor([[0.0, 0.25, 1.0, 0.5], [1.0, 1.0, 0.0, 0.0]])}
    noisy, noise = add_noise(z0, t, noise=eps)
    assert noise["rgb"] is eps["rgb"]
    level = t["rgb"][:, None, :, None, None]
    assert torch.equal(noisy["rgb"], (1 - level) * z0["rgb"] + level * eps["rgb"])
