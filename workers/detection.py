"""Live detection of one service: load the detector, read complete minutes, advance, save.

The same `ServiceDetector.advance` that `outage replay` runs is fed one epoch minute at a
time from the minute hashes that ingestion writes. Everything a minute changes (detector
parts, incident documents, status, the outbox of follow-ups) is written in one MULTI, so a
worker killed in the middle leaves Redis at the previous save and the next job re-does the
same minutes with the same deterministic results: no duplicate incident, no duplicate
webhook.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from detector.clock import last_complete_minute
from store import incidents, keys, minute_hash
from store.config import Settings
from store.detectors import (
    DetectorCache,
    detector_params,
    load_detector,
    new_version,
    part_names,
    saved_minute,
    where_of,
)
from workers import defaults, webhooks
from workers.locks import LockLost, ServiceLock
from workers.state import CACHE, status_document

log = logging.getLogger("outage.detection")


def read_minutes(
    conn: redis.Redis, service: str, start: int, end: int
) -> list[tuple[int, minute_hash.LeafCounts, int | None]]:
    """Read minutes start..end (inclusive) in one round trip: (minute, leaves, prefixes)."""
    pipe = conn.pipeline(transaction=False)
    for minute in range(start, end + 1):
        pipe.hgetall(keys.minute_counts(service, minute))
        pipe.pfcount(keys.prefixes(service, minute))
    replies = pipe.execute()
    out = []
    for i, minute in enumerate(range(start, end + 1)):
        prefixes = int(replies[2 * i + 1])
        # No HLL for a minute means "unknown" (e.g. loaded history), not "zero prefixes".
        out.append((minute, minute_hash.parse(replies[2 * i]), prefixes or None))
    return out


@dataclass
class Outcome:
    """What one run over a service did (the job's return value, per service)."""

    service: str
    minutes: int = 0
    series: int = 0
    events: list[str] = dataclasses.field(default_factory=list)
    last_minute: int | None = None
    behind: int = 0
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def save(
    conn: redis.Redis,
    settings: Settings,
    lock: ServiceLock,
    service: str,
    detector: Any,
    events: list[tuple[int, Any]],
    parts: Mapping[str, bytes] | None,
) -> bytes | None:
    """Write detector parts (None: keep the stored checkpoint), incident documents, status
    and outbox in one MULTI; return the new version token if parts were written. Raise
    LockLost (writing nothing) if our lock is gone."""
    now = detector.status()
    current = now.incident  # the open incident as it stands, between events too
    ids = {ev.incident.id for _, ev in events} | ({current.id} if current else set())
    docs: dict[str, dict[str, Any]] = {}
    if ids:
        docs = {
            d["id"]: d for d in incidents.read_documents(conn, ((service, i) for i in sorted(ids)))
        }
    outbox: list[dict[str, Any]] = []
    staged: dict[str, dict[str, Any]] = {}
    for minute, event in events:
        kind = str(event.kind)
        doc = incidents.build_document(
            kind,
            event.incident,
            minute,
            staged.get(event.incident.id) or docs.get(event.incident.id),
        )
        staged[doc["id"]] = doc
        outbox.extend(webhooks.outbox_entries(settings, service, kind, minute, doc))
    outbox.extend(incidents.index_entry(service, doc) for doc in staged.values())
    previous = None if current is None else staged.get(current.id) or docs.get(current.id)
    if previous is not None:
        staged[current.id] = incidents.build_document(None, current, detector.last_minute, previous)
    version = new_version(detector.last_minute) if parts is not None else None
    status = status_document(detector, service, now)
    with conn.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(lock.key)
            if pipe.get(lock.key) != lock.token:
                raise LockLost(lock.key)
            pipe.multi()
            if parts is not None:
                for name, blob in parts.items():
                    pipe.set(keys.detector_part(service, name), blob)
                pipe.set(keys.detector_version(service), version)
                if "baseline" in parts or "index" in parts:
                    pipe.set(keys.baseline_version(service), version)
            for doc in staged.values():
                incidents.stage_document(pipe, service, doc, settings.incident_days)
            pipe.set(keys.status(service), json.dumps(status, separators=(",", ":")))
            if outbox:
                pipe.rpush(
                    keys.outbox(service), *(json.dumps(e, separators=(",", ":")) for e in outbox)
                )
            pipe.execute()
        except redis.WatchError:
            raise LockLost(lock.key) from None
    return version


def drain_outbox(conn: redis.Redis, qconn: redis.Redis, service: str) -> int:
    """Apply the service's pending follow-ups (idempotent), then drop them; return how many."""
    key = keys.outbox(service)
    entries = conn.lrange(key, 0, -1)
    for raw in entries:
        entry = json.loads(raw)
        if entry["type"] == "index":
            incidents.apply_index_entry(conn, entry)
        elif entry["type"] == "webhook":
            webhooks.enqueue(qconn, entry)
    if entries:
        conn.ltrim(key, len(entries), -1)
    return len(entries)


def close_orphans(
    conn: redis.Redis,
    settings: Settings,
    lock: ServiceLock,
    service: str,
    detector: Any,
    minute: int,
) -> list[str]:
    """Close stored open incidents that the detector does not hold open (possible after its
    state was rebuilt from history that changed, e.g. by `outage load`); return events."""
    prefix = f"{service}|"
    listed = [
        m.decode()[len(prefix) :]
        for m in conn.smembers(keys.OPEN_INCIDENTS)
        if m.decode().startswith(prefix)
    ]
    if not listed:
        return []
    current = detector.status().incident
    stale = sorted(i for i in listed if current is None or i != current.id)
    docs = [
        d
        for d in incidents.read_documents(conn, ((service, i) for i in stale))
        if d["status"] == incidents.OPEN
    ]
    if not docs:
        return []
    outbox: list[dict[str, Any]] = []
    for doc in docs:
        doc.update(status=incidents.CLOSED, ended_at=doc["updated_at"])
        doc["events"] = [
            *doc["events"],
            {
                "event": "close",
                "at": doc["updated_at"],
                "severity": doc["severity"],
                "reason": "rebuilt",
            },
        ]
        outbox += webhooks.outbox_entries(settings, service, "close", minute, doc)
        outbox.append(incidents.index_entry(service, doc))
    with conn.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(lock.key)
            if pipe.get(lock.key) != lock.token:
                raise LockLost(lock.key)
            pipe.multi()
            for doc in docs:
                incidents.stage_document(pipe, service, doc, settings.incident_days)
            pipe.rpush(
                keys.outbox(service), *(json.dumps(e, separators=(",", ":")) for e in outbox)
            )
            pipe.execute()
        except redis.WatchError:
            raise LockLost(lock.key) from None
    log.warning(
        "detection of %s: closed %d incident(s) its rebuilt state does not hold", service, len(docs)
    )
    return [f"close:{d['id']}" for d in docs]


def start_minute(
    conn: redis.Redis, service: str, detector: Any, target: int, settings: Settings
) -> int | None:
    """Return the first minute to process, or None if the service has no data at all."""
    floor = target - settings.retention_days * 1440 + 1
    if detector is not None and detector.last_minute is not None:
        return max(detector.last_minute + 1, floor)
    first = conn.get(keys.first_minute(service))
    if first is None:
        return None
    return max(int(first), floor)


def checkpoint_due(service: str, minute: int, saved: int | None, every: int) -> bool:
    """Tell whether to save the detector's parts after `minute`: at least every `every`
    minutes, at a minute that depends on the service so that services take turns."""
    if every <= 1 or saved is None:
        return True
    return minute - saved >= every or (minute + zlib.crc32(service.encode())) % every == 0


def run_service(
    conn: redis.Redis,
    qconn: redis.Redis,
    settings: Settings,
    service: str,
    now: float,
    deadline: float | None = None,
    cache: DetectorCache | None = CACHE,
    checkpoint_every: int = 1,
    keep_going: Callable[[], bool] | None = None,
) -> Outcome:
    """Bring one service's detection up to the last complete minute (or until `deadline`).

    Status is written for every minute; the detector's parts at least every
    `checkpoint_every` minutes and whenever an incident changed. Minutes after the last
    checkpoint are re-done after a crash with the same results, so this only trades
    re-computation for writes (use 1 unless this process keeps detectors in memory).
    `keep_going`: asked after each saved chunk of a catch-up; False stops like `deadline`.
    """
    from detector.engine import ServiceDetector

    outcome = Outcome(service)
    params = detector_params(settings)
    lock = ServiceLock(conn, service)
    if not lock.acquire():
        outcome.skipped = "locked"
        return outcome
    where = where_of(conn)
    try:
        drain_outbox(conn, qconn, service)
        target = last_complete_minute(now, settings.detect_grace)
        version = conn.get(keys.detector_version(service))
        done = saved_minute(version)
        if done is not None and done >= target:  # nothing new: skip loading the detector
            outcome.last_minute = done
            return outcome
        detector, _ = load_detector(conn, service, cache, params=params, version=version)
        start = start_minute(conn, service, detector, target, settings)
        if start is None or start > target:
            outcome.last_minute = None if detector is None else detector.last_minute
            return outcome
        full = detector is None
        if detector is None:
            detector = ServiceDetector(service, params)
        try:
            while start <= target:
                end = min(target, start + defaults.CATCHUP_CHUNK_MINUTES - 1)
                events: list[tuple[int, Any]] = []
                for minute, leaves, prefixes in read_minutes(conn, service, start, end):
                    for event in detector.advance(minute, leaves, prefixes):
                        events.append((minute, event))
                saved = None if full or cache is None else cache.saved(where, service)
                parts = None
                if full:  # a new detector: every part is written
                    parts = detector.dirty_parts()
                    if set(parts) != set(part_names()):
                        parts = detector.to_parts()
                elif events or end > start or checkpoint_due(service, end, saved, checkpoint_every):
                    parts = detector.dirty_parts()
                version = save(conn, settings, lock, service, detector, events, parts)
                full = False
                if cache is not None and version is not None:
                    cache.put(where, service, version, detector, end)
                outcome.minutes += end - start + 1
                outcome.series += len(detector.series_keys()) * (end - start + 1)
                outcome.events += [f"{ev.kind}:{ev.incident.id}" for _, ev in events]
                start = end + 1
                if start <= target and (
                    (deadline is not None and time.monotonic() > deadline)
                    or (keep_going is not None and not keep_going())
                ):
                    break
        except BaseException:
            # The in-memory detector may be ahead of Redis: forget it, reload next time.
            if cache is not None:
                cache.drop(where, service)
            raise
        outcome.last_minute = detector.last_minute
        outcome.behind = max(0, target - (detector.last_minute or target))
        if not outcome.behind:
            outcome.events += close_orphans(conn, settings, lock, service, detector, target)
        if outcome.events:  # follow-ups are only written with events
            drain_outbox(conn, qconn, service)
        return outcome
    finally:
        try:
            lock.release()
        except redis.RedisError:
            pass


def run_services(
    conn: redis.Redis,
    qconn: redis.Redis,
    settings: Settings,
    services: Iterable[str],
    now: float | None = None,
    budget: float = defaults.CATCHUP_BUDGET_SECONDS,
    checkpoint_every: int = 1,
) -> list[Outcome]:
    """Run detection for several services, one after the other, sharing a time budget."""
    now = time.time() if now is None else now
    deadline = time.monotonic() + budget
    out = []
    for service in services:
        try:
            out.append(
                run_service(
                    conn, qconn, settings, service, now, deadline, checkpoint_every=checkpoint_every
                )
            )
        except LockLost:
            log.warning("detection of %s: lock lost, results discarded", service)
            out.append(Outcome(service, skipped="lock lost"))
    return out


def checkpoint(
    conn: redis.Redis, settings: Settings, service: str, cache: DetectorCache = CACHE
) -> bool:
    """Save the parts of a detector kept in memory ahead of its last checkpoint (on shutdown
    or before handing its shard over); True if it wrote them. A detector whose stored
    version changed under it (another worker saved) is dropped instead."""
    where = where_of(conn)
    entry = cache.entries.get((where, service))
    if entry is None:
        return False
    version, detector, saved = entry
    if detector.last_minute is None or (saved is not None and saved >= detector.last_minute):
        return False
    lock = ServiceLock(conn, service)
    if not lock.acquire():
        return False
    try:
        if conn.get(keys.detector_version(service)) != version:
            cache.drop(where, service)
            return False
        new = save(conn, settings, lock, service, detector, [], detector.dirty_parts())
        cache.put(where, service, new, detector, detector.last_minute)
        return True
    except LockLost:
        cache.drop(where, service)
        return False
    finally:
        try:
            lock.release()
        except redis.RedisError:
            pass
