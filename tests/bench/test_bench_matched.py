"""Recall at matched false-alarm rates and ours' promised rate (bench/matched.py)."""

import math

import pytest
from matched import (
    WEEKS_PER_YEAR,
    calibration_table,
    frontier,
    matched_table,
    promised_per_service_week,
    recall_at,
    series_equivalents,
)

from detector.params import Params

# (false alarms per service-week, recall); (0.5, 0.4) and (2.0, 0.6) are dominated.
CURVE = [(0.1, 0.5), (0.5, 0.4), (1.0, 0.7), (2.0, 0.6), (10.0, 0.9)]


def test_frontier_keeps_only_undominated_points():
    assert frontier(CURVE) == [(0.1, 0.5), (1.0, 0.7), (10.0, 0.9)]
    assert frontier([(1.0, 0.2), (1.0, 0.6), (3.0, None)]) == [(1.0, 0.6)]


def test_recall_at_a_frontier_point_is_its_recall():
    assert recall_at(CURVE, 0.1) == 0.5
    assert recall_at(CURVE, 1.0) == 0.7


def test_recall_is_interpolated_in_log_false_alarm_rate():
    # 0.3 lies log(3) / log(10) of the way from 0.1 to 1 on a log scale
    share = math.log(3.0) / math.log(10.0)
    assert recall_at(CURVE, 0.3) == pytest.approx(0.5 + share * 0.2)
    assert recall_at(CURVE, math.sqrt(10.0)) == pytest.approx(0.8)


def test_not_reached_below_the_strictest_point():
    assert recall_at(CURVE, 0.03) is None
    assert recall_at([], 1.0) is None
    assert recall_at([(0.2, None)], 1.0) is None


def test_loosest_point_holds_beyond_it():
    assert recall_at(CURVE, 100.0) == 0.9


def test_zero_false_alarms_hold_until_the_next_point():
    curve = [(0.0, 0.3), (1.0, 0.8)]
    assert recall_at(curve, 0.03) == 0.3
    assert recall_at(curve, 0.99) == 0.3
    assert recall_at(curve, 1.0) == 0.8


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        recall_at(CURVE, 0.0)


def test_matched_table_marks_unreached_rates():
    text = matched_table({"a": CURVE, "b": [(5.0, 0.2)]}, rates=(0.03, 0.1, 10.0))
    lines = text.splitlines()
    assert lines[2] == "| a | - | 0.50 | 0.90 | 5 |"
    assert lines[3] == "| b | - | - | 0.20 | 1 |"


@pytest.mark.parametrize(
    ("leaves", "expected"),
    [
        ([("*", "*")], 1.0),  # the global series alone
        ([("US", "*")], 2.0),  # global + US
        ([("US", "app")], 4.0),  # global, global/app, US, US/app: 1 + 3 children
        ([("US-CA", "app")], 5.0),  # 6 series: 1 + child budget 4
        ([("US-CA", "app"), ("GB", "login")], 5.0),
    ],
)
def test_series_equivalents_follow_alarm_weights(leaves, expected):
    assert series_equivalents(leaves) == pytest.approx(expected)


def test_child_budget_is_read_from_params():
    assert series_equivalents([("US-CA", "app")], Params(child_alarm_budget=2.0)) == pytest.approx(
        3.0
    )


def test_promised_rate_uses_the_detectors_year():
    assert WEEKS_PER_YEAR == pytest.approx(365.0 / 7.0)
    assert promised_per_service_week(52.0, 1.0) == pytest.approx(52.0 * 7.0 / 365.0)
    assert promised_per_service_week(1.0, 5.0) == pytest.approx(5.0 / WEEKS_PER_YEAR)


def test_calibration_table_shows_ratio_and_missing():
    text = calibration_table([(1.0, 0.02, 0.06, 3), (10.0, 0.2, None, None)])
    assert "| 1 | 10 |" in text
    assert "0.06 (3) | -" in text
    assert "3x | -" in text
