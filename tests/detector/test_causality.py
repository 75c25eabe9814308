"""Causality: cutting the input at any minute changes nothing detected before the cut."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.engine import ServiceDetector
from detector.replay import replay_rows
from tests.detector.fixtures import feed, small_outage

SMALL = small_outage(seed=5, days=2)
N = SMALL.reports.shape[1]
ONSET = SMALL.onset - SMALL.start_minute


def events_until(stop: int) -> list[tuple[int, str, dict]]:
    det = ServiceDetector(SMALL.service)
    out = []
    for j in range(stop):
        for event in det.advance(SMALL.start_minute + j, feed(SMALL, j)):
            out.append((j, str(event.kind), event.incident.to_dict()))
    return out


FULL = events_until(N)
FULL_INCIDENTS = replay_rows(SMALL.rows())


def test_the_scenario_has_an_incident() -> None:
    assert [kind for _, kind, _ in FULL][:1] == ["open"]


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=ONSET - 30, max_value=ONSET + 80))
def test_cut_changes_nothing_before_it(cut: int) -> None:
    cut_events = events_until(cut + 1)
    assert cut_events == [e for e in FULL if e[0] <= cut]
    cut_minute = SMALL.start_minute + cut
    cut_incidents = replay_rows(SMALL.rows(until=cut_minute))
    before = {
        (i.id, i.started_at, i.detected_at, i.region, i.problem)
        for i in FULL_INCIDENTS
        if i.detected_at <= cut_minute + 1
    }
    after = {(i.id, i.started_at, i.detected_at, i.region, i.problem) for i in cut_incidents}
    assert before == after
