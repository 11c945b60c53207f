"""An interactive 4D viewer in the browser: a scene's point clouds, cameras and trajectory (viser).

One point cloud per frame (the frame's valid depth pixels unprojected into the world, in their
RGB colours) under a frame slider that shows one frame, or every frame up to it; a camera
frustum per frame, textured with that frame's RGB, the current one drawn thicker; the
trajectory as a line through the camera centres. An optional ``reference`` scene (e.g. the true
cameras against predicted ones) is drawn beside it in another colour — it must share the world
frame (move predictions onto the truth first with ``any4d.viz.align_cameras`` if needed).

Viser takes poses in the world frame it is given and draws cameras in OpenCV axes, our
convention (DESIGN §1), so a camera-to-world ``c2w`` becomes ``wxyz`` = the quaternion of its
rotation and ``position`` = its centre unchanged. The scene's "up" is the first camera's ``−y``
(OpenCV image y points down).

Needs the ``viewer`` extra (``pip install "any4d[viewer]"``); viser is imported only here,
inside the functions, so importing ``any4d.viz`` never requires it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from any4d.data.scene import Scene
from any4d.geometry.cameras import Cameras
from any4d.viz.exports_geometry import scene_point_cloud

if TYPE_CHECKING:
    import viser

# Colours of the scene's and the reference's cameras, as in ``plot_cameras`` (tab:red, tab:blue).
SCENE_COLOUR = (214, 39, 40)
REFERENCE_COLOUR = (31, 119, 180)
# Frustum z-depth when none is given: this fraction of the largest side of the trajectory's
# bounding box (as ``plot_cameras``); for a static camera this fraction of the median depth.
_DEPTH_FRACTION = 0.15
_LINE_PX, _CURRENT_LINE_PX = 1.5, 4.0  # screen-space line widths: other frames, current frame
_IMAGE_SIDE = 256  # frustum textures are subsampled to at most this many pixels on a side


def _import_viser():
    try:
        import viser
    except ImportError as error:
        raise ImportError(
            'the interactive viewer needs viser: pip install "any4d[viewer]"'
        ) from error
    return viser


# ------------------------------------------------------------------------- camera conversion


def viser_poses(cameras: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """Viser node poses of cameras: ``(wxyz (N, 4), position (N, 3))`` float64.

    cameras: batch shape (N,), camera-to-world, OpenCV axes. ``wxyz`` is the unit quaternion
    (scalar first) of each ``c2w`` rotation, ``position`` each camera centre — viser's frustums
    use OpenCV axes too, so no axis flip is needed.
    """
    viser = _import_viser()
    c2w = _cameras_numpy(cameras, "cameras")[1]
    wxyz = np.stack([viser.transforms.SO3.from_matrix(pose[:3, :3]).wxyz for pose in c2w])
    return wxyz, c2w[:, :3, 3].copy()


def frustum_shape(K: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float]:
    """``(fov, aspect)`` of viser's frustum for intrinsics ``K`` (3, 3) on an ``(H, W)`` grid.

    fov: vertical field of view in radians, ``2·atan(H / 2fy)``. aspect: the frustum's width
    over height at unit depth, ``(W / fx) / (H / fy)`` (= W / H for square pixels). Viser draws
    the frustum centred on the optical axis, so a principal point off the image centre is not
    shown.
    """
    height, width = image_size
    fx, fy = float(K[0, 0]), float(K[1, 1])
    return 2.0 * math.atan(height / (2.0 * fy)), (width / fx) / (height / fy)


def frustum_scale(depth: float, fov: float, aspect: float) -> float:
    """Viser's ``scale`` that puts a frustum's image plane at z-depth ``depth``.

    The client normalises the frustum ``(tan(fov/2)·aspect, tan(fov/2), 1)`` to unit volume
    ``∛(x·y·z / 3)`` before multiplying by ``scale`` (``CameraFrustumVariants.tsx``).
    """
    half = math.tan(fov / 2.0)
    return depth * math.cbrt(half * half * aspect / 3.0)


# ---------------------------------------------------------------------------------- viewer


@dataclass(eq=False)
class SceneNodes:
    """The viser scene nodes of one scene, frame ``i`` at index ``i``."""

    points: list[Any] = field(default_factory=list)  # PointCloudHandle; empty without depth
    frustums: list[Any] = field(default_factory=list)  # CameraFrustumHandle
    trajectory: Any | None = None  # LineSegmentsHandle; None for a single frame


@dataclass(eq=False)
class Viewer:
    """A scene (and optional reference) drawn in a viser server, with its GUI controls.

    ``frame`` (slider) and ``cumulative`` (checkbox: every frame up to ``frame``) choose the
    point clouds shown; ``reference_points`` (checkbox, present when the reference has depth)
    toggles the reference's clouds. Assigning ``frame.value`` from Python updates the view too.
    """

    server: Any  # viser.ViserServer
    scene: SceneNodes
    reference: SceneNodes | None
    frame: Any  # GuiSliderHandle[int]
    cumulative: Any  # GuiCheckboxHandle
    reference_points: Any | None = None  # GuiCheckboxHandle

    def update(self) -> None:
        """Show the point clouds and highlight the frustums that the GUI state selects."""
        current = int(self.frame.value)
        for nodes, clouds_on in (
            (self.scene, True),
            (self.reference, self.reference_points is not None and self.reference_points.value),
        ):
            if nodes is None:
                continue
            for index, cloud in enumerate(nodes.points):
                shown = index == current or (self.cumulative.value and index < current)
                cloud.visible = bool(clouds_on and shown)
            for index, frustum in enumerate(nodes.frustums):
                frustum.thickness = _CURRENT_LINE_PX if index == current else _LINE_PX


def add_scene(
    server: viser.ViserServer,
    scene: Scene,
    *,
    reference: Scene | None = None,
    point_stride: int = 1,
    max_depth: float | None = None,
    frustum_depth: float | None = None,
    point_size: float | None = None,
    frustum_images: bool = True,
) -> Viewer:
    """Draw ``scene`` (and ``reference``) into a running viser server; returns the handles.

    scene: needs cameras; its depth, when present, gives the point clouds. reference: another
    scene with cameras in the same world frame, drawn in blue (its clouds behind a checkbox).
    point_stride, max_depth: as ``scene_point_cloud`` (every ``point_stride``-th pixel; drop
    depths beyond ``max_depth`` metres). frustum_depth: z-depth of the frustums' image planes
    in scene units; default 15 % of the largest side of the trajectory's bounding box (for a
    static camera 15 % of the median depth, else 1). point_size: world units; default the
    footprint of ``point_stride`` pixels at the median depth. frustum_images: texture each
    frustum with its frame's RGB (subsampled to ≤ 256 pixels a side).
    """
    _import_viser()
    _check_scene(scene, "scene")
    if reference is not None:
        _check_scene(reference, "reference")
    if frustum_depth is None:
        frustum_depth = _default_frustum_depth(scene)
    elif not 0 < float(frustum_depth) < float("inf"):
        raise ValueError(f"frustum_depth is {frustum_depth!r} (expected a positive finite depth)")
    if isinstance(point_stride, bool) or not isinstance(point_stride, int) or point_stride < 1:
        raise ValueError(f"point_stride is {point_stride!r} (expected an integer ≥ 1)")
    if point_size is not None and not 0 < float(point_size) < float("inf"):
        raise ValueError(f"point_size is {point_size!r} (expected a positive finite size)")

    K0, c2w0 = (value[0] for value in _cameras_numpy(scene.cameras, "scene cameras"))
    up = -c2w0[:3, 1]  # OpenCV y points down the image
    server.scene.set_up_direction(up)
    _set_initial_camera(server, scene, K0, c2w0, frustum_depth)

    drawn = {}
    for name, shown, colour in (
        ("scene", scene, SCENE_COLOUR),
        ("reference", reference, REFERENCE_COLOUR),
    ):
        if shown is None:
            continue
        size = point_size if point_size is not None else _default_point_size(shown, point_stride)
        drawn[name] = _add_nodes(
            server,
            shown,
            f"/{name}",
            colour,
            point_stride=point_stride,
            max_depth=max_depth,
            frustum_depth=float(frustum_depth),
            point_size=size,
            frustum_images=frustum_images,
        )

    with server.gui.add_folder("any4d"):
        frame = server.gui.add_slider(
            "frame", min=0, max=scene.num_frames - 1, step=1, initial_value=0
        )
        cumulative = server.gui.add_checkbox(
            "frames up to it", initial_value=False, hint="show every frame's points up to it"
        )
        reference_points = None
        if "reference" in drawn and drawn["reference"].points:
            reference_points = server.gui.add_checkbox("reference points", initial_value=False)
    viewer = Viewer(
        server, drawn["scene"], drawn.get("reference"), frame, cumulative, reference_points
    )
    for control in (frame, cumulative, reference_points):
        if control is not None:
            control.on_update(lambda _event: viewer.update())
    viewer.update()
    return viewer


def show_scene(
    scene: Scene,
    *,
    reference: Scene | None = None,
    port: int = 8080,
    host: str = "localhost",
    point_stride: int = 1,
    max_depth: float | None = None,
    frustum_depth: float | None = None,
    server: viser.ViserServer | None = None,
) -> viser.ViserServer:
    """Serve ``scene`` in an interactive browser viewer; returns the running server at once.

    The server runs in background threads: the call does not block, so keep the process alive
    (e.g. ``time.sleep``) for as long as you look, and ``server.stop()`` when done. port: where
    to serve (0: any free port; viser moves on to the next one when it is taken — see
    ``server.get_port()``). host: ``"0.0.0.0"`` serves other machines too. server: draw into this
    running ``viser.ViserServer`` instead of starting one (port and host are then ignored).
    reference, point_stride, max_depth, frustum_depth: as ``add_scene``, which also returns
    the node and GUI handles.

    From a shell::

        python -c "from any4d.viz.viewer import show_scene; from any4d.data import Scene; \\
            import time; show_scene(Scene.load('scene.safetensors'), point_stride=2); \\
            time.sleep(1e9)"

    or, to try it on a synthetic clip, ``python -c "from any4d.viz.viewer import show_scene;
    from any4d.data.synthetic import render_clip; import time; show_scene(render_clip(0));
    time.sleep(1e9)"`` (one line); then open http://localhost:8080 (through
    ``ssh -L 8080:localhost:8080 host`` when the machine is remote). Ctrl-C stops it.
    """
    _check_scene(scene, "scene")  # before a server is started for nothing
    viser = _import_viser()
    if server is None:
        server = viser.ViserServer(host=host, port=port)
    add_scene(
        server,
        scene,
        reference=reference,
        point_stride=point_stride,
        max_depth=max_depth,
        frustum_depth=frustum_depth,
    )
    return server


# ----------------------------------------------------------------------------------- helpers


def _check_scene(scene: Scene, name: str) -> Scene:
    if not isinstance(scene, Scene):
        raise TypeError(f"{name} must be a Scene, got {type(scene).__name__}")
    if scene.cameras is None:
        raise ValueError(
            f"{name} provides {scene.modalities} (expected cameras to place it in the world)"
        )
    return scene


def _cameras_numpy(cameras: Cameras, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(K (N, 3, 3), c2w (N, 4, 4))`` float64 numpy of cameras with batch shape (N,)."""
    if not isinstance(cameras, Cameras):
        raise TypeError(f"{name} must be a Cameras, got {type(cameras).__name__}")
    if len(cameras.shape) != 1:
        raise ValueError(f"{name} have batch shape {tuple(cameras.shape)} (expected (N,))")
    cameras = cameras.to(device="cpu", dtype=torch.float64)
    return cameras.K.numpy(), cameras.c2w.numpy()


