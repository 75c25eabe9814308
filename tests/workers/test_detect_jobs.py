"""Detection jobs against the real Redis, run by in-process RQ workers."""

from __future__ import annotations

import json
import time

import pytest
import redis
from rq import Queue

from detector.replay import replay_rows
from store import detectors, incidents, keys
from store.config import Settings
from tests.detector.fixtures import REPLAY_FIELDS
from tests.workers.helpers import run_worker
from tests.workers.synth import PAST_END, merge, quiet_rows, spike_rows, write_rows
from workers import detection, jobs, locks, state

LEAVES = {("US-CA", "app"): 1.0, ("US", "login"): 0.5, ("GB", "app"): 0.7, ("*", "website"): 0.3}
FAST = json.dumps({"windows": [1, 5], "cusum_ratios": [3.0], "close_quiet_minutes": 3})
"""Detector parameters that close incidents quickly, so short histories show a whole
lifecycle (open, escalate, close)."""


def dataset(
    end: int, days: float = 1.0, services: tuple[str, ...] = ("x", "chirp"), spike_at: int = 240
) -> list[tuple]:
    """Quiet history for each service ending at `end`, with two spikes per service: one
    `spike_at` minutes before the end that has closed by then, one still running."""
    start = end - int(days * 1440) + 1
    groups = []
    for i, service in enumerate(services):
        groups.append(quiet_rows(service, start, end - start + 1, LEAVES, seed=i + 1))
        groups.append(
            spike_rows(service, end - spike_at, 20, {("US-CA", "app"): 25, ("GB", "app"): 10})
        )
        groups.append(spike_rows(service, end - 5, 6, {("US-CA", "app"): 40}))
    return merge(*groups)


def run_shards(qconn: redis.Redis, settings: Settings, now: float, cycle: int = 1) -> list:
    """Enqueue and run one detection job per shard as of `now`; return their results."""
    queue = Queue("detect", connection=qconn)
    queued = [
        queue.enqueue(
            "workers.jobs.detect_shard",
            shard,
            settings.shards,
            cycle,
            now=now,
            job_id=f"detect-{shard}-{cycle}-{time.time_ns()}",
        )
        for shard in range(settings.shards)
    ]
    run_worker(qconn)
    return [job.return_value() for job in queued]


def stored(conn: redis.Redis) -> dict[str, dict]:
    """Return every stored incident document by id."""
    return {d["id"]: d for d in incidents.query(conn, limit=1000)}


def as_replay(doc: dict) -> dict:
    """Keep the replay-contract fields of a stored incident document."""
    return {k: doc[k] for k in REPLAY_FIELDS}


@pytest.mark.parametrize(
    "now,grace,minute", [(600.0, 0, 9), (605.0, 5, 9), (604.9, 5, 8), (659.0, 0, 9)]
)
def test_last_complete_minute_waits_for_the_grace(now, grace, minute) -> None:
    assert detection.last_complete_minute(now, grace) == minute


def test_services_spread_over_shards_stably() -> None:
    names = [f"svc-{i}" for i in range(200)]
    spread = [jobs.shard_of(n, 4) for n in names]
    assert spread == [jobs.shard_of(n, 4) for n in names]
    assert all(40 <= spread.count(s) <= 60 for s in range(4))


