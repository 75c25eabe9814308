"""What web and workers share about webhooks: the events, the public id and URL of a
subscription, and the log of recent deliveries (written by workers/webhooks.py, the jobs
that deliver them; read by GET /api/v1/webhooks/deliveries).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any

import redis

from store import keys

EVENTS = ("open", "escalate", "close", "reopen")
"""Incident events that are delivered."""

SIGNATURE_TOLERANCE = 300
"""Seconds a receiver should accept between X-Outage-Timestamp and its own clock."""


def subscription_id(url: str) -> str:
    """Return the stable public id of a subscription (a hash of its URL)."""
    return "s" + hashlib.sha256(url.encode()).hexdigest()[:12]


def public_url(url: str) -> str:
    """Return the URL without credentials, query or fragment (safe to show in the API)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def recent(
    conn: redis.Redis, limit: int = 100, service: str | None = None, incident: str | None = None
) -> list[dict[str, Any]]:
    """Return recent delivery attempts, newest first, optionally for one service/incident."""
    out = []
    for raw in conn.lrange(keys.WEBHOOK_DELIVERIES, 0, -1):
        item = json.loads(raw)
        if service is not None and item["service"] != service:
            continue
        if incident is not None and item["incident"] != incident:
            continue
        out.append(item)
        if len(out) >= limit:
            break
    return out