def _median_depth(scene: Scene) -> float | None:
    if scene.depth is None:
        return None
    valid = scene.depth[scene.depth > 0]
    return float(valid.float().median()) if valid.numel() else None


def _default_frustum_depth(scene: Scene) -> float:
    centres = scene.cameras.centers.double()
    extent = float((centres.amax(0) - centres.amin(0)).max())
    if extent > 0:
        return _DEPTH_FRACTION * extent
    median = _median_depth(scene)
    return _DEPTH_FRACTION * median if median else 1.0


def _default_point_size(scene: Scene, stride: int) -> float:
    """The width of ``stride`` pixels at the median depth (pixels then roughly touch)."""
    median = _median_depth(scene) or 1.0
    K = scene.cameras.K.double()
    focal = float((K[:, 0, 0] + K[:, 1, 1]).mean() / 2)
    return median * stride / focal


def _frame_image(rgb: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] → (H', W', 3) uint8, subsampled to ≤ ``_IMAGE_SIDE`` a side."""
    step = max(1, math.ceil(max(rgb.shape[-2:]) / _IMAGE_SIDE))
    image = ((rgb[:, ::step, ::step].float() + 1) * 127.5).round().clamp(0, 255)
    return image.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _set_initial_camera(server, scene: Scene, K0, c2w0, frustum_depth: float) -> None:
    """Start the browser's view behind and above the first camera, looking where it looks."""
    distance = _median_depth(scene) or 4 * frustum_depth
    centre, forward, down = c2w0[:3, 3], c2w0[:3, 2], c2w0[:3, 1]
    server.initial_camera.look_at = centre + distance * forward
    server.initial_camera.position = centre - 0.5 * distance * forward - 0.25 * distance * down
    server.initial_camera.fov = frustum_shape(K0, scene.rgb.shape[-2:])[0]


