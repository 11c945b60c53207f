"""Point clouds (.ply) and depth files (.npz, 16-bit PNG): round trips, headers other tools
expect, atomic writes and bad inputs."""

from __future__ import annotations

import zipfile
from functools import lru_cache

import numpy as np
import pytest
import torch
from PIL import Image

from any4d.data import Scene
from any4d.data.readers.decode import read_uint16_png
from any4d.data.synthetic import render_clip
from any4d.geometry import Cameras, project
from any4d.io import atomic_path
from any4d.viz.exports_geometry import (
    DepthNpzWriter,
    PlyWriter,
    read_depth_npz,
    read_depth_png16,
    read_ply,
    scene_point_cloud,
    subsample_points,
    write_depth_npz,
    write_depth_png16,
    write_ply,
)

T, H, W = 4, 24, 32


@lru_cache(maxsize=2)
def _scene(seed: int = 0) -> Scene:
    return render_clip(seed, num_frames=T, height=H, width=W)


def _cloud(count: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(count, 3, generator=generator) * 10
    colors = torch.randint(0, 256, (count, 3), generator=generator, dtype=torch.uint8)
    return points, colors


# ------------------------------------------------------------------------------ point clouds


def test_point_cloud_projects_back_onto_its_pixels_at_its_depth():
    scene = _scene()
    points, colors = scene_point_cloud(scene)
    assert points.shape == (T * H * W, 3) and points.dtype == torch.float32
    assert colors.shape == (T * H * W, 3) and colors.dtype == torch.uint8
    grid = points.reshape(T, H, W, 3).permute(0, 3, 1, 2)  # (T, 3, H, W)
    uv, z = project(grid.double(), scene.cameras.to(dtype=torch.float64))
    u, v = torch.meshgrid(torch.arange(W) + 0.5, torch.arange(H) + 0.5, indexing="xy")
    torch.testing.assert_close(uv[:, 0], u.double().expand(T, H, W), atol=1e-3, rtol=0)
    torch.testing.assert_close(uv[:, 1], v.double().expand(T, H, W), atol=1e-3, rtol=0)
    torch.testing.assert_close(z.float(), scene.depth, atol=1e-4, rtol=1e-5)


def test_point_cloud_colours_are_the_frames_rgb_as_uint8():
    scene = _scene()
    _, colors = scene_point_cloud(scene)
    expected = ((scene.rgb + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(colors, expected.permute(0, 2, 3, 1).reshape(-1, 3))


def test_point_cloud_of_a_fronto_parallel_plane_has_known_coordinates():
    scene = _scene()
    c2w = torch.eye(4).expand(1, 4, 4)
    cameras = Cameras.from_intrinsics(10.0, 20.0, W / 2, H / 2, c2w)
    plane = Scene(scene.rgb[:1], torch.full((1, 1, H, W), 2.0), cameras)
    points, _ = scene_point_cloud(plane)
    assert torch.equal(points[:, 2], torch.full((H * W,), 2.0))
    # top-left pixel centre (0.5, 0.5): x = (0.5 − cx) / fx · z, y = (0.5 − cy) / fy · z
    expected = torch.tensor([(0.5 - W / 2) / 10 * 2, (0.5 - H / 2) / 20 * 2, 2.0])
    torch.testing.assert_close(points[0], expected)


def test_point_cloud_frames_stride_and_max_depth_select_pixels():
    scene = _scene()
    full, _ = scene_point_cloud(scene)
    full = full.reshape(T, H, W, 3)
    points, _ = scene_point_cloud(scene, frames=[-1, 1], stride=3)
    expected = torch.cat([full[3, ::3, ::3].reshape(-1, 3), full[1, ::3, ::3].reshape(-1, 3)])
    torch.testing.assert_close(points, expected)
    limit = float(scene.depth.median())
    near, _ = scene_point_cloud(scene, max_depth=limit)
    assert len(near) == int((scene.depth <= limit).sum())


def test_point_cloud_skips_invalid_depth():
    scene = _scene()
    depth = scene.depth.clone()
    depth[:, :, :5] = 0
    points, colors = scene_point_cloud(Scene(scene.rgb, depth, scene.cameras))
    assert len(points) == len(colors) == T * (H - 5) * W


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stride": 0}, "stride is 0"),
        ({"max_depth": -1.0}, "max_depth is -1.0"),
        ({"frames": [T]}, f"frames holds {T}"),
    ],
)
def test_point_cloud_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scene_point_cloud(_scene(), **kwargs)


def test_point_cloud_needs_depth_and_cameras():
    scene = _scene()
    with pytest.raises(ValueError, match="expected depth and cameras"):
        scene_point_cloud(Scene(scene.rgb, None, scene.cameras))
    with pytest.raises(ValueError, match="expected depth and cameras"):
        scene_point_cloud(Scene(scene.rgb, scene.depth, None))


# ------------------------------------------------------------------------------------- PLY


@pytest.mark.parametrize("with_colors", [True, False])
def test_ply_round_trip_is_exact(tmp_path, with_colors):
    points, colors = _cloud()
    path = write_ply(tmp_path / "nested" / "cloud.ply", points, colors if with_colors else None)
    read_points, read_colors = read_ply(path)
    assert torch.equal(read_points, points)
    if with_colors:
        assert torch.equal(read_colors, colors)
    else:
        assert read_colors is None


def test_ply_of_a_scene_round_trips(tmp_path):
    points, colors = scene_point_cloud(_scene())
    read_points, read_colors = read_ply(write_ply(tmp_path / "scene.ply", points, colors))
    assert torch.equal(read_points, points) and torch.equal(read_colors, colors)


def test_ply_header_is_what_meshlab_and_open3d_expect(tmp_path):
    points, colors = _cloud(7)
    data = write_ply(tmp_path / "cloud.ply", points, colors).read_bytes()
    header, _, body = data.partition(b"end_header\n")
    lines = [line for line in header.decode("ascii").splitlines() if not line.startswith("comment")]
    assert lines == [
        "ply",
        "format binary_little_endian 1.0",
        "element vertex 7",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
    ]
    assert len(body) == 7 * (3 * 4 + 3)  # packed records, no padding


def test_plyfile_reads_our_ply(tmp_path):
    import plyfile  # dev dependency: the reference PLY reader

    points, colors = _cloud(11)
    ply = plyfile.PlyData.read(str(write_ply(tmp_path / "cloud.ply", points, colors)))
    vertex = ply["vertex"]
    assert not ply.text and ply.byte_order == "<" and vertex.count == 11
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], -1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], -1)
    assert np.array_equal(xyz, points.numpy()) and np.array_equal(rgb, colors.numpy())


