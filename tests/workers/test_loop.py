"""The warm detection loop: shard leases, checkpoints, hand-over, exactly-once."""

from __future__ import annotations

import json
import time

import pytest
import redis

from detector.engine import ServiceDetector
from detector.replay import replay_rows
from store import detectors, keys
from tests.polling import wait_until
from tests.workers.helpers import run_worker
from tests.workers.synth import PAST_END, write_rows
from tests.workers.test_detect_jobs import FAST, as_replay, dataset, stored
from workers import defaults, loop, scheduler
from workers.locks import ShardLeases, lease_ttl
from workers.state import CACHE


@pytest.mark.parametrize("interval,ttl", [(15, 22.5), (2, 3.0), (1, 2.0), (60, 90.0)])
def test_a_lease_outlives_one_cycle_and_lapses_within_two(interval: float, ttl: float) -> None:
    assert lease_ttl(interval) == ttl
    assert interval < ttl <= 2 * interval or ttl == defaults.MIN_LEASE_SECONDS


def test_leases_give_each_shard_one_owner_and_a_fair_share(redis_conn: redis.Redis) -> None:
    a = ShardLeases(redis_conn, "a", 4, ttl=30)
    b = ShardLeases(redis_conn, "b", 4, ttl=30)
    now = time.time()
    assert a.fair_share(now) == 4 and a.acquire(4) == {0, 1, 2, 3}
    assert b.fair_share(now) == 2 and b.acquire(2) == set()  # nothing free yet
    assert a.fair_share(now) == 2
    extras = a.extras(2)
    assert len(extras) == 2
    a.release(extras)
    assert b.acquire(2) == set(extras)
    assert not a.owned & b.owned and a.owned | b.owned == {0, 1, 2, 3}
    for shard in range(4):
        owner = redis_conn.get(keys.detect_lease(shard)).decode()
        assert shard in (a if owner == "a" else b).owned
    assert a.renew() == set() and b.renew() == set()


def test_a_lapsed_lease_is_lost_and_taken(redis_conn: redis.Redis) -> None:
    a = ShardLeases(redis_conn, "a", 2, ttl=0.2)
    b = ShardLeases(redis_conn, "b", 2, ttl=30)
    assert a.acquire(2) == {0, 1}
    wait_until(
        lambda: not redis_conn.exists(keys.detect_lease(0), keys.detect_lease(1)),
        timeout=5,
        what="the leases to lapse",
    )
    assert b.acquire(2) == {0, 1}
    assert a.renew() == {0, 1} and a.owned == set()
    a.release({0, 1})  # never deletes a lease that is not ours
    assert redis_conn.get(keys.detect_lease(0)) == b"b"
    b.leave()
    assert not redis_conn.exists(keys.detect_lease(0))
    assert redis_conn.zscore(keys.DETECT_WORKERS, "b") is None


def tick(conn: redis.Redis, settings, minute: int) -> None:
    """Announce a cycle as the scheduler does."""
    scheduler.enqueue_cycle(settings, conn, conn, minute * 60.0)


def test_the_loop_runs_on_ticks_keeps_detectors_warm_and_equals_replay(
    redis_conn: redis.Redis, job_env, monkeypatch
) -> None:
    settings = job_env(OUTAGE_DETECTOR_PARAMS=FAST, OUTAGE_SHARDS="2")
    end = PAST_END
    rows = dataset(end)
    write_rows(redis_conn, rows)
    det_loop = loop.DetectionLoop(settings, name="w1", conn=redis_conn, qconn=redis_conn)
    assert det_loop.wait_tick(timeout=0.05) is None
    loads = []
    original = ServiceDetector.from_parts.__func__
    monkeypatch.setattr(
        ServiceDetector,
        "from_parts",
        classmethod(lambda cls, *a, **k: loads.append(a[0]) or original(cls, *a, **k)),
    )
    for n, cut in enumerate((end - 700, end - 400, end - 230, end - 229, end)):
        monkeypatch.setattr(loop, "clock", lambda cut=cut: (cut + 1) * 60 + 0.5)
        tick(redis_conn, settings, 10_000 + n)
        cycle = det_loop.wait_tick(timeout=1)
        assert cycle is not None
        record = det_loop.run_cycle(cycle)
        assert record["shards"] == [0, 1] and record["minutes"] > 0
    assert loads == []  # every cycle ran on the detectors in memory
    logged = [json.loads(r) for r in redis_conn.lrange(keys.DETECT_CYCLE_LOG, 0, -1)]
    assert len(logged) == 5 and all(r["cpu"] > 0 and r["worker"] == det_loop.id for r in logged)
    expected = {i.id: i.to_dict() for i in replay_rows(rows, detectors.detector_params(settings))}
    assert {k: as_replay(v) for k, v in stored(redis_conn).items()} == expected
    det_loop.stop()
    assert not redis_conn.exists(keys.detect_lease(0), keys.detect_lease(1))
    for service in ("x", "chirp"):  # checkpointed on the way out
        version = redis_conn.get(keys.detector_version(service))
        assert detectors.saved_minute(version) == end


