"""Faults: Redis restart, detection worker SIGKILL mid-cycle, scheduler restart and two
schedulers.

After each, detection resumes within about two cycles and nothing is duplicated: the
incidents equal an offline replay of the same counts, and every webhook event is POSTed
once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from rq import Queue

from detector.replay import replay_rows
from store import detectors, incidents, keys
from store.config import Settings, load_settings
from tests.polling import wait_until
from tests.redis_helpers import start_test_redis
from tests.workers.helpers import Receiver, run_worker
from tests.workers.synth import PAST_END, merge, quiet_rows, spike_rows, write_rows
from workers import detection, scheduler

pytestmark = pytest.mark.slow

FAST = {"windows": [1, 5], "cusum_ratios": [3.0], "close_quiet_minutes": 3}
LEAVES = {("US-CA", "app"): 1.0, ("US", "login"): 0.5, ("GB", "app"): 0.7}


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


def env_for(url: str, tmp_path: Path, hook: str | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OUTAGE_", "REDIS_URL", "RQ_REDIS_URL"))
    }
    env.update(
        {
            "REDIS_URL": url,
            "OUTAGE_DATA_DIR": str(tmp_path / "data"),
            "OUTAGE_SECRET_KEY": "k" * 32,
            "OUTAGE_DETECT_GRACE": "0",
            "OUTAGE_SHARDS": "1",
            "OUTAGE_DETECTOR_PARAMS": json.dumps(FAST),
            "OUTAGE_WEBHOOKS": json.dumps([{"url": hook, "secret": "s3cret"}] if hook else []),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in [n for n in os.environ if n.startswith("OUTAGE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def history(end: int, services: tuple[str, ...], days: float) -> list[tuple]:
    start = end - int(days * 1440) + 1
    groups = []
    for i, service in enumerate(services):
        groups.append(quiet_rows(service, start, end - start + 1, LEAVES, seed=10 + i))
        groups.append(spike_rows(service, end - 200, 15, {("US-CA", "app"): 30}))
        groups.append(spike_rows(service, end - 30, 10, {("GB", "app"): 25}))
    return merge(*groups)


def detect(conn: redis.Redis, now: float, cycle: int) -> None:
    Queue("detect", connection=conn).enqueue(
        "workers.jobs.detect_shard", 0, 1, cycle, now=now, job_id=f"detect-0-{cycle}"
    )
    run_worker(conn)


def assert_like_replay(conn: redis.Redis, rows: list[tuple], settings: Settings) -> None:
    expected = {i.id: i.to_dict() for i in replay_rows(rows, detectors.detector_params(settings))}
    live = {
        d["id"]: {k: d[k] for k in expected[next(iter(expected))]}
        for d in incidents.query(conn, limit=1000)
    }
    assert live.keys() == expected.keys()
    diff = [
        (i, k, live[i][k], expected[i][k])
        for i in expected
        for k in expected[i]
        if live[i][k] != expected[i][k]
    ]
    assert not diff, diff
    for doc in incidents.query(conn, limit=1000):
        assert len(doc["events"]) == len({json.dumps(e) for e in doc["events"]})


def assert_posted_once(rec: Receiver) -> None:
    seen = Counter(
        (
            json.loads(r["body"])["incident"]["id"],
            json.loads(r["body"])["event"],
            json.loads(r["body"])["minute"],
        )
        for r in rec.requests
    )
    assert seen and max(seen.values()) == 1, seen


def test_redis_restart_loses_nothing(tmp_path: Path, monkeypatch, receiver) -> None:
    server = start_test_redis(tmp_path / "redis", appendonly=True, appendfsync="always")
    try:
        settings = use_env(monkeypatch, env_for(server.url, tmp_path, receiver.url))
        conn = redis.Redis.from_url(server.url)
        end = PAST_END
        rows = history(end, ("x",), days=0.5)
        write_rows(conn, rows)
        detect(conn, (end - 100) * 60, 1)
        before = incidents.query(conn, limit=100)
        assert before
        server.kill()  # SIGKILL: only the AOF survives
        with pytest.raises(redis.ConnectionError):
            detection.run_services(conn, conn, settings, ["x"], now=(end + 1) * 60)
        server = start_test_redis(
            tmp_path / "redis", appendonly=True, appendfsync="always", port=server.port
        )
        assert incidents.query(conn, limit=100) == before
        detect(conn, (end + 1) * 60 + 0.5, 2)  # the next cycle resumes at once
        status = json.loads(conn.get(keys.status("x")))
        assert status["updated_at"] == time.strftime(
            "%Y-%m-%dT%H:%M:00Z", time.gmtime((end + 1) * 60)
        )
        assert_like_replay(conn, rows, settings)
        assert_posted_once(receiver)
    finally:
        server.stop()


CLOCKED_WORKER = Path(__file__).resolve().parents[2] / "bench" / "clocked_worker.py"


def worker_proc(
    env: dict[str, str], minute: int, t0: float = 0.0, speed: float = 0.0, log: Path | None = None
) -> subprocess.Popen:
    """Start `outage worker` (detection loop plus its RQ child) in its own process group,
    on a clock frozen at `minute` (or running `speed` times faster from `t0`)."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(
            [sys.executable, str(CLOCKED_WORKER), str(minute), str(t0), str(speed)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a process and its children (no chance to checkpoint or release anything)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_alive(what, timeout: float, message: str, *procs: subprocess.Popen):
    """Poll `what()` until it is true; fail after `timeout` seconds or if a process died."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, message
        assert all(p.poll() is None for p in procs), "a process died"
        time.sleep(0.05)
    return found


def test_worker_killed_mid_catch_up(
    tmp_path: Path, monkeypatch, redis_conn: redis.Redis, redis_url: str, receiver
) -> None:
    env = env_for(redis_url, tmp_path, receiver.url, OUTAGE_DETECT_INTERVAL="1")
    settings = use_env(monkeypatch, env)
    end = PAST_END
    services = ("x", "chirp", "bankly")
    rows = history(end, services, days=2)
    write_rows(redis_conn, rows)
    sched = scheduler_proc(env)
    worker = worker_proc(env, end + 1, log=tmp_path / "worker1.log")
    second = None
    try:
        # Kill the detection worker itself once it saved some progress and is still busy
        # (a catch-up of two days spans several one-second cycles).
        wait_alive(
            lambda: (
                any(redis_conn.exists(keys.detector_version(s)) for s in services)
                and any(redis_conn.exists(keys.detect_lock(s)) for s in services)
            ),
            60,
            "the worker saved no progress",
            worker,
            sched,
        )
        kill_group(worker)
        killed_at = time.monotonic()
        assert redis_conn.exists(keys.detect_lease(0))  # left behind, to lapse
        second = worker_proc(env, end + 1, log=tmp_path / "worker2.log")

        def caught_up() -> bool:
            versions = [redis_conn.get(keys.detector_version(s)) for s in services]
            states = [json.loads(redis_conn.get(keys.status(s)) or "null") for s in services]
            return all(s and s["updated_at"] for s in states) and all(
                v is not None and detectors.saved_minute(v) >= end - 5 for v in versions
            )

        wait_alive(caught_up, 60, "detection did not resume", second, sched)
        # The lease lapses within 1.5 cycles; the rest is catching up two days.
        assert time.monotonic() - killed_at < 30
        second.send_signal(signal.SIGTERM)  # a clean stop checkpoints everything
        second.wait(30)
        assert all(
            detectors.saved_minute(redis_conn.get(keys.detector_version(s))) == end
            for s in services
        )
    finally:
        for proc in (worker, second, sched):
            if proc is not None:
                kill_group(proc)
    run_worker(redis_conn)  # deliver what the stopped worker's RQ child had not yet
    assert_like_replay(redis_conn, rows, settings)
    assert_posted_once(receiver)


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return "Z" not in stat.rsplit(")", 1)[1].split()[0]


def scheduler_proc(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def detect_cycles(conn: redis.Redis) -> Counter:
    return Counter(int(f[b"cycle"]) for _, f in conn.xrange(keys.DETECT_TICKS))


def test_two_schedulers_and_a_restart_enqueue_each_cycle_once(
    tmp_path: Path, redis_conn: redis.Redis, redis_url: str
) -> None:
    env = env_for(redis_url, tmp_path, OUTAGE_DETECT_INTERVAL="1", OUTAGE_SHARDS="2")
    first, second = scheduler_proc(env), scheduler_proc(env)
    procs = [first, second]

    def holder() -> str:
        return (redis_conn.get(keys.SCHEDULER_LOCK) or b"").decode()

    def cycles_after(second: int, count: int = 1) -> bool:
        return sum(c > second for c in detect_cycles(redis_conn)) >= count

    try:
        # Both running, one active and enqueuing: the other must be standing by.
        wait_until(lambda: cycles_after(0, 2), timeout=30, what="the first cycles")
        active = first if f":{first.pid}:" in holder() else second
        standby = second if active is first else first
        os.killpg(active.pid, signal.SIGKILL)  # no chance to release the lock
        active.wait()
        killed = int(time.time())
        wait_until(
            lambda: f":{standby.pid}:" in holder(),
            timeout=scheduler.lock_ttl(1) + 10,
            what="the standby scheduler to take over",
        )
        wait_until(lambda: cycles_after(killed), timeout=10, what="a cycle from the standby")
        restarted = scheduler_proc(env)  # a restart while the other is active: stands by
        procs.append(restarted)
        # The restart has had whole cycles to try for the lock; the active one keeps it.
        started = int(time.time())
        wait_until(lambda: cycles_after(started + 1), timeout=10, what="cycles after a restart")
        assert f":{standby.pid}:" in holder()
        standby.send_signal(signal.SIGTERM)  # a clean stop releases the lock at once
        standby.wait(10)
        wait_until(
            lambda: f":{restarted.pid}:" in holder(), timeout=10, what="the restart to take over"
        )
        taken = int(time.time())
        wait_until(lambda: cycles_after(taken), timeout=10, what="a cycle from the restart")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    cycles = detect_cycles(redis_conn)
    assert set(cycles.values()) == {1}, "every cycle announced once, never twice"
    ordered = sorted(cycles)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    assert max(gaps) <= scheduler.lock_ttl(1) + 2, gaps
    assert ordered[-1] > killed, "cycles continued after the kill"
    hours = Queue("default", connection=redis_conn).get_job_ids()
    assert len(hours) == len(set(hours)) >= 1
