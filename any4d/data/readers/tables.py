"""Whitespace-separated numeric text tables (pose and intrinsics files), with errors that name
the file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from any4d.data.readers.decode import CorruptFileError, require_file


def read_table(
    path: Path, header: bool = False, skip: int = 0, columns: int | None = None
) -> np.ndarray:
    """Rows of numbers (float64, shape (N, C)) from a text file.

    header: skip the first line (a row of column names). skip: further leading lines to drop.
    columns: the number every row must have (default: as many as the first row). Blank lines
    and lines starting with ``#`` are ignored.
    """
    require_file(path, "a text table of numbers")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise CorruptFileError(path, f"is not text ({error})") from None
    rows = []
    first = (1 if header else 0) + skip
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = [float(value) for value in line.split()]
        except ValueError:
            raise CorruptFileError(path, f"line {number} is not numbers: {line[:80]!r}") from None
        columns = len(row) if columns is None else columns
        if len(row) != columns:
            raise CorruptFileError(
                path, f"line {number} has {len(row)} values (expected {columns})"
            )
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), columns or 0)
