"""The Redis key schema, in one place. docs/storage.md documents it for operators.

Every key of a service carries the hash tag `{svc:<slug>}`, so a Redis Cluster keeps a
service in one slot and multi-key commands (the ingestion script, detection reads) stay
legal. Global keys start with `outage:` and are only ever used in single-key commands.
Minutes are epoch minutes (unix seconds // 60).
"""

from __future__ import annotations


def tag(service: str) -> str:
    """Return the hash-tagged prefix of every key of one service."""
    return f"{{svc:{service}}}"


def minute_counts(service: str, minute: int) -> str:
    """Hash of one service-minute: `r|<region>|<problem>` raw reports and
    `u|<region>|<problem>` counted (deduplicated) reporters; region `*` = unknown."""
    return f"{tag(service)}:m:{minute}"


def prefixes(service: str, minute: int) -> str:
    """HyperLogLog of keyed hashes of reporters' network prefixes (/24, /48) in a minute."""
    return f"{tag(service)}:pfx:{minute}"


def dedup(service: str, reporter_hash: str) -> str:
    """Marker (SET NX EX) that this reporter was already counted in the dedup window."""
    return f"{tag(service)}:seen:{reporter_hash}"


def idempotency(service: str, token_hash: str) -> str:
    """Outcome (`accepted:duplicates`) of a keyed request with this Idempotency-Key."""
    return f"{tag(service)}:idem:{token_hash}"


def key_quota(service: str, key_id: str, minute: int) -> str:
    """Reports an API key sent for this service in this minute (its per-minute cap)."""
    return f"{tag(service)}:quota:{key_id}:{minute}"


def stream(service: str) -> str:
    """Capped stream of recent reports (no IPs), one entry per request, minute, region and
    problem: minute, region, problem, source (form, api, key:<id>), reports, counted."""
    return f"{tag(service)}:reports"


def comments(service: str) -> str:
    """Capped list of recent comments as JSON objects (at, region, problem, text), newest
    first; only counted reports add one."""
    return f"{tag(service)}:comments"


def first_minute(service: str) -> str:
    """Earliest minute with stored counts (where a fresh detector starts its catch-up)."""
    return f"{tag(service)}:first"


def detector_part(service: str, part: str) -> str:
    """One persisted part of the service's detector state (index, history, baseline, state)."""
    return f"{tag(service)}:det:{part}"


def detector_version(service: str) -> str:
    """Random token rewritten by every save of the detector parts; lets a process keep a
    loaded detector and reuse it while the token is unchanged. Deleting the service's
    `det:*` keys (as `outage load` does) deletes it too, so every cache reloads."""
    return f"{tag(service)}:det:version"


def baseline_version(service: str) -> str:
    """Token rewritten whenever the detector's baseline or series index changes (hourly):
    web processes keep a loaded detector for expected bands while it is unchanged."""
    return f"{tag(service)}:det:bver"


def detect_lock(service: str) -> str:
    """Held while a job runs detection for the service, so two jobs never interleave."""
    return f"{tag(service)}:det:lock"


def status(service: str) -> str:
    """JSON of the service's current level, observed vs expected, affected scopes."""
    return f"{tag(service)}:status"


def incident(service: str, incident_id: str) -> str:
    """JSON of one incident (DESIGN 3.2 fields plus evidence and history of changes)."""
    return f"{tag(service)}:inc:{incident_id}"


def incidents(service: str) -> str:
    """Sorted set of the service's incident ids scored by started_at (epoch seconds)."""
    return f"{tag(service)}:incidents"


def outbox(service: str) -> str:
    """List of follow-ups (global index updates, webhook enqueues) written in the same
    transaction as the incidents that caused them and removed once done."""
    return f"{tag(service)}:outbox"


ACTIVE_SERVICES = "outage:services"
"""Set of service slugs that have ever received counts."""

ALL_INCIDENTS = "outage:incidents"
"""Sorted set of `<service>|<incident id>` scored by started_at, across services."""

OPEN_INCIDENTS = "outage:incidents:open"
"""Set of `<service>|<incident id>` of incidents that are open now."""

RATE_LIMITS = "outage:limit"
"""Prefix of flask-limiter's fixed-window counters; the client part is a keyed hash of the
IP (never the IP itself) or the API key's public id."""

WEBHOOK_DELIVERIES = "outage:webhooks:deliveries"
"""Capped list of recent webhook delivery outcomes (JSON), newest first."""

QUEUES = ("detect", "webhooks", "default")
"""RQ queues (in the queue Redis) a worker listens on, most urgent first."""

SCHEDULER_LOCK = "outage:scheduler:lock"
"""Held by the active scheduler; expires if it dies so another can take over."""

SCHEDULER_CYCLE = "outage:scheduler:cycle"
"""The last detection cycle number enqueued (only ever raised)."""

DETECT_TICKS = "outage:detect:ticks"
"""Capped stream of the detection cycles the active scheduler claimed (field `cycle`), once
each: detection workers block on it and run a cycle per entry."""

DETECT_WORKERS = "outage:detect:workers"
"""Sorted set of live detection workers (member: worker id, score: unix time its heartbeat
lapses); their number sets each worker's fair share of the shards."""

DETECT_CYCLE_LOG = "outage:detect:cycle-log"
"""Capped list of the detection workers' own cycle records (JSON: worker, cycle, cpu and wall
seconds, shards, services, series, minutes), newest first: what `outage bench detect` reads."""


def detect_lease(shard: int) -> str:
    """Lease on one detection shard: the owning worker's id, with a TTL renewed every cycle;
    only the owner runs (and keeps in memory) the detectors of the shard's services."""
    return f"outage:detect:lease:{shard}"


SCHEDULER_HOUR = "outage:scheduler:hour"
"""The last hour (unix s // 3600) whose maintenance job was enqueued."""

WEBHOOK_SENT = "outage:webhooks:sent"
"""Prefix of one marker per delivery that succeeded, so a retried job never POSTs twice."""


def webhook_sent(delivery_id: str) -> str:
    """Marker (SET NX EX) that the delivery `delivery_id` reached its receiver."""
    return f"{WEBHOOK_SENT}:{delivery_id}"
