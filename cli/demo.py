"""`outage demo`: a synthetic stream of reports with an outage every few minutes.

It writes the same Redis fields as real ingestion (see store/keys.py), first a week of
seasonal history so baselines exist, then live minutes, so a newcomer sees charts move and
incidents open and close within minutes of `outage up --demo`.
"""

from __future__ import annotations

import argparse
import logging
import math
import secrets
import time
from dataclasses import dataclass

import numpy as np
import redis

from store import keys, minute_hash
from store.catalog import load_catalog
from store.config import load_settings
from store.connections import NoRedisConfigured, data_redis

log = logging.getLogger("outage.demo")

DEMO_SERVICES = ("x", "youtube", "whatsapp", "github", "chase", "verizon")
"""Services the demo keeps moving (they must be in the catalog)."""

REGIONS = {
    "US-CA": 0.12,
    "US-NY": 0.08,
    "US-TX": 0.08,
    "US": 0.14,
    "GB": 0.14,
    "DE": 0.1,
    "FR": 0.08,
    "CA": 0.07,
    "IN": 0.1,
    "BR": 0.09,
}
"""Share of a service's reports per region (US states plus countries)."""

HISTORY_DAYS = 8
"""Days of seasonal history written at start-up so the baseline exists."""

OUTAGE_EVERY_MIN = 4
"""Minutes between the onsets of demo outages (one service at a time)."""


@dataclass(frozen=True)
class Outage:
    service: str
    start: int
    minutes: int
    factor: float
    regions: tuple[str, ...]


def base_rate(service_index: int, minute: int) -> float:
    """Expected reports per minute: a diurnal cycle around a per-service level."""
    level = (2.0, 6.0, 3.0, 1.5, 1.0, 2.5)[service_index % 6]
    hour = (minute % 1440) / 60.0
    return level * (1.0 + 0.6 * math.sin(2 * math.pi * (hour - 9) / 24))


def outage_at(minute: int, services: list[str], rng_seed: int = 7) -> Outage | None:
    """Return the demo outage active at `minute`, if any (deterministic per time slot)."""
    slot = minute // OUTAGE_EVERY_MIN
    for back in range(3):
        s = slot - back
        rng = np.random.default_rng([rng_seed, s])
        start = s * OUTAGE_EVERY_MIN
        length = int(rng.integers(4, 8))
        if start <= minute < start + length and s % 2 == 0:
            svc = services[int(rng.integers(len(services)))]
            regions = tuple(rng.choice(list(REGIONS), size=int(rng.integers(2, 6)), replace=False))
            return Outage(svc, start, length, float(rng.uniform(8, 25)), regions)
    return None


def minute_counts(
    rng: np.random.Generator,
    service_index: int,
    problems: tuple[str, ...],
    minute: int,
    outage: Outage | None,
) -> dict[tuple[str, str], int]:
    """Draw one minute of leaf counts for one service."""
    mix = np.array([0.45] + [0.55 / max(1, len(problems) - 1)] * (len(problems) - 1))
    mix = mix[: len(problems)] / mix[: len(problems)].sum()
    rate = base_rate(service_index, minute)
    out: dict[tuple[str, str], int] = {}
    for region, share in REGIONS.items():
        lam = rate * share * mix
        if outage is not None and region in outage.regions:
            # Every problem rises, the first (the broken feature) most.
            lam = lam * outage.factor
            lam[0] *= 2.0
        counts = rng.poisson(lam)
        for problem, n in zip(problems, counts, strict=True):
            if n:
                out[(region, problem)] = int(n)
    return out


def write_minute(
    pipe,
    service: str,
    minute: int,
    counts: dict[tuple[str, str], int],
    retention_s: int,
    incr: bool,
) -> None:
    """Queue the Redis writes of one service-minute on a pipeline."""
    key = keys.minute_counts(service, minute)
    for (region, problem), n in counts.items():
        for kind in (minute_hash.REPORTS, minute_hash.REPORTERS):
            field = minute_hash.field(kind, region, problem)
            if incr:
                pipe.hincrby(key, field, n)
            else:
                pipe.hset(key, field, n)
    total = sum(counts.values())
    if total:
        # One fresh network prefix per report: demo reporters are diverse, not one spammer.
        # (The same ids every second would look like a few sources, which detection ignores.)
        ids = secrets.token_hex(4 * total)
        pipe.pfadd(keys.prefixes(service, minute), *[ids[8 * i : 8 * i + 8] for i in range(total)])
        pipe.expireat(keys.prefixes(service, minute), minute * 60 + retention_s)
    pipe.expireat(key, minute * 60 + retention_s)


def seed_history(
    conn: redis.Redis,
    services: list[str],
    problems: dict[str, tuple[str, ...]],
    now_minute: int,
    retention_s: int,
) -> None:
    """Write HISTORY_DAYS of quiet seasonal counts, once per data directory."""
    rng = np.random.default_rng(20231221)
    start = now_minute - HISTORY_DAYS * 1440
    for i, svc in enumerate(services):
        if conn.exists(keys.first_minute(svc)):
            continue
        pipe = conn.pipeline(transaction=False)
        for minute in range(start, now_minute):
            write_minute(
                pipe,
                svc,
                minute,
                minute_counts(rng, i, problems[svc], minute, None),
                retention_s,
                incr=False,
            )
            if len(pipe) > 5000:
                pipe.execute()
        pipe.set(keys.first_minute(svc), start)
        pipe.sadd(keys.ACTIVE_SERVICES, svc)
        for part in ("index", "history", "baseline", "state", "meta"):
            pipe.delete(keys.detector_part(svc, part))
        pipe.execute()
        log.warning("demo: wrote %d days of history for %s", HISTORY_DAYS, svc)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="outage demo",
        description="Feed synthetic reports "
        "for a few services, with an outage every few minutes, "
        "into the configured Redis (started by `outage up --demo`).",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for live minutes")
    ns = parser.parse_args(argv)
    settings = load_settings()
    catalog = load_catalog(settings.catalog_path)
    known = {s: entry for s in DEMO_SERVICES if (entry := catalog.get(s)) is not None}
    services = list(known)
    problems = {s: entry.problem_slugs for s, entry in known.items()}
    try:
        conn = data_redis(settings, timeout=10)
    except NoRedisConfigured as exc:
        print(f"outage demo: {exc}")
        return 2
    retention_s = settings.retention_days * 86400
    rng = np.random.default_rng(ns.seed)
    seed_history(conn, services, problems, int(time.time() // 60), retention_s)
    # Live: spread each minute's draws over the minute, one slice per second.
    while True:
        now = time.time()
        minute = int(now // 60)
        outage = outage_at(minute, services)
        pipe = conn.pipeline(transaction=False)
        for i, svc in enumerate(services):
            counts = minute_counts(
                rng, i, problems[svc], minute, outage if outage and outage.service == svc else None
            )
            # Thin to one sixtieth per second so the minute fills up gradually.
            thinned = {
                k: int(n) for k, n in ((k, rng.binomial(v, 1 / 60)) for k, v in counts.items()) if n
            }
            write_minute(pipe, svc, minute, thinned, retention_s, incr=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("demo: Redis unavailable (%s); retrying", exc)
        time.sleep(max(0.0, 1.0 - (time.time() - now)))
