"""Closing, reopening and escalating incidents on seeded traffic (DESIGN 4: hysteresis on
close, reopen instead of duplicate).

One quiet service (three countries x three problems, NB counts with variance 2 x mean) is
warmed up over eight days once; every test copies that detector and plays its own outage.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import pytest
from scipy import stats

from detector.engine import ServiceDetector
from detector.incidents import EventKind, IncidentEvent, Severity
from detector.params import Params
from detector.scopes import contains, upper_band
from tests.detector.fixtures import epoch_minute, seasonal

Key = tuple[str, str]

COUNTRIES = {"US": (0.6, -5.0), "GB": (0.25, 0.0), "JP": (0.15, 9.0)}
"""Country: (share of traffic, UTC offset hours)."""
PROBLEMS = {"app": 0.6, "login": 0.25, "website": 0.15}
LEVEL = 5.0
"""Reports per minute of the whole service, on average over the day."""
KEYS: list[Key] = [(c, p) for c in COUNTRIES for p in PROBLEMS]
T0 = epoch_minute("2024-05-06T00:00")
HISTORY_DAYS = 14
START = T0 + HISTORY_DAYS * 1440
"""First minute of every played scenario (the warm detector has seen all before it)."""


def normal_means(minutes: np.ndarray) -> np.ndarray:
    """Return the quiet expected reports per leaf and minute, shape (len(KEYS), len(minutes))."""
    return np.stack(
        [
            LEVEL * COUNTRIES[c][0] * PROBLEMS[p] * seasonal(minutes, COUNTRIES[c][1])
            for c, p in KEYS
        ]
    )


def sample(means: np.ndarray, seed: int) -> np.ndarray:
    """Return NB counts with variance 2 x mean, shape of means (leaves, minutes)."""
    return np.random.default_rng(seed).negative_binomial(np.maximum(means, 1e-9), 0.5)


def play(det: ServiceDetector, first: int, counts: np.ndarray) -> list[tuple[int, IncidentEvent]]:
    """Feed counts, shape (leaves, minutes), from minute first; return (minute, event)s."""
    events = []
    for j in range(counts.shape[1]):
        col = counts[:, j]
        leaf = {KEYS[i]: (int(col[i]), int(col[i])) for i in np.flatnonzero(col)}
        events += [(first + j, e) for e in det.advance(first + j, leaf)]
    return events


@pytest.fixture(scope="module")
def warm() -> ServiceDetector:
    det = ServiceDetector("svc")
    minutes = np.arange(T0, START)
    assert play(det, T0, sample(normal_means(minutes), seed=1)) == []
    return det


def scenario(
    warm: ServiceDetector, minutes: int, extra: Mapping[Key, np.ndarray], seed: int
) -> tuple[list[tuple[int, IncidentEvent]], np.ndarray, np.ndarray]:
    """Play `minutes` from START with extra reports per minute on some leaves.

    Returns (events, normal means, counts), both of shape (leaves, minutes).
    """
    base = normal_means(np.arange(START, START + minutes))
    bump = np.zeros_like(base)
    for key, curve in extra.items():
        bump[KEYS.index(key)] = curve
    counts = sample(base + bump, seed)
    return play(copy.deepcopy(warm), START, counts), base, counts


def kinds(events: list[tuple[int, IncidentEvent]]) -> list[str]:
    return [str(e.kind) for _, e in events]


def x_like(minutes: int, onset: int, peak: float, tau: float) -> np.ndarray:
    """Return a fast rise (10 minutes) to `peak` per minute, then exponential decay (tau min)."""
    t = np.arange(minutes) - onset
    rise = np.clip(t / 10.0, 0.0, 1.0)
    return np.where(t < 10, peak * rise, peak * np.exp(-(t - 10) / tau))


def under_twice_normal(base: np.ndarray, counts: np.ndarray, scope: Key) -> int:
    """Return the index from which the scope's reports in the last 15 minutes (Downdetector's
    buckets) stay under twice their normal mean."""
    rows = [i for i, k in enumerate(KEYS) if contains(scope, k)]
    kernel = np.ones(15)
    normal = np.convolve(base[rows].sum(axis=0), kernel)[: base.shape[1]]
    seen = np.convolve(counts[rows].sum(axis=0), kernel)[: base.shape[1]]
    return int(np.flatnonzero(seen >= 2.0 * normal)[-1]) + 1


def test_scope_geometry() -> None:
    assert contains(("*", "*"), ("US-CA", "app"))
    assert contains(("US", "*"), ("US-CA", "login"))
    assert contains(("US", "app"), ("US-CA", "app"))
    assert not contains(("US", "app"), ("US", "login"))
    assert not contains(("US", "app"), ("US", "*"))
    assert not contains(("US", "*"), ("GB", "*"))
    assert not contains(("US-CA", "*"), ("US", "app"))
    assert not contains(("JP", "login"), ("US", "app"))


def test_upper_band_is_the_nb_quantile_with_a_ratio_floor() -> None:
    p = Params()
    for mean, var in [(2.0, 5.0), (30.0, 75.0), (75.0, 150.0 + 0.01 * 75.0**2)]:
        n = mean * mean / (var - mean)
        want = stats.nbinom.ppf(p.close_quantile, n, n / (n + mean))
        assert upper_band(mean, var, p) == max(want, p.close_ratio * mean)
        assert want > p.close_ratio * mean  # sparse and mid-size: the quantile rules
    dense = 5000.0, 2 * 5000.0 + 0.01 * 5000.0**2
    assert upper_band(*dense, p) == p.close_ratio * 5000.0  # the quantile is ~1.3x
    assert upper_band(0.0, 0.0, p) == 0.0  # an all-zero expectation: only 0 is normal


@pytest.mark.parametrize("tau", [8.0, 17.0])
def test_x_like_curve_closes_within_20_minutes_of_normal_counts(warm, tau) -> None:
    """A rise to 3,000 reports/min, mostly US app, then a decay over hours (X's tail: 56,008
    reports per 15 minutes at 05:57, 1,724 at 06:57, tau = 17 minutes): the CUSUMs remember
    the peak for hours, but the incident closes once the scope's counts are normal."""
    onset, minutes = 300, 600
    curve = x_like(minutes, onset, 3000.0, tau)
    extra = {
        (c, p): curve * cs * ps
        for c, cs in (("US", 0.8), ("GB", 0.15), ("JP", 0.05))
        for p, ps in (("app", 0.7), ("website", 0.2), ("login", 0.1))
    }
    events, base, counts = scenario(warm, minutes, extra, seed=10 + int(tau))
    assert kinds(events)[0] == "open" and kinds(events)[-1] == "close"
    assert len({e.incident.id for _, e in events}) == 1 and "reopen" not in kinds(events)
    opened, (closed_at, last) = events[0], events[-1]
    closed = last.incident
    assert opened[0] - (START + onset) <= 3
    normal = START + under_twice_normal(base, counts, (closed.region, closed.problem))
    assert closed.severity is Severity.OUTAGE
    assert normal - 10 <= closed_at <= normal + 20, (closed_at - normal, closed.region)
    assert closed.ended_at is not None and closed.ended_at <= closed_at - 9


