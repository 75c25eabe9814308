"""With `appendfsync always`, no acknowledged report is lost when Redis is killed (SIGKILL)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis

from store import keys
from tests.conftest import TEST_API_KEY
from tests.redis_helpers import start_test_redis
from web import create_app

AUTH = {"Authorization": "Bearer " + TEST_API_KEY.split(":", 1)[1]}


def stored(conn: redis.Redis) -> dict[str, int]:
    total: dict[str, int] = {}
    for key in conn.scan_iter(match="{svc:x}:m:*"):
        for name, value in conn.hgetall(key).items():
            total[name.decode()] = total.get(name.decode(), 0) + int(value)
    return total


def test_acknowledged_reports_survive_sigkill(settings, tmp_path: Path) -> None:
    directory = tmp_path / "aof-redis"
    server = start_test_redis(directory, appendonly=True, appendfsync="always")
    port = server.port
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, redis_url=server.url)}
    )
    client = app.test_client()
    acknowledged = 0
    try:
        for i in range(40):
            resp = client.post(
                "/api/v1/reports",
                json={"service": "x", "problem": "app"},
                environ_base={"REMOTE_ADDR": f"10.0.{i}.1"},  # one network each
            )
            assert resp.status_code == 202
            acknowledged += resp.get_json()["accepted"]
        batch = [{"service": "x", "problem": "app", "reporter": f"p{i}"} for i in range(500)]
        resp = client.post("/api/v1/reports", json={"reports": batch}, headers=AUTH)
        assert resp.status_code == 202
        acknowledged += resp.get_json()["accepted"]
        server.kill()  # SIGKILL: no shutdown, no final fsync
        resp = client.post(
            "/api/v1/reports",
            json={"service": "x", "problem": "app"},
            environ_base={"REMOTE_ADDR": "10.9.9.1"},
        )
        assert resp.status_code == 503  # never acknowledged, so never counted below
        server = start_test_redis(directory, appendonly=True, appendfsync="always", port=port)
        conn = redis.Redis(port=port)
        assert acknowledged == 540
        assert stored(conn) == {"r|*|app": 540, "u|*|app": 540}
        assert len(list(conn.scan_iter(match="{svc:x}:seen:*"))) == 540
        assert sum(int(e[b"reports"]) for _, e in conn.xrange(keys.stream("x"))) == 540
        # The app reconnects by itself and dedup markers survived the crash.
        again = client.post(
            "/api/v1/reports",
            json={"service": "x", "problem": "app"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
        assert again.get_json() == {"accepted": 0, "duplicates": 1}
        conn.close()
    finally:
        server.stop()
