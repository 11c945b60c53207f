"""The viser viewer: camera conversion to viser's poses and frustums, the scene it serves, its
playback, panel, point controls and alignment (checked through viser's server-side handles:
headless, no browser — tests/viz/test_viewer_browser.py looks at the page in Chromium)."""

import dataclasses
import math
import socket
import sys
import threading
import time

import numpy as np
import pytest
import torch

from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras, Similarity
from any4d.viz.exports_cameras import rotation_to_quaternion
from any4d.viz.exports_geometry import scene_point_cloud
from any4d.viz.frustums import align_cameras
from any4d.viz.scene_align import align_scene, camera_similarity
from any4d.viz.viewer import (
    REFERENCE_COLOUR,
    SCENE_COLOUR,
    add_scene,
    frustum_scale,
    frustum_shape,
    show_scene,
    viser_poses,
)
from any4d.viz.viewer_controls import frame_caption
from tests.cameras_factory import random_cameras, random_rotations


@pytest.fixture(scope="module")
def viser():
    import viser  # the dev extra installs it: these tests run, never skip

    return viser


@pytest.fixture(scope="module")
def clip() -> Scene:
    return render_clip(0, num_frames=3, height=16, width=16)


@pytest.fixture()
def server(viser):
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_leaked_playback():
    yield
    deadline = time.monotonic() + 2
    while _playback_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _playback_threads(), "a test left a playback thread running"