@pytest.mark.parametrize(
    "points, colors, match",
    [
        (torch.zeros(5, 2), None, r"points is float32 of shape \(5, 2\)"),
        (torch.zeros(5, 3, dtype=torch.long), None, "expected \\(N, 3\\) floats"),
        (torch.tensor([[0.0, float("nan"), 0.0]]), None, "NaN or inf"),
        (torch.zeros(5, 3), torch.zeros(4, 3, dtype=torch.uint8), r"colors is uint8 of shape"),
        (torch.zeros(5, 3), torch.zeros(5, 3), r"colors is float32 .*expected uint8"),
    ],
)
def test_ply_rejects_bad_inputs(tmp_path, points, colors, match):
    with pytest.raises(ValueError, match=match):
        write_ply(tmp_path / "bad.ply", points, colors)
    assert not (tmp_path / "bad.ply").exists()


@pytest.mark.parametrize("with_colors", [True, False])
def test_ply_writer_in_chunks_writes_the_file_write_ply_writes(tmp_path, with_colors):
    chunks = [_cloud(count, seed) for seed, count in enumerate([20, 0, 7, 33])]
    with PlyWriter(tmp_path / "nested" / "chunks.ply") as ply:
        for points, colors in chunks:
            ply.add(points, colors if with_colors else None)
    assert ply.count == 60
    points, colors = (torch.cat(parts) for parts in zip(*chunks, strict=True))
    whole = write_ply(tmp_path / "whole.ply", points, colors if with_colors else None)
    assert (tmp_path / "nested" / "chunks.ply").read_bytes() == whole.read_bytes()
    read_points, read_colors = read_ply(tmp_path / "nested" / "chunks.ply")
    assert torch.equal(read_points, points)
    assert torch.equal(read_colors, colors) if with_colors else read_colors is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["chunks.ply", "nested", "whole.ply"]


