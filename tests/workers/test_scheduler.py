"""The scheduler: one active instance, each cycle announced once, maintenance hourly."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import redis
from rq import Queue

from store import keys
from store.config import Settings
from workers import scheduler


def queued(conn: redis.Redis, name: str) -> list[str]:
    return Queue(name, connection=conn).get_job_ids()


def ticks(conn: redis.Redis) -> list[int]:
    """Return the cycles announced to the detection workers, oldest first."""
    return [int(f[b"cycle"]) for _, f in conn.xrange(keys.DETECT_TICKS)]


def test_a_cycle_is_enqueued_once(redis_conn: redis.Redis, settings: Settings) -> None:
    now = 1_700_000_000.0
    assert scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now)
    assert not scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now + 1)
    assert not scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now - 60)
    cycle = int(now // settings.detect_interval)
    assert ticks(redis_conn) == [cycle]
    assert queued(redis_conn, "default") == [f"maintain-{int(now // 3600)}"]
    assert scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now + 15)
    assert ticks(redis_conn) == [cycle, cycle + 1]
    assert queued(redis_conn, "default") == [f"maintain-{int(now // 3600)}"]
    assert queued(redis_conn, "detect") == []  # detection workers run cycles, not jobs


def test_a_restarted_scheduler_does_not_repeat_a_cycle(
    redis_conn: redis.Redis, settings: Settings
) -> None:
    now = 1_700_000_000.0
    scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now)
    redis_conn.delete(keys.SCHEDULER_CYCLE)  # even if the cycle marker were lost
    scheduler.enqueue_cycle(settings, redis_conn, redis_conn, now)
    assert len(ticks(redis_conn)) == 1


def test_racing_schedulers_claim_each_cycle_once(
    redis_conn: redis.Redis, settings: Settings
) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        conn = redis.Redis(connection_pool=redis_conn.connection_pool)
        barrier.wait()
        results.append(scheduler.enqueue_cycle(settings, conn, conn, 1_700_000_000.0))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(ticks(redis_conn)) == 1


def test_only_one_scheduler_holds_the_lock(redis_conn: redis.Redis) -> None:
    assert scheduler.acquire_or_renew(redis_conn, "a", 10)
    assert not scheduler.acquire_or_renew(redis_conn, "b", 10)
    assert scheduler.acquire_or_renew(redis_conn, "a", 10)
    scheduler.release(redis_conn, "b")
    assert redis_conn.get(keys.SCHEDULER_LOCK) == b"a"
    scheduler.release(redis_conn, "a")
    assert scheduler.acquire_or_renew(redis_conn, "b", 10)


@pytest.mark.parametrize("interval,ttl", [(15, 17), (2, 4), (1, 3), (0.5, 3), (60, 62)])
def test_lock_outlives_one_missed_renewal(interval: float, ttl: int) -> None:
    assert scheduler.lock_ttl(interval) == ttl
    assert ttl > interval


def test_run_once_enqueues_and_releases(redis_conn: redis.Redis, settings: Settings) -> None:
    one = dataclasses.replace(settings, shards=2)
    assert scheduler.run_scheduler(one, once=True) == 0
    assert len(ticks(redis_conn)) == 1
    assert not redis_conn.exists(keys.SCHEDULER_LOCK)
