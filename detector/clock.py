"""Convert between epoch minutes (unix seconds // 60) and ISO 8601 UTC strings."""

from __future__ import annotations

from datetime import UTC, datetime


def minute_to_iso(minute: int) -> str:
    """Format the start of an epoch minute as ISO 8601 UTC ending in Z."""
    return datetime.fromtimestamp(int(minute) * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_complete_minute(now: float, grace: float) -> int:
    """Return the newest epoch minute that ended at least `grace` seconds before `now` (unix
    seconds): the last minute whose reports are all in, so detection and charts agree."""
    return int((now - grace) // 60) - 1


def iso_to_minute(text: str) -> int:
    """Parse an ISO 8601 UTC timestamp on a whole minute into an epoch minute."""
    raw = text.strip()
    if raw.endswith("Z") or raw.endswith("z"):
        raw = raw[:-1] + "+00:00"
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from exc
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp needs a UTC offset (e.g. Z): {text!r}")
    seconds = stamp.timestamp()
    if seconds % 60 != 0:
        raise ValueError(f"timestamp is not on a whole minute: {text!r}")
    return int(seconds // 60)
