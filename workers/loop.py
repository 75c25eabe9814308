"""The warm detection loop that `outage worker` runs: detectors stay in this process between
cycles, each shard has one owner (a lease in Redis), parts are checkpointed every few
minutes and on the way out.

Every cycle the active scheduler appends to a stream (`keys.DETECT_TICKS`); each worker
blocks on it, renews its leases, takes free shards up to its fair share, hands extra ones
over (checkpointed first), and advances the services of the shards it owns with the
detectors it keeps in memory. A worker killed with SIGKILL stops renewing: its leases lapse
within `defaults.LEASE_CYCLES` cycles, another worker below its fair share takes them
within a second (it looks for free shards while it waits for the next cycle) and resumes
from the last checkpoint, catching up from the stored minute counts.

Exactly-once is the same argument as for a job (workers/detection.py): every minute with an
incident event is checkpointed in the transaction that writes the event and its outbox, so
minutes that a new owner re-does after a crash hold no event, and re-doing them is
deterministic.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis

from store import keys, metrics
from store.config import Settings
from store.connections import data_redis, queue_redis
from workers import defaults, detection
from workers.jobs import DATA_TIMEOUT, shard_of
from workers.locks import LockLost, ShardLeases, lease_ttl
from workers.state import CACHE

log = logging.getLogger("outage.loop")

clock: Callable[[], float] = time.time
"""Where the loop reads the time that decides which minutes are complete (the benchmark
replaces it with a faster clock so that every cycle completes a minute)."""


def worker_id(name: str | None = None) -> str:
    """Return a unique id for this worker process (its name, if given, comes first)."""
    base = name or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{uuid.uuid4().hex[:8]}"


class DetectionLoop:
    """One worker's detection: wait for a cycle, run the owned shards warm, checkpoint."""

    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        conn: redis.Redis | None = None,
        qconn: redis.Redis | None = None,
        checkpoint_every: int = defaults.CHECKPOINT_MINUTES,
    ):
        self.settings = settings
        self.conn = conn if conn is not None else data_redis(settings, timeout=DATA_TIMEOUT)
        self.qconn = qconn if qconn is not None else queue_redis(settings)
        self.id = worker_id(name)
        self.interval = settings.detect_interval
        self.leases = ShardLeases(self.conn, self.id, settings.shards, lease_ttl(self.interval))
        self.checkpoint_every = checkpoint_every
        self.stopping = False
        self.progress_at = time.monotonic()
        self.lost: set[int] = set()
        self.last_tick: bytes | str | None = None

    def _newest_tick(self) -> bytes | str:
        newest = self.conn.xrevrange(keys.DETECT_TICKS, count=1)
        return newest[0][0] if newest else "0-0"

    def wait_tick(self, timeout: float = defaults.TICK_WAIT_SECONDS) -> int | None:
        """Block until the scheduler claims a cycle (None after `timeout` seconds); several
        claimed while we were busy count as one, the newest."""
        if self.last_tick is None:  # only cycles announced after we started
            self.last_tick = self._newest_tick()
        reply = self.conn.xread({keys.DETECT_TICKS: self.last_tick}, block=int(timeout * 1000))
        if not reply:
            return None
        entries = reply[0][1]
        self.last_tick = entries[-1][0]
        return int(entries[-1][1][b"cycle"])

    def beat(self) -> None:
        """Renew the leases every third of their lifetime while the loop makes progress (a
        long catch-up keeps them; a loop stuck for `DETECT_STALL_SECONDS` loses them)."""
        period = self.leases.ttl_ms / 3000
        while not self.stopping:
            time.sleep(period)
            if time.monotonic() - self.progress_at > defaults.DETECT_STALL_SECONDS:
                continue
            try:
                self.lost |= self.leases.renew()
            except redis.RedisError:
                continue

    def handle_lost(self, now: float | None = None) -> None:
        """Renew the leases; drop the detectors of shards that are no longer ours."""
        self.progress_at = time.monotonic()
        lost, self.lost = self.lost, set()
        for shard in lost | self.leases.renew(now):
            log.warning("detection worker %s lost shard %d", self.id, shard)
            self.forget(shard)

    def rebalance(self) -> None:
        """Renew our leases, drop detectors of lost shards, hand extras over, take free ones."""
        now = time.time()
        self.handle_lost(now)
        want = self.leases.fair_share(now)
        extras = self.leases.extras(want)
        if extras:
            self.checkpoint(extras)
            self.leases.release(extras)
            for shard in extras:
                self.forget(shard)
        taken = self.leases.acquire(want)
        if taken:
            log.warning("detection worker %s took shard(s) %s", self.id, sorted(taken))

    def take_free(self) -> bool:
        """Between cycles: take lapsed or released shards if we own less than our share."""
        want = self.leases.fair_share(time.time())
        return len(self.leases.owned) < want and bool(self.leases.acquire(want))

    def forget(self, shard: int) -> None:
        """Drop the detectors of one shard's services from memory (no longer ours)."""
        for where, service in list(CACHE.entries):
            if shard_of(service, self.settings.shards) == shard:
                CACHE.drop(where, service)

    def services(self) -> dict[int, list[str]]:
        """Return the active services of each owned shard, sorted."""
        out: dict[int, list[str]] = {s: [] for s in sorted(self.leases.owned)}
        for member in self.conn.smembers(keys.ACTIVE_SERVICES):
            service = member.decode()
            shard = shard_of(service, self.settings.shards)
            if shard in out:
                out[shard].append(service)
        return {s: sorted(v) for s, v in out.items()}

    def run_cycle(self, cycle: int) -> dict:
        """Run one cycle over the owned shards; record it; return the record."""
        cpu, wall = time.process_time(), time.monotonic()
        self.rebalance()
        now = clock()
        deadline = wall + max(1.0, self.interval)  # leave the rest of a catch-up to later
        record = {
            "worker": self.id,
            "cycle": cycle,
            "at": round(time.time(), 3),
            "shards": sorted(self.leases.owned),
        }
        totals = {"services": 0, "series": 0, "minutes": 0, "events": 0}
        for shard, services in self.services().items():
            started = time.monotonic()
            series = 0

            def keep_going(shard: int = shard) -> bool:
                self.renew_if_due()
                return shard in self.leases.owned and not self.stopping

            for service in services:
                if not keep_going():
                    break
                try:
                    out = detection.run_service(
                        self.conn,
                        self.qconn,
                        self.settings,
                        service,
                        now,
                        deadline,
                        checkpoint_every=self.checkpoint_every,
                        keep_going=keep_going,
                    )
                except LockLost:
                    log.warning("detection of %s: lock lost, results discarded", service)
                    continue
                except redis.RedisError:
                    raise  # the whole cycle waits for Redis (run() retries)
                except Exception:
                    # One service's failure (a bug, bad stored state) must not stop the
                    # others: as a failed RQ job did, it is logged and retried next cycle.
                    log.exception("detection of %s failed", service)
                    continue
                series += out.series
                totals["minutes"] = max(totals["minutes"], out.minutes)
                totals["events"] += len(out.events)
            totals["services"] += len(services)
            totals["series"] += series
            metrics.observe_cycle(self.conn, time.monotonic() - started, len(services), series)
        record.update(
            totals,
            cpu=round(time.process_time() - cpu, 4),
            wall=round(time.monotonic() - wall, 4),
            max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        )
        self.log_cycle(record)
        return record

    def renew_if_due(self) -> None:
        """Note progress; in a long cycle, renew before half the leases' lifetime has gone."""
        self.progress_at = time.monotonic()
        if self.lost or time.time() - self.leases.renewed_at > self.leases.ttl_ms / 2000:
            self.handle_lost()

    def log_cycle(self, record: dict) -> None:
        try:
            pipe = self.conn.pipeline(transaction=False)
            pipe.lpush(keys.DETECT_CYCLE_LOG, json.dumps(record, separators=(",", ":")))
            pipe.ltrim(keys.DETECT_CYCLE_LOG, 0, defaults.CYCLE_LOG_KEPT - 1)
            pipe.execute()
        except redis.RedisError:  # a record must never fail detection
            log.debug("cycle record not written", exc_info=True)

    def checkpoint(self, shards: list[int] | set[int] | None = None) -> int:
        """Save every detector of these shards (default: all owned) that is ahead of its
        checkpoint; return how many were saved."""
        shards = set(self.leases.owned if shards is None else shards)
        saved = 0
        for where, service in list(CACHE.entries):
            if where.endswith("#bands") or shard_of(service, self.settings.shards) not in shards:
                continue
            try:
                saved += detection.checkpoint(self.conn, self.settings, service)
            except redis.RedisError as exc:
                log.warning("checkpoint of %s failed: %s", service, exc)
        return saved

    def run(self, burst: bool = False) -> int:
        """Loop until stopped (or, with `burst`, run one cycle now); then checkpoint and hand
        every shard over."""
        beat = threading.Thread(target=self.beat, name="shard leases", daemon=True)
        beat.start()
        last = -1
        try:
            if burst:
                self.run_cycle(-1)
            while not self.stopping and not burst:
                self.progress_at = time.monotonic()
                try:
                    cycle = self.wait_tick()
                    if cycle is not None and not self.stopping:
                        self.run_cycle(cycle)
                        last = cycle
                    elif self.take_free() and not self.stopping:
                        self.run_cycle(last)  # a lapsed shard is served at once
                except redis.RedisError as exc:
                    log.warning("detection worker: Redis unavailable (%s); retrying", exc)
                    time.sleep(min(1.0, self.interval))
        finally:
            self.stopping = True
            beat.join()
            self.stop()
        return 0

    def stop(self) -> None:
        """Checkpoint what we hold and release our leases, so a successor starts at once."""
        try:
            saved = self.checkpoint()
            self.leases.leave()
            log.warning("detection worker %s stopped (%d detector(s) checkpointed)", self.id, saved)
        except redis.RedisError as exc:
            log.warning("detection worker %s: could not hand over cleanly (%s)", self.id, exc)
