"""Camera trajectories as a 3D plot of frustums, predicted against true (DESIGN §6).

A frustum is the pyramid from a camera's centre to the four corners of its image plane at a
chosen z-depth. The plot shows the world's OpenCV axes turned so that the world's ``−y`` (image
up for a level camera) points up on the page: plot axes ``(x, z, −y)``, a proper rotation, so
the picture is never mirrored. Matplotlib is imported only by ``plot_cameras`` and draws on its
Agg canvas directly (no pyplot, no display, no global backend change).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from any4d.geometry.cameras import Cameras
from any4d.io import atomic_path
from any4d.viz.grid import frame_indices
from any4d.viz.scene_align import camera_similarity

# Frustum depth when none is given: this fraction of the largest side of the trajectory's
# bounding box — big enough to see the orientation, small enough that frustums rarely overlap.
_DEPTH_FRACTION = 0.15
_COLOURS = ("tab:red", "tab:blue")  # predicted, reference


def frustum_corners(cameras: Cameras, image_size: tuple[int, int], depth: float) -> Tensor:
    """World points of the image corners at z-depth ``depth``.

    cameras: batch shape (...). image_size: ``(height, width)`` of the grid ``K`` is for.
    The corners are the image's outer pixel edges, continuous coordinates ``(0, 0)``,
    ``(W, 0)``, ``(W, H)``, ``(0, H)`` (pixel ``(u, v)``'s centre is ``(u + 0.5, v + 0.5)``):
    top-left, top-right, bottom-right, bottom-left. Returns (..., 4, 3).
    """
    height, width = _check_size(image_size)
    if not 0 < float(depth) < float("inf"):
        raise ValueError(f"depth is {depth!r} (expected a positive finite z-depth)")
    pixels = torch.tensor(
        [[0.0, 0.0, 1.0], [width, 0.0, 1.0], [width, height, 1.0], [0.0, height, 1.0]],
        dtype=cameras.dtype,
        device=cameras.device,
    )  # (4, 3) homogeneous
    local = depth * pixels @ cameras.K_inv.transpose(-1, -2)  # (..., 4, 3), camera z = depth
    return local @ cameras.R.transpose(-1, -2) + cameras.centers[..., None, :]


def frustum_lines(cameras: Cameras, image_size: tuple[int, int], depth: float) -> Tensor:
    """The 8 edges of every camera's frustum as 3D segments.

    cameras: batch shape (...). image_size: ``(height, width)``. depth: z-depth of the image
    plane (scene units). Returns (..., 8, 2, 3): segment ``k`` runs from ``[..., k, 0]`` to
    ``[..., k, 1]``. Segments 0–3 go from the camera centre (the apex) to the corners of
    ``frustum_corners`` (top-left, top-right, bottom-right, bottom-left); segments 4–7 are the
    image border, corner ``k`` to corner ``k + 1`` (4: the top edge).
    """
    corners = frustum_corners(cameras, image_size, depth)  # (..., 4, 3)
    apex = cameras.centers[..., None, :].expand_as(corners)
    sides = torch.stack([apex, corners], dim=-2)  # (..., 4, 2, 3)
    border = torch.stack([corners, corners.roll(-1, dims=-2)], dim=-2)  # (..., 4, 2, 3)
    return torch.cat([sides, border], dim=-3)


def align_cameras(cameras: Cameras, reference: Cameras) -> Cameras:
    """``cameras`` moved by the similarity that best maps their centres onto ``reference``'s.

    cameras, reference: batch shape (N,), the same N, frame ``i`` against frame ``i``. The
    similarity is ``any4d.viz.scene_align.camera_similarity``: Umeyama's Sim(3) least-squares
    fit of the centres (what the pose metrics use), with its fallback for centres that do not
    fix a rotation; rotations turn with the world and the result is rigid again.
    """
    similarity = camera_similarity(cameras, reference)  # checks the shapes
    c2w = similarity.apply_to_poses(cameras.c2w.double().cpu()).to(cameras.c2w)
    return Cameras.unchecked(cameras.K, c2w)


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size is {image_size!r} (expected (height, width))") from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size is {image_size!r} (expected (height, width) ≥ 1 pixel)")
    return height, width


def _check_cameras(cameras: Cameras, name: str) -> Cameras:
    if not isinstance(cameras, Cameras):
        raise ValueError(f"{name} must be a Cameras, got {type(cameras).__name__}")
    if len(cameras.shape) != 1 or cameras.shape[0] < 1:
        raise ValueError(
            f"{name} have batch shape {tuple(cameras.shape)} (expected (N,) with N ≥ 1)"
        )
    return cameras.to(device="cpu", dtype=torch.float64)


def _to_plot(points: Tensor) -> Tensor:
    """World (..., 3) in OpenCV axes → plot axes ``(x, z, −y)`` (page up = world −y)."""
    return torch.stack([points[..., 0], points[..., 2], -points[..., 1]], dim=-1)


def plot_cameras(
    path: str | os.PathLike,
    cameras: Cameras,
    reference: Cameras | None = None,
    labels: tuple[str, str] = ("predicted", "true"),
    align: bool = False,
    *,
    image_size: tuple[int, int] | None = None,
    depth: float | None = None,
    max_frustums: int = 16,
    width: int = 800,
    height: int = 600,
    title: str | None = None,
) -> Path:
    """A PNG of camera frustums and trajectories, predicted against true, in one 3D plot.

    cameras: batch shape (N,), drawn in red with ``labels[0]``. reference: optional (M,),
    drawn in blue with ``labels[1]``. align: first move ``cameras`` onto ``reference`` by the
    Sim(3) fit of ``align_cameras`` (needs M = N) — predictions are often right only up to a
    similarity. image_size: ``(height, width)`` the intrinsics are for; default twice the
    first camera's principal point ``(2·cy, 2·cx)``. depth: frustum z-depth in scene units;
    default 15 % of the largest side of the plotted centres' bounding box (1 if they all
    coincide). max_frustums: frustums drawn per trajectory, evenly spaced with the first and the
    last; the trajectory line joins every centre and a dot marks the first. Axes are scaled
    equally. width, height: the PNG's size in pixels. Written atomically; returns the path.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plotting cameras needs matplotlib: pip install "any4d[viz]"') from error
    if len(labels) != 2:
        raise ValueError(f"labels is {labels!r} (expected two names: cameras, reference)")
    cameras = _check_cameras(cameras, "cameras")
    if reference is not None:
        reference = _check_cameras(reference, "reference")
    if align:
        if reference is None:
            raise ValueError("align=True needs reference cameras to align to")
        cameras = align_cameras(cameras, reference)
    sets = [(cameras, labels[0], _COLOURS[0])]
    if reference is not None:
        sets.append((reference, labels[1], _COLOURS[1]))

    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    # Margins so that the title and the tick labels of the 3D box stay inside the picture.
    figure.subplots_adjust(left=0.02, right=0.95, bottom=0.04, top=0.92 if title else 0.98)
    axes = figure.add_subplot(projection="3d")
    draw_trajectories(axes, sets, image_size, _DEPTH_FRACTION, max_frustums, depth=depth)
    if title:
        figure.suptitle(title, fontsize=13)

    path = Path(path)
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    return path


