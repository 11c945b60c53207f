"""Writing files so that a crash never leaves a truncated one behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` (parent folders created) renamed onto it when the block
    ends without error; on error it is removed and ``path`` is left as it was.

    suffix: the temporary name's ending, for writers that pick the format from it (".mp4").
    The temporary file is created by whoever writes it, so it gets the usual permissions (umask),
    not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex}{suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
