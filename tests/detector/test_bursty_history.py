"""Real crowd series carry bursts that were never outages (issue 12's reproduction).

A sparse series (0.0025 reports/min) whose six weeks of history hold nine small bursts (2 to
6 reports within 20 minutes) went blind: the bursts inflated the one dispersion estimate, so
an outage of 6 and then 15 reports in 40 minutes, the largest thing the series had ever
seen, raised nothing. Robust noise estimation (bursts clipped) plus a tail calibrated on the
series' own evidence must find it within 30 minutes, and raise nothing on the bursts.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.replay import replay_arrays
from detector.scenarios_bursts import hawkes_bursts
from tests.detector.fixtures import epoch_minute

RATE = 0.0025
WEEKS = 6
START = epoch_minute("2024-01-01T00:00")


def sparse_with_outage(seed: int, bursts: int) -> tuple[np.ndarray, int]:
    """Return one-series minute counts and the outage onset index (after WEEKS weeks)."""
    rng = np.random.default_rng(seed)
    history = WEEKS * 7 * 1440
    x = rng.poisson(RATE, history + 1440)
    for start in rng.choice(history - 30, bursts, replace=False):
        np.add.at(x, start + rng.integers(0, 20, rng.integers(2, 7)), 1)
    onset = history + 600
    np.add.at(x, onset + rng.integers(0, 20, 6), 1)
    np.add.at(x, onset + 20 + rng.integers(0, 20, 15), 1)
    return x, onset


@pytest.mark.parametrize("bursts", [0, 9])
def test_sparse_outage_after_a_bursty_history_is_found_within_30_minutes(bursts: int) -> None:
    x, onset = sparse_with_outage(1201, bursts)
    incidents = replay_arrays("svc", [("US", "app")], START, x[None, :], x[None, :])
    assert incidents, "the outage raised nothing"
    first = incidents[0]
    assert first.started_at >= START + onset - 15  # not one of the history's bursts
    assert first.detected_at - (START + onset) <= 30


def test_a_self_exciting_dense_series_does_not_alarm_on_its_own_bursts() -> None:
    """Clustered, heavy-tailed bursts (hawkes_bursts: about one cluster a day, the big ones
    3-10x the local mean for minutes) at 3 reports/min and no outage: after four weeks of
    learning, under one incident per series-month (the model alone raised 7-12 a month).

    Two seeded series of eight weeks; the last four weeks of each are scored, two
    series-months in all, so at most one incident in total.
    """
    days, learn_days, rate = 56, 28, 3.0
    found = 0
    for seed in (1701, 1702):
        rng = np.random.default_rng(seed)
        t = np.arange(days * 1440)
        mean = rate * (1 + 0.6 * np.cos(2 * np.pi * (t % 1440 - 1200) / 1440))
        x, clusters = hawkes_bursts(rng, t.size, mean)
        assert len(clusters) >= days // 2  # the bursts are there to be resisted
        incidents = replay_arrays("svc", [("US", "app")], START, x[None, :], x[None, :])
        found += sum(i.detected_at >= START + learn_days * 1440 for i in incidents)
    assert found <= 1
