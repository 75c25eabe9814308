"""Seeded seed-replay fixtures built from the public figures in DESIGN 6.

Quiet seasonal history (NB counts, variance = 2 x mean, local-time daily cycles, weekend
factor, slight growth) for two weeks, then one outage shaped after the public reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from detector.clock import minute_to_iso

Key = tuple[str, str]

REPLAY_FIELDS = (
    "service",
    "region",
    "problem",
    "started_at",
    "detected_at",
    "ended_at",
    "severity",
    "peak_per_min",
    "expected_per_min",
    "p_value",
    "regions",
    "problems",
)
"""The replay output contract, in order: the fields every incident line carries. Written out
here, not imported from the code, so that a change to the contract fails the tests."""


@dataclass(frozen=True)
class SeedReplay:
    """A labelled replay: dense leaf counts plus the truth about its one outage."""

    service: str
    leaf_keys: list[Key]
    start_minute: int
    reports: np.ndarray
    """Raw reports, shape (n_leaf, n_minutes)."""
    reporters: np.ndarray
    """Distinct reporters, shape (n_leaf, n_minutes)."""
    onset: int
    """Epoch minute the outage starts."""
    normal_at: int
    """Epoch minute from which reports are back to normal."""
    regions: tuple[str, ...]
    top_problem: str

    def rows(self, until: int | None = None) -> list[tuple[int, str, str, str, int, int]]:
        """Return the non-zero rows (minute, service, region, problem, reports, reporters)."""
        out = []
        leaf, col = np.nonzero(self.reports)
        for i, j in zip(leaf.tolist(), col.tolist(), strict=True):
            minute = self.start_minute + j
            if until is None or minute <= until:
                region, problem = self.leaf_keys[i]
                out.append(
                    (
                        minute,
                        self.service,
                        region,
                        problem,
                        int(self.reports[i, j]),
                        int(self.reporters[i, j]),
                    )
                )
        return out


def epoch_minute(text: str) -> int:
    """Return the epoch minute of an ISO timestamp without zone, read as UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() // 60)