def test_live_detection_equals_replay(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env(OUTAGE_DETECTOR_PARAMS=FAST)
    end = PAST_END
    rows = dataset(end)
    write_rows(redis_conn, rows)
    # Three runs with the in-memory detector dropped in between, so every run restores the
    # detector from its stored parts: persistence must not change a single decision.
    for cut in (end - 700, end - 230, end):
        results = run_shards(redis_conn, settings, now=(cut + 1) * 60 + 0.5)
        assert sum(r["minutes"] for r in results) > 0
        state.CACHE.entries.clear()
    expected = {i.id: i.to_dict() for i in replay_rows(rows, detectors.detector_params(settings))}
    live = stored(redis_conn)
    assert {k: as_replay(v) for k, v in live.items()} == expected
    assert len(expected) >= 4 and any(d["ended_at"] is None for d in expected.values())
    for service in ("x", "chirp"):
        status = json.loads(redis_conn.get(keys.status(service)))
        assert status["level"] != "ok" and status["incident"] is not None
        assert status["updated_at"] is not None


def test_a_job_run_twice_changes_nothing(redis_conn: redis.Redis, job_env, receiver) -> None:
    settings = job_env(
        [{"url": receiver.url, "secret": "s3cret", "services": []}], OUTAGE_DETECTOR_PARAMS=FAST
    )
    end = PAST_END
    write_rows(redis_conn, dataset(end, days=0.5, services=("x",)))
    now = (end + 1) * 60 + 0.5
    run_shards(redis_conn, settings, now)
    before = stored(redis_conn)
    posts = len(receiver.requests)
    assert before and posts >= 3
    # Same cycle again, and the same minutes re-done from an older detector state (as after
    # a save that was lost): every event is applied twice.
    again = run_shards(redis_conn, settings, now)
    assert sum(r["minutes"] for r in again) == 0
    redis_conn.delete(
        *(keys.detector_part("x", p) for p in detectors.part_names()), keys.detector_version("x")
    )
    state.CACHE.entries.clear()
    redone = run_shards(redis_conn, settings, now, cycle=2)
    assert sum(r["minutes"] for r in redone) > 0 and any(r["events"] for r in redone)
    assert stored(redis_conn) == before
    assert len(receiver.requests) == posts
    ids = [
        json.loads(r["body"])["incident"]["id"]
        + json.loads(r["body"])["event"]
        + json.loads(r["body"])["minute"]
        for r in receiver.requests
    ]
    assert len(ids) == len(set(ids))


def test_a_crash_after_the_transaction_loses_no_follow_up(
    redis_conn: redis.Redis, job_env, receiver, monkeypatch
) -> None:
    settings = job_env(
        [{"url": receiver.url, "secret": "s3cret", "services": ["x"]}], OUTAGE_DETECTOR_PARAMS=FAST
    )
    end = PAST_END
    write_rows(redis_conn, dataset(end, days=0.5, services=("x",)))
    real = detection.drain_outbox
    calls = []

    def crash_after_commit(conn, qconn, service):
        calls.append(service)
        if len(calls) == 2:  # the drain right after the first save
            raise redis.ConnectionError("worker died")
        return real(conn, qconn, service)

    monkeypatch.setattr(detection, "drain_outbox", crash_after_commit)
    with pytest.raises(redis.ConnectionError):
        detection.run_service(redis_conn, redis_conn, settings, "x", (end + 1) * 60 + 0.5)
    assert redis_conn.llen(keys.outbox("x")) > 0
    assert not redis_conn.exists(keys.detect_lock("x"))
    monkeypatch.setattr(detection, "drain_outbox", real)
    run_shards(redis_conn, settings, (end + 1) * 60 + 0.5)
    assert redis_conn.llen(keys.outbox("x")) == 0
    assert receiver.requests and incidents.query(redis_conn, active=True)


def test_a_locked_service_is_skipped(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, dataset(end, days=0.1, services=("x",)))
    redis_conn.set(keys.detect_lock("x"), "someone-else", ex=30)
    out = detection.run_service(redis_conn, redis_conn, settings, "x", time.time())
    assert out.skipped == "locked" and not redis_conn.exists(keys.status("x"))


def test_a_lost_lock_writes_nothing(redis_conn: redis.Redis, job_env, monkeypatch) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, dataset(end, days=0.1, services=("x",)))
    real = detection.read_minutes

    def steal(conn, service, start, stop):
        conn.set(keys.detect_lock(service), "thief", ex=30)
        return real(conn, service, start, stop)

    monkeypatch.setattr(detection, "read_minutes", steal)
    with pytest.raises(locks.LockLost):
        detection.run_service(redis_conn, redis_conn, settings, "x", time.time())
    assert not redis_conn.exists(keys.status("x"), keys.detector_version("x"))
    assert redis_conn.get(keys.detect_lock("x")) == b"thief"
    assert not state.CACHE.entries


