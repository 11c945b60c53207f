"""An interactive 4D viewer in the browser: a scene's point clouds, cameras and trajectory (viser).

One point cloud per frame (the frame's valid depth pixels unprojected into the world, in their
RGB colours or their source's colour, at most ``max_points_per_frame`` of them) under a frame
slider that shows one frame, or every frame up to it; a camera frustum per frame, textured with
that frame's RGB, the current one drawn thicker; the trajectory as a line through the camera
centres. Playback (play / pause, fps, loop), the frame's index and time, a point-size slider and
a legend sit in the GUI panel (``any4d.viz.viewer_controls``). An optional ``reference`` scene
(e.g. the true cameras against predicted ones) is drawn beside it in another colour — in the
same world frame, or moved onto it with ``align=True`` (``any4d.viz.scene_align``).

Viser takes poses in the world frame it is given and draws cameras in OpenCV axes, our
convention (DESIGN §1), so a camera-to-world ``c2w`` becomes ``wxyz`` = the quaternion of its
rotation and ``position`` = its centre unchanged. The scene's "up" is the first camera's ``−y``
(OpenCV image y points down).

Needs the ``viewer`` extra (``pip install "any4d[viewer]"``); viser is imported only here,
inside the functions, so importing ``any4d.viz`` never requires it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from any4d.data.scene import Scene
from any4d.geometry.cameras import Cameras
from any4d.viz.exports_geometry import scene_point_cloud, subsample_points
from any4d.viz.scene_align import align_scene
from any4d.viz.viewer_controls import LINE_PX, SceneNodes, Viewer, add_controls

if TYPE_CHECKING:
    import viser

# Colours of the scene's and the reference's cameras, as in ``plot_cameras`` (tab:red, tab:blue).
SCENE_COLOUR = (214, 39, 40)
REFERENCE_COLOUR = (31, 119, 180)
# Frustum z-depth when none is given: this fraction of the largest side of the trajectory's
# bounding box (as ``plot_cameras``); for a static camera this fraction of the median depth.
_DEPTH_FRACTION = 0.15
# Points per frame's cloud by default: every cloud travels to the browser when the viewer
# opens, so 300 frames of 240 × 320 pixels would be 23 M points (350 MB) without a budget.
MAX_POINTS_PER_FRAME = 50_000
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


def add_scene(
    server: viser.ViserServer,
    scene: Scene,
    *,
    reference: Scene | None = None,
    labels: tuple[str, str] = ("prediction", "reference"),
    align: bool = False,
    point_stride: int = 1,
    max_depth: float | None = None,
    max_points_per_frame: int | None = MAX_POINTS_PER_FRAME,
    frustum_depth: float | None = None,
    point_size: float | None = None,
    fps: float | None = None,
    loop: bool = True,
    colour_by_source: bool = False,
    frustum_images: bool = True,
) -> Viewer:
    """Draw ``scene`` (and ``reference``) into a running viser server; returns the ``Viewer``.

    scene: needs cameras; its depth, when present, gives the point clouds. reference: another
    scene with cameras in the same world frame, drawn in blue (its clouds behind a checkbox).
    labels: the legend's names of scene and reference. align: first move the scene onto the
    reference (needs one with as many frames) by the Sim(3) of the camera centres that the pose
    metrics fit — cameras and depth together, so its points follow (``scene_align``).
    point_stride, max_depth: as ``scene_point_cloud`` (every ``point_stride``-th pixel; drop
    depths beyond ``max_depth`` metres). max_points_per_frame: at most this many points in each
    frame's cloud, a seeded uniform draw per frame (``subsample_points``; the same points every
    time); None keeps all — a long clip's clouds all travel to the browser at once.
    frustum_depth: z-depth of the frustums' image planes in scene units; default 15 % of the
    largest side of the trajectory's bounding box (for a static camera 15 % of the median
    depth, else 1). point_size: world units, of every cloud; default the footprint of
    ``point_stride`` pixels at the scene's median depth. fps: initial playback rate (default
    ``scene.fps``); loop: playback wraps to frame 0 (else stops at the last frame).
    colour_by_source: start with the clouds in their source's colour (red scene, blue
    reference) instead of their RGB — off by default, as the RGB is what one looks at first and
    the reference's clouds start hidden; the checkbox switches it. frustum_images: texture each
    frustum with its frame's RGB (subsampled to ≤ 256 pixels a side).
    """
    _import_viser()
    _check_scene(scene, "scene")
    if reference is not None:
        _check_scene(reference, "reference")
    labels = _check_labels(labels)
    if align:
        if reference is None:
            raise ValueError("align=True needs a reference (expected the scene to align onto)")
        scene = align_scene(scene, reference)
    if frustum_depth is None:
        frustum_depth = _default_frustum_depth(scene)
    else:
        _check_positive(frustum_depth, "frustum_depth", "a positive finite depth")
    if isinstance(point_stride, bool) or not isinstance(point_stride, int) or point_stride < 1:
        raise ValueError(f"point_stride is {point_stride!r} (expected an integer ≥ 1)")
    if max_points_per_frame is not None and (
        isinstance(max_points_per_frame, bool)
        or not isinstance(max_points_per_frame, (int, np.integer))
        or max_points_per_frame < 1
    ):
        raise ValueError(
            f"max_points_per_frame is {max_points_per_frame!r} (expected an integer ≥ 1 or None)"
        )
    if point_size is None:
        point_size = _default_point_size(scene, point_stride)
    _check_positive(point_size, "point_size", "a positive finite size")
    fps = scene.fps if fps is None else _check_positive(fps, "fps", "a positive finite rate")

    K0, c2w0 = (value[0] for value in _cameras_numpy(scene.cameras, "scene cameras"))
    up = -c2w0[:3, 1]  # OpenCV y points down the image
    server.scene.set_up_direction(up)
    _set_initial_camera(server, scene, K0, c2w0, frustum_depth)

    drawn = {}
    for name, shown, colour, label in (
        ("scene", scene, SCENE_COLOUR, labels[0]),
        ("reference", reference, REFERENCE_COLOUR, labels[1]),
    ):
        if shown is not None:
            drawn[name] = _add_nodes(
                server,
                shown,
                SceneNodes(colour, label),
                f"/{name}",
                point_stride=point_stride,
                max_depth=max_depth,
                max_points=max_points_per_frame,
                frustum_depth=float(frustum_depth),
                point_size=float(point_size),
                frustum_images=frustum_images,
            )
    return add_controls(
        server,
        drawn["scene"],
        drawn.get("reference"),
        scene_fps=float(scene.fps),
        fps=float(fps),
        loop=loop,
        point_size=float(point_size),
        colour_by_source=colour_by_source,
    )


def show_scene(
    scene: Scene,
    *,
    port: int = 8080,
    host: str = "localhost",
    server: viser.ViserServer | None = None,
    **options,
) -> Viewer:
    """Serve ``scene`` in an interactive browser viewer; returns its ``Viewer`` at once.

    The server runs in background threads: the call does not block, so keep the process alive
    (e.g. ``time.sleep``) for as long as you look, and ``viewer.close()`` when done (it stops
    the server this call started). port: where to serve (0: any free port; viser moves on to
    the next one when it is taken — see ``viewer.server.get_port()``). host: ``"0.0.0.0"``
    serves other machines too. server: draw into this running ``viser.ViserServer`` instead of
    starting one (port and host are then ignored; ``close()`` leaves it running). options:
    ``add_scene``'s keywords — reference, labels, align, point_stride, max_depth,
    max_points_per_frame, frustum_depth, point_size, fps, loop, colour_by_source,
    frustum_images.

    From a shell, ``any4d view scene.safetensors [--reference truth.safetensors --align]``; or,
    to try it on a synthetic clip, ``python -c "from any4d.viz.viewer import show_scene;
    from any4d.data.synthetic import render_clip; import time; show_scene(render_clip(0));
    time.sleep(1e9)"`` (one line); then open http://localhost:8080 (through
    ``ssh -L 8080:localhost:8080 host`` when the machine is remote). Ctrl-C stops it.
    """
    _check_scene(scene, "scene")  # before a server is started for nothing
    reference = options.get("reference")
    if options.get("align") and reference is None:
        raise ValueError("align=True needs a reference (expected the scene to align onto)")
    if options.get("align") and reference.num_frames != scene.num_frames:
        align_scene(scene, reference)  # raises, naming both frame counts
    viser = _import_viser()
    owns_server = server is None
    if owns_server:
        server = viser.ViserServer(host=host, port=port, verbose=False)
    try:
        viewer = add_scene(server, scene, **options)
    except BaseException:
        if owns_server:
            server.stop()
        raise
    viewer.owns_server = owns_server  # close() then stops it
    return viewer


# ----------------------------------------------------------------------------------- helpers


def _check_scene(scene: Scene, name: str) -> Scene:
    if not isinstance(scene, Scene):
        raise TypeError(f"{name} must be a Scene, got {type(scene).__name__}")
    if scene.cameras is None:
        raise ValueError(
            f"{name} provides {scene.modalities} (expected cameras to place it in the world)"
        )
    return scene


def _check_labels(labels) -> tuple[str, str]:
    if (
        not isinstance(labels, (tuple, list))
        or len(labels) != 2
        or not all(isinstance(label, str) and label for label in labels)
    ):
        raise ValueError(
            f"labels is {labels!r} (expected two names: the scene's and the reference's)"
        )
    return tuple(labels)


def _check_positive(value, name: str, expected: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0 < number < math.inf:
        raise ValueError(f"{name} is {value!r} (expected {expected})")
    return number


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
    nodes: SceneNodes,
    prefix: str,
    *,
    point_stride: int,
    max_depth: float | None,
    max_points: int | None,
    frustum_depth: float,
    point_size: float,
    frustum_images: bool,
) -> SceneNodes:
    """Fill ``nodes`` with the scene's clouds (hidden until ``Viewer.update``), frustums and
    trajectory, all under ``prefix``; returns ``nodes``."""
    K, _ = _cameras_numpy(scene.cameras, f"{prefix[1:]} cameras")
    wxyz, position = viser_poses(scene.cameras)
    size = tuple(scene.rgb.shape[-2:])
    for index in range(scene.num_frames):
        if scene.depth is not None:
            points, colors = scene_point_cloud(scene, [index], point_stride, max_depth)
            if max_points is not None:
                # Seeded by the frame: the same points for the same clip, whatever else is drawn.
                generator = torch.Generator().manual_seed(index)
                points, colors = subsample_points(points, colors, int(max_points), generator)
            nodes.rgb.append(colors.numpy())
            nodes.points.append(
                server.scene.add_point_cloud(
                    f"{prefix}/points/{index:05d}",
                    points.numpy(),
                    nodes.rgb[-1],
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
                thickness=LINE_PX,
                thickness_units="screen",
                color=nodes.colour,
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
            colors=nodes.colour,
            thickness=LINE_PX,
            thickness_units="screen",
        )
    return nodes