def seasonal(minutes: np.ndarray, tz_hours: float) -> np.ndarray:
    """Return a daily x weekly shape in local time (mean about 1, peak/trough about 4)."""
    hours = (minutes / 60.0 + tz_hours) % 24.0
    angle = 2 * np.pi * (hours - 20.0) / 24.0
    shape = 1.0 + 0.55 * np.cos(angle) + 0.15 * np.cos(2 * angle)
    weekday = ((minutes / 1440.0 + tz_hours / 24.0) // 1 + 3) % 7  # epoch day 0 is Thursday
    return shape * np.where(weekday >= 5, 1.15, 1.0)


def build(
    service: str,
    start: str,
    end: str,
    level: float,
    countries: dict[str, tuple[float, float]],
    subdivisions: dict[str, float],
    problems: dict[str, float],
    excess: np.ndarray,
    outage_regions: dict[str, float],
    outage_problems: dict[str, float],
    seed: int,
) -> tuple[list[Key], int, np.ndarray]:
    """Return (leaf keys, start minute, reports) for quiet traffic plus an excess curve.

    countries: code -> (share of traffic, UTC offset hours); subdivisions: code -> share of its
    country; excess: outage reports per minute over the whole span, shape (n_minutes,).
    """
    rng = np.random.default_rng(seed)
    first, last = epoch_minute(start), epoch_minute(end)
    minutes = np.arange(first, last, dtype=np.int64)
    growth = 1.0 + 0.01 * (minutes - first) / 10080.0
    keys: list[Key] = []
    means = []
    for country, (share, tz) in countries.items():
        base = level * share * seasonal(minutes, tz) * growth
        bump = excess * outage_regions.get(country, 0.0)
        parts = {code: frac for code, frac in subdivisions.items() if code[:2] == country}
        parts[country] = 1.0 - sum(parts.values())
        for region, frac in parts.items():
            for problem, weight in problems.items():
                keys.append((region, problem))
                means.append(frac * (base * weight + bump * outage_problems.get(problem, 0.0)))
    mean = np.asarray(means)
    counts = rng.negative_binomial(np.maximum(mean, 1e-9), 0.5)
    return keys, first, counts.astype(np.int64)


def _curve(n: int, first: int, points: list[tuple[str, float]]) -> np.ndarray:
    """Return a per-minute curve linearly interpolated between (UTC time, value) points."""
    xs = [epoch_minute(t) - first for t in (p[0] for p in points)]
    ys = [p[1] for p in points]
    return np.interp(np.arange(n), xs, ys, left=0.0, right=0.0)


def x_2023_12_21(seed: int = 20231221) -> SeedReplay:
    """X on 2023-12-21: onset 05:00 UTC, 94,049 reports per 15 min at 05:42, mostly US."""
    start, end = "2023-12-07T00:00", "2023-12-21T09:00"
    first = epoch_minute(start)
    n = epoch_minute(end) - first
    excess = _curve(
        n,
        first,
        [
            ("2023-12-21T05:00", 0.0),
            ("2023-12-21T05:10", 1500.0),
            ("2023-12-21T05:30", 5800.0),
            ("2023-12-21T05:42", 6500.0),
            ("2023-12-21T05:57", 3700.0),
            ("2023-12-21T06:20", 700.0),
            ("2023-12-21T06:57", 110.0),
            ("2023-12-21T07:20", 10.0),
            ("2023-12-21T07:30", 0.0),
        ],
    )
    countries = {
        "US": (0.55, -5),
        "GB": (0.10, 0),
        "CA": (0.07, -5),
        "FR": (0.06, 1),
        "DE": (0.06, 1),
        "JP": (0.10, 9),
        "BR": (0.06, -3),
    }
    keys, first, reports = build(
        "x",
        start,
        end,
        5.0,
        countries,
        {"US-CA": 0.15, "US-NY": 0.1, "US-TX": 0.1},
        {"app": 0.5, "website": 0.3, "server-connection": 0.1, "login": 0.1},
        excess,
        {"US": 0.8, "CA": 0.07, "GB": 0.07, "FR": 0.04, "DE": 0.01, "JP": 0.01},
        {"app": 0.71, "website": 0.23, "server-connection": 0.06},
        seed,
    )
    reporters = np.random.default_rng(seed + 1).binomial(reports, 0.93)
    return SeedReplay(
        "x",
        keys,
        first,
        reports,
        reporters,
        epoch_minute("2023-12-21T05:00"),
        epoch_minute("2023-12-21T07:30"),
        ("US", "CA", "GB", "FR"),
        "app",
    )


def twitter_2023_03_06(seed: int = 20230306) -> SeedReplay:
    """Twitter on 2023-03-06: 31 -> >10,000 reports per 15 min from 11:30 ET (16:30 UTC)."""
    start, end = "2023-02-20T00:00", "2023-03-06T21:00"
    first = epoch_minute(start)
    n = epoch_minute(end) - first
    ramp = np.clip((np.arange(n) - (epoch_minute("2023-03-06T16:30") - first)) / 30.0, 0, 1)
    excess = (
        690.0
        * ramp**1.5
        * _curve(
            n,
            first,
            [
                ("2023-03-06T16:30", 1.0),
                ("2023-03-06T17:05", 1.0),
                ("2023-03-06T17:40", 0.3),
                ("2023-03-06T18:27", 0.022),
                ("2023-03-06T19:00", 0.004),
                ("2023-03-06T19:10", 0.0),
            ],
        )
    )
    countries = {
        "US": (0.6, -5),
        "GB": (0.12, 0),
        "IN": (0.1, 5.5),
        "JP": (0.1, 9),
        "CA": (0.08, -5),
    }
    keys, first, reports = build(
        "twitter",
        start,
        end,
        2.0,
        countries,
        {"US-CA": 0.2},
        {"website": 0.4, "app": 0.4, "login": 0.1, "images": 0.05, "links": 0.05},
        excess,
        {"US": 0.75, "GB": 0.1, "CA": 0.05, "IN": 0.05, "JP": 0.05},
        {"website": 0.76, "app": 0.14, "images": 0.05, "links": 0.05},
        seed,
    )
    reporters = np.random.default_rng(seed + 1).binomial(reports, 0.93)
    return SeedReplay(
        "twitter",
        keys,
        first,
        reports,
        reporters,
        epoch_minute("2023-03-06T16:30"),
        epoch_minute("2023-03-06T19:10"),
        ("US",),
        "website",
    )


@dataclass(frozen=True)
class Scenario:
    """Dense counts of one service with labelled windows (name -> (first, last) minute)."""

    service: str
    leaf_keys: list[Key]
    start_minute: int
    reports: np.ndarray
    reporters: np.ndarray
    labels: dict[str, tuple[int, int]]


def nuisance_weeks(seed: int = 7, outage: bool = False) -> Scenario:
    """Three weeks: two quiet, then a week of nuisances (and optionally a French outage).

    Nuisances, one per day from day 14: spam burst from two reporters, a holiday at half
    traffic, a one-off evening peak 1.4x, a 20-minute ingestion gap then its backlog flush,
    a +25% news bump for three hours; GB's local pattern shifts by an hour (DST) from day 15;
    traffic grows 30% over the three weeks.
    """
    rng = np.random.default_rng(seed)
    first = epoch_minute("2024-03-04T00:00")
    n = 21 * 1440
    minutes = np.arange(first, first + n, dtype=np.int64)
    day = (minutes - first) // 1440
    growth = 1.0 + 0.3 * (minutes - first) / n
    labels: dict[str, tuple[int, int]] = {}

    def at(d: int, hhmm: str) -> int:
        h, m = (int(v) for v in hhmm.split(":"))
        return first + d * 1440 + h * 60 + m

    factor = np.ones(n)
    labels["holiday"] = (at(15, "00:00"), at(16, "00:00"))
    factor[(day == 15)] *= 0.5
    labels["evening_peak"] = (at(16, "18:00"), at(16, "21:00"))
    factor[(minutes >= at(16, "18:30")) & (minutes < at(16, "20:30"))] *= 1.4
    labels["news_bump"] = (at(18, "14:00"), at(18, "17:00"))
    factor[(minutes >= at(18, "14:00")) & (minutes < at(18, "17:00"))] *= 1.25
    countries = {"US": (0.6, -5.0), "GB": (0.25, 0.0), "FR": (0.15, 1.0)}
    problems = {"app": 0.6, "login": 0.25, "website": 0.15}
    keys: list[Key] = []
    means = []
    for country, (share, tz) in countries.items():
        tz_now = np.where((country == "GB") & (day >= 15), tz + 1.0, tz)
        base = 3.0 * share * seasonal(minutes, 0.0 if country == "GB" else tz) * growth
        if country == "GB":
            base = 3.0 * share * _shifted(minutes, tz_now) * growth
        for problem, weight in problems.items():
            keys.append((country, problem))
            extra = np.zeros(n)
            if outage and country == "FR" and problem == "app":
                labels["fr_outage"] = (at(19, "09:00"), at(19, "10:00"))
                extra[(minutes >= at(19, "09:00")) & (minutes < at(19, "10:00"))] = 2.0
            means.append(base * weight * factor + extra)
    reports = rng.negative_binomial(np.maximum(np.asarray(means), 1e-9), 0.5).astype(np.int64)
    reporters = rng.binomial(reports, 0.95)
    spam = (at(14, "10:00"), at(14, "10:10"))
    labels["spam"] = spam
    reports[0, spam[0] - first : spam[1] - first] += 40
    reporters[0, spam[0] - first : spam[1] - first] += rng.integers(0, 2, spam[1] - spam[0])
    gap = (at(17, "12:00"), at(17, "12:20"))
    labels["ingestion_gap"] = (gap[0], gap[1] + 2)
    g0, g1 = gap[0] - first, gap[1] - first
    for counts in (reports, reporters):
        missing = counts[:, g0:g1].sum(axis=1)
        counts[:, g0:g1] = 0
        counts[:, g1] += missing // 2
        counts[:, g1 + 1] += missing - missing // 2
    return Scenario("svc", keys, first, reports, np.minimum(reporters, reports), labels)


def _shifted(minutes: np.ndarray, tz: np.ndarray) -> np.ndarray:
    """Return seasonal() with a per-minute UTC offset (hours), shape of minutes."""
    out = np.empty(minutes.shape)
    for value in np.unique(tz):
        mask = tz == value
        out[mask] = seasonal(minutes[mask], float(value))
    return out


def small_outage(seed: int = 11, days: int = 3) -> SeedReplay:
    """A small service: `days` days of quiet traffic, then 40 minutes of +30 reports/min."""
    start = "2024-05-01T00:00"
    first = epoch_minute(start)
    n = days * 1440 + 18 * 60
    onset = first + days * 1440 + 14 * 60
    excess = np.zeros(n)
    excess[onset - first : onset - first + 40] = 30.0
    end = datetime.fromtimestamp((first + n) * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M")
    keys, first, reports = build(
        "small",
        start,
        end,
        2.0,
        {"US": (0.7, -5), "GB": (0.3, 0)},
        {"US-CA": 0.3},
        {"app": 0.6, "login": 0.4},
        excess,
        {"US": 1.0},
        {"login": 1.0},
        seed,
    )
    reporters = np.random.default_rng(seed + 1).binomial(reports, 0.95)
    return SeedReplay("small", keys, first, reports, reporters, onset, onset + 40, ("US",), "login")


def feed(replay: SeedReplay, j: int) -> dict[Key, tuple[int, int | None]]:
    """Return the advance() mapping of minute index j of a replay."""
    col = replay.reports[:, j]
    rep = replay.reporters[:, j]
    return {replay.leaf_keys[i]: (int(col[i]), int(rep[i])) for i in np.flatnonzero(col)}


def write_csv(path: Path, rows, reporters: bool = True) -> None:
    """Write rows as a DESIGN 3.2 counts CSV."""
    lines = ["minute,service,region,problem,reports" + (",reporters" if reporters else "")]
    for minute, service, region, problem, reports, rps in rows:
        tail = f",{rps}" if reporters else ""
        lines.append(f"{minute_to_iso(minute)},{service},{region},{problem},{reports}{tail}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
