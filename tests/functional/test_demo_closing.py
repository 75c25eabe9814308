"""The demo's outages close in time (issue 12): the feeder's outage pattern through the real
detection path (Redis counters in the ingestion schema, RQ detection jobs, the detector with
its default parameters, stored incident documents), every incident closed within 20 minutes
of its outage's end.

`outage up --demo` runs on the wall clock (an outage every 8 minutes, detection every 15
seconds), so instead of waiting an hour this writes the demo's history and 100 live minutes
with the demo's own writer, ending at a fixed past minute, and runs the detection job with
`now` stepping through those minutes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import redis
from rq import Queue

from cli import demo
from detector.clock import iso_to_minute
from store import incidents
from store.catalog import load_catalog
from store.config import load_settings
from tests.workers.helpers import run_worker
from tests.workers.synth import PAST_END

pytestmark = pytest.mark.slow

SERVICES = demo.DEMO_SERVICES
"""The demo's services: the outage pattern picks among them."""
LIVE_MINUTES = 100
"""Live minutes after the history; the last outage must end 20 minutes before their end."""
CLOSE_WITHIN = 20
"""Minutes after an outage ends by which its incident must be closed (issue 12)."""
CYCLE = 5
"""Simulated minutes between detection jobs (each catches up minute by minute)."""
RETENTION_S = 10 * 365 * 86400
"""TTL of the written counters: the minutes are in the past, a real TTL would expire them."""


def episodes(service: str, first: int, last: int) -> list[tuple[int, int]]:
    """Return the service's demo outages in [first, last] as (start, end) minute spans,
    merging one that starts at most CLOSE_WITHIN minutes after the previous one ends (the
    incident may rightly stay open or reopen across both)."""
    spans: list[list[int]] = []
    minute = first
    while minute <= last:
        outage = demo.outage_at(minute, list(SERVICES))
        if outage is None or outage.service != service:
            minute += 1
            continue
        end = outage.start + outage.minutes
        if spans and outage.start <= spans[-1][1] + CLOSE_WITHIN:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([outage.start, end])
        minute = end
    return [(a, b) for a, b in spans]


def write_live(conn: redis.Redis, first: int, last: int, seed: int = 1) -> None:
    """Write the demo's live minutes first..last (whole minutes, as the feeder leaves them)."""
    catalog = load_catalog(load_settings().catalog_path)
    rng = np.random.default_rng(seed)
    pipe = conn.pipeline(transaction=False)
    for minute in range(first, last + 1):
        outage = demo.outage_at(minute, list(SERVICES))
        for i, svc in enumerate(SERVICES):
            hit = outage if outage is not None and outage.service == svc else None
            counts = demo.minute_counts(rng, i, catalog.get(svc).problem_slugs, minute, hit)
            demo.write_minute(pipe, svc, minute, counts, RETENTION_S, incr=False)
    pipe.execute()


def open_spans(docs: list[dict], service: str) -> list[tuple[int, float]]:
    """Return the [open or reopen, close) minute spans of a service's incidents (the minute
    whose data caused each event; inf while still open)."""
    spans: list[tuple[int, float]] = []
    for doc in docs:
        if doc["service"] != service:
            continue
        since = None
        for event in doc["events"]:
            minute = iso_to_minute(event["at"]) - 1
            if event["event"] in ("open", "reopen"):
                since = minute
            elif event["event"] == "close" and since is not None:
                spans.append((since, minute))
                since = None
        if since is not None:
            spans.append((since, float("inf")))
    return spans


def test_every_demo_outage_closes_within_20_minutes(
    tmp_path: Path, monkeypatch, redis_conn: redis.Redis, redis_url: str
) -> None:
    for name in [n for n in os.environ if n.startswith(("OUTAGE_", "RQ_REDIS_URL"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("OUTAGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTAGE_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("OUTAGE_DETECT_GRACE", "0")
    monkeypatch.setenv("OUTAGE_SHARDS", "1")
    monkeypatch.setenv("OUTAGE_WEBHOOKS", json.dumps([]))
    settings = load_settings()
    catalog = load_catalog(settings.catalog_path)
    live = PAST_END - LIVE_MINUTES + 1
    problems = {s: catalog.get(s).problem_slugs for s in SERVICES}
    demo.seed_history(redis_conn, list(SERVICES), problems, live, RETENTION_S)
    write_live(redis_conn, live, PAST_END)
    queue = Queue("detect", connection=redis_conn)
    for cycle, minute in enumerate(range(live - 1, PAST_END + 1, CYCLE)):
        queue.enqueue(
            "workers.jobs.detect_shard", 0, 1, cycle, now=(minute + 1) * 60, job_id=f"d-{cycle}"
        )
        run_worker(redis_conn)
    docs = incidents.query(redis_conn, limit=1000)
    checked = 0
    for svc in SERVICES:
        spans = open_spans(docs, svc)
        for start, end in episodes(svc, live, PAST_END):
            deadline = end + CLOSE_WITHIN
            if deadline > PAST_END:
                continue
            where = f"{svc}: outage at live minutes {start - live}-{end - live}"
            assert any(a <= deadline and b > start for a, b in spans), f"{where}: no incident"
            still = [(a - live, b - live) for a, b in spans if a <= deadline < b]
            assert not still, f"{where}: open at {deadline - live}: {still}"
            checked += 1
    assert checked >= 6
