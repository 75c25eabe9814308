"""ServiceDetector: inputs, edge cases, determinism, persistence, status."""

from __future__ import annotations

import numpy as np
import pytest

from detector.baseline import BaselineMode
from detector.engine import PARTS, ServiceDetector
from detector.incidents import EventKind, Level
from tests.detector.fixtures import feed, small_outage

T0 = 28_000_000  # an epoch minute on an hour boundary


def run(det: ServiceDetector, replay, start: int, stop: int) -> list[tuple[int, str, dict]]:
    """Advance det over minute indices [start, stop); return (minute, kind, incident dict)."""
    out = []
    for j in range(start, stop):
        minute = replay.start_minute + j
        for event in det.advance(minute, feed(replay, j)):
            out.append((minute, str(event.kind), event.incident.to_dict()))
    return out


@pytest.fixture(scope="module")
def small():
    return small_outage()


@pytest.fixture(scope="module")
def small_events(small):
    det = ServiceDetector(small.service)
    return run(det, small, 0, small.reports.shape[1]), det


def test_small_outage_opens_and_closes_once(small, small_events) -> None:
    events, det = small_events
    kinds = [kind for _, kind, _ in events]
    assert kinds[0] == "open" and kinds.count("open") == 1 and "close" in kinds
    opened = events[0][2]
    assert opened["region"] == "US" and opened["problem"] == "login"
    assert events[0][0] - small.onset <= 5
    assert det.status().level is Level.OK


def test_rejects_bad_input() -> None:
    det = ServiceDetector("svc")
    det.advance(T0, {("US", "app"): (1, 1)})
    with pytest.raises(ValueError, match="not after"):
        det.advance(T0, {})
    with pytest.raises(ValueError, match="country code"):
        det.advance(T0 + 1, {("XX", "app"): (1, None)})
    with pytest.raises(ValueError, match="exceed"):
        det.advance(T0 + 1, {("US", "app"): (1, 3)})
    with pytest.raises(ValueError):
        det.advance(T0 + 1, {("US", "app"): (-1, None)})
    with pytest.raises(ValueError):
        det.advance(T0 + 1, {("US", ""): (1, None)})
    with pytest.raises(ValueError):
        ServiceDetector("")
    assert det.last_minute == T0  # failed calls changed nothing
    assert det.series_keys() == [("*", "*"), ("US", "app"), ("US", "*"), ("*", "app")]


def test_all_zeros_and_one_report_ever_raise_nothing() -> None:
    det = ServiceDetector("quiet")
    assert det.last_minute is None
    assert det.status().level is Level.OK and det.status().p_value is None
    events = det.advance(T0, {("FR", "app"): (1, 1)})
    for minute in range(T0 + 1, T0 + 3 * 1440, 7):
        events += det.advance(minute, {})
    assert events == []
    status = det.status()
    assert status.level is Level.OK and status.baseline is BaselineMode.DAILY
    assert status.p_value is None  # one report ever: not enough history to test
    assert not det.ready.any()
    assert len(status.observed) == len(status.expected) == det.params.status_minutes


def test_skipped_minutes_equal_explicit_zeros(small) -> None:
    a, b = ServiceDetector("s"), ServiceDetector("s")
    for j in range(0, 2000):
        counts = feed(small, j)
        a.advance(small.start_minute + j, counts)
        if counts or j in (0, 1999):
            b.advance(small.start_minute + j, counts)
    assert a.to_parts() == b.to_parts()


def test_first_minute_of_a_new_region_is_not_tested_alone(small) -> None:
    det = ServiceDetector(small.service)
    run(det, small, 0, 2 * 1440)
    minute = small.start_minute + 2 * 1440
    events = det.advance(minute, {("JP-13", "app"): (3, 3)})
    assert events == []
    row = det.series_keys().index(("JP-13", "app"))
    assert not det.ready[row]
    assert ("JP", "*") in det.series_keys()
    expected, upper = det.expected_band(("JP-13", "app"), np.arange(minute, minute + 5))
    assert np.all(expected == 0) and np.all(upper == 0)


