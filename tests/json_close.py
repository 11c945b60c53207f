"""Comparing JSON records whose floats come from float64 sums (BLAS may add in another order
from one run to the next)."""

from __future__ import annotations

import pytest


def json_close(a, b) -> bool:
    """Equal JSON values, floats to 1e-9 relative."""
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(json_close(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True)
    return a == b
