"""POST /api/v1/reports against the real test Redis: singles, batches, dedup, storage, errors."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime

import pytest

from store import keys
from tests.conftest import TEST_API_KEY
from tests.polling import wait_until
from web import create_app

URL = "/api/v1/reports"
AUTH = {"Authorization": "Bearer " + TEST_API_KEY.split(":", 1)[1]}
BAD_AUTH = {"Authorization": "Bearer " + "w" * 32}


def post(client, body=None, headers=None, ip="198.51.100.7", ua="test-agent/1", **kw):
    headers = {"User-Agent": ua, **(headers or {})}
    if body is not None:
        kw["json"] = body
    return client.post(URL, headers=headers, environ_base={"REMOTE_ADDR": ip}, **kw)


def counts(redis_conn, service="x"):
    """Sum every minute hash of a service into {field: count}."""
    total: dict[str, int] = {}
    for key in redis_conn.scan_iter(match=f"{keys.tag(service)}:m:*"):
        for name, value in redis_conn.hgetall(key).items():
            total[name.decode()] = total.get(name.decode(), 0) + int(value)
    return total


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- singles
def test_single_report_is_accepted_and_counted(client, redis_conn) -> None:
    resp = post(client, {"service": "x", "problem": "app", "region": "us-ca"})
    assert resp.status_code == 202
    assert resp.get_json() == {"accepted": 1, "duplicates": 0}
    assert resp.headers["Cache-Control"] == "no-store"
    assert counts(redis_conn) == {"r|US-CA|app": 1, "u|US-CA|app": 1}
    assert redis_conn.sismember(keys.ACTIVE_SERVICES, "x")


def test_the_same_reporter_is_counted_once_per_window(client, redis_conn) -> None:
    body = {"service": "x", "problem": "login", "region": "GB"}
    assert post(client, body).get_json() == {"accepted": 1, "duplicates": 0}
    assert post(client, {**body, "problem": "app"}).get_json() == {"accepted": 0, "duplicates": 1}
    # Rotating the User-Agent, or the address within a /24, is still the same reporter.
    assert post(client, body, ua="other-browser").get_json() == {"accepted": 0, "duplicates": 1}
    assert post(client, body, ip="198.51.100.8").get_json() == {"accepted": 0, "duplicates": 1}
    assert post(client, body, ip="203.0.113.8").get_json()["accepted"] == 1
    assert counts(redis_conn) == {"r|GB|login": 4, "u|GB|login": 2, "r|GB|app": 1, "u|GB|app": 0}


def test_a_reporter_counts_again_after_the_dedup_window(settings, redis_conn) -> None:
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, dedup_seconds=1)}
    )
    client = app.test_client()
    body = {"service": "x", "problem": "app", "region": "FR"}
    assert post(client, body).get_json()["accepted"] == 1
    assert post(client, body).get_json()["duplicates"] == 1
    seen = keys.tag("x") + ":seen:*"
    wait_until(lambda: not redis_conn.keys(seen), timeout=10, what="the dedup marker to expire")
    assert post(client, body).get_json()["accepted"] == 1


def test_region_defaults_to_the_ip_country_else_unknown(client, redis_conn) -> None:
    assert post(client, {"service": "x", "problem": "app"}, ip="8.8.8.8").status_code == 202
    assert (
        post(client, {"service": "x", "problem": "app", "region": None}, ip="127.0.0.1").status_code
        == 202
    )
    assert (
        post(client, {"service": "x", "problem": "app", "region": "*"}, ip="10.0.0.1").status_code
        == 202
    )
    assert counts(redis_conn) == {"r|US|app": 1, "u|US|app": 1, "r|*|app": 2, "u|*|app": 2}


def test_storage_layout_ttls_and_stream(client, redis_conn, settings) -> None:
    post(client, {"service": "x", "problem": "app", "region": "DE-BY", "comment": " <b>down</b> "})
    minute = int(time.time() // 60)
    key = keys.minute_counts("x", minute)
    if not redis_conn.exists(key):  # the minute turned over between the two lines
        minute -= 1
        key = keys.minute_counts("x", minute)
    keep = settings.retention_days * 86400
    expected_ttl = minute * 60 + keep - time.time()
    assert abs(redis_conn.ttl(key) - expected_ttl) <= 2
    assert abs(redis_conn.ttl(keys.prefixes("x", minute)) - expected_ttl) <= 2
    assert redis_conn.pfcount(keys.prefixes("x", minute)) == 1
    seen = list(redis_conn.scan_iter(match="{svc:x}:seen:*"))
    assert len(seen) == 1 and 0 < redis_conn.ttl(seen[0]) <= settings.dedup_seconds
    for k in (keys.stream("x"), keys.comments("x"), keys.first_minute("x")):
        assert keep - 5 <= redis_conn.ttl(k) <= keep
    assert int(redis_conn.get(keys.first_minute("x"))) == minute
    [(_, entry)] = redis_conn.xrange(keys.stream("x"))
    assert entry == {
        b"minute": str(minute).encode(),
        b"region": b"DE-BY",
        b"problem": b"app",
        b"source": b"api",
        b"reports": b"1",
        b"counted": b"1",
    }
    [comment] = redis_conn.lrange(keys.comments("x"), 0, -1)
    doc = json.loads(comment)
    assert doc["text"] == "<b>down</b>" and doc["region"] == "DE-BY" and doc["problem"] == "app"
    assert doc["at"].endswith("Z")


def test_comments_are_capped_newest_first_and_only_for_counted_reports(
    settings, redis_conn
) -> None:
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, comments_maxlen=3)}
    )
    client = app.test_client()
    for i in range(5):
        post(client, {"service": "x", "problem": "app", "comment": f"c{i}"}, ip=f"203.0.{i}.1")
    post(client, {"service": "x", "problem": "app", "comment": "dup"}, ip="203.0.4.1")
    texts = [json.loads(c)["text"] for c in redis_conn.lrange(keys.comments("x"), 0, -1)]
    assert texts == ["c4", "c3", "c2"]


def test_stream_has_one_entry_per_request_minute_and_scope(client, redis_conn) -> None:
    items = [
        {"service": "x", "problem": p, "region": "US", "reporter": f"u{i}"}
        for i, p in enumerate(["app", "app", "login"])
    ]
    items.append({"service": "x", "problem": "app", "region": "US", "reporter": "u0"})
    post(client, {"reports": items}, AUTH)
    entries = sorted(
        (e[b"problem"], e[b"reports"], e[b"counted"])
        for _, e in redis_conn.xrange(keys.stream("x"))
    )
    assert entries == [(b"app", b"3", b"2"), (b"login", b"1", b"1")]


def test_stream_is_capped(settings, redis_conn) -> None:
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, stream_maxlen=10)}
    )
    client = app.test_client()
    for i in range(300):
        post(client, {"service": "x", "problem": "app"}, ua=f"agent-{i}")
    # MAXLEN ~ trims whole stream nodes (100 entries by default), never below the cap.
    assert 10 <= redis_conn.xlen(keys.stream("x")) <= 110


def test_first_minute_keeps_the_minimum(client, redis_conn) -> None:
    now = time.time()
    post(
        client,
        {"reports": [{"service": "x", "problem": "app", "reporter": "a", "at": iso(now - 300)}]},
        AUTH,
    )
    post(client, {"reports": [{"service": "x", "problem": "app", "reporter": "b"}]}, AUTH)
    assert int(redis_conn.get(keys.first_minute("x"))) == int((now - 300) // 60)


def test_lost_script_cache_is_reloaded(client, redis_conn) -> None:
    assert post(client, {"service": "x", "problem": "app"}).status_code == 202
    redis_conn.script_flush()
    resp = post(
        client,
        {"reports": [{"service": s, "problem": "app", "reporter": "r"} for s in ("x", "youtube")]},
        AUTH,
    )
    assert resp.get_json() == {"accepted": 2, "duplicates": 0, "rejected": []}


# ----------------------------------------------------------------------------- batches
def test_batch_keeps_good_items_and_reports_bad_ones(client, redis_conn) -> None:
    now = time.time()
    items = [
        {"service": "x", "problem": "app", "region": "US", "reporter": "u1"},
        {"service": "x", "problem": "nope", "reporter": "u2"},
        {"service": "youtube", "problem": "streaming", "reporter": 42, "at": iso(now - 120)},
        {"service": "nope", "problem": "app"},
        "not an object",
        {"service": "x", "problem": "app", "region": "US", "reporter": "u1"},
        {"service": "x", "problem": "app", "reporter": "u3", "at": iso(now - 3600)},
    ]
    resp = post(client, {"reports": items}, AUTH)
    assert resp.status_code == 202
    body = resp.get_json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [
        (r["index"], r["error"]["code"], r["error"].get("field")) for r in body["rejected"]
    ] == [
        (1, "invalid", "problem"),
        (3, "not_found", "service"),
        (4, "invalid", None),
        (6, "invalid", "at"),
    ]
    assert counts(redis_conn, "x") == {"r|US|app": 2, "u|US|app": 1}
    assert counts(redis_conn, "youtube") == {"r|*|streaming": 1, "u|*|streaming": 1}
    old_minute = int((now - 120) // 60)
    assert redis_conn.hgetall(keys.minute_counts("youtube", old_minute))
    stream = redis_conn.xrange(keys.stream("x"))
    assert {e[b"source"] for _, e in stream} == {b"key:partner"}


def test_batch_items_without_reporter_count_as_one_reporter_of_the_key(client, redis_conn) -> None:
    items = [{"service": "x", "problem": "app"}] * 3
    assert post(client, {"reports": items}, AUTH).get_json()["accepted"] == 1


def test_single_report_with_a_key_may_carry_reporter_and_at(client, redis_conn) -> None:
    body = {"service": "x", "problem": "links", "reporter": "user-9", "at": iso(time.time())}
    assert post(client, body, AUTH).get_json() == {"accepted": 1, "duplicates": 0}
    assert post(client, body, AUTH, ip="203.0.113.99").get_json()["duplicates"] == 1


def test_a_thousand_item_batch_is_accepted(client, redis_conn) -> None:
    items = [
        {"service": "x", "problem": "app", "region": "US-NY", "reporter": str(i)}
        for i in range(1000)
    ]
    resp = post(client, {"reports": items}, AUTH)
    assert resp.get_json() == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert counts(redis_conn)["u|US-NY|app"] == 1000


# -------------------------------------------------------------------------- bad inputs
DEEP = "[" * 100000 + "]" * 100000
BIG_INT = '{"service": 1' + "0" * 5000 + ', "problem": "app"}'
OK = {"service": "x", "problem": "app"}


def _item(**kw):
    return {"reports": [{"service": "x", "problem": "app", "reporter": "r1", **kw}]}


BAD_INPUTS = [
    # (id, request kwargs, status, code, field)
    ("not-json", {"data": "not json"}, 400, "malformed_json", None),
    ("empty-body", {"data": ""}, 400, "malformed_json", None),
    ("truncated", {"data": '{"service": "x"'}, 400, "malformed_json", None),
    ("invalid-utf8", {"data": b'{"service": "\xff\xfe"}'}, 400, "malformed_json", None),
    ("deep-nesting", {"data": DEEP}, 400, "malformed_json", None),
    ("huge-int", {"data": BIG_INT}, 400, "malformed_json", None),
    ("null", {"data": "null"}, 422, "invalid", None),
    ("array", {"data": "[]"}, 422, "invalid", None),
    ("array-of-reports", {"json": [OK]}, 422, "invalid", None),
    ("string", {"data": '"x"'}, 422, "invalid", None),
    ("number", {"data": "123"}, 422, "invalid", None),
    ("service-null", {"json": {**OK, "service": None}}, 422, "invalid", "service"),
    ("service-number", {"json": {**OK, "service": 5}}, 422, "invalid", "service"),
    ("service-array", {"json": {**OK, "service": ["x"]}}, 422, "invalid", "service"),
    ("service-object", {"json": {**OK, "service": {"a": 1}}}, 422, "invalid", "service"),
    ("service-inf", {"data": '{"service": 1e400, "problem": "app"}'}, 422, "invalid", "service"),
    ("service-nan", {"data": '{"service": NaN, "problem": "app"}'}, 422, "invalid", "service"),
    ("service-missing", {"json": {"problem": "app"}}, 422, "invalid", "service"),
    ("service-unknown", {"json": {**OK, "service": "nope"}}, 404, "not_found", "service"),
    (
        "service-script",
        {"json": {**OK, "service": "<script>alert(1)</script>"}},
        404,
        "not_found",
        "service",
    ),
    ("service-null-byte", {"json": {**OK, "service": "x\u0000"}}, 404, "not_found", "service"),
    ("problem-missing", {"json": {"service": "x"}}, 422, "invalid", "problem"),
    ("problem-null", {"json": {**OK, "problem": None}}, 422, "invalid", "problem"),
    ("problem-other-service", {"json": {**OK, "problem": "streaming"}}, 422, "invalid", "problem"),
    ("problem-case", {"json": {**OK, "problem": "APP"}}, 422, "invalid", "problem"),
    ("problem-bool", {"json": {**OK, "problem": True}}, 422, "invalid", "problem"),
    ("region-unknown", {"json": {**OK, "region": "XX"}}, 422, "invalid", "region"),
    ("region-bad-subdivision", {"json": {**OK, "region": "US-ZZ"}}, 422, "invalid", "region"),
    ("region-number", {"json": {**OK, "region": 840}}, 422, "invalid", "region"),
    ("region-array", {"json": {**OK, "region": ["US"]}}, 422, "invalid", "region"),
    ("region-null-byte", {"json": {**OK, "region": "U\u0000S"}}, 422, "invalid", "region"),
    ("region-html", {"json": {**OK, "region": "<img src=x>"}}, 422, "invalid", "region"),
    ("region-huge", {"json": {**OK, "region": "US" * 5000}}, 422, "invalid", "region"),
    ("comment-too-long", {"json": {**OK, "comment": "é" * 281}}, 422, "invalid", "comment"),
    ("comment-number", {"json": {**OK, "comment": 5}}, 422, "invalid", "comment"),
    ("comment-object", {"json": {**OK, "comment": {"t": "x"}}}, 422, "invalid", "comment"),
    ("comment-null-byte", {"json": {**OK, "comment": "a\u0000b"}}, 422, "invalid", "comment"),
    (
        "comment-escape-seq",
        {"json": {**OK, "comment": "a\u001b[31mred"}},
        422,
        "invalid",
        "comment",
    ),
    (
        "comment-lone-surrogate",
        {"data": '{"service":"x","problem":"app","comment":"\\ud800"}'},
        422,
        "invalid",
        "comment",
    ),
    ("unknown-field", {"json": {**OK, "foo": 1}}, 422, "invalid", "foo"),
    ("reporter-needs-key", {"json": {**OK, "reporter": "u1"}}, 422, "invalid", "reporter"),
    ("at-needs-key", {"json": {**OK, "at": "2024-01-01T00:00:00Z"}}, 422, "invalid", "at"),
    (
        "text-plain",
        {"data": json.dumps(OK), "content_type": "text/plain"},
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "form-encoded",
        {"data": {"service": "x", "problem": "app"}},
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "no-content-type",
        {"data": json.dumps(OK), "content_type": ""},
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "body-over-1mb",
        {"json": {**OK, "comment": "a" * (1024 * 1024 + 10)}},
        413,
        "too_large",
        None,
    ),
    ("batch-without-key", {"json": {"reports": [OK]}}, 401, "unauthorized", "Authorization"),
    (
        "batch-wrong-key",
        {"json": {"reports": [OK]}, "headers": BAD_AUTH},
        401,
        "unauthorized",
        "Authorization",
    ),
    ("single-wrong-key", {"json": OK, "headers": BAD_AUTH}, 401, "unauthorized", "Authorization"),
    (
        "basic-auth",
        {"json": OK, "headers": {"Authorization": "Basic dTpw"}},
        401,
        "unauthorized",
        "Authorization",
    ),
    (
        "empty-bearer",
        {"json": OK, "headers": {"Authorization": "Bearer "}},
        401,
        "unauthorized",
        "Authorization",
    ),
    (
        "batch-5000-items",
        {"json": {"reports": [OK] * 5000}, "headers": AUTH},
        413,
        "too_large",
        "reports",
    ),
    ("batch-not-a-list", {"json": {"reports": "x"}, "headers": AUTH}, 422, "invalid", "reports"),
    ("batch-null", {"json": {"reports": None}, "headers": AUTH}, 422, "invalid", "reports"),
    ("batch-empty", {"json": {"reports": []}, "headers": AUTH}, 422, "invalid", "reports"),
    (
        "batch-extra-field",
        {"json": {"reports": [OK], "x": 1}, "headers": AUTH},
        422,
        "invalid",
        "x",
    ),
]


@pytest.mark.parametrize(
    "kwargs,status,code,field", [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS]
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client, redis_conn, kwargs, status, code, field
) -> None:
    kwargs = dict(kwargs)
    headers = {"User-Agent": "t", **kwargs.pop("headers", {})}
    if isinstance(kwargs.get("data"), str | bytes):
        kwargs.setdefault("content_type", "application/json")
    resp = client.post(URL, headers=headers, **kwargs)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/json"
    error = resp.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert error.get("field") == field
    assert "Traceback" not in resp.get_data(as_text=True)
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert not list(redis_conn.scan_iter(match="{svc:*"))


BAD_ITEMS = [
    ("at-too-old", {"at": iso(time.time() - 3600)}, "at"),
    ("at-future", {"at": iso(time.time() + 3600)}, "at"),
    ("at-not-a-time", {"at": "yesterday"}, "at"),
    ("at-naive", {"at": "2024-01-01T00:00:00"}, "at"),
    ("at-number", {"at": 1700000000}, "at"),
    ("reporter-too-long", {"reporter": "r" * 129}, "reporter"),
    ("reporter-empty", {"reporter": "  "}, "reporter"),
    ("reporter-object", {"reporter": {}}, "reporter"),
    ("reporter-bool", {"reporter": True}, "reporter"),
]


@pytest.mark.parametrize("extra,field", [pytest.param(*c[1:], id=c[0]) for c in BAD_ITEMS])
def test_bad_batch_item_is_rejected_by_index(client, redis_conn, extra, field) -> None:
    resp = post(client, _item(**extra), AUTH)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["accepted"] == 0 and body["rejected"][0]["index"] == 0
    assert body["rejected"][0]["error"]["field"] == field


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_wrong_method_is_405_json(client, method) -> None:
    resp = getattr(client, method)(URL)
    assert resp.status_code == 405
    assert resp.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


def test_the_ceiling_endpoint_exists_only_when_enabled(settings, client) -> None:
    assert client.post("/api/v1/_ceiling/reports", json=OK).status_code == 404
    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": dataclasses.replace(settings, bench_ceiling=True)}
    )
    resp = app.test_client().post("/api/v1/_ceiling/reports", json=OK)
    assert resp.status_code == 202 and resp.get_json()["accepted"] == 1
