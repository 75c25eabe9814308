"""RQ job functions: primitive arguments in, Redis state updated, idempotent."""

from __future__ import annotations

import json
import logging
import time
import zlib

import redis
from rq import get_current_job

from store import incidents, keys, metrics
from store.config import Settings, load_settings
from store.connections import data_redis, queue_redis
from workers import defaults, detection
from workers.locks import ServiceLock

log = logging.getLogger("outage.jobs")

DATA_TIMEOUT = 30.0
"""Socket timeout of the workers' data client: detector parts can be megabytes."""


def shard_of(service: str, shards: int) -> int:
    """Return the shard of a service: crc32 of its slug modulo the shard count (stable)."""
    return zlib.crc32(service.encode()) % shards


def shard_services(conn: redis.Redis, shard: int, shards: int) -> list[str]:
    """List the active services of one shard, sorted."""
    names = (m.decode() for m in conn.smembers(keys.ACTIVE_SERVICES))
    return sorted(s for s in names if shard_of(s, shards) == shard)


def _connections(settings: Settings) -> tuple[redis.Redis, redis.Redis]:
    job = get_current_job()
    qconn = job.connection if job is not None else queue_redis(settings)
    return data_redis(settings, timeout=DATA_TIMEOUT), qconn


_jobs_in_process = 0
"""Detection jobs this process has run. A forking RQ worker runs each job in a fresh child,
so this stays 1 there; a non-forking worker (rq's SimpleWorker) keeps detectors in memory
between jobs, and may then checkpoint them every few minutes instead of every minute."""


def detect_shard(shard: int, shards: int, cycle: int, now: float | None = None) -> dict:
    """Run detection for the services of one shard, up to the last complete minute."""
    global _jobs_in_process
    _jobs_in_process += 1
    settings = load_settings()
    conn, qconn = _connections(settings)
    started = time.monotonic()
    try:
        services = shard_services(conn, shard, shards)
        every = defaults.CHECKPOINT_MINUTES if _jobs_in_process > 1 else 1
        outcomes = detection.run_services(
            conn, qconn, settings, services, now=now, checkpoint_every=every
        )
        took = time.monotonic() - started
        metrics.observe_cycle(conn, took, len(services), sum(o.series for o in outcomes))
    finally:
        conn.close()
    summary = {
        "shard": shard,
        "cycle": cycle,
        "services": len(services),
        "minutes": sum(o.minutes for o in outcomes),
        "events": [e for o in outcomes for e in o.events],
        "skipped": {o.service: o.skipped for o in outcomes if o.skipped},
        "behind": {o.service: o.behind for o in outcomes if o.behind},
        "seconds": round(took, 3),
    }
    if summary["events"] or summary["behind"]:
        log.info("detect shard %d/%d cycle %d: %s", shard, shards, cycle, json.dumps(summary))
    return summary


def maintain(hour: int, now: float | None = None) -> dict:
    """Hourly maintenance: trim incident indices, repair the open set, retry stale outboxes."""
    settings = load_settings()
    conn, qconn = _connections(settings)
    now = time.time() if now is None else now
    try:
        services = {m.decode() for m in conn.smembers(keys.ACTIVE_SERVICES)}
        services |= incidents.indexed_services(conn)
        removed = incidents.trim(conn, sorted(services), settings.incident_days, now)
        repaired = _repair_open_set(conn)
        drained = 0
        for service in sorted(services):
            lock = ServiceLock(conn, service)
            if conn.llen(keys.outbox(service)) and lock.acquire():
                try:
                    drained += detection.drain_outbox(conn, qconn, service)
                finally:
                    lock.release()
    finally:
        conn.close()
    summary = {
        "hour": hour,
        "incidents_removed": removed,
        "open_repaired": repaired,
        "outbox_drained": drained,
    }
    log.info("maintenance: %s", json.dumps(summary))
    return summary


def _repair_open_set(conn: redis.Redis) -> int:
    """Drop members of the open-incident set whose document is closed or gone."""
    members = [m.decode() for m in conn.smembers(keys.OPEN_INCIDENTS)]
    pairs = [incidents.split_member(m) for m in members]
    pipe = conn.pipeline(transaction=False)
    for service, incident_id in pairs:
        pipe.get(keys.incident(service, incident_id))
    stale = [
        m
        for m, raw in zip(members, pipe.execute(), strict=True)
        if not raw or json.loads(raw)["status"] != incidents.OPEN
    ]
    if stale:
        conn.srem(keys.OPEN_INCIDENTS, *stale)
    return len(stale)