def test_plyfile_reads_a_ply_written_in_chunks(tmp_path):
    plyfile = pytest.importorskip("plyfile")  # dev dependency: the reference PLY reader
    (a, a_rgb), (b, b_rgb) = _cloud(5, 0), _cloud(6, 1)
    with PlyWriter(tmp_path / "cloud.ply") as ply:
        ply.add(a, a_rgb)
        ply.add(b.numpy(), b_rgb.numpy())
    vertex = plyfile.PlyData.read(str(tmp_path / "cloud.ply"))["vertex"]
    assert vertex.count == 11
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], -1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], -1)
    assert np.array_equal(xyz, torch.cat([a, b]).numpy())
    assert np.array_equal(rgb, torch.cat([a_rgb, b_rgb]).numpy())


def test_ply_writer_without_points_writes_the_empty_ply_write_ply_writes(tmp_path):
    with PlyWriter(tmp_path / "empty.ply"):
        pass
    empty = write_ply(tmp_path / "whole.ply", torch.zeros(0, 3))
    assert (tmp_path / "empty.ply").read_bytes() == empty.read_bytes()
    points, colors = read_ply(tmp_path / "empty.ply")
    assert points.shape == (0, 3) and colors is None


@pytest.mark.parametrize("first_colored", [True, False])
def test_ply_writer_rejects_adds_that_disagree_on_colours(tmp_path, first_colored):
    points, colors = _cloud(4)
    with pytest.raises(ValueError, match="expected every add to agree"):
        with PlyWriter(tmp_path / "cloud.ply") as ply:
            ply.add(points, colors if first_colored else None)
            ply.add(points, None if first_colored else colors)
    assert list(tmp_path.iterdir()) == []


def test_ply_writer_leaves_nothing_when_its_block_fails(tmp_path):
    path = tmp_path / "cloud.ply"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"), PlyWriter(path) as ply:
        ply.add(*_cloud(8))
        raise RuntimeError("crash mid-clip")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cloud.ply"]


# -------------------------------------------------------------------------- point budget


def test_subsample_points_keeps_budget_distinct_rows_in_order():
    points, colors = _cloud(100)
    kept, kept_colors = subsample_points(points, colors, 30, torch.Generator().manual_seed(1))
    assert kept.shape == (30, 3) and kept_colors.shape == (30, 3)
    rows = [int(torch.nonzero((points == row).all(-1))[0]) for row in kept]
    assert rows == sorted(set(rows))  # distinct original rows, original order
    assert torch.equal(kept_colors, colors[rows])


def test_subsample_points_is_deterministic_given_a_generator():
    points, colors = _cloud(100)
    runs = [
        subsample_points(points, colors, 10, torch.Generator().manual_seed(seed))
        for seed in (3, 3, 4)
    ]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0], runs[2][0])


def test_subsample_points_is_uniform_over_the_rows():
    points = torch.arange(10.0)[:, None].expand(10, 3)
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(10)
    for _ in range(2000):
        kept, _ = subsample_points(points, None, 3, generator)
        counts[kept[:, 0].long()] += 1
    assert float((counts / 2000 - 0.3).abs().max()) < 0.05  # each row kept 3 times in 10


def test_subsample_points_under_budget_keeps_everything_and_numpy_works():
    points, colors = _cloud(5)
    kept, kept_colors = subsample_points(points, colors, 5)
    assert kept is points and kept_colors is colors
    kept, kept_colors = subsample_points(points.numpy(), None, 2)
    assert isinstance(kept, np.ndarray) and kept.shape == (2, 3) and kept_colors is None


