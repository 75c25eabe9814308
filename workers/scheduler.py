"""The scheduler: one active instance (a Redis lock) enqueues detection every cycle."""

from __future__ import annotations

import logging
import math
import os
import socket
import time

import redis

from workers import keys
from workers.config import Settings
from workers.connections import data_redis, queue_redis

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
    two cycles. A lapse is harmless: each cycle is claimed once (workers.schedule.claim)."""
    return max(MIN_LOCK_TTL, math.ceil(interval) + LOCK_SLACK)


def acquire_or_renew(conn: redis.Redis, token: str, ttl: int = LOCK_TTL) -> bool:
    """Take the scheduler lock, or extend it if we already hold it."""
    if conn.set(LOCK_KEY, token, nx=True, ex=ttl):
        return True
    script = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
    )
    return bool(conn.eval(script, 1, LOCK_KEY, token, ttl))


def release(conn: redis.Redis, token: str) -> None:
    """Drop the lock if we hold it (on a clean stop, so a successor starts at once)."""
    script = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('del', KEYS[1]) else return 0 end"
    )
    conn.eval(script, 1, LOCK_KEY, token)


def run_scheduler(settings: Settings, once: bool = False) -> int:
    """Loop: hold the lock, enqueue this cycle's jobs, sleep to the next cycle."""
    from workers.schedule import enqueue_cycle

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