@pytest.mark.parametrize("factor", [8.0, 25.0])
def test_short_outage_closes_within_20_minutes_of_its_end(warm, factor) -> None:
    """A demo-like outage (6 minutes at 8x or 25x, sharp end): the 15-minute window holds
    its last minutes until 15 minutes after the end, so closing waits for the 5-minute count
    (close_window) to settle, not the 15-minute one."""
    minutes, onset, length = 120, 60, 6
    t = np.arange(minutes) - onset
    usual = normal_means(np.arange(START, START + minutes))[KEYS.index(("US", "app"))]
    on = (t >= 0) & (t < length)
    events, _, _ = scenario(warm, minutes, {("US", "app"): (factor - 1) * usual * on}, seed=5)
    assert kinds(events)[0] == "open" and kinds(events)[-1] == "close", kinds(events)
    closed_at, closed = events[-1][0], events[-1][1].incident
    end = START + onset + length
    assert end + 10 <= closed_at <= end + 20
    assert closed.ended_at is not None and end - 3 <= closed.ended_at <= end + 3


@pytest.mark.parametrize("period", [2, 5, 10, 15, 20, 30])
def test_flapping_series_is_one_incident_not_many(warm, period) -> None:
    """US app alternates between 4x normal and normal every `period` minutes for an hour,
    then stays normal: one incident, reopened at most once (each reopen doubles the quiet
    time that closes it), never open/close every few minutes."""
    minutes, onset, length = 200, 60, 60
    t = np.arange(minutes) - onset
    on = (t >= 0) & (t < length) & ((t // period) % 2 == 0)
    usual = normal_means(np.arange(START, START + minutes))[KEYS.index(("US", "app"))]
    events, _, _ = scenario(warm, minutes, {("US", "app"): 3.0 * usual * on}, seed=period)
    ids = {e.incident.id for _, e in events}
    assert len(ids) == 1, kinds(events)
    assert kinds(events).count("reopen") <= 1, [(m - START, str(e.kind)) for m, e in events]
    assert kinds(events)[-1] == "close"


def test_reopen_when_the_scope_rises_again_within_the_gap(warm) -> None:
    """US app at 10x for 20 minutes, normal for 40 (the incident closes), again for 20."""
    minutes, onset = 260, 60
    t = np.arange(minutes) - onset
    on = ((t >= 0) & (t < 20)) | ((t >= 60) & (t < 80))
    usual = normal_means(np.arange(START, START + minutes))[KEYS.index(("US", "app"))]
    events, _, _ = scenario(warm, minutes, {("US", "app"): 9.0 * usual * on}, seed=21)
    assert kinds(events)[0] == "open" and "reopen" in kinds(events)
    assert len({e.incident.id for _, e in events}) == 1
    pos = kinds(events).index("reopen")
    first_close = kinds(events).index("close")
    assert first_close < pos
    reopened_at, reopened = events[pos]
    closed = events[first_close][1].incident
    assert reopened.incident.ended_at is None and reopened.incident.id == closed.id
    assert reopened.incident.started_at == closed.started_at
    assert START + onset + 60 <= reopened_at < START + onset + 80  # during the second rise
    assert kinds(events)[-1] == "close" and events[-1][1].incident.ended_at is not None


def test_a_rise_elsewhere_after_the_close_is_a_new_incident(warm) -> None:
    """US app at 10x for 20 minutes; 30 minutes after its end, JP login rises (not a reopen)."""
    minutes, onset = 240, 60
    t = np.arange(minutes) - onset
    means = normal_means(np.arange(START, START + minutes))
    us = 9.0 * means[KEYS.index(("US", "app"))] * ((t >= 0) & (t < 20))
    jp = 12.0 * means[KEYS.index(("JP", "login"))] * ((t >= 50) & (t < 80))
    events, _, _ = scenario(warm, minutes, {("US", "app"): us, ("JP", "login"): jp}, seed=22)
    opens = [(m, e.incident) for m, e in events if e.kind is EventKind.OPEN]
    assert "reopen" not in kinds(events) and len(opens) == 2, kinds(events)
    assert (opens[0][1].region, opens[0][1].problem) == ("US", "app")
    assert opens[1][1].region == "JP" and opens[1][0] >= START + onset + 50


def test_escalate_from_possible_to_outage(warm) -> None:
    """US app rises to 3x, then 30x after 15 minutes: escalate events, same incident."""
    minutes, onset = 200, 60
    t = np.arange(minutes) - onset
    usual = normal_means(np.arange(START, START + minutes))[KEYS.index(("US", "app"))]
    bump = usual * (2.0 * ((t >= 0) & (t < 15)) + 29.0 * ((t >= 15) & (t < 45)))
    events, _, _ = scenario(warm, minutes, {("US", "app"): bump}, seed=23)
    assert kinds(events)[0] == "open"
    opened = events[0][1].incident.severity
    escalations = [e.incident for _, e in events if e.kind is EventKind.ESCALATE]
    assert escalations and escalations[-1].severity is Severity.OUTAGE
    ranks = [opened.rank] + [i.severity.rank for i in escalations]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert len({e.incident.id for _, e in events}) == 1
    assert kinds(events)[-1] == "close"


@pytest.mark.parametrize("jp_from", [5, 45])
def test_unrelated_alarms_elsewhere_do_not_keep_an_incident_open(warm, jp_from) -> None:
    """US app at 10x for 30 minutes; JP login at 15x for three hours from `jp_from` (during
    the US outage, when attribution lists it, or after, when it lies outside the scope): the
    US incident closes as soon as its scope is normal again, JP gets its own incident."""
    minutes, onset = 420, 60
    t = np.arange(minutes) - onset
    means = normal_means(np.arange(START, START + minutes))
    us = 9.0 * means[KEYS.index(("US", "app"))] * ((t >= 0) & (t < 30))
    jp = 14.0 * means[KEYS.index(("JP", "login"))] * ((t >= jp_from) & (t < jp_from + 180))
    events, _, _ = scenario(warm, minutes, {("US", "app"): us, ("JP", "login"): jp}, seed=24)
    first = events[0][1].incident
    assert (first.region, first.problem) == ("US", "app")
    closes = [(m, e.incident) for m, e in events if e.kind is EventKind.CLOSE]
    us_close = next(m for m, inc in closes if inc.id == first.id)
    # back inside the band once the 15-minute window has left the outage, then 10 minutes
    assert us_close - (START + onset + 30) <= 30
    assert "reopen" not in kinds(events)
    later = [e.incident for m, e in events if m > us_close and e.kind is EventKind.OPEN]
    assert later and later[0].region == "JP" and later[0].id != first.id


def test_a_new_incident_does_not_reach_back_into_the_last_one(warm) -> None:
    """US app at 25x for 5 minutes, then at 13x for 20 minutes 70 minutes later (beyond the
    reopen gap): the second is a new incident whose onset (and id) is its own. Raised on its
    first minute, at a 5-minute ratio of about 3, a search back over 120 minutes found the
    first outage instead (and reused its id)."""
    minutes, onset = 240, 60
    t = np.arange(minutes) - onset
    usual = normal_means(np.arange(START, START + minutes))[KEYS.index(("US", "app"))]
    bump = usual * (24.0 * ((t >= 0) & (t < 5)) + 12.0 * ((t >= 70) & (t < 90)))
    events, _, _ = scenario(warm, minutes, {("US", "app"): bump}, seed=25)
    opens = [e.incident for _, e in events if e.kind is EventKind.OPEN]
    assert kinds(events).count("reopen") == 0 and len(opens) == 2, kinds(events)
    first, second = opens
    closed = next(e.incident for _, e in events if e.kind is EventKind.CLOSE)
    assert first.id != second.id and closed.ended_at is not None
    assert second.started_at >= closed.ended_at
    assert abs(second.started_at - (START + onset + 70)) <= 2
