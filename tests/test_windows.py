"""Windowed completion: the plan covers every frame once, each window observes its completed
context, Sim(3) stitching undoes per-window similarity transforms, and the pipeline returns the
whole clip at the input's size."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from any4d.data import Scene
from any4d.data.fit import FrameFit
from any4d.data.synthetic import render_clip
from any4d.diffusion import Mask
from any4d.geometry import Cameras, Similarity
from any4d.windows import Window, WindowConfig, clean_sets, plan_windows, roll, window_mask
from tests.tiny_pipeline import tiny_pipeline


@pytest.mark.parametrize("frames", [1, 5, 6, 13, 40])
@pytest.mark.parametrize(
    "config", [WindowConfig(overlap=2), WindowConfig(overlap=1, anchors=(0,)), WindowConfig()]
)
def test_every_frame_is_new_in_exactly_one_window_in_order(frames, config):
    plan = plan_windows(frames, config, length=5)
    assert [f for w in plan for f in w.new] == list(range(frames))
    for window in plan:
        assert len(window.frames) == min(5, frames)
        assert len(set(window.frames)) == len(window.frames)
        # The context is completed already; the new frames follow it.
        seen = {f for w in plan[: plan.index(window)] for f in w.new}
        assert set(window.frames[: window.context]) <= seen
        assert set(window.new) == set(window.frames) - seen


def test_anchors_come_first_and_count_as_context():
    plan = plan_windows(12, WindowConfig(overlap=1, anchors=(0,)), length=5)
    assert plan[0] == Window((0, 1, 2, 3, 4), 0, (0, 1, 2, 3, 4))
    assert plan[1] == Window((0, 4, 5, 6, 7), 2, (5, 6, 7))
    assert plan[-1].frames[0] == 0 and plan[-1].new[-1] == 11


def test_the_last_window_reaches_back_for_more_context():
    plan = plan_windows(9, WindowConfig(overlap=2), length=5)
    # 0-4, then 3-7 (new 5-7), then 4-8: frame 8 alone is new, after 4 completed frames.
    assert plan[-1] == Window((4, 5, 6, 7, 8), 4, (8,))


def test_context_fills_whole_latent_frames_under_a_temporal_stride():
    plan = plan_windows(30, WindowConfig(overlap=4), length=9, temporal_stride=4)
    for window in plan[1:]:
        assert window.context % 4 == 1  # 1 + 4k: latent frame 0 alone, then groups of 4


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (WindowConfig(overlap=5), "leave no new frame"),
        (WindowConfig(overlap=0), "windows need context"),
    ],
)
def test_plans_without_new_frames_or_context_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        plan_windows(20, config, length=5)


@pytest.mark.parametrize(
    ("field", "value"), [("length", 0), ("overlap", -1), ("anchors", (-1,)), ("stitch", "x")]
)
def test_bad_window_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=f"window {field}"):
        WindowConfig(**{field: value})


def test_window_mask_observes_the_context_in_the_streams_it_holds():
    window = Window((3, 4, 5, 6, 7), 2, (5, 6, 7))
    clean = clean_sets(Mask.parse("video"), 20)
    mask = window_mask(clean, window, ("rgb", "depth", "ray_d", "ray_m"))
    assert mask.clean == {s: (0, 1) for s in ("rgb", "depth", "ray_d", "ray_m")}
    mask = window_mask(clean_sets(Mask.parse("geometry"), 20), window, ("rgb", "depth"))
    assert mask.clean == {"rgb": (0, 1, 2, 3, 4), "depth": (0, 1)}


# ---------------------------------------------------------------------- rolling with a fake model


def identity_fit(scene: Scene) -> FrameFit:
    return FrameFit.plan((scene.height, scene.width), (scene.height, scene.width))


def test_each_window_observes_what_the_previous_ones_completed():
    truth = render_clip(2, num_frames=11, height=8, width=8)
    seen = []

    def complete(scene, mask):
        seen.append((scene, mask))
        depth = (
            scene.depth.clone() if scene.depth is not None else torch.zeros_like(scene.rgb[:, :1])
        )
        clean = mask.clean_frames("depth", scene.num_frames)
        for i in range(scene.num_frames):
            if i not in clean:
                depth[i] = float(len(seen))  # window k fills its targets with k
        out = Scene(rgb=scene.rgb, depth=depth, cameras=truth.cameras[: scene.num_frames])
        return _Result(out)

    plan = plan_windows(11, WindowConfig(overlap=2), length=5)
    parts = list(
        roll(plan, truth.frames, Mask.parse("geometry"), complete, identity_fit(truth), 11)
    )
    for index, (scene, mask) in enumerate(seen[1:], start=1):
        window = plan[index]
        assert mask.clean["depth"] == tuple(range(window.context))
        for i, frame in enumerate(window.frames[: window.context]):
            owner = next(k for k, w in enumerate(plan) if frame in w.new)
            assert (scene.depth[i] == owner + 1).all()
    depth = torch.cat([p.scene.depth for p in parts])
    owners = [next(k for k, w in enumerate(plan) if f in w.new) + 1 for f in range(11)]
    assert torch.equal(depth[:, 0, 0, 0], torch.tensor(owners, dtype=depth.dtype))


@dataclasses.dataclass
class _Result:
    scene: Scene
    failures: list = dataclasses.field(default_factory=list)
    units: str = "relative"
    scores: object = None


def random_similarity(generator) -> Similarity:
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    angle = float(torch.rand(1, generator=generator)) * 0.6
    k = axis / axis.norm()
    cross = torch.tensor(
        [[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=torch.float64
    )
    rotation = torch.eye(3, dtype=torch.float64) + math.sin(angle) * cross
    rotation = rotation + (1 - math.cos(angle)) * cross @ cross
    translation = torch.randn(3, generator=generator, dtype=torch.float64)
    return Similarity(rotation, translation, 0.5 + float(torch.rand(1, generator=generator)))


def test_sim3_stitching_undoes_each_windows_own_similarity():
    truth = render_clip(5, num_frames=13, height=12, width=12, dynamic=False)
    generator = torch.Generator().manual_seed(0)
    transforms = []

    def complete(scene, mask):  # each window: the truth, in a world of its own
        assert mask.clean == {"rgb": tuple(range(scene.num_frames))}  # nothing else observed
        part = truth.frames(list(plan[len(transforms)].frames))
        similarity = random_similarity(generator)
        transforms.append(similarity)
        c2w = similarity.apply_to_poses(part.cameras.c2w.double()).float()
        moved = Scene(rgb=scene.rgb, depth=part.depth * similarity.scale,
                      cameras=Cameras.unchecked(part.cameras.K, c2w))  # fmt: skip
        return _Result(moved)

    plan = plan_windows(13, WindowConfig(overlap=2, stitch="sim3"), length=5)
    parts = list(roll(plan, truth.frames, Mask.parse("geometry"), complete, identity_fit(truth),
                      13, stitch="sim3"))  # fmt: skip
    first = transforms[0]
    expected = first.apply_to_poses(truth.cameras.c2w.double())
    stitched = torch.cat([p.scene.cameras.c2w for p in parts]).double()
    torch.testing.assert_close(stitched, expected, atol=2e-4, rtol=0)
    depth = torch.cat([p.scene.depth for p in parts])
    torch.testing.assert_close(depth, truth.depth * first.scale, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline()


def test_the_pipeline_completes_a_long_clip_at_its_own_size(pipe):
    scene = render_clip(3, num_frames=8, height=12, width=20)
    result = pipe(scene, "depth", progress=False)
    assert result.windows == len(pipe.plan(8, (12, 20))[0]) > 1
    assert result.scene.rgb.shape == (8, 3, 12, 20) and result.scene.depth.shape == (8, 1, 12, 20)
    assert torch.equal(result.scene.rgb, scene.rgb)  # observed RGB untouched
    torch.testing.assert_close(result.scene.cameras.K, scene.cameras.K)  # observed cameras too
    torch.testing.assert_close(result.scene.cameras.c2w, scene.cameras.c2w)
    assert result.units == "cameras"


def test_a_clip_of_the_models_shape_is_one_window_as_before(pipe):
    scene = render_clip(3, num_frames=3, height=16, width=16)
    windowed = pipe(scene, "video", progress=False)
    assert windowed.windows == 1 and windowed.latents  # the one-clip path, latents and all


def test_the_pipeline_refuses_a_bad_window(pipe):
    with pytest.raises(ValueError, match="expected a WindowConfig"):
        pipe(render_clip(3, num_frames=3, height=16, width=16), window={"overlap": 1})


def test_a_window_without_a_camera_holds_the_last_known_one():
    truth = render_clip(4, num_frames=9, height=8, width=8)
    calls = []

    def complete(scene, mask):
        calls.append(scene)
        frames = list(plan[len(calls) - 1].frames)
        cameras = None if len(calls) == 2 else truth.cameras[frames]
        depth = torch.ones_like(scene.rgb[:, :1])
        failures = ["cameras: no camera"] if cameras is None else []
        return _Result(Scene(rgb=scene.rgb, depth=depth, cameras=cameras), failures)

    plan = plan_windows(9, WindowConfig(overlap=2), length=5)
    parts = list(roll(plan, truth.frames, Mask.parse("geometry"), complete, identity_fit(truth), 9))
    held = parts[1]
    assert "hold the last known one" in held.failures[-1]
    last = truth.cameras.c2w[plan[1].frames[plan[1].context - 1]]
    for c2w in held.scene.cameras.c2w:
        assert torch.equal(c2w, last)
    assert all(p.scene.cameras is not None for p in parts)
