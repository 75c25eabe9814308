"""Abuse resistance and failure behaviour: rate limits, proxies, no raw IPs, Redis outages."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import signal
from pathlib import Path

import pytest
import redis
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from cli.redis_server import free_port
from store import keys
from tests.conftest import TEST_API_KEY
from tests.redis_helpers import start_test_redis
from web import create_app

URL = "/api/v1/reports"
AUTH = {"Authorization": "Bearer " + TEST_API_KEY.split(":", 1)[1]}
OK = {"service": "x", "problem": "app"}


def make_client(settings, **changes):
    app = create_app({"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, **changes)})
    return app, app.test_client()


def post(client, body=OK, ip="198.51.100.7", ua="ua", headers=None):
    return client.post(
        URL,
        json=body,
        headers={"User-Agent": ua, **(headers or {})},
        environ_base={"REMOTE_ADDR": ip},
    )


# ------------------------------------------------------------------------- rate limits
def test_anonymous_reports_are_limited_per_ip_with_retry_after(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="2 per minute")
    assert [post(client, ua=f"u{i}").status_code for i in range(2)] == [202, 202]
    resp = post(client, ua="u3")
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    error = resp.get_json()["error"]
    assert error["code"] == "rate_limited" and "2 per 1 minute" in error["message"]
    assert post(client, ip="198.51.100.8").status_code == 429  # the same /24: the same client
    assert post(client, ip="203.0.113.8").status_code == 202  # another network is not limited


def test_api_keys_have_their_own_higher_limit(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="1 per minute", api_rate_limit="3 per minute")
    assert post(client).status_code == 202
    assert post(client, ua="again").status_code == 429
    batch = {"reports": [{**OK, "reporter": "r"}]}
    assert [post(client, batch, headers=AUTH).status_code for _ in range(4)] == [202] * 3 + [429]


def test_a_wrong_key_is_limited_like_an_anonymous_client(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="1 per minute")
    bad = {"Authorization": "Bearer " + "z" * 32}
    assert post(client, headers=bad).status_code == 401
    assert post(client, headers=bad).status_code == 429


def test_the_form_and_the_api_share_one_budget(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="1 per minute")
    assert post(client).status_code == 202
    resp = client.post(
        "/s/x", data={"problem": "app"}, environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert resp.status_code == 429 and resp.headers["Retry-After"]


def test_a_failing_limiter_lets_reports_through_and_logs(settings, redis_conn, caplog) -> None:
    app, client = make_client(settings, rate_limit="1 per minute")
    limiter = app.extensions["outage_limiter"]
    dead = storage_from_string(
        f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.3, socket_connect_timeout=0.3
    )
    limiter._storage, limiter._limiter = dead, FixedWindowRateLimiter(dead)
    with caplog.at_level(logging.ERROR):
        statuses = [post(client, ua=f"u{i}").status_code for i in range(3)]
    assert statuses == [202, 202, 202]
    assert any("rate limit" in r.getMessage().lower() for r in caplog.records)


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="1 per minute")
    assert post(client, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 202
    assert post(client, headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 429
    redis_conn.flushall()
    _, client = make_client(settings, rate_limit="1 per minute", trusted_proxies=1)
    for forwarded in ("203.0.113.1", "192.0.2.2"):
        resp = post(client, headers={"X-Forwarded-For": forwarded})
        assert resp.get_json() == {"accepted": 1, "duplicates": 0}


# ------------------------------------------------------------------------ no raw IPs
IPS = ["203.0.113.77", "198.51.100.23", "2001:db8:abcd:12::7", "8.8.4.4"]


def dump(conn: redis.Redis) -> bytes:
    """Every key name and value in the database, as one blob."""
    parts = []
    for key in conn.scan_iter(count=1000):
        parts.append(key)
        kind = conn.type(key)
        if kind == b"string":
            parts.append(conn.get(key) or b"")
        elif kind == b"hash":
            parts.extend(b"%s=%s" % kv for kv in conn.hgetall(key).items())
        elif kind == b"list":
            parts.extend(conn.lrange(key, 0, -1))
        elif kind == b"set":
            parts.extend(conn.smembers(key))
        elif kind == b"zset":
            parts.extend(m for m, _ in conn.zrange(key, 0, -1, withscores=True))
        elif kind == b"stream":
            for entry_id, fields in conn.xrange(key):
                parts.append(entry_id)
                parts.extend(b"%s=%s" % kv for kv in fields.items())
    return b"\n".join(parts)


def test_no_raw_ip_is_stored_anywhere(settings, redis_conn) -> None:
    _, client = make_client(settings, trusted_proxies=1)
    for i, ip in enumerate(IPS):
        post(client, {**OK, "comment": "slow"}, ip=ip, ua=f"agent-{i}")
        post(client, {**OK, "problem": "login"}, ip="10.9.8.7", headers={"X-Forwarded-For": ip})
        client.post("/s/x", data={"problem": "app"}, environ_base={"REMOTE_ADDR": ip})
    post(client, {"reports": [{**OK, "reporter": "someone"}]}, ip=IPS[0], headers=AUTH)
    blob = dump(redis_conn)
    assert b"{svc:x}:m:" in blob and b"outage:limit" in blob  # the scan sees real data
    for ip in [*IPS, "10.9.8.7"]:
        addr = ipaddress.ip_address(ip)
        needles = {ip.encode(), addr.packed, addr.exploded.encode()}
        if addr.version == 4:
            needles.add(ip.rsplit(".", 1)[0].encode() + b".")  # the /24 prefix as text
        else:
            needles.add(b"2001:db8:abcd")
        for needle in needles:
            assert needle not in blob, (ip, needle)


# ------------------------------------------------------------------- Redis outages
@pytest.fixture
def private_redis(tmp_path: Path):
    """A Redis of this test only, which the test stops and starts."""
    server = start_test_redis(tmp_path / "redis")
    yield server
    if server.alive():
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def test_redis_down_is_503_and_recovers(settings, private_redis, tmp_path) -> None:
    _, client = make_client(settings, redis_url=private_redis.url)
    assert post(client).status_code == 202
    port = private_redis.port
    private_redis.stop()
    for body, headers in ((OK, {}), ({"reports": [{**OK, "reporter": "r"}]}, AUTH)):
        resp = post(client, body, ua="after", headers=headers)
        assert resp.status_code == 503
        assert int(resp.headers["Retry-After"]) > 0
        assert resp.get_json()["error"]["code"] == "unavailable"
    form = client.post("/s/x", data={"problem": "app"})
    assert form.status_code in (400, 503)  # the CSRF check may answer first; never a 500
    restarted = start_test_redis(tmp_path / "redis", port=port)
    try:
        assert post(client, ua="recovered").get_json() == {"accepted": 1, "duplicates": 0}
    finally:
        restarted.stop()


def test_hung_redis_is_503(settings, private_redis) -> None:
    # How fast: bounded by the client's timeouts (tests/store/test_connections.py), not timed.
    _, client = make_client(settings, redis_url=private_redis.url)
    assert post(client).status_code == 202
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        resp = post(client, ua="hung")
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert post(client, ua="thawed").status_code == 202


# ------------------------------------------------------------- who counts as one source
def test_ipv6_reporters_are_identified_by_their_64(settings, redis_conn) -> None:
    _, client = make_client(settings, rate_limit="2 per minute")
    first = post(client, ip="2001:db8:1:2::1")
    assert first.get_json() == {"accepted": 1, "duplicates": 0}
    # Another address of the same /64 (a privacy address rotation) is the same reporter...
    assert post(client, ip="2001:db8:1:2:aaaa::7").get_json() == {"accepted": 0, "duplicates": 1}
    # ...and the same client for the rate limit; the next /64 is someone else.
    assert post(client, ip="2001:db8:1:2:bbbb::9").status_code == 429
    assert post(client, ip="2001:db8:1:3::1").get_json() == {"accepted": 1, "duplicates": 0}


def test_rotating_the_user_agent_counts_once(settings, redis_conn) -> None:
    _, client = make_client(settings)
    bodies = [post(client, ua=f"browser-{i}").get_json() for i in range(10)]
    assert sum(b["accepted"] for b in bodies) == 1


@pytest.mark.parametrize("region", ["\ufb01", "\u00df", "u\u017f", "\u0130T"])
def test_region_codes_are_ascii_only(client, redis_conn, region) -> None:
    resp = post(client, {**OK, "region": region})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "region"
    resp = client.get("/api/v1/services/x/series", query_string={"region": region})
    assert resp.status_code == 422
    resp = client.get("/api/v1/services/x/map", query_string={"level": region})
    assert resp.status_code == 422


def test_a_key_is_capped_per_service_and_minute(settings, redis_conn) -> None:
    _, client = make_client(settings, api_key_service_limit=5)
    reports = [{**OK, "reporter": f"u{i}"} for i in range(8)] + [{**OK, "problem": "bogus"}]
    body = post(client, {"reports": reports}, headers=AUTH).get_json()
    assert body["accepted"] == 5
    assert [r["index"] for r in body["rejected"]] == [5, 6, 7, 8]
    assert [r["error"]["code"] for r in body["rejected"]] == ["key_limit"] * 3 + ["invalid"]
    resp = post(client, {**OK, "reporter": "late"}, headers=AUTH)
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "key_limit"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


def test_idempotency_key_makes_a_batch_retry_count_once(settings, redis_conn) -> None:
    _, client = make_client(settings)
    batch = {"reports": [{**OK, "reporter": f"u{i}"} for i in range(4)]}
    headers = {**AUTH, "Idempotency-Key": "batch-0001"}
    first = post(client, batch, headers=headers)
    assert first.get_json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    assert "Idempotent-Replayed" not in first.headers
    # The client saw a 503 (the write had committed) and retries: nothing is counted again.
    again = post(client, batch, headers=headers)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    stream = redis_conn.xrange(keys.stream("x"))
    assert sum(int(fields[b"reports"]) for _, fields in stream) == 4
    other = post(client, batch, headers={**AUTH, "Idempotency-Key": "batch-0002"})
    assert other.get_json()["duplicates"] == 4  # a new key is a new request
    bad = post(client, batch, headers={**AUTH, "Idempotency-Key": "x" * 256})
    assert bad.status_code == 400
