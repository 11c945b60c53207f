"""any4d.io and its copy in any4d.model.checkpoint: one behaviour for atomic writes and JSON."""

from __future__ import annotations

import json
import os

import pytest

import any4d.io
import any4d.model.checkpoint

COPIES = pytest.mark.parametrize(
    "io", [any4d.io, any4d.model.checkpoint], ids=["any4d.io", "model.checkpoint"]
)


def written(io, path, data: bytes) -> tuple[bytes, int]:
    with io.atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return path.read_bytes(), path.stat().st_mode & 0o777


def test_both_copies_write_the_same_content_with_the_same_permissions(tmp_path):
    data = json.dumps({"a": [1, 2]}, indent=2).encode()
    ours = written(any4d.io, tmp_path / "io" / "x.json", data)
    model = written(any4d.model.checkpoint, tmp_path / "model" / "x.json", data)
    assert ours == model == (data, 0o666 & ~umask())


@COPIES
def test_written_file_gets_the_umask_permissions_not_the_writers(io, tmp_path):
    target = tmp_path / "x.bin"
    with io.atomic_path(target) as temporary:
        temporary.write_bytes(b"1")
        temporary.chmod(0o600)  # as mkstemp and safetensors' save_file make it
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()


@COPIES
def test_default_permissions_follow_the_umask_for_files_and_folders(io, tmp_path):
    folder, file = tmp_path / "d", tmp_path / "f"
    folder.mkdir(mode=0o700)
    file.touch(mode=0o600)
    io.default_permissions(folder, directory=True)
    io.default_permissions(file)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask()
    assert file.stat().st_mode & 0o777 == 0o666 & ~umask()


@COPIES
def test_an_error_in_the_block_keeps_the_target_and_leaves_no_temporary(io, tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("before")
    with pytest.raises(RuntimeError, match="disk full"), io.atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "before"
    assert list(tmp_path.iterdir()) == [target]


@COPIES
def test_the_temporary_lies_beside_the_target_and_is_gone_after(io, tmp_path):
    target = tmp_path / "x.txt"
    with io.atomic_path(target) as temporary:
        assert temporary.parent == target.parent and not temporary.exists()
        temporary.write_text("new")
    assert list(tmp_path.iterdir()) == [target] and target.read_text() == "new"


@COPIES
def test_atomic_path_creates_parent_folders(io, tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    with io.atomic_path(target) as temporary:
        temporary.write_text("deep")
    assert target.read_text() == "deep"


@COPIES
def test_atomic_path_respects_the_suffix(io, tmp_path):
    with io.atomic_path(tmp_path / "clip.mp4", suffix=".mp4") as temporary:
        assert temporary.suffix == ".mp4"
        temporary.write_bytes(b"")
    with io.atomic_path(tmp_path / "x.json") as temporary:
        assert temporary.suffix == ".tmp"
        temporary.write_bytes(b"")


@COPIES
def test_read_json_object_reads_an_object(io, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    assert io.read_json_object(path) == {"a": 1}
    assert io.read_json_object(str(path)) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "is not valid JSON"), ("[1, 2]", "must hold a JSON object")],
    ids=["invalid", "not-an-object"],
)
def test_both_copies_give_the_same_read_json_object_errors(tmp_path, text, message):
    path = tmp_path / "x.json"
    path.write_text(text)
    errors = []
    for io in (any4d.io, any4d.model.checkpoint):
        with pytest.raises(ValueError, match=message) as error:
            io.read_json_object(path)
        errors.append(str(error.value))
    assert errors[0] == errors[1] and str(path) in errors[0]


def umask() -> int:
    value = os.umask(0)
    os.umask(value)
    return value
