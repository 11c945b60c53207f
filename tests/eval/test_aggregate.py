import math

import pytest

from any4d.eval import mean_over_sequences


def test_mean_is_over_successful_sequences_and_failures_are_named():
    results = {
        "alley_2": {"ate": 0.1, "rpe_t": 0.2, "rpe_r": 1.0},
        "ambush_4": ValueError("umeyama: the points are degenerate"),
        "cave_2": {"ate": 0.3, "rpe_t": 0.4, "rpe_r": 3.0},
        "market_2": None,
    }
    summary = mean_over_sequences(results, ("ate", "rpe_t", "rpe_r"))
    assert summary.mean == pytest.approx({"ate": 0.2, "rpe_t": 0.3, "rpe_r": 2.0})
    assert summary.n_ok == 2 and summary.n_failed == 2
    assert summary.failed == {
        "ambush_4": "ValueError: umeyama: the points are degenerate",
        "market_2": "no result",
    }
    assert "over 2 of 4 sequences; failed: ambush_4" in str(summary)


def test_a_non_finite_or_missing_metric_counts_as_a_failure_not_a_nan_mean():
    results = {"a": {"ate": 1.0}, "b": {"ate": math.nan}, "c": {"ate": math.inf}, "d": {}}
    summary = mean_over_sequences(results, ("ate",))
    assert summary.mean == {"ate": 1.0}
    assert summary.failed == {"b": "ate is nan", "c": "ate is inf", "d": "no 'ate'"}


def test_when_every_sequence_fails_the_mean_is_empty():
    summary = mean_over_sequences({"a": RuntimeError("boom")}, ("ate",))
    assert summary.mean == {} and summary.n_ok == 0
    assert "no mean  over 0 of 1 sequences" in str(summary)


def test_weighted_mean_uses_the_named_entry():
    results = {
        "a": {"abs_rel": 0.1, "n_valid": 300},
        "b": {"abs_rel": 0.4, "n_valid": 100},
    }
    summary = mean_over_sequences(results, ("abs_rel",), weight="n_valid")
    assert summary.mean["abs_rel"] == pytest.approx((0.1 * 300 + 0.4 * 100) / 400)
    assert summary.weight == "n_valid"


def test_as_dict_reports_counts_and_reasons_for_json():
    summary = mean_over_sequences({"a": {"x": 2.0}, "b": KeyError("k")}, ("x",))
    assert summary.as_dict() == {
        "x": 2.0,
        "n_sequences": 2,
        "n_failed": 1,
        "failed": {"b": "KeyError: 'k'"},
    }


def test_keys_must_be_a_sequence_of_names():
    with pytest.raises(ValueError, match="keys is the string 'ate'"):
        mean_over_sequences({"a": {"ate": 1.0}}, "ate")
