"""Nuisances that are not outages, next to a small regional outage that is."""

from __future__ import annotations

import numpy as np
import pytest

from detector.clock import minute_to_iso
from detector.engine import ServiceDetector
from detector.replay import replay_arrays
from tests.detector.fixtures import nuisance_weeks


@pytest.fixture(scope="module")
def scenario():
    return nuisance_weeks(outage=True)


def test_only_the_regional_outage_is_raised(scenario) -> None:
    incidents = replay_arrays(
        scenario.service,
        scenario.leaf_keys,
        scenario.start_minute,
        scenario.reports,
        scenario.reporters,
    )
    first, last = scenario.labels["fr_outage"]
    unexpected = [
        (
            i.to_dict(),
            [name for name, (a, b) in scenario.labels.items() if a - 60 <= i.detected_at <= b + 60],
        )
        for i in incidents
        if not first <= i.detected_at <= last
    ]
    assert unexpected == []
    assert len(incidents) == 1
    outage = incidents[0]
    assert (outage.region, outage.problem) == ("FR", "app")
    assert outage.regions == ("FR",)
    assert outage.detected_at - first <= 20, minute_to_iso(outage.detected_at)
    assert outage.ended_at is not None and outage.ended_at - last <= 30


def test_spam_without_reporter_counts_is_still_gated_by_prefixes() -> None:
    """Live path: a burst from one network prefix is low diversity, not an outage."""
    rng = np.random.default_rng(4)
    det = ServiceDetector("live")
    t0 = 28_000_000
    events = []
    for minute in range(t0, t0 + 2 * 1440):
        n = int(rng.poisson(3))
        events += det.advance(minute, {("US", "app"): (n, n)}, prefixes=n)
    for minute in range(t0 + 2 * 1440, t0 + 2 * 1440 + 20):
        n = int(rng.poisson(3))
        events += det.advance(minute, {("US", "app"): (n + 60, n + 60)}, prefixes=n + 1)
    assert events == []
    assert det.status().p_value is not None and det.status().p_value < 1e-9