def test_checkpoints_follow_the_cadence_and_every_event(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env(OUTAGE_DETECTOR_PARAMS=FAST, OUTAGE_SHARDS="1")
    end = PAST_END
    write_rows(redis_conn, dataset(end, days=0.5, services=("x",)))
    det_loop = loop.DetectionLoop(settings, name="w1", conn=redis_conn, qconn=redis_conn)
    start = end - 60
    det_loop.leases.acquire(1)
    saved = []
    for minute in range(start, end + 1):
        loop.clock = lambda minute=minute: (minute + 1) * 60 + 0.5
        try:
            det_loop.run_cycle(minute)
        finally:
            loop.clock = time.time
        version = redis_conn.get(keys.detector_version("x"))
        saved.append(detectors.saved_minute(version))
    checkpoints = sorted(set(saved) - {None})
    gaps = [b - a for a, b in zip(checkpoints, checkpoints[1:], strict=False)]
    assert gaps and max(gaps) <= defaults.CHECKPOINT_MINUTES
    assert len(checkpoints) < 60  # not every minute
    events = {e["at"] for d in stored(redis_conn).values() for e in d["events"]}
    assert events  # and every minute with an event was checkpointed with it
    assert len(CACHE.entries) == 1


def test_a_new_owner_resumes_from_the_checkpoint_without_duplicates(
    redis_conn: redis.Redis, job_env, receiver
) -> None:
    settings = job_env(
        [{"url": receiver.url, "secret": "s3cret", "services": []}],
        OUTAGE_DETECTOR_PARAMS=FAST,
        OUTAGE_SHARDS="1",
    )
    end = PAST_END

    rows = dataset(end, days=0.5, services=("x",))
    write_rows(redis_conn, rows)
    first = loop.DetectionLoop(settings, name="first", conn=redis_conn, qconn=redis_conn)
    first.leases.ttl_ms = 300
    for minute in range(end - 40, end - 3):
        loop.clock = lambda minute=minute: (minute + 1) * 60 + 0.5
        try:
            first.run_cycle(minute)
        finally:
            loop.clock = time.time
    run_worker(redis_conn)
    # "Killed": no checkpoint, no release; its memory is gone with it.
    CACHE.entries.clear()
    # The dead owner's 300 ms lease lapses by itself.
    wait_until(lambda: not redis_conn.exists(keys.detect_lease(0)), timeout=5, what="the lease")
    second = loop.DetectionLoop(settings, name="second", conn=redis_conn, qconn=redis_conn)
    loop.clock = lambda: (end + 1) * 60 + 0.5
    try:
        record = second.run_cycle(end)
    finally:
        loop.clock = time.time
    assert record["shards"] == [0] and record["minutes"] > 3
    run_worker(redis_conn)
    expected = {i.id: i.to_dict() for i in replay_rows(rows, detectors.detector_params(settings))}
    assert {k: as_replay(v) for k, v in stored(redis_conn).items()} == expected
    seen = [
        (json.loads(r["body"])["incident"]["id"], json.loads(r["body"])["event"])
        + (json.loads(r["body"])["minute"],)
        for r in receiver.requests
    ]
    assert seen and len(seen) == len(set(seen))


def test_the_liveness_probe_needs_both_heartbeats(redis_conn: redis.Redis, job_env) -> None:
    import runpy
    from pathlib import Path

    job_env()
    probe = Path(__file__).resolve().parents[2] / "deploy" / "probes" / "rq_worker_alive.py"
    alive = runpy.run_path(str(probe))["main"]
    assert alive("w1") == 1
    redis_conn.set("rq:worker:w1", "x")
    assert alive("w1") == 1  # RQ's child is up, the detection loop is not
    ShardLeases(redis_conn, "w1:abcd1234", 4, ttl=30).fair_share(time.time())
    assert alive("w1") == 0
    assert alive("w2") == 1


def test_a_failing_service_does_not_stop_the_others(
    redis_conn: redis.Redis, job_env, monkeypatch, caplog
) -> None:
    settings = job_env(OUTAGE_DETECTOR_PARAMS=FAST, OUTAGE_SHARDS="1")
    write_rows(redis_conn, dataset(PAST_END, days=0.3))
    real = ServiceDetector.advance

    def advance(self, *args, **kwargs):
        if self.service == "chirp":
            raise ValueError("a bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ServiceDetector, "advance", advance)
    monkeypatch.setattr(loop, "clock", lambda: (PAST_END + 1) * 60 + 0.5)
    det_loop = loop.DetectionLoop(settings, name="w1", conn=redis_conn, qconn=redis_conn)
    record = det_loop.run_cycle(1)
    assert record["minutes"] > 0 and redis_conn.exists(keys.status("x"))
    assert not redis_conn.exists(keys.status("chirp"), keys.detect_lock("chirp"))
    assert "detection of chirp failed" in caplog.text