@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_subsample_points_rejects_a_bad_budget(budget):
    with pytest.raises(ValueError, match="budget is"):
        subsample_points(*_cloud(5), budget)


def test_read_ply_names_the_file_it_cannot_read(tmp_path):
    path = tmp_path / "ascii.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n0\n")
    with pytest.raises(ValueError, match="ascii.ply: has format 'ascii'"):
        read_ply(path)
    with pytest.raises(FileNotFoundError, match="missing.ply"):
        read_ply(tmp_path / "missing.ply")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "cloud.ply"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        temporary.write_bytes(b"half a fi")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cloud.ply"]


# ------------------------------------------------------------------------------------- depth


@pytest.mark.parametrize("shape", [(H, W), (T, 1, H, W)])
def test_depth_npz_round_trip_is_exact(tmp_path, shape):
    depth = _scene().depth[: 1 if len(shape) == 2 else T].reshape(shape).clone()
    depth.view(-1)[::7] = 0
    read = read_depth_npz(write_depth_npz(tmp_path / "d" / "depth.npz", depth))
    assert read.dtype == torch.float32 and torch.equal(read, depth)
    assert np.array_equal(np.load(tmp_path / "d" / "depth.npz")["depth"], depth.numpy())


def _clip_depth(count: int = 7, height: int = H, width: int = W) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    depth = torch.rand(count, height, width, generator=generator) * 20
    depth.view(-1)[::5] = 0  # invalid pixels
    return depth


def test_depth_npz_writer_in_chunks_writes_what_write_depth_npz_writes(tmp_path):
    depth = _clip_depth()
    with DepthNpzWriter(tmp_path / "d" / "chunks.npz", 7, H, W) as npz:
        npz.write(depth[:3])
        npz.write(depth[3:4, None].numpy())  # (n, 1, H, W), numpy
        npz.write(depth[4:].double())
    path, whole = tmp_path / "d" / "chunks.npz", write_depth_npz(tmp_path / "whole.npz", depth)
    assert np.array_equal(np.load(path)["depth"], depth.numpy())
    read = read_depth_npz(path)
    assert read.dtype == torch.float32 and torch.equal(read, depth)
    with zipfile.ZipFile(path) as chunks, zipfile.ZipFile(whole) as reference:
        assert chunks.namelist() == reference.namelist() == ["depth.npy"]
        assert chunks.read("depth.npy") == reference.read("depth.npy")  # header and data
        assert chunks.getinfo("depth.npy").compress_type == zipfile.ZIP_DEFLATED
        assert reference.getinfo("depth.npy").compress_type == zipfile.ZIP_DEFLATED
    assert [p.name for p in path.parent.iterdir()] == ["chunks.npz"]


@pytest.mark.parametrize("chunks", [[3], [3, 3, 3]])
def test_depth_npz_writer_with_the_wrong_frame_count_raises_and_leaves_nothing(tmp_path, chunks):
    depth = _clip_depth(9)
    with pytest.raises(ValueError, match="expected num_frames = 7"):
        with DepthNpzWriter(tmp_path / "depth.npz", 7, H, W) as npz:
            start = 0
            for count in chunks:
                npz.write(depth[start : start + count])
                start += count
    assert list(tmp_path.iterdir()) == []


def test_depth_npz_writer_refuses_frames_past_num_frames_without_writing_them(tmp_path):
    depth = _clip_depth(9)
    with DepthNpzWriter(tmp_path / "depth.npz", 7, H, W) as npz:
        npz.write(depth[:6])
        with pytest.raises(ValueError, match=r"to 9 \(expected num_frames = 7 in all\)"):
            npz.write(depth[6:])
        npz.write(depth[6:7])
    assert torch.equal(read_depth_npz(tmp_path / "depth.npz"), depth[:7])


