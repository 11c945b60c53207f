"""The viewer in a real browser: headless Chromium renders the scene (WebGL on SwiftShader) and
its play button plays — pixels of the screenshots and the server's handles, not the messages.

Needs Debian's ``chromium`` (``apt-get install chromium``); skipped without it, except under
``CI=true``, where a missing browser is a failure. Screenshots are kept in ``/tmp/viewer_shots``
for a person to look at. ``python -m tests.viz.test_viewer_browser docs/viewer.png`` renders
the README's picture of a longer clip.
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from any4d.data import Scene
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras
from any4d.viz.viewer import REFERENCE_COLOUR, SCENE_COLOUR, show_scene
from any4d.viz.viewer_controls import frame_caption
from tests.viz.chromium import Browser, chromium_binary

SHOTS = Path("/tmp/viewer_shots")
WIDTH, HEIGHT = 1024, 640
RENDER_S = 20.0  # the longest wait for one picture or state (software WebGL on two cores)
# Hides the toast "Software WebGL rendering detected" that would cover part of the canvas.
_NO_TOASTS = "<style>.mantine-Notifications-root { display: none !important; }</style>"


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Chromium for the browser test: apt-get install chromium")
        pytest.skip("needs Chromium: apt-get install chromium")
    return binary


def _shifted(scene: Scene, offset: tuple[float, float, float]) -> Scene:
    """The scene moved by ``offset`` (world metres): a reference that sits beside it."""
    c2w = scene.cameras.c2w.clone()
    c2w[:, :3, 3] += torch.tensor(offset, dtype=c2w.dtype)
    return dataclasses.replace(scene, cameras=Cameras(scene.cameras.K, c2w))


@pytest.fixture(scope="module")
def viewer():
    clip = render_clip(0, num_frames=5, height=32, width=32)
    reference = _shifted(clip, (1.5, 0.0, 0.0))
    viewer = show_scene(clip, reference=reference, port=0, host="127.0.0.1")
    yield viewer
    viewer.close()


@pytest.fixture(scope="module")
def page(chromium, viewer):
    with Browser(chromium, timeout=RENDER_S) as browser:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.navigate(f"http://127.0.0.1:{viewer.server.get_port()}/")
        browser.wait_for(
            "document.body.innerText.includes('frame 0 / 5')", RENDER_S, "the viewer's panel"
        )
        browser.evaluate(f"document.head.insertAdjacentHTML('beforeend', {_NO_TOASTS!r})")
        yield browser


# ---------------------------------------------------------------------------------- pixels


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)  # (H, W, 3)


def _canvas_mask(browser: Browser, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the 3D canvas, without the GUI panel and the axes gizmo (bottom left)."""
    panel = browser.evaluate(
        "(() => { const r = document.querySelector('.mantine-Paper-root')"
        ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()"
    )
    mask = np.ones(shape, bool)
    left, top, right, bottom = (round(v) for v in panel)
    mask[max(top - 8, 0) : bottom + 8, max(left - 8, 0) : right + 8] = False
    mask[-110:, :110] = False  # the world axes, drawn in red, green and blue
    return mask


def _count(pixels: np.ndarray, mask: np.ndarray, colour, tolerance: int = 12) -> int:
    near = (np.abs(pixels - np.array(colour)) <= tolerance).all(-1)
    return int((near & mask).sum())


def _lines(pixels: np.ndarray, mask: np.ndarray, colour) -> int:
    """Pixels of a thin antialiased line in ``colour`` over the white background: a blend
    ``a·colour + (1 − a)·white`` with ``a`` ≥ 0.35, to 25 levels a channel."""
    ink = 255.0 - pixels  # (H, W, 3): how far from white
    full = 255.0 - np.array(colour, dtype=np.float64)
    a = ink @ full / (full @ full)
    residual = np.abs(ink - a[..., None] * full).max(-1)
    return int(((a >= 0.35) & (residual <= 25) & mask).sum())


def _painted(pixels: np.ndarray, mask: np.ndarray) -> int:
    """Pixels that are not the white background."""
    return int(((pixels < 245).any(-1) & mask).sum())


