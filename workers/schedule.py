"""What the active scheduler enqueues each cycle: detection per shard, maintenance hourly."""

from __future__ import annotations

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

from workers import defaults, keys
from workers.config import Settings

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


def enqueue_cycle(settings: Settings, conn: redis.Redis, qconn: redis.Redis, now: float) -> bool:
    """Enqueue one detection job per shard for the cycle containing `now`, once; and the
    hourly maintenance job in the first cycle of each hour."""
    cycle = int(now // settings.detect_interval)
    if not claim(conn, CYCLE_KEY, cycle):
        return False
    queue = Queue("detect", connection=qconn)
    for shard in range(settings.shards):
        # ttl: a job that waited four cycles is stale; a newer one covers its minutes.
        _enqueue_once(
            queue,
            "workers.jobs.detect_shard",
            shard,
            settings.shards,
            cycle,
            job_id=f"detect-{shard}-{cycle}",
            result_ttl=defaults.DETECT_RESULT_TTL,
            failure_ttl=3600,
            ttl=max(10, int(settings.detect_interval * 4)),
            job_timeout=defaults.DETECT_JOB_TIMEOUT,
        )
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
    return True
