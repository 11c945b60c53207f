"""File writing and reading every package shares: atomic writes and JSON objects with clear errors.

A neutral module: it imports nothing of any4d, so any package may use it. ``any4d.model`` may
import nothing of any4d (DESIGN §7) and keeps its own copy of ``default_permissions``,
``atomic_path`` and ``read_json_object`` in ``any4d.model.checkpoint``; ``tests/test_io.py``
holds the two copies to one behaviour.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_permissions(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open`` / ``mkdir`` would under the process umask
    (``mkstemp`` / ``mkdtemp`` and safetensors' ``save_file`` make 0600 / 0700), so others on a
    shared machine can read it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` (parent folders created), renamed onto it when the block
    ends without error; on error it is removed and ``path`` is left as it was.

        with atomic_path(out / "points.ply") as temporary:
            write_ply(temporary, ...)

    suffix: the temporary name's ending, for writers that pick the format from it (".mp4").
    The file gets the umask's permissions whoever created it (``default_permissions``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}{suffix}"
    try:
        yield temporary
        default_permissions(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file holding an object; a clear error when it is unreadable or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the file is corrupt") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data