def _playback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "any4d-viewer-playback"]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_until(condition, timeout: float = 5.0) -> bool:
    """Poll ``condition`` (a generous timeout: the test fails on it, never waits it out)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _half_turns() -> torch.Tensor:
    """Rotations by π, where a trace-only quaternion formula loses every digit."""
    signs = ([1.0, -1, -1], [-1.0, 1, -1], [-1.0, -1, 1])
    return torch.stack([torch.diag(torch.tensor(d)) for d in signs])


def test_viser_poses_are_our_quaternions_and_centres(viser):
    cameras = random_cameras((12,), seed=0)
    rotations = torch.cat([cameras.R, _half_turns().double()])
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(rotations), 1, 1)
    c2w[:, :3, :3] = rotations
    c2w[:12, :3, 3] = cameras.centers
    wxyz, position = viser_poses(Cameras(cameras.K[:1].expand(len(c2w), 3, 3), c2w))
    for q, rotation in zip(wxyz, rotations.numpy(), strict=True):
        expected = rotation_to_quaternion(rotation)
        assert np.allclose(q * np.sign(q @ expected), expected, atol=1e-9)  # q and −q agree
    np.testing.assert_allclose(position, c2w[:, :3, 3].numpy())


def test_viser_poses_round_trip_to_the_rotations(viser):
    rotations = random_rotations((20,), torch.Generator().manual_seed(1))
    c2w = torch.eye(4, dtype=torch.float64).repeat(20, 1, 1)
    c2w[:, :3, :3] = rotations
    wxyz, _ = viser_poses(Cameras.from_intrinsics(10.0, 10.0, 8.0, 8.0, c2w))
    back = np.stack([viser.transforms.SO3(q).as_matrix() for q in wxyz])
    np.testing.assert_allclose(back, rotations.numpy(), atol=1e-9)


def test_frustum_shape_spans_the_image_height_and_width():
    K = np.array([[20.0, 0, 16], [0, 25.0, 12], [0, 0, 1]])
    fov, aspect = frustum_shape(K, (24, 32))
    half_height = math.tan(fov / 2)
    assert half_height == pytest.approx(12 / 25)  # (H / 2) / fy
    assert half_height * aspect == pytest.approx(16 / 20)  # (W / 2) / fx
    assert frustum_shape(np.diag([30.0, 30.0, 1.0]), (24, 32))[1] == pytest.approx(32 / 24)


def test_frustum_scale_puts_the_image_plane_at_the_depth():
    fov, aspect, depth = 0.9, 1.7, 0.35
    # The client (CameraFrustumVariants.tsx): (x, y, z) / ∛(x·y·z / 3) · scale.
    x, y, z = math.tan(fov / 2) * aspect, math.tan(fov / 2), 1.0
    assert z / math.cbrt(x * y * z / 3) * frustum_scale(depth, fov, aspect) == pytest.approx(depth)


def test_add_scene_draws_one_cloud_and_frustum_per_frame_and_the_trajectory(
    server, clip, monkeypatch
):
    ups = []
    monkeypatch.setattr(server.scene, "set_up_direction", ups.append)
    viewer = add_scene(server, clip, point_stride=2, frustum_depth=0.25)
    assert len(viewer.scene.points) == len(viewer.scene.frustums) == 3
    assert viewer.reference is None and viewer.reference_points is None
    points, colors = scene_point_cloud(clip, stride=2)
    np.testing.assert_allclose(np.concatenate([c.points for c in viewer.scene.points]), points)
    np.testing.assert_array_equal(np.concatenate([c.colors for c in viewer.scene.points]), colors)
    centres = clip.cameras.centers.numpy()
    np.testing.assert_allclose(viewer.scene.trajectory.points[:, 0], centres[:-1], atol=1e-6)
    np.testing.assert_allclose(viewer.scene.trajectory.points[:, 1], centres[1:], atol=1e-6)
    np.testing.assert_allclose(ups[0], -clip.cameras.R[0, :, 1].numpy(), atol=1e-6)  # image up


def test_frustums_sit_at_our_cameras(viser, server, clip):
    viewer = add_scene(server, clip, frustum_depth=0.25)
    K, c2w = clip.cameras.K.double().numpy(), clip.cameras.c2w.double().numpy()
    for frustum, k, pose in zip(viewer.scene.frustums, K, c2w, strict=True):
        rotation = viser.transforms.SO3(np.asarray(frustum.wxyz)).as_matrix()
        np.testing.assert_allclose(rotation, pose[:3, :3], atol=1e-6)
        np.testing.assert_allclose(frustum.position, pose[:3, 3], atol=1e-6)
        assert (frustum.fov, frustum.aspect) == pytest.approx(frustum_shape(k, (16, 16)))
        assert frustum.scale == pytest.approx(frustum_scale(0.25, frustum.fov, frustum.aspect))
        assert tuple(frustum.color) == SCENE_COLOUR
        assert frustum._image_data is not None  # the frame's RGB as the texture


def test_frame_slider_shows_one_frame_or_every_frame_up_to_it(server, clip):
    viewer = add_scene(server, clip)
    assert [c.visible for c in viewer.scene.points] == [True, False, False]
    viewer.frame.value = 2
    assert [c.visible for c in viewer.scene.points] == [False, False, True]
    assert viewer.scene.frustums[2].thickness > viewer.scene.frustums[0].thickness
    viewer.cumulative.value = True
    assert [c.visible for c in viewer.scene.points] == [True, True, True]
    viewer.frame.value = 1
    assert [c.visible for c in viewer.scene.points] == [True, True, False]


def test_reference_is_drawn_in_its_own_colour_with_its_clouds_behind_a_checkbox(server, clip):
    reference = render_clip(1, num_frames=3, height=16, width=16)
    viewer = add_scene(server, clip, reference=reference, frustum_images=False)
    assert len(viewer.reference.frustums) == len(viewer.reference.points) == 3
    assert all(tuple(f.color) == REFERENCE_COLOUR for f in viewer.reference.frustums)
    np.testing.assert_allclose(
        [f.position for f in viewer.reference.frustums], reference.cameras.centers, atol=1e-6
    )
    assert not any(c.visible for c in viewer.reference.points)
    viewer.reference_points.value = True
    assert [c.visible for c in viewer.reference.points] == [True, False, False]


def test_show_scene_draws_into_a_given_server_and_close_leaves_it_running(server, clip):
    viewer = show_scene(clip, server=server)
    assert viewer.server is server and len(viewer.scene.frustums) == 3
    viewer.close()
    assert _answers(server.get_port())  # not the viewer's server to stop


def test_show_scene_starts_a_server_on_a_free_port_that_close_stops(viser, clip):
    viewer = show_scene(clip, port=0, host="127.0.0.1")
    try:
        assert isinstance(viewer.server, viser.ViserServer)
        port = viewer.server.get_port()
        assert port > 0 and _answers(port)
    finally:
        viewer.close()
    assert not _answers(port)
    viewer.close()  # idempotent


def test_scene_without_cameras_is_refused_before_serving(clip):
    with pytest.raises(ValueError, match="expected cameras"):
        show_scene(Scene(rgb=clip.rgb), port=0)
    with pytest.raises(ValueError, match="align=True needs a reference"):
        show_scene(clip, port=0, align=True)


def test_missing_viser_names_the_extra(monkeypatch, clip):
    monkeypatch.setitem(sys.modules, "viser", None)  # import viser → ImportError
    with pytest.raises(ImportError, match=r'pip install "any4d\[viewer\]"'):
        show_scene(clip, port=0)


def test_a_browser_gets_the_page_and_the_scene(viser, server, clip):
    import asyncio
    import urllib.request

    from websockets.asyncio.client import connect

    add_scene(server, clip)
    url = f"127.0.0.1:{server.get_port()}"
    with urllib.request.urlopen(f"http://{url}/", timeout=5) as page:
        assert page.status == 200 and b"<html" in page.read().lower()

    async def first_message() -> bytes:
        protocol = f"viser-v{viser.__version__}"
        async with connect(f"ws://{url}", subprotocols=[protocol], open_timeout=5) as socket:
            return await asyncio.wait_for(socket.recv(), 5)

    assert len(asyncio.run(first_message())) > 1000  # the backlog: clouds, frustums, GUI


# ------------------------------------------------------------------------------- playback


def _frames_seen(viewer) -> list[int]:
    """Every value the frame slider takes from now on (recorded by a callback)."""
    seen = []
    viewer.frame.on_update(lambda _event: seen.append(int(viewer.frame.value)))
    return seen


def test_play_advances_the_frame_in_a_daemon_thread_and_pause_stops_it(server, clip):
    viewer = add_scene(server, clip, fps=200)
    assert not viewer.playing and viewer.play_button.label == "play"
    viewer.play()
    assert viewer.playing and viewer.play_button.label == "pause"
    assert all(t.daemon for t in _playback_threads())
    assert _wait_until(lambda: viewer.frame.value != 0)
    viewer.pause()
    assert not viewer.playing and not _playback_threads()
    assert viewer.play_button.label == "play"
    held = viewer.frame.value
    time.sleep(0.05)  # ten periods at 200 fps
    assert viewer.frame.value == held


def test_playback_loops_back_to_the_first_frame(server, clip):
    viewer = add_scene(server, clip, fps=200)
    assert viewer.loop.value  # on by default
    seen = _frames_seen(viewer)
    viewer.play()
    assert _wait_until(lambda: 0 in seen)  # 1, 2, then round to 0
    viewer.close()
    assert seen[: seen.index(0) + 1] == [1, 2, 0]


def test_playback_without_loop_stops_at_the_last_frame_and_plays_again_from_0(server, clip):
    viewer = add_scene(server, clip, fps=200, loop=False)
    seen = _frames_seen(viewer)
    viewer.play()
    assert _wait_until(lambda: not viewer.playing)
    assert seen == [1, 2] and viewer.frame.value == 2
    assert viewer.play_button.label == "play"
    viewer.play()  # at the end: starts over
    assert _wait_until(lambda: not viewer.playing)
    assert seen == [1, 2, 0, 1, 2]


def test_playback_waits_a_period_of_the_chosen_fps_between_frames(server, clip):
    viewer = add_scene(server, clip, fps=4)
    assert viewer.fps.value == pytest.approx(4)
    viewer.play()
    time.sleep(0.1)  # a 0.25 s period: the first frame cannot be due yet
    assert viewer.frame.value == 0
    viewer.fps.value = 200  # read by the thread at every frame
    assert _wait_until(lambda: viewer.frame.value != 0)
    viewer.close()


def test_fps_defaults_to_the_scenes(server, clip):
    assert add_scene(server, clip).fps.value == pytest.approx(clip.fps)


def test_play_button_toggles_playback(server, clip):
    viewer = add_scene(server, clip, fps=1)
    viewer.play_button.value = True  # what a click in the browser does
    assert viewer.playing and viewer.play_button.label == "pause"
    viewer.play_button.value = True
    assert not viewer.playing and viewer.play_button.label == "play"


def test_playback_ends_when_the_server_stops(viser, clip):
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    viewer = add_scene(server, clip, fps=200)
    viewer.play()
    server.stop()
    assert _wait_until(lambda: not viewer.playing)


def test_close_ends_playback_and_refuses_to_play_again(server, clip):
    with add_scene(server, clip, fps=200) as viewer:
        viewer.play()
    assert not viewer.playing and not _playback_threads()
    with pytest.raises(RuntimeError, match="closed"):
        viewer.play()


# --------------------------------------------------------------------- what the panel says


def test_frame_caption_reads_index_count_and_time():
    assert frame_caption(3, 48, 10.0) == "frame 3 / 48 · t = 0.30 s"
    assert frame_caption(0, 1, 24.0) == "frame 0 / 1 · t = 0.00 s"


def test_frame_text_follows_the_frame_at_the_scenes_fps(server, clip):
    viewer = add_scene(server, clip, fps=50)  # the playback rate is not the clip's time
    assert viewer.frame_text.content == frame_caption(0, 3, clip.fps)
    viewer.frame.value = 2
    assert viewer.frame_text.content == f"frame 2 / 3 · t = {2 / clip.fps:.2f} s"


def test_legend_names_each_source_in_its_colour(server, clip):
    reference = render_clip(1, num_frames=3, height=16, width=16)
    viewer = add_scene(server, clip, reference=reference, labels=("ours", "truth"))
    scene_line, reference_line, points_line = viewer.legend.content.split("\n\n")
    assert "rgb(214, 39, 40)" in scene_line and "ours" in scene_line
    assert "rgb(31, 119, 180)" in reference_line and "truth" in reference_line
    assert "colour by source" in points_line
    alone = add_scene(server, clip).legend.content
    assert "prediction" in alone and "reference" not in alone


def test_labels_must_be_two_names(server, clip):
    with pytest.raises(ValueError, match=r"labels is \('ours',\)"):
        add_scene(server, clip, labels=("ours",))


# --------------------------------------------------------------------------------- points


def test_colour_by_source_paints_each_scenes_clouds_and_back(server, clip):
    reference = render_clip(1, num_frames=3, height=16, width=16)
    viewer = add_scene(server, clip, reference=reference)
    assert not viewer.colour_by_source.value
    rgb = [np.array(c.colors) for c in viewer.scene.points]
    viewer.colour_by_source.value = True
    for nodes, colour in ((viewer.scene, SCENE_COLOUR), (viewer.reference, REFERENCE_COLOUR)):
        for cloud in nodes.points:
            assert tuple(np.broadcast_to(cloud.colors, (len(cloud.points), 3))[0]) == colour
            assert (np.broadcast_to(cloud.colors, (len(cloud.points), 3)) == colour).all()
    viewer.colour_by_source.value = False
    for cloud, colors in zip(viewer.scene.points, rgb, strict=True):
        np.testing.assert_array_equal(cloud.colors, colors)
    assert len(np.unique(rgb[0], axis=0)) > 1  # the RGB really differs from one colour


def test_colour_by_source_can_start_on(server, clip):
    viewer = add_scene(server, clip, colour_by_source=True)
    assert viewer.colour_by_source.value
    assert tuple(viewer.scene.points[0].colors) == SCENE_COLOUR


def test_point_size_applies_to_every_cloud(server, clip):
    reference = render_clip(1, num_frames=3, height=16, width=16)
    viewer = add_scene(server, clip, reference=reference, point_size=0.02)
    clouds = viewer.scene.points + viewer.reference.points
    assert viewer.point_size.value == pytest.approx(0.02)
    assert all(c.point_size == pytest.approx(0.02) for c in clouds)
    viewer.point_size.value = 0.05
    assert all(c.point_size == pytest.approx(0.05) for c in clouds)


def test_point_size_defaults_to_a_pixels_footprint_at_the_median_depth(server, clip):
    viewer = add_scene(server, clip, point_stride=2)
    median = float(clip.depth[clip.depth > 0].median())
    focal = float(clip.cameras.K[:, :2, :2].diagonal(dim1=-2, dim2=-1).mean())
    assert viewer.point_size.value == pytest.approx(median * 2 / focal, rel=1e-5)


def test_scene_without_depth_has_no_point_controls(server, clip):
    viewer = add_scene(server, Scene(rgb=clip.rgb, cameras=clip.cameras))
    assert viewer.scene.points == [] and viewer.point_size is None
    assert viewer.colour_by_source is None
    viewer.frame.value = 1  # still draws: frustums and caption
    assert viewer.frame_text.content.startswith("frame 1 / 3")


def test_max_points_per_frame_keeps_a_fixed_subset_of_each_frame(server, clip):
    full = add_scene(server, clip, max_points_per_frame=None)
    budget = add_scene(server, clip, max_points_per_frame=50)
    again = add_scene(server, clip, max_points_per_frame=50)
    assert all(len(c.points) > 50 for c in full.scene.points)  # 16 × 16 pixels, most valid
    clouds = zip(full.scene.points, budget.scene.points, again.scene.points, strict=True)
    for whole, kept, same in clouds:
        assert len(kept.points) == 50
        np.testing.assert_array_equal(kept.points, same.points)  # deterministic
        rows = {tuple(p) for p in whole.points}
        assert all(tuple(p) in rows for p in kept.points)  # real points of the frame
    assert add_scene(server, clip).scene.points[0].points.shape == full.scene.points[0].points.shape


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("fps", 0, "positive finite rate"),
        ("point_size", -1.0, "positive finite size"),
        ("max_points_per_frame", 0, r"integer ≥ 1 or None"),
        ("frustum_depth", float("inf"), "positive finite depth"),
    ],
)
def test_bad_options_are_named(server, clip, option, value, expected):
    with pytest.raises(ValueError, match=rf"{option} is .*\(expected .*{expected}"):
        add_scene(server, clip, **{option: value})


# ---------------------------------------------------------------------------------- align


def _moved(scene: Scene, similarity: Similarity) -> Scene:
    """The scene in another world: every camera and (via depth × scale) point moved."""
    c2w = similarity.apply_to_poses(scene.cameras.c2w.double())
    return Scene(
        rgb=scene.rgb,
        depth=scene.depth * similarity.scale,
        cameras=Cameras(scene.cameras.K, c2w.to(scene.cameras.c2w)),
        fps=scene.fps,
    )


def _double_cameras(scene: Scene) -> Scene:
    """float64 cameras: a float32 similarity is only exact to ~1e-5 of the centres' spread."""
    return dataclasses.replace(scene, cameras=scene.cameras.to(dtype=torch.float64))


