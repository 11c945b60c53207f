"""The synthetic data set's API: determinism, shapes, ranges, cameras, trajectories, splits and
config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from any4d.data import Scene
from any4d.data.synthetic import (
    SPLIT_SIZE,
    TRAJECTORIES,
    SyntheticClips,
    SyntheticConfig,
    render_clip,
    sample_clip,
)
from any4d.data.synthetic.sampling import Sampler
from any4d.data.synthetic.trajectories import WALL_CLEARANCE, sample_trajectory
from any4d.data.synthetic.world import CAMERA_CLEARANCE, sample_room
from any4d.geometry import check_rotations

TINY = dict(num_frames=3, height=16, width=20)


def _assert_same_scene(a: Scene, b: Scene) -> None:
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert torch.equal(a.cameras.K, b.cameras.K) and torch.equal(a.cameras.c2w, b.cameras.c2w)
    assert a.text == b.text and a.fps == b.fps


# ---------------------------------------------------------------------------------- determinism


def test_same_seed_renders_bit_identical_clips():
    _assert_same_scene(render_clip(7, **TINY), render_clip(7, **TINY))


def test_different_seeds_render_different_clips():
    a, b = render_clip(7, **TINY), render_clip(8, **TINY)
    assert not torch.equal(a.rgb, b.rgb)
    assert not torch.equal(a.cameras.c2w, b.cameras.c2w)


def test_rendering_neither_reads_nor_changes_the_global_rng():
    state = torch.get_rng_state()
    torch.manual_seed(123)
    a = render_clip(4, **TINY)
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(123).get_state())
    torch.manual_seed(999)
    _assert_same_scene(a, render_clip(4, **TINY))
    torch.set_rng_state(state)


def test_one_seed_is_the_same_world_and_path_at_every_resolution():
    small = render_clip(3, num_frames=4, height=12, width=16)
    large = render_clip(3, num_frames=4, height=24, width=32)
    assert torch.equal(small.cameras.c2w, large.cameras.c2w)
    assert small.text == large.text
    torch.testing.assert_close(large.cameras.K, small.cameras.resized(2.0).K)


# ---------------------------------------------------------------------------------- contents


@pytest.mark.parametrize("frames, height, width", [(1, 17, 23), (4, 9, 5), (2, 1, 1)])
def test_shapes_and_dtypes_for_any_size(frames, height, width):
    scene = render_clip(0, num_frames=frames, height=height, width=width, fps=12.5)
    assert isinstance(scene, Scene)
    assert scene.rgb.shape == (frames, 3, height, width) and scene.rgb.dtype == torch.float32
    assert scene.depth.shape == (frames, 1, height, width) and scene.depth.dtype == torch.float32
    assert tuple(scene.cameras.shape) == (frames,) and scene.cameras.dtype == torch.float32
    assert scene.fps == 12.5
    assert scene.modalities == ("rgb", "depth", "cameras", "text")


@pytest.mark.parametrize("seed", range(6))
def test_rgb_is_in_range_depth_is_positive_and_cameras_are_valid(seed):
    scene = render_clip(seed, num_frames=4, height=16, width=24)
    assert float(scene.rgb.min()) >= -1.0 and float(scene.rgb.max()) <= 1.0
    assert float(scene.rgb.std()) > 0.05  # textured, not a flat image
    assert torch.isfinite(scene.depth).all() and float(scene.depth.min()) > 0  # closed room
    scene.cameras.validate()
    check_rotations(scene.cameras.R, "c2w rotation")


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**63 - 1),
    frames=st.integers(1, 12),
    fps=st.floats(0.5, 60.0),
    dynamic=st.booleans(),
)
def test_any_seed_gives_a_valid_clip_with_cameras_clear_of_objects(seed, frames, fps, dynamic):
    config = SyntheticConfig(num_frames=frames, height=5, width=7, fps=fps, dynamic=dynamic)
    spec = sample_clip(seed, config)
    scene = render_clip(seed, config)
    assert float(scene.depth.min()) > 0 and float(scene.rgb.abs().max()) <= 1.0
    assert spec.world.dynamic == dynamic
    for obj in spec.world.objects:
        _, obj_centers = obj.motion.pose(spec.times)
        gap = (obj_centers - spec.cameras.centers).norm(dim=-1) - obj.radius
        assert float(gap.min()) > CAMERA_CLEARANCE - 1e-4 or obj.name.endswith("poster")


@pytest.mark.parametrize("seed", range(4))
def test_intrinsics_are_in_the_configured_ranges(seed):
    height, width = 30, 40
    K = render_clip(seed, num_frames=2, height=height, width=width).cameras.K
    assert torch.equal(K[0], K[1])  # one camera per clip
    fx, fy, cx, cy = (float(K[0, i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    fov = math.degrees(2 * math.atan(0.5 * max(height, width) / fx))
    assert 45.0 - 1e-3 <= fov <= 80.0 + 1e-3
    assert 0.9 - 1e-6 <= fy / fx <= 1.1 + 1e-6
    assert abs(cx / width - 0.5) <= 0.03 + 1e-6 and abs(cy / height - 0.5) <= 0.03 + 1e-6
    assert K[0, 0, 1] == 0


def test_caption_names_the_room_and_the_camera_motion():
    text = render_clip(1, **TINY).text
    assert text.startswith("a room with") and "the camera" in text


def test_static_config_has_no_moving_object_and_dynamic_config_has_some():
    for seed in range(4):
        assert not sample_clip(seed, **TINY, dynamic=False).world.dynamic
        assert sample_clip(seed, **TINY, dynamic=True).world.dynamic


# ---------------------------------------------------------------------------------- trajectories


@pytest.mark.parametrize("kind", TRAJECTORIES)
@pytest.mark.parametrize("seed", range(3))
def test_every_trajectory_stays_in_the_room_and_clear_of_objects(kind, seed):
    spec = sample_clip(seed, num_frames=12, height=8, width=8, trajectories=(kind,))
    assert spec.trajectory == kind
    centers = spec.cameras.centers
    room = spec.world.room
    assert (centers >= room.low + WALL_CLEARANCE - 1e-4).all()
    assert (centers <= room.high - WALL_CLEARANCE + 1e-4).all()
    for obj in spec.world.objects:
        _, obj_centers = obj.motion.pose(spec.times)
        gap = (obj_centers - centers).norm(dim=-1) - obj.radius
        assert float(gap.min()) > CAMERA_CLEARANCE - 1e-4 or obj.name.endswith("poster")
    scene = render_clip(seed, num_frames=12, height=8, width=8, trajectories=(kind,))
    assert float(scene.depth.min()) > 0


@pytest.mark.parametrize("seed", range(3))
def test_trajectory_kinds_move_the_camera_as_named(seed):
    times = torch.arange(10.0) / 10.0

    def path(kind):
        sampler = Sampler(seed)
        room = sample_room(sampler, [])
        trajectory = sample_trajectory(sampler, kind, room, times)
        check_rotations(trajectory.c2w[:, :3, :3], kind)
        return trajectory, trajectory.c2w[:, :3, 3], trajectory.c2w[:, :3, :3]

    orbit, centers, _ = path("orbit")
    horizontal = (centers - orbit.focus)[:, [0, 2]].norm(dim=-1)
    assert float(horizontal.max() - horizontal.min()) < 1e-4 and float(horizontal.min()) > 1.0
    _, centers, rotations = path("pan")
    assert float((centers - centers[0]).norm(dim=-1).max()) < 0.1
    assert float((rotations[-1] - rotations[0]).abs().max()) > 0.1
    _, centers, rotations = path("dolly")
    torch.testing.assert_close(rotations[-1], rotations[0])
    steps = centers[1:] - centers[:1]
    assert float(torch.linalg.cross(steps, steps[-1:].expand_as(steps)).abs().max()) < 1e-4
    assert float(steps.norm(dim=-1).max()) > 0.1
    _, centers, rotations = path("random")
    assert float((centers[-1] - centers[0]).norm()) > 0.01
    assert float((rotations[-1] - rotations[0]).abs().max()) > 0.01


# ---------------------------------------------------------------------------------- data set


def test_splits_are_disjoint_seed_ranges():
    train = SyntheticClips(SyntheticConfig(**TINY), split="train")
    heldout = SyntheticClips(SyntheticConfig(**TINY), split="heldout", size=5)
    assert len(train) == SPLIT_SIZE and len(heldout) == 5
    train_seeds = {train.seed(0), train.seed(len(train) - 1)}
    assert max(train_seeds) < heldout.seed(0) <= heldout.seed(4)
    assert heldout.seed(-1) == heldout.seed(4)
    _assert_same_scene(heldout[0], render_clip(SPLIT_SIZE, **TINY))
    _assert_same_scene(train[2], render_clip(2, **TINY))


def test_dataset_rejects_bad_split_size_and_index():
    with pytest.raises(ValueError, match="split"):
        SyntheticClips(split="test")
    with pytest.raises(ValueError, match="size"):
        SyntheticClips(size=0)
    with pytest.raises(ValueError, match="size"):
        SyntheticClips(size=SPLIT_SIZE + 1)
    with pytest.raises(IndexError):
        SyntheticClips(size=3)[3]


def test_dataset_accepts_numpy_and_tensor_indices():
    clips = SyntheticClips(SyntheticConfig(**TINY), size=3)
    assert clips.seed(np.int64(2)) == clips.seed(torch.tensor(2)) == clips.seed(2)
    _assert_same_scene(torch.utils.data.Subset(clips, np.arange(1, 3))[0], clips[1])
    with pytest.raises(TypeError):
        clips.seed(1.5)


def test_dataset_works_with_a_dataloader():
    loader = torch.utils.data.DataLoader(
        SyntheticClips(SyntheticConfig(**TINY), size=4), batch_size=None, shuffle=False
    )
    scenes = list(loader)
    assert len(scenes) == 4 and all(isinstance(s, Scene) for s in scenes)


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_frames", 0),
        ("height", -1),
        ("width", 2.5),
        ("fps", 0.0),
        ("fps", math.inf),
        ("trajectories", ("orbit", "zoom")),
        ("trajectories", ()),
        ("trajectories", "orbit"),
        ("num_objects", (3, 1)),
        ("num_posters", (-1, 2)),
        ("moving_fraction", 1.5),
        ("fov_degrees", (10.0, 190.0)),
        ("aspect_jitter", -0.1),
        ("principal_jitter", 0.7),
        ("dynamic", "yes"),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        render_clip(0, **{field: value})


def test_unknown_trajectory_error_lists_the_expected_names():
    with pytest.raises(ValueError, match="orbit.*dolly.*pan.*random"):
        SyntheticConfig(trajectories=("zoom",))


def test_unknown_override_and_bad_seed_are_rejected():
    with pytest.raises(TypeError, match="frames"):
        render_clip(0, frames=3)
    for seed in (-1, 2**63, 1.0, True):
        with pytest.raises(ValueError, match="seed"):
            render_clip(seed)
    with pytest.raises(TypeError, match="config"):
        render_clip(0, {"num_frames": 3})


def test_overrides_replace_config_fields():
    config = SyntheticConfig(num_frames=2, height=8, width=8, dynamic=False)
    scene = render_clip(0, config, num_frames=3, trajectories=("pan",))
    assert scene.num_frames == 3 and "pans" in scene.text
    assert config.num_frames == 2  # frozen: the caller's config is untouched
