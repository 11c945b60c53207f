"""Every file any4d writes goes through a temporary beside it and gets the umask's permissions."""

import os

import pytest
import torch

from any4d.data import Scene
from any4d.io import atomic_path
from any4d.viz.frustums import plot_cameras
from any4d.viz.video import save_video
from tests.cameras_factory import random_cameras


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_written_files_get_the_umask_permissions_and_leave_no_temporary(tmp_path):
    cameras = random_cameras((3,), seed=0, height=8, width=8, dtype=torch.float32)
    scene = Scene(rgb=torch.zeros(3, 3, 8, 8), cameras=cameras)
    written = [
        scene.save(tmp_path / "scene.safetensors"),
        save_video(tmp_path / "clip.mp4", torch.zeros(3, 3, 8, 8)),
        save_video(tmp_path / "clip.gif", torch.zeros(3, 3, 8, 8)),
        plot_cameras(tmp_path / "cameras.png", cameras),
    ]
    for path in written:
        assert path.stat().st_mode & 0o777 == _umask_mode(), path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_atomic_path_keeps_the_target_when_writing_fails(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    with atomic_path(target, suffix=".txt") as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".txt"
        temporary.write_text("first")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "first" and list(target.parent.iterdir()) == [target]