def _shot_until(browser: Browser, name: str, accept) -> tuple[np.ndarray, np.ndarray]:
    """Screenshots until ``accept(pixels, mask)`` holds (the client redraws a moment after a
    change); saves the last as ``SHOTS/name.png`` and returns it and the canvas mask, or fails
    with what ``accept`` saw."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + RENDER_S
    while True:
        png = browser.screenshot()
        pixels = _pixels(png)
        mask = _canvas_mask(browser, pixels.shape[:2])
        verdict = accept(pixels, mask)
        if verdict is True or time.monotonic() > deadline:
            (SHOTS / f"{name}.png").write_bytes(png)
            assert verdict is True, f"{name}.png: {verdict}"
            return pixels, mask
        time.sleep(0.2)


def _set_all_visible(viewer, visible: bool) -> None:
    for nodes in (viewer.scene, viewer.reference):
        for node in [*nodes.points, *nodes.frustums, nodes.trajectory]:
            node.visible = visible
    if visible:
        viewer.update()  # the clouds the GUI selects, not every cloud


def _click(browser: Browser, text: str) -> None:
    """A real mouse click (press and release) on the button labelled ``text``."""
    x, y = browser.wait_for(
        "(() => { const b = [...document.querySelectorAll('button')]"
        f".find(b => b.innerText.trim() === {text!r}); if (!b) return null;"
        " const r = b.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()",
        RENDER_S,
        f"a button {text!r}",
    )
    for kind in ("mousePressed", "mouseReleased"):
        browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def _caption(browser: Browser) -> str | None:
    """The frame caption as the page shows it."""
    return browser.evaluate(
        "(() => { const p = [...document.querySelectorAll('p')]"
        ".find(p => p.innerText.startsWith('frame ')); return p ? p.innerText : null; })()"
    )


# ------------------------------------------------------------------------------------ tests


def test_the_canvas_shows_red_and_blue_frustums_rgb_points_and_nothing_when_hidden(page, viewer):
    clouds = [*viewer.scene.points, *viewer.reference.points]
    for cloud in clouds:
        cloud.visible = False
    try:

        def frustums(pixels, mask):
            red, blue = _lines(pixels, mask, SCENE_COLOUR), _lines(pixels, mask, REFERENCE_COLOUR)
            painted = _painted(pixels, mask)
            if red > 30 and blue > 30 and painted < 0.05 * mask.sum():
                return True
            return f"{red} red and {blue} blue line pixels, {painted} painted of {mask.sum()}"

        _shot_until(page, "frustums", frustums)
    finally:
        viewer.update()  # the clouds the GUI selects: the scene's frame 0

    def rgb_points(pixels, mask):
        painted, colours = _painted(pixels, mask), len(np.unique(pixels[mask], axis=0))
        if painted > 0.05 * mask.sum() and colours > 200:
            return True
        return f"painted {painted} of {mask.sum()}, {colours} colours"

    _shot_until(page, "rgb", rgb_points)

    _set_all_visible(viewer, False)
    try:

        def blank(pixels, mask):
            painted = _painted(pixels, mask)
            return True if painted < 0.002 * mask.sum() else f"still {painted} painted pixels"

        _shot_until(page, "hidden", blank)
    finally:
        _set_all_visible(viewer, True)


def test_colour_by_source_tells_the_reference_from_the_prediction(page, viewer):
    viewer.reference_points.value = True
    viewer.colour_by_source.value = True
    try:

        def two_sources(pixels, mask):
            red = _count(pixels, mask, SCENE_COLOUR)
            blue = _count(pixels, mask, REFERENCE_COLOUR)
            if red > 0.02 * mask.sum() and blue > 0.02 * mask.sum():
                return True
            return f"red {red}, blue {blue} of {mask.sum()} canvas pixels"

        pixels, mask = _shot_until(page, "sources", two_sources)
        # The reference sits 1.5 m to the right (+x, and the view looks along +z with y down).
        red_x = np.nonzero((np.abs(pixels - SCENE_COLOUR) <= 12).all(-1) & mask)[1].mean()
        blue_x = np.nonzero((np.abs(pixels - REFERENCE_COLOUR) <= 12).all(-1) & mask)[1].mean()
        assert blue_x > red_x
    finally:
        viewer.colour_by_source.value = False
        viewer.reference_points.value = False


def test_the_play_button_in_the_page_plays_and_pauses(page, viewer):
    viewer.fps.value = 4.0  # slow enough to read each frame off the page
    assert not viewer.playing and viewer.frame.value == 0
    _click(page, "play")
    try:
        deadline = time.monotonic() + RENDER_S
        while not (viewer.playing and viewer.frame.value != 0):
            assert time.monotonic() < deadline, "the click did not start playback"
            time.sleep(0.02)
        shown = page.wait_for(
            "(() => { const p = [...document.querySelectorAll('p')]"
            ".find(p => p.innerText.startsWith('frame ')); const t = p && p.innerText;"
            " return t && !t.startsWith('frame 0 /') ? t : null; })()",
            RENDER_S,
            "the page's frame caption moving on",
        )
        assert shown.startswith("frame ") and " / 5 · t = " in shown
        _click(page, "pause")
        deadline = time.monotonic() + RENDER_S
        while viewer.playing:
            assert time.monotonic() < deadline, "the second click did not pause"
            time.sleep(0.02)
        expected = frame_caption(int(viewer.frame.value), 5, viewer.scene_fps)
        page.wait_for(f"document.body.innerText.includes({expected!r})", RENDER_S, expected)
        assert _caption(page) == expected
        _shot_until(page, "paused", lambda pixels, mask: True)
    finally:
        viewer.pause()
        viewer.frame.value = 0


# ------------------------------------------------------------------------- README picture


def _readme_picture(path: Path) -> None:
    """A 24-frame 64 × 64 clip against its truth, the prediction's cameras and depth off by a
    similarity and noise, aligned back (``align=True``), clouds cumulative by source."""
    truth = render_clip(2, num_frames=24, height=64, width=64)
    generator = torch.Generator().manual_seed(0)
    c2w = truth.cameras.c2w.clone()
    c2w[:, :3, 3] = 0.6 * c2w[:, :3, 3] + 0.02 * torch.randn(
        c2w[:, :3, 3].shape, generator=generator
    )
    depth = truth.depth * 0.6 * (1 + 0.03 * torch.randn(truth.depth.shape, generator=generator))
    predicted = dataclasses.replace(
        truth, cameras=Cameras(truth.cameras.K, c2w), depth=depth * (truth.depth > 0)
    )
    viewer = show_scene(
        predicted,
        reference=truth,
        align=True,
        labels=("prediction", "truth"),
        port=0,
        host="127.0.0.1",
        frustum_depth=0.18,
    )
    try:
        with Browser(chromium_binary(), timeout=RENDER_S) as browser:
            browser.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=720,
                deviceScaleFactor=1,
                mobile=False,
            )
            browser.navigate(f"http://127.0.0.1:{viewer.server.get_port()}/")
            browser.wait_for("document.body.innerText.includes('frame 0 / 24')", RENDER_S, "panel")
            browser.evaluate(f"document.head.insertAdjacentHTML('beforeend', {_NO_TOASTS!r})")
            # Behind and above the cameras, looking past the cloud's centre so that the
            # picture sits left of the panel.
            cloud = np.concatenate([c.points for c in viewer.scene.points]).mean(0)
            middle = truth.cameras.centers.double().mean(0).numpy()
            right, down, forward = truth.cameras.R[0].double().numpy().T
            for client in viewer.server.get_clients().values():
                client.camera.look_at = cloud + 0.8 * right + 0.3 * down
                client.camera.position = middle - 3.6 * forward - 2.4 * down + 0.6 * right
            viewer.cumulative.value = True
            viewer.frame.value = 23
            time.sleep(3)
            png = browser.screenshot()
    finally:
        viewer.close()
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    _readme_picture(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/viewer.png"))
