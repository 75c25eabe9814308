"""What the active scheduler enqueues each cycle."""

from __future__ import annotations

import redis
from rq import Queue

from workers.config import Settings

CYCLE_KEY = "outage:scheduler:cycle"
"""The last cycle number enqueued, so a restarted scheduler never enqueues a cycle twice."""


def enqueue_cycle(settings: Settings, conn: redis.Redis, qconn: redis.Redis, now: float) -> bool:
    """Enqueue one detection job per shard for the cycle containing `now`, once."""
    cycle = int(now // settings.detect_interval)
    last = conn.get(CYCLE_KEY)
    if last is not None and int(last) >= cycle:
        return False
    conn.set(CYCLE_KEY, cycle, ex=86400)
    queue = Queue("detect", connection=qconn)
    for shard in range(settings.shards):
        queue.enqueue("workers.jobs.detect_shard", shard, settings.shards, cycle,
                      job_id=f"detect-{shard}-{cycle}", result_ttl=60, failure_ttl=3600,
                      ttl=int(settings.detect_interval * 4))
    return True
