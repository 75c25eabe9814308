"""The persisted detector of a service: parameters, versions, the in-process cache,
loading, and the status document written with every save.

Parts live in `{svc:<slug>}:det:<part>`; the version token in `{svc:<slug>}:det:version`
changes with every save of parts and starts with the minute they reach, so a job can tell
that nothing is new without loading them.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from detector.clock import minute_to_iso
from workers import keys
from workers.config import Settings

log = logging.getLogger("outage.detection")


def detector_params(settings: Settings):
    """Return the detector Params of these settings (None = the detector's defaults)."""
    if not settings.detector_params:
        return None
    from detector.params import Params

    return Params(**dict(settings.detector_params))


@dataclass
class DetectorCache:
    """Detectors kept in memory between jobs, valid while the version token is unchanged.

    Each entry also remembers the last minute whose parts were saved (the checkpoint): the
    detector in memory may be ahead of it.
    """

    limit: int | None = None
    """Most detectors kept (least recently used dropped first); None: no limit."""
    entries: OrderedDict[tuple[str, str], tuple[bytes, Any, int | None]] = field(
        default_factory=OrderedDict
    )

    def get(self, where: str, service: str, version: bytes | None):
        hit = self.entries.get((where, service))
        if hit is None or version is None or hit[0] != version:
            return None
        self.entries.move_to_end((where, service))
        return hit[1]

    def saved(self, where: str, service: str) -> int | None:
        hit = self.entries.get((where, service))
        return None if hit is None else hit[2]

    def put(
        self, where: str, service: str, version: bytes, detector: Any, saved: int | None = None
    ) -> None:
        self.entries[(where, service)] = (version, detector, saved)
        self.entries.move_to_end((where, service))
        while self.limit is not None and len(self.entries) > self.limit:
            self.entries.popitem(last=False)

    def drop(self, where: str, service: str) -> None:
        self.entries.pop((where, service), None)


CACHE = DetectorCache()
"""A worker process's detectors, one per service it detects (kept between jobs by a
non-forking worker)."""

BAND_CACHE = DetectorCache(limit=64)
"""Detectors a web process keeps for expected bands (the charts and maps), renewed when
their baseline changes."""


def where_of(conn: Any) -> str:
    """Name the Redis a client talks to (plain, Sentinel or cluster) for the cache key."""
    pool = getattr(conn, "connection_pool", None)
    if pool is None:  # RedisCluster
        return "cluster:" + ",".join(sorted(n.name for n in conn.startup_nodes))
    if getattr(pool, "service_name", None):
        return f"sentinel:{pool.service_name}"
    kw = pool.connection_kwargs
    return f"{kw.get('host')}:{kw.get('port')}/{kw.get('db')}{kw.get('path', '')}"


def part_names() -> tuple[str, ...]:
    """Return the names of the parts a detector persists."""
    from detector.engine import PARTS

    return tuple(PARTS)


def new_version(minute: int | None) -> bytes:
    """Return a fresh version token that also tells up to which minute the parts are."""
    return f"{minute}:{uuid.uuid4().hex}".encode()


def saved_minute(version: bytes | None) -> int | None:
    """Return the last minute of the saved parts from their version token, if known."""
    head = (version or b"").split(b":", 1)[0]
    return int(head) if head.isdigit() else None


def load_detector(
    conn: redis.Redis,
    service: str,
    cache: DetectorCache | None | str = "auto",
    for_bands: bool = False,
    params: Any = None,
    version: bytes | None = None,
):
    """Return (detector or None if nothing is stored, version token) for a service.

    With `for_bands` a cached detector is reused until the baseline changes (hourly), which
    is all that expected bands need; otherwise until any part changes. `version`: the
    token if the caller just read it.
    """
    from detector.engine import ServiceDetector

    if cache == "auto":
        cache = BAND_CACHE if for_bands else CACHE
    version_key = (keys.baseline_version if for_bands else keys.detector_version)(service)
    where = where_of(conn) + ("#bands" if for_bands else "")
    if cache is not None:
        current = version if version is not None and not for_bands else conn.get(version_key)
        hit = cache.get(where, service, current)
        if hit is not None:
            return hit, cache.entries[(where, service)][0]
    names = part_names()
    pipe = conn.pipeline(transaction=True)  # parts and token from one consistent save
    pipe.get(version_key)
    for name in names:
        pipe.get(keys.detector_part(service, name))
    replies = pipe.execute()
    version, raw = replies[0], replies[1:]
    parts = {n: v for n, v in zip(names, raw, strict=True) if v is not None}
    if len(parts) != len(names) or version is None:
        return None, None
    try:
        detector = ServiceDetector.from_parts(service, parts, params)
    except (ValueError, KeyError, OSError) as exc:
        # Parts from another format or other buffer sizes: rebuild from stored counts.
        log.warning("detector state of %s unusable (%s); rebuilding it", service, exc)
        return None, None
    if cache is not None:
        cache.put(where, service, version, detector, detector.last_minute)
    return detector, version


STATUS_WINDOW = 15
"""Minutes summed into a status's `observed` / `expected` (like 15-minute report buckets)."""


def _num(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def _shares(shares: Iterable[Any], name: str) -> list[dict[str, Any]]:
    return [
        {
            name: s.name,
            "observed": _num(s.observed),
            "expected": _num(s.expected),
            "share": _num(s.share),
            "normal_share": _num(s.normal_share),
        }
        for s in shares
    ]


def status_document(detector: Any, service: str, st: Any = None) -> dict[str, Any]:
    """Return the stored status of a service (the API's `status` object); `st`: the
    detector's status() if the caller has it already."""
    st = detector.status() if st is None else st
    observed = [float(v) for v in st.observed]
    expected = [float(v) for v in st.expected]
    obs = sum(observed[-STATUS_WINDOW:])
    exp = sum(expected[-STATUS_WINDOW:])
    incident = None
    if st.incident is not None:
        incident = {"id": st.incident.id, **st.incident.to_dict()}
    return {
        "service": service,
        "level": str(st.level),
        "baseline": st.baseline.name.lower(),
        "updated_at": None if st.minute is None else minute_to_iso(st.minute + 1),
        "window_minutes": min(STATUS_WINDOW, len(observed)),
        "observed": _num(obs),
        "expected": _num(exp),
        "ratio": _num(obs / exp) if exp > 0 else None,
        "p_value": None if st.p_value is None else float(st.p_value),
        "recent": {
            "start": None if st.window_start is None else minute_to_iso(st.window_start),
            "observed": [_num(v) for v in observed],
            "expected": [_num(v) for v in expected],
        },
        "incident": incident,
        "affected_regions": list(st.affected_regions),
        "regions": _shares(st.regions, "region"),
        "top_problems": _shares(st.problems, "problem"),
    }