def test_depth_npz_writer_leaves_nothing_when_its_block_fails(tmp_path):
    path = tmp_path / "depth.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with DepthNpzWriter(path, 2, H, W) as npz:
            npz.write(_clip_depth(1))
            raise RuntimeError("crash mid-clip")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["depth.npz"]


@pytest.mark.parametrize(
    "depth, match",
    [
        (torch.ones(2, H, W + 1), rf"shape \(2, {H}, {W + 1}\) \(expected \(n, {H}, {W}\)"),
        (torch.ones(2, 3, H, W), r"expected \(n, 24, 32\) or \(n, 1, 24, 32\)"),
        (torch.ones(H, W), rf"shape \({H}, {W}\)"),
        (torch.full((1, H, W), -1.0), "negative values"),
        (torch.full((1, H, W), float("nan")), "NaN or inf"),
    ],
)
def test_depth_npz_writer_rejects_bad_frames(tmp_path, depth, match):
    with pytest.raises(ValueError, match=match):
        with DepthNpzWriter(tmp_path / "depth.npz", 2, H, W) as npz:
            npz.write(depth)
    assert list(tmp_path.iterdir()) == []


def test_depth_npz_writer_rejects_a_bad_shape(tmp_path):
    with pytest.raises(ValueError, match="num_frames is 0"):
        DepthNpzWriter(tmp_path / "depth.npz", 0, H, W)
    with pytest.raises(ValueError, match="width is 2.0"):
        DepthNpzWriter(tmp_path / "depth.npz", 1, H, 2.0)


def test_depth_png16_round_trip_is_within_half_a_millimetre(tmp_path):
    depth = _scene().depth[0, 0].clone()
    depth[:3] = 0
    path = write_depth_png16(tmp_path / "d" / "depth.png", depth)
    with Image.open(path) as image:
        assert image.mode == "I;16" and image.size == (W, H)
    read = read_depth_png16(path)
    assert read.shape == (H, W) and torch.equal(read[:3], torch.zeros(3, W))
    assert float((read - depth).abs().max()) <= 0.0005 + 1e-6
    # the user reader's decoding (UserClip(depth=...)) sees the same millimetre codes
    assert torch.equal(read_uint16_png(path), (depth.double() * 1000).round().int())


def test_depth_png16_honours_its_scale(tmp_path):
    depth = _scene().depth[1, 0]
    read = read_depth_png16(write_depth_png16(tmp_path / "d.png", depth, scale=5000), scale=5000)
    assert float((read - depth).abs().max()) <= 0.5 / 5000 + 1e-6


def test_depth_png16_writes_unrepresentable_depth_as_invalid_with_a_warning(tmp_path):
    depth = torch.tensor([[1.0, 70.0], [0.0001, 0.0]])  # 70 m > 65.535 m; 0.1 mm rounds to 0
    with pytest.warns(UserWarning, match="2 depth pixels outside"):
        path = write_depth_png16(tmp_path / "d.png", depth)
    assert torch.equal(read_depth_png16(path), torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize(
    "depth, match",
    [
        (torch.tensor([[1.0, float("nan")]]), "NaN or inf"),
        (torch.tensor([[1.0, float("inf")]]), "NaN or inf"),
        (torch.tensor([[1.0, -2.0]]), "negative values"),
        (torch.ones(4), r"shape \(4,\)"),
        (torch.ones(2, 2, dtype=torch.int32), "int32"),
    ],
)
def test_depth_writers_reject_bad_depth(tmp_path, depth, match):
    for write, name in ((write_depth_npz, "d.npz"), (write_depth_png16, "d.png")):
        with pytest.raises(ValueError, match=match):
            write(tmp_path / name, depth)
        assert not (tmp_path / name).exists()


def test_depth_png16_rejects_a_clip_and_a_bad_scale(tmp_path):
    with pytest.raises(ValueError, match=r"one \(H, W\) map per PNG"):
        write_depth_png16(tmp_path / "d.png", _scene().depth)
    with pytest.raises(ValueError, match="scale is 0"):
        write_depth_png16(tmp_path / "d.png", torch.ones(2, 2), scale=0)
