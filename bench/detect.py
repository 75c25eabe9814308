"""`outage bench detect`: worker time per detection cycle against the number of active series,
Redis reads and writes included, and the latency from a report to a visible incident.

For each size it starts a private Redis (AOF on, as `outage up` runs it), creates services of
85 series each (4 countries x 3 subdivisions x 4 problems, all scopes), gives every service a
warmed-up detector (7 hours of history, so the tests run), writes one minute of counts per
service and times the detection jobs of every shard for that minute:
- cold: a fresh process, every detector loaded from Redis (what a forking RQ worker does);
- warm: detectors kept in the worker process between cycles (a non-forking worker);
- idle: a cycle with no newly completed minute (three cycles in four at the 15 s default);
- deployed: `outage worker` and `outage scheduler` as processes, the worker on a clock that
  completes one minute per cycle (bench/clocked_worker.py), so every cycle is a busy one; its
  CPU seconds per cycle come from the worker's own cycle records (`keys.DETECT_CYCLE_LOG`),
  checkpoints included, over DEPLOYED_CYCLES cycles after it caught up.
Loadable from the source checkout by path; `main(argv) -> int`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import signal
import subprocess
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

DEPLOYED_CYCLES = 10
"""Busy cycles of the deployed worker averaged (after it loaded and caught up)."""

DEPLOYED_TIMEOUT = 900.0
"""Most seconds the deployed phase of one size may take."""


DENSE_EVERY = 5
"""One service in five is dense (a big service); the others are sparse."""

SPARSE_RATES = (0.01, 1.0)
DENSE_RATES = (1.0, 30.0)
"""Per-leaf reporters per minute, log-uniform, of sparse and dense services."""


def is_dense(service: str) -> bool:
    return int(service.rsplit("-", 1)[1]) % DENSE_EVERY == 0


def leaf_rates(rng: np.random.Generator, dense: bool = False) -> np.ndarray:
    """Per-leaf reporters per minute of one service (log-uniform in its kind's range)."""
    low, high = DENSE_RATES if dense else SPARSE_RATES
    return np.exp(rng.uniform(np.log(low), np.log(high), len(LEAVES)))


def minute_counts(rng: np.random.Generator, rates: np.ndarray) -> dict:
    counts = rng.poisson(rates)
    return {LEAVES[i]: (int(c), int(c)) for i in np.flatnonzero(counts) for c in [counts[i]]}


def template(first: int, dense: bool = False, seed: int = 1) -> ServiceDetector:
    """Return a detector warmed up over WARMUP_MINUTES ending at minute `first - 1` on the
    rates of a dense or a sparse service (those of `service_rates`)."""
    rng = np.random.default_rng(seed)
    rates = leaf_rates(np.random.default_rng(seed + dense), dense)
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


def service_rates(service: str, seed: int = 1) -> np.ndarray:
    """Return the leaf rates of a service: those its template detector learned."""
    dense = is_dense(service)
    return leaf_rates(np.random.default_rng(seed + dense), dense)


def populate(conn: redis.Redis, services: list[str], tpls: dict[bool, ServiceDetector]) -> int:
    """Store a warmed-up detector for every service (a dense or a sparse template); return
    the bytes stored."""
    parts = None
    total = 0
    for i, service in enumerate(services):
        tpl = tpls[is_dense(service)]
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
        rates = service_rates(service)
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


def interval_for(size: int) -> float:
    """Return a cycle long enough for a busy cycle at this size on a shared 2-core machine."""
    return max(2.0, round(size / 5_000))


def deployed(
    url: str,
    services: list[str],
    minute: int,
    workdir: Path,
    rng: np.random.Generator,
    cycles: int = DEPLOYED_CYCLES,
) -> dict:
    """Run `outage worker` and `outage scheduler` as processes over fresh minutes; return the
    worker's mean CPU and wall seconds per busy cycle from its own cycle records."""
    interval = interval_for(len(services) * SERIES_PER_SERVICE)
    ahead = int(DEPLOYED_TIMEOUT / interval) + 2
    workdir.mkdir(parents=True, exist_ok=True)
    conn = redis.Redis.from_url(url, socket_timeout=60)
    for m in range(minute + 1, minute + 1 + ahead):  # counts for every minute it will see
        write_minute(conn, services, m, rng)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTAGE_", "REDIS_URL"))}
    env.update(
        REDIS_URL=url,
        OUTAGE_DATA_DIR=str(workdir / "data"),
        OUTAGE_SECRET_KEY="bench-" + "k" * 32,
        OUTAGE_DETECT_GRACE="0",
        OUTAGE_DETECT_INTERVAL=str(interval),
        OUTAGE_SHARDS=str(SHARDS),
        OUTAGE_LOG_LEVEL="WARNING",
    )
    launcher = [sys.executable, str(_HERE / "clocked_worker.py")]
    clock = [str(minute + 1), f"{time.time():.3f}", str(60 / interval)]
    logs = open(workdir / "deployed.log", "w")  # noqa: SIM115 (closed below)
    procs = [
        subprocess.Popen(
            [*launcher, *clock], env=env, stdout=logs, stderr=subprocess.STDOUT, cwd=_HERE.parent
        ),
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "scheduler"],
            env=env,
            stdout=logs,
            stderr=subprocess.STDOUT,
            cwd=_HERE.parent,
        ),
    ]
    deadline = time.monotonic() + DEPLOYED_TIMEOUT
    try:
        while True:
            records = [json.loads(r) for r in reversed(conn.lrange(keys.DETECT_CYCLE_LOG, 0, -1))]
            # Busy cycles after the first one that advanced a single minute (caught up).
            steady = [r for r in records if r["minutes"] == 1 and r["services"]]
            steady = steady[1:] if steady else []
            if len(steady) >= cycles:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the deployed worker did not settle; see {logs.name}")
            time.sleep(interval / 2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(120)
        logs.close()
        conn.close()
    steady = steady[:cycles]
    return {
        "deployed_s": float(np.mean([r["cpu"] for r in steady])),
        "deployed_max_s": max(r["cpu"] for r in steady),
        "deployed_wall_s": float(np.mean([r["wall"] for r in steady])),
        "deployed_interval_s": interval,
        "deployed_first_cycle_s": records[0]["cpu"] if records else float("nan"),
        "deployed_max_rss_mb": max(r.get("max_rss_mb", 0) for r in steady),
    }


def measure(
    size: int,
    tpl: dict[bool, ServiceDetector],
    first: int,
    workdir: Path,
    in_process: bool = True,
    cycles: int = DEPLOYED_CYCLES,
) -> dict:
    """Measure cold, warm and idle cycles for `size` active series (in this process, unless
    `in_process` is false), then the deployed worker."""
    n_services = max(1, round(size / SERIES_PER_SERVICE))
    services = [f"svc-{i:05d}" for i in range(n_services)]
    server = start_redis(workdir / f"redis-{size}", appendfsync="everysec")
    conn = redis.Redis.from_url(server.url, socket_timeout=60)
    settings = dataclasses.replace(Settings(), detect_grace=0, redis_url=server.url)
    rng = np.random.default_rng(size)
    minute = first
    try:
        stored = populate(conn, services, tpl)
        row = {
            "series": n_services * SERIES_PER_SERVICE,
            "services": n_services,
            "state_mb": stored / 1e6,
            "state_bytes_per_series": stored / (n_services * SERIES_PER_SERVICE),
        }

        def next_cycle(every: int) -> dict:
            nonlocal minute
            minute += 1
            write_minute(conn, services, minute, rng)
            return cycle(conn, settings, services, (minute + 1) * 60 + 1, every)

        if in_process:
            state.CACHE.entries.clear()
            cold = next_cycle(1)
            state.CACHE.entries.clear()
            cold_again = next_cycle(1)
            every_minute = [next_cycle(1) for _ in range(2)]
            checkpointed = [
                next_cycle(defaults.CHECKPOINT_MINUTES) for _ in range(defaults.CHECKPOINT_MINUTES)
            ]
            idle = cycle(
                conn, settings, services, (minute + 1) * 60 + 30, defaults.CHECKPOINT_MINUTES
            )
            spike = e2e_latency(conn, settings, services, minute + 1)
            minute += 1
            seconds = [c["seconds"] for c in checkpointed]
            row.update(
                cold_s=min(cold["seconds"], cold_again["seconds"]),
                warm_every_minute_s=min(c["seconds"] for c in every_minute),
                warm_s=float(np.mean(seconds)),
                warm_max_s=max(seconds),
                idle_s=idle["seconds"],
                written_mb_every_minute=every_minute[-1]["written"] / 1e6,
                written_mb_checkpointed=float(np.mean([c["written"] for c in checkpointed])) / 1e6,
                incident_job_s=spike,
            )
            state.CACHE.entries.clear()
        row.update(
            deployed(server.url, services, minute, workdir / f"deployed-{size}", rng, cycles)
        )
        row["redis_mb"] = conn.info("memory")["used_memory"] / 1e6
    finally:
        conn.close()
        server.stop()
        state.CACHE.entries.clear()
    return row


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
    parser.add_argument(
        "--deployed-only",
        action="store_true",
        help="measure only the deployed worker (skip the in-process cold/warm/idle cycles)",
    )
    parser.add_argument(
        "--cycles",
        type=int,
        default=DEPLOYED_CYCLES,
        help="busy cycles of the deployed worker to average (default %(default)s)",
    )
    ns = parser.parse_args(argv)
    sizes = [int(s) for s in ns.sizes.split(",") if s.strip()]
    first = int(time.time() // 60) - 10
    say = (lambda *a: None) if ns.json else (lambda *a: print(*a, file=sys.stderr))
    say(f"warming {SERIES_PER_SERVICE}-series template detectors over {WARMUP_MINUTES} minutes...")
    tpl = {dense: template(first, dense) for dense in (False, True)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        for size in sizes:
            say(f"measuring {size} series...")
            rows.append(
                measure(size, tpl, first, Path(tmp), not ns.deployed_only, max(1, ns.cycles))
            )
    if ns.json:
        for r in rows:
            if "incident_job_s" in r:
                r["latency_s"] = latency(r["incident_job_s"])
        print(
            json.dumps(
                {"rows": rows, "shards": SHARDS, "series_per_service": SERIES_PER_SERVICE}, indent=2
            )
        )
        return 0
    print(deployed_table(rows))
    if ns.deployed_only:
        return 0
    print()
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


def deployed_table(rows: list[dict]) -> str:
    """Return the Markdown table of the deployed worker (its own CPU seconds per cycle)."""
    lines = [
        "| active series | services | deployed `outage worker`: CPU per busy cycle, mean (max) "
        "(s) | wall per cycle (s) | cycle (s) | first cycle, loading every detector (CPU s) "
        "| detector state (bytes per series) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['series']:,} | {r['services']:,} | {r['deployed_s']:.2f} "
            f"({r['deployed_max_s']:.2f}) | {r['deployed_wall_s']:.2f} "
            f"| {r['deployed_interval_s']:.0f} | {r['deployed_first_cycle_s']:.1f} "
            f"| {r['state_bytes_per_series']:,.0f} |"
        )
    return "\n".join(lines)


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