def test_catch_up_stops_at_the_budget_and_resumes(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, dataset(end, days=1, services=("x",)))
    now = (end + 1) * 60 + 0.5
    total = end - int(redis_conn.get(keys.first_minute("x"))) + 1
    first = detection.run_services(redis_conn, redis_conn, settings, ["x"], now, budget=0)
    assert first[0].minutes == 240 and first[0].behind == total - 240
    rest = detection.run_services(redis_conn, redis_conn, settings, ["x"], now)
    assert rest[0].behind == 0 and rest[0].last_minute == end


def test_catch_up_starts_within_the_retention(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env(OUTAGE_RETENTION_DAYS="1")
    end = int(time.time() // 60) - 1
    write_rows(
        redis_conn, [(end - 3 * 1440, "x", "US", "app", 1, 1), (end, "x", "US", "app", 1, 1)]
    )
    out = detection.run_service(redis_conn, redis_conn, settings, "x", (end + 1) * 60)
    assert out.minutes == 1440


def test_deleted_parts_rebuild_from_stored_counts(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, dataset(end, days=0.2, services=("x",)))
    now = (end + 1) * 60 + 0.5
    detection.run_service(redis_conn, redis_conn, settings, "x", now)
    assert state.CACHE.entries
    # What `outage load` does after importing history: drop the detector's keys.
    redis_conn.delete(*redis_conn.keys("{svc:x}:det:*"))
    again = detection.run_service(redis_conn, redis_conn, settings, "x", now)
    assert again.minutes == end - int(redis_conn.get(keys.first_minute("x"))) + 1


def test_unusable_parts_are_rebuilt(redis_conn: redis.Redis, job_env) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 2
    write_rows(redis_conn, dataset(end, days=0.1, services=("x",)))
    detection.run_service(redis_conn, redis_conn, settings, "x", (end + 1) * 60 + 0.5)
    other = job_env(OUTAGE_DETECTOR_PARAMS=json.dumps({"recent_minutes": 90}))
    state.CACHE.entries.clear()
    again = detection.run_service(redis_conn, redis_conn, other, "x", (end + 2) * 60 + 0.5)
    assert again.minutes == end + 1 - int(redis_conn.get(keys.first_minute("x"))) + 1


def test_maintenance_trims_old_incidents_and_repairs_the_open_set(
    redis_conn: redis.Redis, job_env
) -> None:
    job_env(OUTAGE_INCIDENT_DAYS="1")
    old = {
        "id": "x:old",
        "status": "closed",
        "started_at": "2020-01-01T00:00:00Z",
        "ended_at": "2020-01-01T01:00:00Z",
    }
    gone = {
        "id": "x:gone",
        "status": "open",
        "started_at": "2020-01-02T00:00:00Z",
        "ended_at": None,
    }
    stamp = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime())
    closed = {"id": "x:closed", "status": "closed", "started_at": stamp, "ended_at": stamp}
    for doc in (old, closed):
        redis_conn.set(keys.incident("x", doc["id"]), json.dumps(doc))
    for doc in (old, gone, closed):
        redis_conn.zadd(keys.incidents("x"), {doc["id"]: incidents.started_seconds(doc)})
        redis_conn.zadd(keys.ALL_INCIDENTS, {f"x|{doc['id']}": incidents.started_seconds(doc)})
    redis_conn.sadd(keys.OPEN_INCIDENTS, "x|x:gone", "x|x:closed")
    out = jobs.maintain(1)
    assert out["incidents_removed"] == 2 and out["open_repaired"] == 1
    assert not redis_conn.exists(keys.incident("x", "x:old"), keys.OPEN_INCIDENTS)
    assert redis_conn.zrange(keys.incidents("x"), 0, -1) == [b"x:closed"]
    assert redis_conn.zrange(keys.ALL_INCIDENTS, 0, -1) == [b"x|x:closed"]


def test_a_persistent_worker_checkpoints_every_few_minutes(
    redis_conn: redis.Redis, job_env
) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, quiet_rows("x", end - 400, 401, LEAVES, seed=9))
    detection.run_service(redis_conn, redis_conn, settings, "x", (end - 20 + 1) * 60)
    versions, stamps, eventful = [], [], 0
    for minute in range(end - 19, end + 1):
        out = detection.run_service(
            redis_conn, redis_conn, settings, "x", (minute + 1) * 60, checkpoint_every=5
        )
        eventful += bool(out.events)  # an incident change always saves the parts too
        versions.append(redis_conn.get(keys.detector_version("x")))
        stamps.append(json.loads(redis_conn.get(keys.status("x")))["updated_at"])
    assert 4 <= len(set(versions)) <= 5 + eventful, "parts saved once per five minutes"
    assert len(set(stamps)) == 20, "status written every minute"
    status = redis_conn.get(keys.status("x"))
    # A new process starts from the last checkpoint and re-does the minutes after it.
    state.CACHE.entries.clear()
    restored, _ = detectors.load_detector(redis_conn, "x", state.CACHE)
    assert end - 5 < restored.last_minute <= end
    state.CACHE.entries.clear()
    redone = detection.run_service(redis_conn, redis_conn, settings, "x", (end + 1) * 60)
    assert redone.minutes == end - restored.last_minute
    assert redis_conn.get(keys.status("x")) == status


