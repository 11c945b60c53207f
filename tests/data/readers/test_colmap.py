"""COLMAP's cameras.txt: every pinhole-like model parsed, distortion kept and checkable."""

from __future__ import annotations

import pytest
import torch

from any4d.data.readers.colmap import read_cameras_txt, require_undistorted

# camera line (after the id) → (fx, fy, cx, cy), distortion
MODELS = {
    "SIMPLE_PINHOLE 48 32 40 24 16": ((40, 40, 24, 16), ()),
    "PINHOLE 48 32 40 41 24 16": ((40, 41, 24, 16), ()),
    "SIMPLE_RADIAL 48 32 40 24 16 -0.1": ((40, 40, 24, 16), (-0.1,)),
    "RADIAL 48 32 40 24 16 -0.1 0.02": ((40, 40, 24, 16), (-0.1, 0.02)),
    "OPENCV 48 32 40 41 24 16 -0.1 0.02 0.001 0.002": (
        (40, 41, 24, 16),
        (-0.1, 0.02, 0.001, 0.002),
    ),
    "FULL_OPENCV 48 32 40 41 24 16 1 2 3 4 5 6 7 8": ((40, 41, 24, 16), (1, 2, 3, 4, 5, 6, 7, 8)),
    "FOV 48 32 40 41 24 16 0.9": ((40, 41, 24, 16), (0.9,)),
}


def write_cameras_txt(tmp_path, *lines: str):
    path = tmp_path / "cameras.txt"
    path.write_text("# Camera list\n" + "".join(f"{line}\n" for line in lines))
    return path


@pytest.mark.parametrize("line", list(MODELS))
def test_every_pinhole_like_model_gives_its_pinhole_part_and_distortion(tmp_path, line):
    camera = read_cameras_txt(write_cameras_txt(tmp_path, f"7 {line}"))[7]
    (fx, fy, cx, cy), distortion = MODELS[line]
    K = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=torch.float64)
    assert camera.model == line.split()[0] and (camera.height, camera.width) == (32, 48)
    assert torch.equal(camera.K, K) and camera.distortion == distortion


@pytest.mark.parametrize(
    "line",
    [
        "OPENCV_FISHEYE 48 32 40 41 24 16 0 0 0 0",
        "SIMPLE_RADIAL_FISHEYE 48 32 40 24 16 0",
        "RADIAL_FISHEYE 48 32 40 24 16 0 0",
        "THIN_PRISM_FISHEYE 48 32 40 41 24 16 0 0 0 0 0 0 0 0",
    ],
)
def test_fisheye_models_are_refused_even_with_zero_coefficients(tmp_path, line):
    model = line.split()[0]
    message = rf"cameras.txt: camera 3 uses model {model}, a fisheye projection .*image_undistorter"
    with pytest.raises(ValueError, match=message):
        read_cameras_txt(write_cameras_txt(tmp_path, f"3 {line}"))


def test_require_undistorted_names_the_camera_and_model_with_distortion(tmp_path):
    path = write_cameras_txt(
        tmp_path, "1 OPENCV 48 32 40 41 24 16 0 0 0 0", "2 RADIAL 48 32 40 24 16 0 0.02"
    )
    cameras = read_cameras_txt(path)
    require_undistorted({1: cameras[1]}, path)  # all coefficients exactly 0: a pinhole
    message = r"cameras.txt: camera 2 uses model RADIAL with distortion \(0, 0.02\) .*undistort"
    with pytest.raises(ValueError, match=message):
        require_undistorted(cameras, path)
