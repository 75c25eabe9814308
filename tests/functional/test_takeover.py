"""Two detection workers and the scheduler as real processes: one is SIGKILLed, the other takes
its shards within two cycles and carries on from their checkpoints, with no incident or
webhook twice.

Both workers run the deployed `outage worker` on a shared clock that completes one minute of
data per cycle (bench/clocked_worker.py), so every cycle has work, as at a busy minute.
"""

from __future__ import annotations

import calendar
import json
import signal
import time
from pathlib import Path

import pytest
import redis

from detector.replay import replay_rows
from store import detectors, incidents, keys
from tests.functional.test_faults import (
    assert_posted_once,
    env_for,
    kill_group,
    scheduler_proc,
    use_env,
    wait_alive,
    worker_proc,
)
from tests.workers.helpers import Receiver, run_worker
from tests.workers.synth import PAST_END, merge, quiet_rows, spike_rows, write_rows
from workers.jobs import shard_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

INTERVAL = 2.0
SHARDS = 4
SERVICES = tuple(f"svc{i}" for i in range(8))
LEAVES = {("US-CA", "app"): 1.0, ("US", "login"): 0.5, ("GB", "app"): 0.7}
FAST = {"windows": [1, 5], "cusum_ratios": [3.0], "close_quiet_minutes": 3}


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


def cycles(conn: redis.Redis) -> list[dict]:
    """Return the workers' cycle records, oldest first."""
    return [json.loads(r) for r in reversed(conn.lrange(keys.DETECT_CYCLE_LOG, 0, -1))]


def owners(conn: redis.Redis) -> dict[int, str | None]:
    return {
        s: (v.decode() if (v := conn.get(keys.detect_lease(s))) else None) for s in range(SHARDS)
    }


def test_a_killed_workers_shards_move_within_two_cycles_without_duplicates(
    tmp_path: Path, monkeypatch, redis_conn: redis.Redis, redis_url: str, receiver
) -> None:
    env = env_for(
        redis_url,
        tmp_path,
        receiver.url,
        OUTAGE_DETECT_INTERVAL=str(INTERVAL),
        OUTAGE_SHARDS=str(SHARDS),
        OUTAGE_DETECTOR_PARAMS=json.dumps(FAST),
    )
    settings = use_env(monkeypatch, env)
    assert {shard_of(s, SHARDS) for s in SERVICES} == set(range(SHARDS))
    start = PAST_END  # the clock's first minute
    rows = merge(
        *(quiet_rows(s, start - 1440, 1440 + 400, LEAVES, seed=i) for i, s in enumerate(SERVICES)),
        # Closed long before the late spike: a reopen across a restored checkpoint does not
        # equal replay yet, on main's forking path too (see docs/scaling.md, "Left to do").
        *(spike_rows(s, start - 120, 6, {("US-CA", "app"): 30}) for s in SERVICES),
    )
    write_rows(redis_conn, rows)
    t0 = time.time()
    speed = 60 / INTERVAL
    procs = {
        "scheduler": scheduler_proc(env),
        "a": worker_proc(env, start, t0, speed, log=tmp_path / "a.log"),
        "b": worker_proc(env, start, t0, speed, log=tmp_path / "b.log"),
    }

    def clock_minute() -> int:
        return int(start + (time.time() - t0) * speed / 60)

    def status_minute(service: str) -> int | None:
        doc = json.loads(redis_conn.get(keys.status(service)) or "null")
        if not doc or not doc["updated_at"]:
            return None
        return calendar.timegm(time.strptime(doc["updated_at"], "%Y-%m-%dT%H:%M:%SZ")) // 60 - 1

    try:
        # Both caught up and serving two shards each.
        def settled() -> bool:
            held = [o for o in owners(redis_conn).values() if o]
            done = [status_minute(s) for s in SERVICES]
            return (
                len(held) == SHARDS
                and len(set(held)) == 2
                and all(d is not None and d >= start + 2 for d in done)
            )

        wait_alive(settled, 120, "the two workers did not settle", *procs.values())
        pid_a = procs["a"].pid
        mine = {s for s, o in owners(redis_conn).items() if f":{pid_a}:" in o}
        assert len(mine) == 2
        opened_before = {d["id"] for d in incidents.query(redis_conn, limit=1000)}
        assert opened_before  # the first spike, handled by both workers before the kill
        kill_group(procs["a"])
        killed_at = time.time()
        # A spike on the killed worker's services after the kill: the survivor must raise it.
        victims = [s for s in SERVICES if shard_of(s, SHARDS) in mine]
        spike_at = clock_minute() + 3
        late = [spike_rows(s, spike_at, 6, {("GB", "app"): 30}) for s in victims]
        write_rows(redis_conn, merge(*late))
        rows = merge(rows, *late)

        def taken() -> dict | None:
            return next(
                (
                    r
                    for r in cycles(redis_conn)
                    if r["at"] >= killed_at and f":{procs['b'].pid}:" in r["worker"]
                    if set(r["shards"]) == set(range(SHARDS))
                ),
                None,
            )

        record = wait_alive(taken, 30, "the survivor did not take the shards", procs["b"])
        took = record["at"] - killed_at
        assert took <= 2 * INTERVAL, f"shards taken {took:.1f} s after the kill"
        wait_alive(
            lambda: all((status_minute(s) or 0) >= spike_at + 8 for s in SERVICES),
            60,
            "the survivor did not catch up",
            procs["b"],
        )
        procs["b"].send_signal(signal.SIGTERM)  # checkpoints everything on the way out
        procs["b"].wait(30)
    finally:
        for proc in procs.values():
            kill_group(proc)
    run_worker(redis_conn)  # deliver what the stopped worker's RQ child had not yet
    params = detectors.detector_params(settings)
    for service in SERVICES:
        last = detectors.saved_minute(redis_conn.get(keys.detector_version(service)))
        assert last == status_minute(service), "checkpointed on the way out"
        expected = {
            i.id: i.to_dict()
            for i in replay_rows([r for r in rows if r[1] == service and r[0] <= last], params)
        }
        live = {d["id"]: d for d in incidents.query(redis_conn, service=service, limit=1000)}
        assert live.keys() == expected.keys(), service
        for i, doc in live.items():
            assert {k: doc[k] for k in expected[i]} == expected[i]
            assert len(doc["events"]) == len({json.dumps(e) for e in doc["events"]})
    assert_posted_once(receiver)
    late_posts = {
        body["service"]
        for body in (json.loads(r["body"]) for r in receiver.requests)
        if body["minute"] >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(spike_at * 60))
    }
    assert set(victims) <= late_posts, "the survivor raised the late spike on every victim"
