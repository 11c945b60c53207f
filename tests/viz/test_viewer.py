"""The viser viewer: camera conversion to viser's poses and frustums, and the scene it serves
(checked through viser's server-side handles: headless, no browser)."""

import math
import sys

import numpy as np
import pytest
import torch

from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras
from any4d.viz.exports_cameras import rotation_to_quaternion
from any4d.viz.exports_geometry import scene_point_cloud
from any4d.viz.viewer import (
    REFERENCE_COLOUR,
    SCENE_COLOUR,
    add_scene,
    frustum_scale,
    frustum_shape,
    show_scene,
    viser_poses,
)
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


def test_show_scene_returns_the_running_server_without_blocking(server, clip):
    assert show_scene(clip, server=server) is server
    assert server.get_port() > 0


def test_show_scene_starts_a_server_on_a_free_port(viser, clip):
    started = show_scene(clip, port=0, host="127.0.0.1")
    try:
        assert isinstance(started, viser.ViserServer) and started.get_port() > 0
    finally:
        started.stop()


def test_scene_without_cameras_is_refused_before_serving(clip):
    with pytest.raises(ValueError, match="expected cameras"):
        show_scene(Scene(rgb=clip.rgb), port=0)


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