def draw_trajectories(
    axes,
    sets: list[tuple[Cameras, str, str]],
    image_size: tuple[int, int] | None,
    depth_fraction: float,
    max_frustums: int,
    *,
    depth: float | None = None,
) -> float:
    """Draw camera sets into a matplotlib 3D ``axes``: frustums, trajectory lines, a dot at the
    first centre, equal axis scales, the plot axes ``(x, z, −y)`` labelled, a legend.

    sets: ``(cameras (N,), label, colour)`` each. image_size: ``(height, width)`` of the
    intrinsics (default twice the first set's principal point). depth: frustum z-depth in scene
    units (default ``depth_fraction`` of the largest side of the centres' bounding box, 1 when
    they coincide). max_frustums: frustums per set, evenly spaced with the first and last.
    Returns the frustum depth used.
    """
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    sets = [(c.to(device="cpu", dtype=torch.float64), label, colour) for c, label, colour in sets]
    first = sets[0][0]
    image_size = _check_size(
        image_size
        if image_size is not None
        else (round(2 * float(first.K[0, 1, 2])), round(2 * float(first.K[0, 0, 2])))
    )
    centres = torch.cat([c.centers for c, _, _ in sets])
    if depth is None:
        extent = float((centres.amax(0) - centres.amin(0)).amax())
        depth = depth_fraction * extent if extent > 0 else 1.0
    points = [centres]
    for group, label, colour in sets:
        shown = group[frame_indices(group.shape[0], max_frustums)]
        lines = frustum_lines(shown, image_size, depth)  # (F, 8, 2, 3)
        points.append(lines.reshape(-1, 3))
        segments = _to_plot(lines).reshape(-1, 2, 3).numpy()
        axes.add_collection3d(Line3DCollection(segments, colors=colour, linewidths=0.8))
        track = _to_plot(group.centers).numpy()
        axes.plot(track[:, 0], track[:, 1], track[:, 2], color=colour, linewidth=1.5, label=label)
        axes.scatter(*track[0], color=colour, s=20)
    # Equal scaling: one cube around everything drawn, and a cubic box.
    everything = _to_plot(torch.cat(points))
    middle = (everything.amax(0) + everything.amin(0)) / 2
    half = max(float((everything.amax(0) - everything.amin(0)).amax()) / 2, 1e-9)
    axes.set_xlim(float(middle[0]) - half, float(middle[0]) + half)
    axes.set_ylim(float(middle[1]) - half, float(middle[1]) + half)
    axes.set_zlim(float(middle[2]) - half, float(middle[2]) + half)
    axes.set_box_aspect((1, 1, 1), zoom=0.85)
    axes.locator_params(nbins=4)  # fewer ticks: their labels would overlap
    axes.tick_params(labelsize=8)
    axes.set_xlabel("x")
    axes.set_ylabel("z (forward)")
    axes.set_zlabel("−y (up)")
    axes.legend(loc="upper right", fontsize=9)
    return depth
