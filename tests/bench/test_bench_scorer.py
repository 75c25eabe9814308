"""Tests of the quality scorer on hand-made incidents (bench/quality_score.py)."""

import pytest
from peers.common import iso
from quality_score import score

BASE = 28_401_120  # 2024-01-01T00:00Z as an epoch minute


def inc(service, start, detect, end):
    return {
        "service": service,
        "started_at": iso(BASE + start),
        "detected_at": iso(BASE + detect),
        "ended_at": None if end is None else iso(BASE + end),
    }


OUTAGES = [
    {
        "id": 0,
        "service": "a",
        "start": 1000,
        "end": 1060,
        "duration_min": 60,
        "cusum_floor_min": 2.0,
        "info_floor_min": 4.0,
    },
    {
        "id": 1,
        "service": "a",
        "start": 2000,
        "end": 2030,
        "duration_min": 30,
        "cusum_floor_min": 10.0,
        "info_floor_min": 20.0,
    },
    {
        "id": 2,
        "service": "b",
        "start": 3000,
        "end": 3200,
        "duration_min": 200,
        "cusum_floor_min": 500.0,
        "info_floor_min": 90.0,
    },
    {
        "id": 3,
        "service": "b",
        "start": 100,
        "end": 200,
        "duration_min": 100,  # warm-up: unscored
        "cusum_floor_min": 1.0,
        "info_floor_min": 1.0,
    },
]
NUISANCES = [
    {"kind": "spam", "services": ["a"], "start": 5000, "end": 5030},
    {"kind": "trend", "services": ["a"], "start": 0, "end": 10_000},
]


def run(incidents):
    return score(
        incidents,
        OUTAGES,
        NUISANCES,
        start_minute=BASE,
        eval_start=500,
        n_minutes=10_000,
        n_services=2,
        n_series=8,
    )


def test_hand_computed_metrics():
    m = run(
        [
            inc("a", 998, 1004, 1070),  # outage 0: delay 4, onset error -2
            inc("a", 1010, 1020, 1050),  # duplicate of outage 0
            inc("a", 2005, 2012, None),  # outage 1: delay 12, onset error 5, still open
            inc("b", 1000, 1010, 1020),  # wrong service: false alarm, no nuisance of b -> none
            inc("a", 5010, 5011, 5020),  # false alarm during spam (shorter than trend)
            inc("a", 7000, 7001, 7005),  # false alarm, only the trend overlaps
            inc("b", 150, 160, 170),  # warm-up: not scored at all
        ]
    )
    assert m["outages"] == 3 and m["detected"] == 2
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["false_alarms"] == 3 and m["precision"] == pytest.approx(2 / 5)
    assert m["duplicates"] == 1
    assert m["false_alarms_by_cause"] == {"none": 1, "spam": 1, "trend": 1}
    days = 9500 / 1440
    assert m["false_alarms_per_series_day"] == pytest.approx(3 / (8 * days))
    assert m["false_alarms_per_service_week"] == pytest.approx(3 / (2 * days / 7))
    assert m["median_delay_min"] == pytest.approx(8.0)
    assert m["p90_delay_min"] == pytest.approx(4 + 0.9 * 8)
    assert m["median_delay_ratio"] == pytest.approx((4 / 4 + 12 / 20) / 2)
    assert m["median_delay_ratio_poisson"] == pytest.approx((4 / 2 + 12 / 10) / 2)
    assert m["median_onset_error_min"] == pytest.approx(1.5)
    # bins by the floor (info_floor_min) over the duration
    assert m["recall_by_difficulty"]["easy"] == (1.0, 1)  # 4/60
    assert m["recall_by_difficulty"]["moderate"] == (0.5, 2)  # 20/30, 90/200
    assert m["recall_by_difficulty"]["hard"] == (None, 0)


def test_tolerance_and_early_detection():
    # detected 20 min before the outage: raised for something else -> false alarm
    m = run([inc("a", 970, 980, 1100)])
    assert m["detected"] == 0 and m["false_alarms"] == 1
    # ended 10 min before the outage starts: within the 15-minute tolerance
    m = run([inc("a", 985, 988, 990)])
    assert m["detected"] == 1 and m["median_delay_min"] == 0.0


def test_no_incidents():
    m = run([])
    assert m["recall"] == 0.0 and m["precision"] is None and m["median_delay_min"] is None


def test_bad_window_raises():
    with pytest.raises(ValueError):
        score(
            [],
            OUTAGES,
            NUISANCES,
            start_minute=BASE,
            eval_start=20_000,
            n_minutes=10_000,
            n_services=1,
            n_series=1,
        )


def test_difficulty_bins_include_unreachable_outages():
    from quality_score import difficulty

    assert difficulty({"duration_min": 60, "info_floor_min": 3.0}) == "easy"
    assert difficulty({"duration_min": 60, "info_floor_min": 59.0}) == "moderate"
    assert difficulty({"duration_min": 60, "info_floor_min": float("inf")}) == "hard"


def test_recall_floor_under_half_duration():
    # scored outages by floor: 0 (4 < 60/2), 1 (20 >= 30/2), 2 (90 < 200/2);
    # by Poisson floor: 0 (2 < 60/2), 1 (10 < 30/2), 2 (500 >= 200/2);
    # outage 3 is in the warm-up and not scored whatever its floors.
    m = run([inc("a", 998, 1004, 1070), inc("b", 3000, 3010, 3100)])  # detects 0 and 2
    assert m["outages_floor_under_half_duration"] == 2
    assert m["outages_floor_under_half_duration_poisson"] == 2
    assert m["recall_floor_under_half_duration"] == 1.0
    assert m["recall_floor_under_half_duration_poisson"] == pytest.approx(1 / 2)
    m = run([inc("a", 2005, 2012, None)])  # detects 1 only
    assert m["recall_floor_under_half_duration"] == 0.0
    assert m["recall_floor_under_half_duration_poisson"] == pytest.approx(1 / 2)
    m = run([inc("b", 3000, 3010, 3100)])  # detects 2 only
    assert m["recall_floor_under_half_duration"] == pytest.approx(1 / 2)
    assert m["recall_floor_under_half_duration_poisson"] == 0.0
    # boundary: floor exactly half the duration is not "under half"
    edge = [
        {
            "id": 9,
            "service": "a",
            "start": 1000,
            "end": 1040,
            "duration_min": 40,
            "cusum_floor_min": 20.0,
            "info_floor_min": 20.0,
        }
    ]
    m = score(
        [inc("a", 1000, 1005, 1040)],
        edge,
        [],
        start_minute=BASE,
        eval_start=500,
        n_minutes=10_000,
        n_services=1,
        n_series=1,
    )
    assert m["outages_floor_under_half_duration"] == 0
    assert m["recall_floor_under_half_duration"] is None
    assert m["recall"] == 1.0
