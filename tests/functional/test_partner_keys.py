"""A partner API key is one source: alone it cannot raise an incident, whatever it sends.

Reports go through the real ingest path (the app, the Lua write, the prefix sketches) and
detection through the real RQ job (`workers.jobs.detect_shard`, run in-process)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import redis

from store import incidents, keys
from store.config import Settings, load_settings, parse_api_keys
from tests.workers.helpers import run_worker
from tests.workers.synth import quiet_rows, write_rows
from web import create_app

KEYS = [f"p{i}:" + chr(ord("a") + i) * 32 for i in range(3)]
LEAVES = {("US-CA", "app"): 1.0, ("US", "login"): 0.5, ("GB", "app"): 0.7}


@pytest.fixture
def stack(settings: Settings, redis_conn: redis.Redis, monkeypatch: pytest.MonkeyPatch):
    """Two days of quiet history ending at the last minute; the app; a detection runner."""
    settings = dataclasses.replace(settings, api_keys=parse_api_keys(",".join(KEYS)))
    minute = int(time.time() // 60)
    write_rows(redis_conn, quiet_rows("x", minute - 2 * 1440, 2 * 1440, LEAVES, seed=3))
    for name, value in {**settings.as_env(), "OUTAGE_DETECT_GRACE": "0"}.items():
        monkeypatch.setenv(name, value)
    client = create_app({"TESTING": True, "OUTAGE_SETTINGS": settings}).test_client()

    def detect_through(last: int) -> list[dict]:
        """Run detection jobs until minute `last` is processed; return open incidents."""
        from rq import Queue

        job_settings = load_settings()
        queue = Queue("detect", connection=redis_conn)
        for cycle in range(1, 20):
            for shard in range(job_settings.shards):
                queue.enqueue(
                    "workers.jobs.detect_shard",
                    shard,
                    job_settings.shards,
                    cycle,
                    now=(last + 1) * 60 + 0.5,
                    job_id=f"detect-{shard}-{cycle}-{time.time_ns()}",
                )
            run_worker(redis_conn)
            status = json.loads(redis_conn.get(keys.status("x")) or "{}")
            if status.get("updated_at", "") >= time.strftime(
                "%Y-%m-%dT%H:%M", time.gmtime(last * 60)
            ):
                break
        else:
            raise AssertionError("detection did not reach the spike minute")
        return [d for d in incidents.query(redis_conn, limit=100) if d["ended_at"] is None]

    return client, minute, detect_through


def batch(client, key: str, reporters: range) -> dict:
    body = {
        "reports": [
            {"service": "x", "problem": "app", "region": "US-CA", "reporter": f"u{i}"}
            for i in reporters
        ]
    }
    resp = client.post(
        "/api/v1/reports",
        json=body,
        headers={"Authorization": "Bearer " + key.split(":", 1)[1]},
        environ_base={"REMOTE_ADDR": "198.51.100.1"},
    )
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()


def test_one_keys_thousand_reporters_raise_no_incident(stack) -> None:
    client, minute, detect_through = stack
    if time.time() % 60 > 55:  # keep the batch inside one minute
        time.sleep(61 - time.time() % 60)
        minute = int(time.time() // 60)
    assert batch(client, KEYS[0], range(1000))["accepted"] == 1000
    assert detect_through(minute) == []


def test_three_keys_and_anonymous_reporters_do(stack) -> None:
    client, minute, detect_through = stack
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)
        minute = int(time.time() // 60)
    for i, key in enumerate(KEYS):
        assert batch(client, key, range(i * 30, i * 30 + 30))["accepted"] == 30
    for n in range(30):  # people on 30 networks
        resp = client.post(
            "/api/v1/reports",
            json={"service": "x", "problem": "app", "region": "US-CA"},
            environ_base={"REMOTE_ADDR": f"203.0.{n}.9"},
        )
        assert resp.get_json() == {"accepted": 1, "duplicates": 0}
    opened = detect_through(minute)
    assert len(opened) == 1 and opened[0]["service"] == "x"
