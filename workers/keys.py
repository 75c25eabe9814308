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


def stream(service: str) -> str:
    """Capped stream of recent reports (no IPs): minute, region, problem, source."""
    return f"{tag(service)}:reports"


def comments(service: str) -> str:
    """Capped list of recent comments as JSON objects."""
    return f"{tag(service)}:comments"


def first_minute(service: str) -> str:
    """Earliest minute with stored counts (where a fresh detector starts its catch-up)."""
    return f"{tag(service)}:first"


def detector_part(service: str, part: str) -> str:
    """One persisted part of the service's detector state (index, history, baseline, state)."""
    return f"{tag(service)}:det:{part}"


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


ACTIVE_SERVICES = "outage:services"
"""Set of service slugs that have ever received counts."""

ALL_INCIDENTS = "outage:incidents"
"""Sorted set of `<service>|<incident id>` scored by started_at, across services."""

OPEN_INCIDENTS = "outage:incidents:open"
"""Set of `<service>|<incident id>` of incidents that are open now."""

WEBHOOK_DELIVERIES = "outage:webhooks:deliveries"
"""Capped list of recent webhook delivery outcomes (JSON), newest first."""
