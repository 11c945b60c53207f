"""Frame indices of a clip (its time axis), counted as Python counts: negative from the end.

Masks, context frames, anchor frames and scored frames all name frames this way (DESIGN §3);
one function resolves them and words the error.
"""

from __future__ import annotations

from collections.abc import Iterable


def resolve_frames(frames: Iterable[int], num_frames: int, name: str) -> list[int]:
    """Frame indices in ``[−T, T)`` → the same frames in ``[0, T)``, in order (repeats kept).

    frames:     indices into a clip of ``num_frames`` (T) frames; ``−1`` is the last.
    name:       the argument they came from, named by the error on one out of range.
    """
    resolved = []
    for index in frames:
        if not -num_frames <= index < num_frames:
            raise ValueError(
                f"{name} has {index!r} (expected frame indices in [{-num_frames}, {num_frames}):"
                f" out of range, outside a video of {num_frames} frames)"
            )
        resolved.append(index % num_frames)
    return resolved