def test_huge_counts() -> None:
    det = ServiceDetector("big")
    events = []
    for minute in range(T0, T0 + 1440):
        events += det.advance(minute, {("US", "app"): (10**6, 10**6)})
    events += det.advance(T0 + 1440, {("US", "app"): (10**9, 10**9)})
    assert [e.kind for e in events] == [EventKind.OPEN]
    assert events[0].incident.peak_per_min == 10**9
    assert np.isfinite(events[0].incident.p_value)


def test_deterministic(small) -> None:
    one, two = ServiceDetector("s"), ServiceDetector("s")
    assert run(one, small, 0, 3000) == run(two, small, 0, 3000)
    assert one.to_parts() == two.to_parts()


@pytest.mark.parametrize("cut_hours", [50, 86, 86.4])  # daily mode, during the outage
def test_restored_detector_continues_bit_identically(small, small_events, cut_hours) -> None:
    full_events, full = small_events
    cut = int(cut_hours * 60)
    det = ServiceDetector(small.service)
    before = run(det, small, 0, cut)
    restored = ServiceDetector.from_parts(small.service, det.to_parts())
    after = run(restored, small, cut, small.reports.shape[1])
    assert before + after == full_events
    assert restored.to_parts() == full.to_parts()


def test_dirty_parts_track_changes(small) -> None:
    det = ServiceDetector(small.service)
    run(det, small, 0, 120)
    assert set(det.dirty_parts()) == set(PARTS)
    assert det.dirty_parts() == {}
    det.advance(small.start_minute + 120, {})  # 02:00: slot flush and hourly refresh
    assert set(det.dirty_parts()) == {"history", "baseline", "state"}
    det.advance(small.start_minute + 121, {})
    assert set(det.dirty_parts()) == {"state"}
    det.advance(small.start_minute + 122, {("NZ", "app"): (1, 1)})
    assert set(det.dirty_parts()) == set(PARTS)


def test_from_parts_rejects_foreign_or_broken_parts(small) -> None:
    det = ServiceDetector(small.service)
    run(det, small, 0, 30)
    parts = det.to_parts()
    with pytest.raises(ValueError):
        ServiceDetector.from_parts("other", parts)
    with pytest.raises(ValueError):
        ServiceDetector.from_parts(small.service, {k: v for k, v in parts.items() if k != "state"})
    with pytest.raises(ValueError):
        ServiceDetector.from_parts(
            small.service, {**parts, "index": ServiceDetector("x").to_parts()["index"]}
        )


def test_status_and_band_during_an_outage(small) -> None:
    det = ServiceDetector(small.service)
    run(det, small, 0, small.onset - small.start_minute + 20)
    status = det.status()
    assert status.level in (Level.PROBLEMS, Level.OUTAGE)
    assert status.incident is not None and "US" in status.affected_regions
    assert status.problems[0].name == "login"
    assert status.problems[0].share > status.problems[0].normal_share
    assert status.p_value is not None and status.p_value < 1e-6
    assert status.observed[-1] > status.expected[-1]
    minutes = np.arange(det.last_minute - 60, det.last_minute + 1)
    expected, upper = det.expected_band(("*", "*"), minutes)
    assert expected.shape == upper.shape == minutes.shape
    assert np.all(upper >= expected) and np.all(expected > 0)
    with pytest.raises(KeyError):
        det.expected_band(("ZZ", "*"), minutes)


def test_region_pattern_shifted_by_an_hour_is_not_an_outage(small) -> None:
    """A DST-like shift: the same traffic one hour earlier from day 3 on."""
    shifted = small.reports.copy()
    shifted[:, 3 * 1440 :] = np.roll(small.reports, -60, axis=1)[:, 3 * 1440 :]
    quiet_until = small.onset - small.start_minute - 120
    det = ServiceDetector("dst")
    events = []
    for j in range(quiet_until):
        col = shifted[:, j]
        events += det.advance(
            small.start_minute + j,
            {small.leaf_keys[i]: (int(col[i]), None) for i in np.flatnonzero(col)},
        )
    assert events == []
