"""The persisted detector of a service: parameters, version tokens, the in-process cache
type and loading. Workers save detectors (workers/detection.py); web processes load them for
expected bands (web/queries.py); both read them through this module.

Parts live in `{svc:<slug>}:det:<part>`; the version token in `{svc:<slug>}:det:version`
changes with every save of parts and starts with the minute they reach, so a job can tell
that nothing is new without loading them.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from store import keys
from store.config import Settings

if TYPE_CHECKING:  # imported lazily at run time: web processes that never load one stay light
    from detector.engine import ServiceDetector
    from detector.params import Params

log = logging.getLogger("outage.detection")


def detector_params(settings: Settings) -> Params | None:
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
    entries: OrderedDict[tuple[str, str], tuple[bytes, ServiceDetector, int | None]] = field(
        default_factory=OrderedDict
    )

    def get(self, where: str, service: str, version: bytes | None) -> ServiceDetector | None:
        hit = self.entries.get((where, service))
        if hit is None or version is None or hit[0] != version:
            return None
        self.entries.move_to_end((where, service))
        return hit[1]

    def saved(self, where: str, service: str) -> int | None:
        hit = self.entries.get((where, service))
        return None if hit is None else hit[2]

    def put(
        self,
        where: str,
        service: str,
        version: bytes,
        detector: ServiceDetector,
        saved: int | None = None,
    ) -> None:
        self.entries[(where, service)] = (version, detector, saved)
        self.entries.move_to_end((where, service))
        while self.limit is not None and len(self.entries) > self.limit:
            self.entries.popitem(last=False)

    def drop(self, where: str, service: str) -> None:
        self.entries.pop((where, service), None)


def where_of(conn: Any) -> str:
    """Name the Redis a client talks to (plain, Sentinel or cluster) for the cache key."""
    pool = getattr(conn, "connection_pool", None)
    if pool is None:  # RedisCluster
        return "cluster:" + ",".join(sorted(n.name for n in conn.startup_nodes))
    if getattr(pool, "service_name", None):
        return f"sentinel:{pool.service_name}"
    kw = pool.connection_kwargs
    return f"{kw.get('host')}:{kw.get('port')}/{kw.get('db')}{kw.get('path', '')}"


def _bytes(reply: bytes | str | None) -> bytes | None:
    return reply.encode() if isinstance(reply, str) else reply


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
    cache: DetectorCache | None = None,
    for_bands: bool = False,
    params: Params | None = None,
    version: bytes | None = None,
) -> tuple[ServiceDetector | None, bytes | None]:
    """Return (detector or None if nothing is stored, version token) for a service.

    `cache`: where to keep it between calls (None: load every time). With `for_bands` a
    cached detector is reused until the baseline changes (hourly), which
    is all that expected bands need; otherwise until any part changes. `version`: the
    token if the caller just read it.
    """
    from detector.engine import ServiceDetector

    version_key = (keys.baseline_version if for_bands else keys.detector_version)(service)
    where = where_of(conn) + ("#bands" if for_bands else "")
    if cache is not None:
        current = (
            version if version is not None and not for_bands else _bytes(conn.get(version_key))
        )
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
