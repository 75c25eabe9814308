"""Store and query incidents: one JSON document per incident, keyed by its deterministic id.

Writes happen inside the detection job's transaction (`stage_event`), so applying the same
lifecycle event twice rewrites the same document. The global indices (`outage:incidents`,
`outage:incidents:open`) are updated afterwards from the service's outbox (`index_entry`),
because a Redis Cluster transaction may only touch the keys of one service.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from detector.clock import iso_to_minute, minute_to_iso
from store import keys
from store.connections import texts

OPEN, CLOSED = "open", "closed"


def member(service: str, incident_id: str) -> str:
    """Return the global index member of an incident: `<service>|<id>`."""
    return f"{service}|{incident_id}"


def split_member(value: bytes | str) -> tuple[str, str]:
    """Split a global index member into (service, incident id)."""
    text = value.decode() if isinstance(value, bytes) else value
    service, _, incident_id = text.partition("|")
    return service, incident_id


def build_document(
    kind: str | None, incident: Any, minute: int, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Return the stored document of an incident right after one lifecycle event, or with
    its figures brought up to date (`kind` None: peak, p-value, affected scopes change
    between events).

    `minute` is the epoch minute whose data produced the event. The event list is kept
    free of repeats, so re-applying an event yields the same document.
    """
    doc: dict[str, Any] = {"id": incident.id, **incident.to_dict()}
    doc["status"] = OPEN if incident.ended_at is None else CLOSED
    doc["evidence"] = incident.evidence()
    events = list((previous or {}).get("events", []))
    entry = {
        "event": str(kind),
        "at": minute_to_iso(minute + 1),
        "severity": str(incident.severity),
    }
    if kind is not None and entry not in events:
        events.append(entry)
        events.sort(key=lambda e: e["at"])
    doc["events"] = events
    doc["updated_at"] = max(e["at"] for e in events)
    return doc


def started_seconds(doc: Mapping[str, Any]) -> int:
    """Return an incident document's started_at as unix seconds (index score)."""
    return iso_to_minute(doc["started_at"]) * 60


def stage_document(
    pipe: redis.client.Pipeline, service: str, doc: Mapping[str, Any], keep_days: int
) -> None:
    """Queue the writes of one incident document into a MULTI pipeline."""
    key = keys.incident(service, doc["id"])
    pipe.set(key, json.dumps(doc, separators=(",", ":")))
    if doc["status"] == CLOSED:
        pipe.expire(key, keep_days * 86400)
    else:
        pipe.persist(key)
    pipe.zadd(keys.incidents(service), {doc["id"]: started_seconds(doc)})


def index_entry(service: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return the outbox entry that brings the global indices up to date with a document."""
    return {
        "type": "index",
        "member": member(service, doc["id"]),
        "score": started_seconds(doc),
        "open": doc["status"] == OPEN,
    }


def apply_index_entry(conn: redis.Redis, entry: Mapping[str, Any]) -> None:
    """Apply an index outbox entry (idempotent single-key commands)."""
    conn.zadd(keys.ALL_INCIDENTS, {entry["member"]: entry["score"]})
    if entry["open"]:
        conn.sadd(keys.OPEN_INCIDENTS, entry["member"])
    else:
        conn.srem(keys.OPEN_INCIDENTS, entry["member"])


def read_documents(conn: redis.Redis, pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Fetch incident documents for (service, id) pairs in one round trip; skip missing ones."""
    pairs = list(pairs)
    if not pairs:
        return []
    pipe = conn.pipeline(transaction=False)
    for service, incident_id in pairs:
        pipe.get(keys.incident(service, incident_id))
    return [json.loads(raw) for raw in pipe.execute() if raw]


def query(
    conn: redis.Redis,
    active: bool | None = None,
    service: str | None = None,
    since_seconds: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Return incidents newest first: open ones (active=True), closed ones (False) or all.

    `since_seconds` keeps incidents still open at that time or started/ended after it.
    """
    if active:
        raw = conn.smembers(keys.OPEN_INCIDENTS)
        pairs = sorted((split_member(m) for m in raw), key=lambda p: p[1])
        if service is not None:
            pairs = [p for p in pairs if p[0] == service]
    elif service is not None:
        ids = conn.zrevrange(keys.incidents(service), 0, -1)
        pairs = [(service, i) for i in texts(ids)]
    else:
        pairs = [split_member(m) for m in texts(conn.zrevrange(keys.ALL_INCIDENTS, 0, -1))]
    out = []
    for start in range(0, len(pairs), 500):
        for doc in read_documents(conn, pairs[start : start + 500]):
            if active is not None and (doc["status"] == OPEN) != active:
                continue
            if since_seconds is not None and not _touches(doc, since_seconds):
                continue
            out.append(doc)
        if len(out) >= limit:
            break
    out.sort(key=lambda d: (d["started_at"], d["id"]), reverse=True)
    return out[:limit]


def _touches(doc: Mapping[str, Any], since_seconds: int) -> bool:
    if doc["ended_at"] is None:
        return True
    return iso_to_minute(doc["ended_at"]) * 60 >= since_seconds


def trim(conn: redis.Redis, services: Iterable[str], keep_days: int, now: float) -> int:
    """Drop index entries whose document expired or started before the retention; return
    how many were removed."""
    removed = 0
    horizon = int(now) - keep_days * 86400
    for service in services:
        zkey = keys.incidents(service)
        ids = texts(conn.zrange(zkey, 0, -1))
        if not ids:
            continue
        pipe = conn.pipeline(transaction=False)
        for incident_id in ids:
            pipe.exists(keys.incident(service, incident_id))
        gone = [i for i, ok in zip(ids, pipe.execute(), strict=True) if not ok]
        old = texts(conn.zrangebyscore(zkey, "-inf", f"({horizon}"))
        # An old incident that is still open stays listed until it closes.
        still_open = {i for i in old if _is_open(conn, service, i)}
        drop = sorted(set(gone) | (set(old) - still_open))
        if drop:
            conn.zrem(zkey, *drop)
            conn.zrem(keys.ALL_INCIDENTS, *(member(service, i) for i in drop))
            conn.srem(keys.OPEN_INCIDENTS, *(member(service, i) for i in gone))
            for incident_id in set(old) - still_open - set(gone):
                conn.delete(keys.incident(service, incident_id))
            removed += len(drop)
    return removed


def indexed_services(conn: redis.Redis) -> set[str]:
    """Return every service that has an entry in the global incident index."""
    return {split_member(m)[0] for m in texts(conn.zrange(keys.ALL_INCIDENTS, 0, -1))}


def _is_open(conn: redis.Redis, service: str, incident_id: str) -> bool:
    raw = conn.get(keys.incident(service, incident_id))
    return raw is not None and bool(raw) and json.loads(raw)["status"] == OPEN