def _similarity() -> Similarity:
    rotation = random_rotations((1,), torch.Generator().manual_seed(3))[0].double()
    return Similarity(rotation, torch.tensor([0.4, -1.2, 2.0], dtype=torch.float64), 2.5)


def test_align_puts_the_cameras_and_points_on_the_reference(viser, server):
    clip = _double_cameras(render_clip(0, num_frames=4, height=16, width=16))
    reference = _moved(clip, _similarity())
    viewer = add_scene(server, clip, reference=reference, align=True, max_points_per_frame=None)
    for frustum, truth in zip(viewer.scene.frustums, reference.cameras.c2w.double(), strict=True):
        np.testing.assert_allclose(frustum.position, truth[:3, 3], atol=1e-6)
        rotation = viser.transforms.SO3(np.asarray(frustum.wxyz)).as_matrix()
        np.testing.assert_allclose(rotation, truth[:3, :3], atol=1e-6)
    for ours, theirs in zip(viewer.scene.points, viewer.reference.points, strict=True):
        np.testing.assert_allclose(ours.points, theirs.points, atol=1e-4)  # metres, float32
    unaligned = add_scene(server, clip, reference=reference)
    assert not np.allclose(unaligned.scene.frustums[1].position, viewer.scene.frustums[1].position)


def test_align_scene_scales_depth_by_the_similarity():
    clip = render_clip(0, num_frames=4, height=8, width=8)
    aligned = align_scene(clip, _moved(clip, _similarity()))
    torch.testing.assert_close(aligned.depth, clip.depth * 2.5, rtol=1e-5, atol=1e-6)
    assert aligned.rgb is clip.rgb and aligned.fps == clip.fps


@pytest.mark.parametrize("static", [False, True], ids=["umeyama", "fallback"])
def test_camera_similarity_moves_poses_as_align_cameras_does(static):
    cameras = random_cameras((5,), seed=4)
    if static:  # one centre: no rotation from the centres, the fallback
        c2w = cameras.c2w.clone()
        c2w[:, :3, 3] = 0.0
        cameras = Cameras(cameras.K, c2w)
    reference = random_cameras((5,), seed=5)
    similarity = camera_similarity(cameras, reference)
    torch.testing.assert_close(
        similarity.apply_to_poses(cameras.c2w.double()),
        align_cameras(cameras, reference).c2w.double(),
    )


def test_align_is_refused_without_a_reference_or_with_other_frame_counts(server, clip):
    with pytest.raises(ValueError, match="align=True needs a reference"):
        add_scene(server, clip, align=True)
    longer = render_clip(1, num_frames=4, height=16, width=16)
    with pytest.raises(ValueError, match="scene has 3 frames but reference has 4"):
        add_scene(server, clip, reference=longer, align=True)