def _add_nodes(
    server,
    scene: Scene,
    prefix: str,
    colour: tuple[int, int, int],
    *,
    point_stride: int,
    max_depth: float | None,
    frustum_depth: float,
    point_size: float,
    frustum_images: bool,
) -> SceneNodes:
    nodes = SceneNodes()
    K, _ = _cameras_numpy(scene.cameras, f"{prefix[1:]} cameras")
    wxyz, position = viser_poses(scene.cameras)
    size = tuple(scene.rgb.shape[-2:])
    for index in range(scene.num_frames):
        if scene.depth is not None:
            points, colors = scene_point_cloud(scene, [index], point_stride, max_depth)
            nodes.points.append(
                server.scene.add_point_cloud(
                    f"{prefix}/points/{index:05d}",
                    points.numpy(),
                    colors.numpy(),
                    point_size=point_size,
                    precision="float32",  # float16 keeps ~3 digits: cm errors at metres
                    point_shading="flat",
                    visible=False,
                )
            )
        fov, aspect = frustum_shape(K[index], size)
        nodes.frustums.append(
            server.scene.add_camera_frustum(
                f"{prefix}/cameras/{index:05d}",
                fov=fov,
                aspect=aspect,
                scale=frustum_scale(frustum_depth, fov, aspect),
                thickness=_LINE_PX,
                thickness_units="screen",
                color=colour,
                image=_frame_image(scene.rgb[index]) if frustum_images else None,
                wxyz=wxyz[index],
                position=position[index],
            )
        )
    if scene.num_frames > 1:
        segments = np.stack([position[:-1], position[1:]], axis=1)  # (N-1, 2, 3)
        nodes.trajectory = server.scene.add_line_segments(
            f"{prefix}/trajectory",
            segments.astype(np.float32),
            colors=colour,
            thickness=_LINE_PX,
            thickness_units="screen",
        )
    return nodes
