"""Webhook deliveries: signed POSTs on incident events, retried with backoff by RQ.

Each (subscription, incident, event, minute) is one delivery with a deterministic id; it is
enqueued once (RQ `unique=True` on that id) and POSTed at most once successfully (a marker
is set after a 2xx). Secrets never enter Redis: jobs carry the subscription id and the
worker looks the secret up in its own configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import DuplicateJobError

from detector.clock import minute_to_iso
from store import keys, metrics
from store.config import Settings
from store.webhooks import EVENTS, SIGNATURE_TOLERANCE, public_url, subscription_id
from workers import defaults

log = logging.getLogger("outage.webhooks")

QUEUE = "webhooks"
"""RQ queue of webhook deliveries (a worker takes detection jobs first)."""


class DeliveryFailed(RuntimeError):
    """The receiver did not answer 2xx in time; RQ retries the job."""


def subscriptions_for(settings: Settings, service: str) -> list[dict[str, Any]]:
    """Return the subscriptions that want events of this service."""
    return [s for s in settings.webhooks if not s["services"] or service in s["services"]]


def delivery_id(sub_id: str, service: str, incident_id: str, kind: str, minute: int) -> str:
    """Return the deterministic id (and RQ job id) of one delivery."""
    raw = f"{sub_id}|{service}|{incident_id}|{kind}|{minute}"
    return "wh-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def payload(kind: str, service: str, minute: int, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON body of an event: what happened, when, and the incident document."""
    return {
        "event": kind,
        "service": service,
        "minute": minute_to_iso(minute),
        "incident": dict(doc),
    }


def outbox_entries(
    settings: Settings, service: str, kind: str, minute: int, doc: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Return one outbox entry per subscription that wants this event."""
    if kind not in EVENTS:
        return []
    body = payload(kind, service, minute, doc)
    out = []
    for sub in subscriptions_for(settings, service):
        sub_id = subscription_id(sub["url"])
        out.append(
            {
                "type": "webhook",
                "delivery": delivery_id(sub_id, service, doc["id"], kind, minute),
                "subscription": sub_id,
                "payload": body,
            }
        )
    return out


def enqueue(qconn: redis.Redis, entry: Mapping[str, Any]) -> bool:
    """Enqueue a delivery once; return False if it was already enqueued."""
    queue = Queue(QUEUE, connection=qconn)
    try:
        queue.enqueue(
            "workers.webhooks.deliver",
            entry["delivery"],
            entry["subscription"],
            entry["payload"],
            job_id=entry["delivery"],
            unique=True,
            retry=Retry(
                max=len(defaults.WEBHOOK_RETRY_INTERVALS),
                interval=list(defaults.WEBHOOK_RETRY_INTERVALS),
            ),
            result_ttl=defaults.WEBHOOK_JOB_TTL_SECONDS,
            failure_ttl=defaults.WEBHOOK_JOB_TTL_SECONDS,
            job_timeout=60,
            description=f"webhook {entry['payload']['event']} {entry['payload']['incident']['id']}",
        )
    except DuplicateJobError:
        return False
    return True


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Outage-Signature value: `sha256=` + HMAC-SHA256(secret, "<ts>.<body>")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """Check a received signature and that the timestamp is recent (what receivers do)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a receiver must answer itself
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(
    url: str, secret: str, body: bytes, timeout: float, delivery: str = "", event: str = ""
) -> tuple[int | None, str | None]:
    """POST a signed body; return (HTTP status or None, error message or None)."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": defaults.WEBHOOK_USER_AGENT,
        "X-Outage-Timestamp": timestamp,
        "X-Outage-Signature": sign(secret, timestamp, body),
    }
    if delivery:
        headers["X-Outage-Delivery"] = delivery
    if event:
        headers["X-Outage-Event"] = event
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            resp.read(defaults.WEBHOOK_MAX_RESPONSE_BYTES)
            return resp.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"


def record(conn: redis.Redis, outcome: Mapping[str, Any]) -> None:
    """Append a delivery attempt to the capped list behind GET /api/v1/webhooks/deliveries."""
    metrics.webhook(conn, str(outcome.get("outcome", "other")))
    pipe = conn.pipeline(transaction=False)
    pipe.lpush(keys.WEBHOOK_DELIVERIES, json.dumps(outcome, separators=(",", ":")))
    pipe.ltrim(keys.WEBHOOK_DELIVERIES, 0, defaults.DELIVERIES_KEPT - 1)
    pipe.execute()


def deliver(delivery: str, sub_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """RQ job: POST one event to one subscription; raise so RQ retries on failure."""
    from store.config import load_settings
    from store.connections import data_redis

    settings = load_settings()
    conn = data_redis(settings)
    job = get_current_job()
    total = len(defaults.WEBHOOK_RETRY_INTERVALS) + 1
    retries_left = getattr(job, "retries_left", None) if job is not None else None
    attempt = total - retries_left if retries_left is not None else 1
    sub = next((s for s in settings.webhooks if subscription_id(s["url"]) == sub_id), None)
    outcome: dict[str, Any] = {
        "delivery": delivery,
        "subscription": sub_id,
        "url": public_url(sub["url"]) if sub else None,
        "service": body["service"],
        "incident": body["incident"]["id"],
        "event": body["event"],
        "attempt": attempt,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if sub is None:
        outcome.update(outcome="dropped", error="subscription no longer configured")
        record(conn, outcome)
        return outcome
    if conn.exists(keys.webhook_sent(delivery)):
        outcome.update(outcome="skipped", error="already delivered")
        record(conn, outcome)
        return outcome
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    started = time.monotonic()
    status, error = post(
        sub["url"], sub["secret"], data, settings.webhook_timeout, delivery, body["event"]
    )
    outcome["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
    outcome["status_code"] = status
    if status is not None and 200 <= status < 300:
        conn.set(keys.webhook_sent(delivery), "1", ex=defaults.WEBHOOK_JOB_TTL_SECONDS)
        outcome.update(outcome="delivered", error=None)
        record(conn, outcome)
        return outcome
    final = attempt >= total
    outcome.update(outcome="gave_up" if final else "failed", error=error)
    record(conn, outcome)
    log.warning(
        "webhook %s to %s failed (attempt %d/%d): %s",
        delivery,
        outcome["url"],
        attempt,
        total,
        error,
    )
    raise DeliveryFailed(f"{outcome['url']}: {error}")
