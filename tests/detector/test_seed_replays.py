"""Seed replays of two public outages (DESIGN 6), each after two quiet weeks."""

from __future__ import annotations

import pytest

from detector.clock import iso_to_minute
from detector.engine import ServiceDetector
from detector.incidents import EventKind, Severity
from tests.detector.fixtures import (
    REPLAY_FIELDS,
    SeedReplay,
    feed,
    twitter_2023_03_06,
    x_2023_12_21,
)


@pytest.fixture(scope="module", params=["x", "twitter"])
def replayed(request) -> tuple[SeedReplay, list]:
    replay = x_2023_12_21() if request.param == "x" else twitter_2023_03_06()
    det = ServiceDetector(replay.service)
    events = []
    for j in range(replay.reports.shape[1]):
        for event in det.advance(replay.start_minute + j, feed(replay, j)):
            events.append((replay.start_minute + j, event))
    return replay, events


def test_no_false_alarm_in_the_quiet_weeks(replayed) -> None:
    replay, events = replayed
    early = [e.incident.to_dict() for m, e in events if m < replay.onset]
    assert early == []


def test_exactly_one_incident_detected_fast(replayed) -> None:
    replay, events = replayed
    ids = {e.incident.id for _, e in events}
    assert len(ids) == 1
    first_minute, first = events[0]
    assert first.kind is EventKind.OPEN
    assert first.incident.detected_at == first_minute + 1
    assert first.incident.detected_at - replay.onset <= 5
    assert abs(first.incident.started_at - replay.onset) <= 5


def test_attribution_and_severity(replayed) -> None:
    replay, events = replayed
    final = events[-1][1].incident
    assert final.severity is Severity.OUTAGE
    assert set(replay.regions) <= set(final.regions)
    assert final.problems[0] == replay.top_problem
    assert final.peak_per_min > 50 * final.expected_per_min
    assert final.p_value < 1e-12
    row = final.to_dict()
    assert list(row) == list(REPLAY_FIELDS)
    assert iso_to_minute(row["started_at"]) == final.started_at
    evidence = final.evidence()
    assert evidence["trigger"].startswith(("nb_window", "cusum"))
    assert evidence["region_shares"][0]["name"] == replay.regions[0]


def test_closes_soon_after_reports_return_to_normal(replayed) -> None:
    replay, events = replayed
    closes = [(m, e) for m, e in events if e.kind is EventKind.CLOSE]
    assert len(closes) == 1 and events[-1][1].kind is EventKind.CLOSE
    minute, event = closes[0]
    assert minute - replay.normal_at <= 45
    assert event.incident.ended_at is not None
    assert replay.normal_at - 60 <= event.incident.ended_at <= minute
