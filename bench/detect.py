"""`outage bench detect`: worker time per detection cycle against the number of active series,
Redis reads and writes included, and the latency from a report to a visible incident.

For each size it starts a private Redis (AOF on, as `outage up` runs it), creates services of
85 series each (4 countries x 3 subdivisions x 4 problems, all scopes), gives every service a
warmed-up detector (7 hours of history, so the tests run), writes one minute of counts per
service and times the detection jobs of every shard for that minute:
- cold: a fresh process, every detector loaded from Redis (what a forking RQ worker does);
- warm: detectors kept in the worker process between cycles (a non-forking worker);
- idle: a cycle with no newly completed minute (three cycles in four at the 15 s default).
Loadable from the source checkout by path; `main(argv) -> int`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import redis  # noqa: E402

from cli.redis_server import start_redis  # noqa: E402
from detector.engine import ServiceDetector  # noqa: E402
from store import keys, minute_hash  # noqa: E402
from store.config import Settings  # noqa: E402
from workers import defaults, detection, state  # noqa: E402
from workers.jobs import shard_of  # noqa: E402

COUNTRIES = ("US", "GB", "FR", "DE")
SUBDIVISIONS = {
    "US": ("US-CA", "US-TX", "US-NY"),
    "GB": ("GB-ENG", "GB-SCT", "GB-WLS"),
    "FR": ("FR-IDF", "FR-ARA", "FR-OCC"),
    "DE": ("DE-BY", "DE-BE", "DE-HH"),
}
PROBLEMS = ("app", "website", "login", "images")
LEAVES = [(sub, p) for c in COUNTRIES for sub in SUBDIVISIONS[c] for p in PROBLEMS]
SERIES_PER_SERVICE = (1 + len(COUNTRIES) + len(LEAVES) // len(PROBLEMS)) * (1 + len(PROBLEMS))
"""85: every region scope (global, 4 countries, 12 subdivisions) x (all problems + 4)."""

WARMUP_MINUTES = 7 * 60
"""History fed to the template detector: enough for the baseline (6 hours) to be ready."""

SIZES = (1_000, 10_000, 100_000)
SHARDS = 4


def leaf_rates(rng: np.random.Generator) -> np.ndarray:
    """Per-leaf reporters per minute of one service (0.01 to 1, log-uniform)."""
    return np.exp(rng.uniform(np.log(0.01), np.log(1.0), len(LEAVES)))


def minute_counts(rng: np.random.Generator, rates: np.ndarray) -> dict:
    counts = rng.poisson(rates)
    return {LEAVES[i]: (int(c), int(c)) for i in np.flatnonzero(counts) for c in [counts[i]]}


def template(first: int, seed: int = 1) -> ServiceDetector:
    """Return a detector warmed up over WARMUP_MINUTES ending at minute `first - 1`."""
    rng = np.random.default_rng(seed)
    rates = leaf_rates(rng)
    det = ServiceDetector("template")
    for minute in range(first - WARMUP_MINUTES, first):
        det.advance(minute, minute_counts(rng, rates))
    for leaf in LEAVES:  # every series exists, as after a day of real traffic
        det.index.leaf_position(leaf)
    det.advance(first, {})
    return det


def clone(det: ServiceDetector, service: str) -> ServiceDetector:
    """Return a copy of the template detector renamed to `service`."""
    out = copy.deepcopy(det)
    out.service = service
    out.lifecycle.service = service
    return out


def populate(conn: redis.Redis, services: list[str], tpl: ServiceDetector) -> int:
    """Store a warmed-up detector for every service; return the bytes stored."""
    parts = None
    total = 0
    for i, service in enumerate(services):
        det = clone(tpl, service)
        parts = det.to_parts()
        pipe = conn.pipeline(transaction=False)
        for name, blob in parts.items():
            pipe.set(keys.detector_part(service, name), blob)
            total += len(blob)
        version = f"v{i}".encode()
        pipe.set(keys.detector_version(service), version)
        pipe.set(keys.baseline_version(service), version)
        pipe.set(keys.first_minute(service), tpl.state.first_minute)
        pipe.sadd(keys.ACTIVE_SERVICES, service)
        pipe.execute()
    return total


def write_minute(
    conn: redis.Redis, services: list[str], minute: int, rng: np.random.Generator
) -> None:
    """Write one minute of counts and network prefixes for every service, as ingestion does."""
    pipe = conn.pipeline(transaction=False)
    for service in services:
        rates = leaf_rates(np.random.default_rng(abs(hash(service)) % 2**32))
        counts = minute_counts(rng, rates)
        fields = {}
        for (region, problem), (reports, reporters) in counts.items():
            fields[minute_hash.reports_field(region, problem)] = reports
            fields[minute_hash.reporters_field(region, problem)] = reporters
        key = keys.minute_counts(service, minute)
        if fields:
            pipe.hset(key, mapping=fields)
            pipe.pfadd(
                keys.prefixes(service, minute),
                *[f"n{i}" for i in range(sum(v[1] for v in counts.values()))],
            )
        pipe.expire(key, 3600)
    pipe.execute()


def cycle(
    conn: redis.Redis, settings: Settings, services: list[str], now: float, every: int = 1
) -> dict:
    """Run one cycle (every shard, one after the other) and time it; `every` is the
    checkpoint interval (1 = save every detector every minute)."""
    started, cpu = time.perf_counter(), time.process_time()
    written = 0
    real_dirty = ServiceDetector.dirty_parts

    def counting_dirty(self):
        nonlocal written
        out = real_dirty(self)
        written += sum(len(b) for b in out.values())
        return out

    ServiceDetector.dirty_parts = counting_dirty
    try:
        minutes = 0
        for shard in range(SHARDS):
            mine = [s for s in services if shard_of(s, SHARDS) == shard]
            out = detection.run_services(
                conn, conn, settings, mine, now=now, budget=600, checkpoint_every=every
            )
            minutes += sum(o.minutes for o in out)
    finally:
        ServiceDetector.dirty_parts = real_dirty
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "minutes": minutes,
        "written": written,
    }


def measure(size: int, tpl: ServiceDetector, first: int, workdir: Path) -> dict:
    """Measure cold, warm and idle cycles for `size` active series."""
    n_services = max(1, round(size / SERIES_PER_SERVICE))
    services = [f"svc-{i:05d}" for i in range(n_services)]
    server = start_redis(workdir / f"redis-{size}", appendfsync="everysec")
    conn = redis.Redis.from_url(server.url, socket_timeout=60)
    settings = dataclasses.replace(Settings(), detect_grace=0, redis_url=server.url)
    rng = np.random.default_rng(size)
    minute = first
    try:
        stored = populate(conn, services, tpl)

        def next_cycle(every: int) -> dict:
            nonlocal minute
            minute += 1
            write_minute(conn, services, minute, rng)
            return cycle(conn, settings, services, (minute + 1) * 60 + 1, every)

        state.CACHE.entries.clear()
        cold = next_cycle(1)
        state.CACHE.entries.clear()
        cold_again = next_cycle(1)
        every_minute = [next_cycle(1) for _ in range(2)]
        checkpointed = [
            next_cycle(defaults.CHECKPOINT_MINUTES) for _ in range(defaults.CHECKPOINT_MINUTES)
        ]
        idle = cycle(conn, settings, services, (minute + 1) * 60 + 30, defaults.CHECKPOINT_MINUTES)
        spike = e2e_latency(conn, settings, services, minute + 1)
        memory = conn.info("memory")["used_memory"]
    finally:
        conn.close()
        server.stop()
        state.CACHE.entries.clear()
    seconds = [c["seconds"] for c in checkpointed]
    return {
        "series": n_services * SERIES_PER_SERVICE,
        "services": n_services,
        "cold_s": min(cold["seconds"], cold_again["seconds"]),
        "warm_every_minute_s": min(c["seconds"] for c in every_minute),
        "warm_s": float(np.mean(seconds)),
        "warm_max_s": max(seconds),
        "idle_s": idle["seconds"],
        "written_mb_every_minute": every_minute[-1]["written"] / 1e6,
        "written_mb_checkpointed": float(np.mean([c["written"] for c in checkpointed])) / 1e6,
        "state_mb": stored / 1e6,
        "redis_mb": memory / 1e6,
        "incident_job_s": spike,
    }


def e2e_latency(conn: redis.Redis, settings: Settings, services: list[str], minute: int) -> float:
    """Put a spike into one service's minute, run the cycle, return the seconds until its
    incident is readable through the incidents index (what the API serves)."""
    from store import incidents

    rng = np.random.default_rng(5)
    write_minute(conn, services, minute, rng)
    target = services[0]
    conn.hset(keys.minute_counts(target, minute), mapping={"r|US-CA|app": 400, "u|US-CA|app": 400})
    conn.pfadd(keys.prefixes(target, minute), *[f"p{i}" for i in range(400)])
    started = time.perf_counter()
    cycle(conn, settings, services, (minute + 1) * 60 + 1, defaults.CHECKPOINT_MINUTES)
    took = time.perf_counter() - started
    found = incidents.query(conn, active=True, service=target)
    return took if found else float("nan")


def latency(
    job_s: float, interval: float = 15.0, grace: float = 5.0, seed: int = 0
) -> dict[str, float]:
    """Return report-to-visible-incident latency percentiles, seconds, for a report at a
    uniform time in its minute (detection needs the minute complete), the grace, a uniform
    phase of the cycle, and the measured job time."""
    rng = np.random.default_rng(seed)
    total = (60.0 * rng.random(100_000)) + grace + interval * rng.random(100_000) + job_s
    return {
        "p50": float(np.percentile(total, 50)),
        "p90": float(np.percentile(total, 90)),
        "max": 60.0 + grace + interval + job_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outage bench detect", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="active series to measure, comma-separated (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ns = parser.parse_args(argv)
    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    first = int(time.time() // 60) - 10
    say = (lambda *a: None) if ns.json else (lambda *a: print(*a, file=sys.stderr))
    say(f"warming a {SERIES_PER_SERVICE}-series template detector over {WARMUP_MINUTES} minutes...")
    tpl = template(first)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        for size in sizes:
            say(f"measuring {size} series...")
            rows.append(measure(size, tpl, first, Path(tmp)))
    if ns.json:
        for r in rows:
            r["latency_s"] = latency(r["incident_job_s"])
        print(
            json.dumps(
                {"rows": rows, "shards": SHARDS, "series_per_service": SERIES_PER_SERVICE}, indent=2
            )
        )
        return 0
    print(table(rows))
    print()
    print(
        "| active series | report -> visible incident, p50 / p90 / max (s), 15 s cycle, "
        "5 s grace, warm worker |"
    )
    print("|---|---|")
    for r in rows:
        lat = latency(r["incident_job_s"])
        print(f"| {r['series']:,} | {lat['p50']:.0f} / {lat['p90']:.0f} / {lat['max']:.0f} |")
    return 0


def table(rows: list[dict]) -> str:
    """Return the Markdown table of the measurements (seconds of worker time per cycle)."""
    lines = [
        "| active series | services | cold: load + save all (s) | warm, save every minute "
        "(s) | warm, checkpoint / 5 min: mean (max) (s) | idle cycle (s) | cycle that "
        "opens an incident (s) | written per cycle: every minute / checkpointed "
        "(MB) | detector state (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['series']:,} | {r['services']:,} | {r['cold_s']:.2f} "
            f"| {r['warm_every_minute_s']:.2f} | {r['warm_s']:.2f} "
            f"({r['warm_max_s']:.2f}) | {r['idle_s']:.3f} | {r['incident_job_s']:.2f} "
            f"| {r['written_mb_every_minute']:.1f} / {r['written_mb_checkpointed']:.1f} "
            f"| {r['state_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
