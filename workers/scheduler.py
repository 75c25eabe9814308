"""The scheduler: one active instance (a Redis lock) announces each detection cycle once (on
a stream the detection workers block on), and enqueues maintenance hourly."""

from __future__ import annotations

import logging
import math
import os
import socket
import time

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

from store import keys
from store.config import Settings
from store.connections import data_redis, queue_redis
from workers import defaults, locks

log = logging.getLogger("outage.scheduler")

LOCK_KEY = keys.SCHEDULER_LOCK
"""Held by the active scheduler; expires if it dies so another can take over."""

LOCK_TTL = 30
"""Seconds the scheduler lock lives without renewal (at the default 15 s cycle)."""

MIN_LOCK_TTL = 3
"""Shortest lock lifetime, seconds, however short the cycle."""

LOCK_SLACK = 2
"""Seconds the lock outlives one cycle, for a slow enqueue or a Redis hiccup."""


def lock_ttl(interval: float) -> int:
    """Return the lock lifetime: renewed at the start of every cycle, it lasts one cycle plus
    slack, so a standby scheduler (polling every cycle) replaces a killed one within about
    two cycles. A lapse is harmless: each cycle is claimed once (claim, below)."""
    return max(MIN_LOCK_TTL, math.ceil(interval) + LOCK_SLACK)


def acquire_or_renew(conn: redis.Redis, token: str, ttl: int = LOCK_TTL) -> bool:
    """Take the scheduler lock, or extend it if we already hold it."""
    return locks.take(conn, LOCK_KEY, token, ttl) or locks.renew(conn, LOCK_KEY, token, ttl)


def release(conn: redis.Redis, token: str) -> None:
    """Drop the lock if we hold it (on a clean stop, so a successor starts at once)."""
    locks.release(conn, LOCK_KEY, token)


CYCLE_KEY = keys.SCHEDULER_CYCLE
"""The last cycle number enqueued, so a restarted scheduler never enqueues a cycle twice."""

_RAISE = (
    "local cur = tonumber(redis.call('get', KEYS[1]) or '-1') "
    "if tonumber(ARGV[1]) > cur then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return 1 end return 0"
)
"""Set KEYS[1] to ARGV[1] only if that raises it: atomic, so two schedulers that both
believe they are active still claim each cycle once."""


def claim(conn: redis.Redis, key: str, number: int, ttl: int = 86400) -> bool:
    """Claim cycle (or hour) `number`; False if it, or a later one, was already claimed."""
    return bool(conn.eval(_RAISE, 1, key, number, ttl))


def _enqueue_once(queue: Queue, func: str, *args, job_id: str, **options) -> bool:
    try:
        queue.enqueue(func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    return True


TICKS_KEPT = 1000
"""Cycle entries kept in the tick stream (about four hours at the default 15 s cycle)."""


def enqueue_cycle(settings: Settings, conn: redis.Redis, qconn: redis.Redis, now: float) -> bool:
    """Announce the detection cycle containing `now` to the detection workers, once (they
    block on the tick stream); and enqueue the hourly maintenance job in the first cycle of
    each hour."""
    cycle = int(now // settings.detect_interval)
    if not claim(conn, CYCLE_KEY, cycle):
        return False
    announced = announce(conn, cycle, settings.detect_interval)
    hour = int(now // 3600)
    if claim(conn, keys.SCHEDULER_HOUR, hour, ttl=7 * 86400):
        _enqueue_once(
            Queue("default", connection=qconn),
            "workers.jobs.maintain",
            hour,
            job_id=f"maintain-{hour}",
            result_ttl=86400,
            failure_ttl=86400,
            ttl=3600,
            job_timeout=defaults.MAINTENANCE_TIMEOUT,
        )
    return announced


def announce(conn: redis.Redis, cycle: int, interval: float) -> bool:
    """Append a cycle to the tick stream under the id of its start (ms): ids only rise, so
    even a scheduler that lost its cycle marker cannot announce a cycle twice."""
    start_ms = int(round(cycle * interval * 1000))
    try:
        conn.xadd(
            keys.DETECT_TICKS,
            {"cycle": cycle},
            id=f"{start_ms}-1",
            maxlen=TICKS_KEPT,
            approximate=True,
        )
    except redis.ResponseError:  # "equal or smaller than the target stream top item"
        return False
    return True


def run_scheduler(settings: Settings, once: bool = False) -> int:
    """Loop: hold the lock, enqueue this cycle's jobs, sleep to the next cycle."""
    conn = data_redis(settings)
    qconn = queue_redis(settings)
    token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    interval = settings.detect_interval
    was_active = None
    try:
        while True:
            started = time.time()
            try:
                active = acquire_or_renew(conn, token, lock_ttl(interval))
                if active != was_active:
                    log.warning(
                        "scheduler %s",
                        "active" if active else "standing by (another scheduler holds the lock)",
                    )
                    was_active = active
                if active:
                    enqueue_cycle(settings, conn, qconn, started)
            except redis.RedisError as exc:
                log.warning("scheduler: Redis unavailable (%s); retrying", exc)
            if once:
                return 0
            time.sleep(max(0.05, interval - (time.time() - started) % interval))
    except KeyboardInterrupt:
        return 0
    finally:
        try:
            release(conn, token)
        except redis.RedisError:
            pass
