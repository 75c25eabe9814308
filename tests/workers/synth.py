"""Seeded counts for the worker tests, written the way ingestion writes them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import redis

from store import keys, minute_hash

PAST_END = 29_000_017
"""A fixed past minute (2025-02-19T21:37Z) to end seeded histories at. Jobs take `now`, so a
test that needs an incident gets the same time of day, and the same decisions, on every run
(an end tied to the wall clock put the spikes at the daily trough against a 12-hour flat
baseline at some hours, where they rightly stay below threshold)."""

Row = tuple[int, str, str, str, int, int | None]
"""(epoch minute, service, region, problem, reports, reporters or None), as in replay."""


def quiet_rows(
    service: str, start: int, minutes: int, leaves: Mapping[tuple[str, str], float], seed: int
) -> list[Row]:
    """Return seeded Poisson rows around a daily cycle; leaves map to reporters per minute."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + minutes)
    shape = 1.0 + 0.5 * np.cos(2 * np.pi * ((t / 60.0) % 24 - 20) / 24)
    rows: list[Row] = []
    for (region, problem), rate in leaves.items():
        counts = rng.poisson(rate * shape)
        extra = rng.binomial(counts, 0.1)
        for minute, c, e in zip(t.tolist(), counts.tolist(), extra.tolist(), strict=True):
            if c:
                rows.append((minute, service, region, problem, c + e, c))
    return rows


def spike_rows(
    service: str, start: int, minutes: int, leaves: Mapping[tuple[str, str], int]
) -> list[Row]:
    """Return a flat spike: each leaf gets the given reporters per minute on top."""
    return [
        (m, service, region, problem, n, n)
        for m in range(start, start + minutes)
        for (region, problem), n in leaves.items()
    ]


def merge(*groups: Iterable[Row]) -> list[Row]:
    """Sum rows of the same (minute, service, region, problem)."""
    table: dict[tuple[int, str, str, str], list[int]] = {}
    for rows in groups:
        for minute, service, region, problem, reports, reporters in rows:
            cell = table.setdefault((minute, service, region, problem), [0, 0])
            cell[0] += reports
            cell[1] += reporters or 0
    return [(*k, v[0], v[1]) for k, v in sorted(table.items())]


def write_rows(conn: redis.Redis, rows: Iterable[Row], ttl_days: int = 15) -> None:
    """Write rows into minute hashes, the first-minute marker and the service set."""
    pipe = conn.pipeline(transaction=False)
    first: dict[str, int] = {}
    for minute, service, region, problem, reports, reporters in rows:
        key = keys.minute_counts(service, minute)
        pipe.hincrby(key, minute_hash.reports_field(region, problem), reports)
        if reporters is not None:
            pipe.hincrby(key, minute_hash.reporters_field(region, problem), reporters)
        pipe.expire(key, ttl_days * 86400)
        first[service] = min(first.get(service, minute), minute)
    pipe.execute()
    for service, minute in first.items():
        old = conn.get(keys.first_minute(service))
        if old is None or int(old) > minute:
            conn.set(keys.first_minute(service), minute)
        conn.sadd(keys.ACTIVE_SERVICES, service)