def test_an_idle_cycle_does_not_load_the_detector(
    redis_conn: redis.Redis, job_env, monkeypatch
) -> None:
    settings = job_env()
    end = int(time.time() // 60) - 1
    write_rows(redis_conn, dataset(end, days=0.1, services=("x",)))
    now = (end + 1) * 60 + 0.5
    detection.run_service(redis_conn, redis_conn, settings, "x", now, cache=None)

    def fail(*args, **kwargs):
        raise AssertionError("loaded the detector for nothing")

    monkeypatch.setattr(detection, "load_detector", fail)
    out = detection.run_service(redis_conn, redis_conn, settings, "x", now + 30, cache=None)
    assert out.minutes == 0 and out.last_minute == end


def test_an_open_incident_lost_by_a_rebuild_is_closed(
    redis_conn: redis.Redis, job_env, receiver
) -> None:
    settings = job_env(
        [{"url": receiver.url, "secret": "s", "services": []}], OUTAGE_DETECTOR_PARAMS=FAST
    )
    end = PAST_END
    write_rows(redis_conn, dataset(end, days=0.5, services=("x",)))
    now = (end + 1) * 60 + 0.5
    detection.run_service(redis_conn, redis_conn, settings, "x", now)
    [open_doc] = incidents.query(redis_conn, active=True, service="x")
    # `outage load` replaces the spike minutes with quiet ones and drops the detector.
    for minute in range(end - 5, end + 1):
        redis_conn.delete(keys.minute_counts("x", minute))
    redis_conn.delete(*redis_conn.keys("{svc:x}:det:*"))
    state.CACHE.entries.clear()
    out = detection.run_service(redis_conn, redis_conn, settings, "x", now)
    assert f"close:{open_doc['id']}" in out.events
    assert incidents.query(redis_conn, active=True) == []
    doc = incidents.query(redis_conn, service="x", limit=100)
    closed = next(d for d in doc if d["id"] == open_doc["id"])
    assert closed["ended_at"] and closed["events"][-1]["reason"] == "rebuilt"
    run_worker(redis_conn)
    events = [
        json.loads(r["body"])["event"]
        for r in receiver.requests
        if json.loads(r["body"])["incident"]["id"] == open_doc["id"]
    ]
    assert events.count("close") == 1


def test_the_band_cache_keeps_the_most_recently_used() -> None:
    cache = detectors.DetectorCache(limit=2)
    for name in ("a", "b", "c"):
        cache.put("r", name, b"v", object())
    assert cache.get("r", "a", b"v") is None and cache.get("r", "b", b"v") is not None
    cache.put("r", "d", b"v", object())
    assert [k[1] for k in cache.entries] == ["b", "d"]
    assert cache.get("r", "b", b"other") is None
