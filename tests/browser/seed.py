"""Seed a Redis with two days of reports, an ongoing outage and detection state.

Counts are written the way ingestion writes them (store/keys.py schema, via the demo's
writer) and detection runs in-process through the workers' own code, so the pages show what a
live deployment shows: a baseline band, incidents, coloured maps and a problem mix.
"""

from __future__ import annotations

import json
import time

import numpy as np
import redis

from cli import demo
from store import keys
from store.catalog import Catalog
from store.config import Settings
from workers import detection

HISTORY_DAYS = 2
"""Enough for a daily baseline; detection over it takes a few seconds per service."""

SERVICES = ("x", "github", "whatsapp")
"""Services with history; `x` has an outage in the last OUTAGE_MINUTES."""

OUTAGE_MINUTES = 35
OUTAGE_REGIONS = ("US-CA", "US-NY", "US-TX", "US", "GB", "DE", "FR")

QUIET_SERVICE = "reddit"
"""A catalog service with no reports at all: the form test watches its count go 0 -> 1."""

COMMENTS = (
    "App keeps crashing when I open it",
    "Timeline will not load on wifi or 5G",
    "Error 467 when posting images",
)


def seed(conn: redis.Redis, settings: Settings, catalog: Catalog, seed_value: int = 7) -> None:
    """Write history, the outage and comments, then run detection for every seeded service."""
    rng = np.random.default_rng(seed_value)
    now = int(time.time() // 60)
    start = now - HISTORY_DAYS * 1440
    retention = settings.retention_days * 86400
    outage = demo.Outage("x", now - OUTAGE_MINUTES, OUTAGE_MINUTES + 60, 14.0, OUTAGE_REGIONS)
    for i, slug in enumerate(SERVICES):
        problems = catalog.get(slug).problem_slugs
        pipe = conn.pipeline(transaction=False)
        for minute in range(start, now):
            hit = outage if slug == outage.service and minute >= outage.start else None
            counts = demo.minute_counts(rng, i, problems, minute, hit)
            demo.write_minute(pipe, slug, minute, counts, retention, incr=False)
            if len(pipe) > 5000:
                pipe.execute()
        pipe.set(keys.first_minute(slug), start)
        pipe.sadd(keys.ACTIVE_SERVICES, slug)
        pipe.execute()
    for k, text in reversed(list(enumerate(COMMENTS))):  # newest ends up first
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - 3 * k) * 60))
        conn.lpush(
            keys.comments("x"),
            json.dumps({"at": at, "region": OUTAGE_REGIONS[k], "problem": "app", "text": text}),
        )
    for slug in SERVICES:
        detection.run_service(conn, conn, settings, slug, time.time(), cache=None)
