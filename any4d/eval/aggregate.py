"""A dataset's number from per-sequence numbers, with failed sequences counted and named.

Geo4D writes a failed sequence as 0 and then averages only the non-zero entries, so a failure
silently leaves the mean (EVAL.md §1). Here a failure is kept in the summary: the mean is over
the sequences that succeeded, and ``failed`` names the others with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SequenceMean:
    """Mean of per-sequence metrics.

    mean:    metric → mean over the ``n_ok`` successful sequences (empty if none succeeded, so a
             table never shows NaN).
    n_ok:    number of sequences in the mean.
    failed:  sequence name → why it is not in the mean.
    weight:  the result entry that weighted the mean, or None for a plain mean.
    """

    mean: dict[str, float]
    n_ok: int
    failed: dict[str, str] = field(default_factory=dict)
    weight: str | None = None

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    def as_dict(self) -> dict:
        """JSON-ready: the means, the counts, and the failed sequences with their reasons."""
        return {
            **self.mean,
            "n_sequences": self.n_ok + self.n_failed,
            "n_failed": self.n_failed,
            "failed": dict(self.failed),
        }

    def __str__(self) -> str:
        values = "  ".join(f"{key} {value:.4g}" for key, value in self.mean.items()) or "no mean"
        text = f"{values}  over {self.n_ok} of {self.n_ok + self.n_failed} sequences"
        if self.failed:
            text += "; failed: " + ", ".join(f"{k} ({v})" for k, v in self.failed.items())
        return text


def _failure(result: object, keys: Sequence[str], weight: str | None) -> str | None:
    """Why ``result`` cannot enter the mean, or None if it can."""
    if result is None:
        return "no result"
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if not isinstance(result, Mapping):
        return f"result is a {type(result).__name__} (expected a dict of metrics)"
    for key in (*keys, *([weight] if weight else [])):
        if key not in result:
            return f"no {key!r}"
        value = result[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} is {value!r} (expected a number)"
        if not math.isfinite(value):
            return f"{key} is {value}"
    if weight is not None and result[weight] < 0:
        return f"{weight} is {result[weight]} (expected a weight ≥ 0)"
    return None


def mean_over_sequences(
    results: Mapping[str, Mapping[str, float] | BaseException | None],
    keys: Sequence[str],
    weight: str | None = None,
) -> SequenceMean:
    """Average per-sequence metrics; count and name the sequences that failed.

    results: sequence name → its metrics dict, or the exception its evaluation raised, or None
             (no prediction). A dict with a missing or non-finite value among ``keys`` also
             counts as failed.
    keys:    the metrics to average, e.g. ``("ate", "rpe_t", "rpe_r")``.
    weight:  optional result entry to weight by, e.g. ``"n_valid"`` for the pixel-weighted mean
             of the Geo4D / MonST3R depth protocol; default a plain mean over sequences.

    Typical use::

        for name, (pred, gt) in sequences.items():
            try:
                results[name] = pose_metrics(pred, gt)
            except ValueError as error:
                results[name] = error
        print(mean_over_sequences(results, ("ate", "rpe_t", "rpe_r")))
    """
    if isinstance(keys, str):
        raise ValueError(f"keys is the string {keys!r} (expected a sequence of metric names)")
    ok: dict[str, Mapping[str, float]] = {}
    failed: dict[str, str] = {}
    for name, result in results.items():
        reason = _failure(result, keys, weight)
        if reason is None:
            ok[name] = result  # type: ignore[assignment]
        else:
            failed[name] = reason
    weights = {name: float(r[weight]) if weight else 1.0 for name, r in ok.items()}
    total = sum(weights.values())
    if ok and total == 0:  # every successful sequence has weight 0: nothing to average
        failed.update({name: f"{weight} is 0" for name in ok})
        ok = {}
    mean: dict[str, float] = {}
    for key in keys if ok else ():
        mean[key] = sum(weights[name] * float(r[key]) for name, r in ok.items()) / total
    return SequenceMean(mean, len(ok), failed, weight)
