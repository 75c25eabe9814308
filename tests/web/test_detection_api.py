"""The detection API: bodies, ETag/304, Cache-Control, errors, OpenAPI completeness."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
import redis

from store.config import Settings
from tests.detector.fixtures import REPLAY_FIELDS
from tests.workers.synth import merge, quiet_rows, spike_rows, write_rows
from web import create_app, queries
from workers import detection, state, webhooks

PARAMS = (("windows", (1, 5)), ("cusum_ratios", (3.0,)), ("close_quiet_minutes", 3))


@pytest.fixture(scope="module")
def snapshot(redis_server) -> dict[bytes, bytes]:
    """Build the data once per module: half a day of history for x with a spike running
    now, detected up to the last minute, plus `chirp`, a service known only from its data.
    Returns every key DUMPed, so each test restores it in milliseconds."""
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushall()
    state.CACHE.entries.clear()
    queries.BAND_CACHE.entries.clear()
    settings = dataclasses.replace(Settings(), detect_grace=0, detector_params=PARAMS)
    end = int(time.time() // 60) - 1
    start = end - 720
    leaves = {
        ("US-CA", "app"): 1.0,
        ("US-NY", "login"): 0.5,
        ("US", "app"): 0.3,
        ("GB", "app"): 0.7,
        ("*", "website"): 0.2,
    }
    # The spike runs a few minutes into the future so that it is still on the charts
    # when the minute turns during the tests.
    rows = merge(
        quiet_rows("x", start, 721, leaves, seed=3),
        spike_rows("x", end - 8, 13, {("US-CA", "app"): 30, ("GB", "app"): 10}),
        quiet_rows("chirp", start, 721, {("FR", "app"): 0.5}, seed=4),
    )
    write_rows(conn, rows)
    for service in ("x", "chirp"):
        detection.run_service(conn, conn, settings, service, (end + 1) * 60 + 1)
    dump = {key: conn.dump(key) for key in conn.keys("*")}
    conn.flushall()
    conn.close()
    return dump


@pytest.fixture
def live(redis_conn: redis.Redis, settings: Settings, snapshot: dict) -> Settings:
    """The snapshot restored into the (flushed) test Redis."""
    pipe = redis_conn.pipeline(transaction=False)
    for key, value in snapshot.items():
        pipe.restore(key, 0, value, replace=True)
    pipe.execute()
    return dataclasses.replace(settings, detect_grace=0, detector_params=PARAMS)


@pytest.fixture
def api(live: Settings):
    return create_app({"TESTING": True, "OUTAGE_SETTINGS": live}).test_client()


GETS = [
    ("/api/v1/services", "public, max-age=5"),
    ("/api/v1/services/x", "public, max-age=5"),
    ("/api/v1/services/chirp", "public, max-age=5"),
    ("/api/v1/services/x/series", "public, max-age=5"),
    ("/api/v1/services/x/series?hours=168&step=60&region=US&problem=app", "public, max-age=5"),
    ("/api/v1/services/x/map?level=country", "public, max-age=5"),
    ("/api/v1/services/x/map?level=us", "public, max-age=5"),
    ("/api/v1/incidents?active=1", "public, max-age=5"),
    ("/api/v1/incidents?service=x&since=2020-01-01T00:00:00Z&limit=5", "public, max-age=5"),
    ("/api/v1/webhooks/deliveries", "private, max-age=0"),
    ("/api/v1/openapi.json", "public, max-age=300"),
]


@pytest.mark.parametrize("url,cache", GETS)
def test_get_has_etag_and_answers_304(api, url: str, cache: str) -> None:
    resp = api.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == cache
    etag = resp.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    again = api.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert api.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200


BAD = [
    ("/api/v1/services/nope", 404, "service"),
    ("/api/v1/services/NOPE%00", 404, "service"),
    ("/api/v1/services/nope/series", 404, "service"),
    ("/api/v1/services/nope/map", 404, "service"),
    ("/api/v1/services/x/series?hours=0", 422, "hours"),
    ("/api/v1/services/x/series?hours=169", 422, "hours"),
    ("/api/v1/services/x/series?hours=-1", 422, "hours"),
    ("/api/v1/services/x/series?hours=1e3", 422, "hours"),
    ("/api/v1/services/x/series?hours=99999999999999999999", 422, "hours"),
    ("/api/v1/services/x/series?step=7", 422, "step"),
    ("/api/v1/services/x/series?step=abc", 422, "step"),
    ("/api/v1/services/x/series?region=ZZ", 422, "region"),
    ("/api/v1/services/x/series?region=US-XX", 422, "region"),
    ("/api/v1/services/x/series?region=%3Cscript%3E", 422, "region"),
    ("/api/v1/services/x/series?problem=teleport", 422, "problem"),
    ("/api/v1/services/x/series?problem=%E2%98%83", 422, "problem"),
    ("/api/v1/services/x/map?level=planet", 422, "level"),
    ("/api/v1/services/x/map?level=ZZ", 422, "level"),
    ("/api/v1/services/x/map?level=US-CA", 422, "level"),
    ("/api/v1/incidents?active=maybe", 422, "active"),
    ("/api/v1/incidents?since=yesterday", 422, "since"),
    ("/api/v1/incidents?since=2024-01-01T00:00:00", 422, "since"),
    ("/api/v1/incidents?limit=0", 422, "limit"),
    ("/api/v1/incidents?limit=5000", 422, "limit"),
    ("/api/v1/incidents?service=nope", 404, "service"),
    ("/api/v1/webhooks/deliveries?limit=x", 422, "limit"),
]


@pytest.mark.parametrize("url,status,field", BAD)
def test_bad_input_is_a_json_4xx(api, url: str, status: int, field: str) -> None:
    resp = api.get(url)
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert error["field"] == field and error["message"] and error["code"]
    assert "Traceback" not in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store" and "ETag" not in resp.headers


@pytest.mark.parametrize("url,cache", GETS[:-2])
def test_redis_down_is_503_with_retry_after(settings: Settings, url: str, cache: str) -> None:
    from cli.redis_server import free_port

    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app({"TESTING": True, "OUTAGE_SETTINGS": dead}).test_client()
    if "/x" not in url and "/chirp" not in url or "chirp" in url:
        url = url.replace("chirp", "x")
    resp = client.get(url)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert resp.get_json()["error"]["code"] == "unavailable"


def test_services_carry_their_level(api) -> None:
    body = api.get("/api/v1/services").get_json()
    by_slug = {s["slug"]: s for s in body["services"]}
    assert by_slug["x"]["status"]["level"] in ("possible", "problems", "outage")
    assert by_slug["x"]["status"]["incident"]
    assert by_slug["chirp"]["name"] == "chirp" and by_slug["chirp"]["status"]["level"] == "ok"
    quiet = next(s for s in body["services"] if s["slug"] not in ("x", "chirp"))
    assert quiet["status"] == {
        "level": "ok",
        "baseline": "insufficient_history",
        "updated_at": None,
        "observed": None,
        "expected": None,
        "ratio": None,
        "p_value": None,
        "incident": None,
        "affected_regions": [],
    }


def test_service_status_has_evidence_for_people(api) -> None:
    status = api.get("/api/v1/services/x").get_json()["status"]
    assert status["observed"] > status["expected"] > 0 and status["ratio"] > 1
    assert 0 <= status["p_value"] < 1e-3
    assert status["incident"]["id"].startswith("x:") and status["incident"]["ended_at"] is None
    assert "US" in status["affected_regions"]
    assert status["top_problems"][0]["problem"] == "app"
    top = status["top_problems"][0]
    assert top["share"] > top["normal_share"]
    assert len(status["recent"]["observed"]) == len(status["recent"]["expected"]) == 60


def test_series_sums_scopes_and_steps(api) -> None:
    one = api.get("/api/v1/services/x/series?hours=2&step=1").get_json()
    five = api.get("/api/v1/services/x/series?hours=2&step=5").get_json()
    assert (
        len(one["timestamps"])
        == len(one["reports"])
        == len(one["expected"])
        == len(one["upper"])
        == len(one["raw_reports"])
    )
    minutes = dict(zip(one["timestamps"], one["reports"], strict=True))
    checked = 0
    for i, stamp in enumerate(five["timestamps"]):
        inside = [
            v
            for t, v in minutes.items()
            if stamp <= t and (i + 1 == len(five["timestamps"]) or t < five["timestamps"][i + 1])
        ]
        if len(inside) == 5:
            assert sum(inside) == five["reports"][i]
            checked += 1
    assert checked >= 20
    assert all(r >= c for r, c in zip(one["raw_reports"], one["reports"], strict=True))
    assert all(u >= e for u, e in zip(one["upper"], one["expected"], strict=True) if e is not None)
    assert one["reports"][-1] > one["upper"][-1], "the running spike is above the band"
    us = api.get("/api/v1/services/x/series?hours=1&region=US").get_json()
    ca = api.get("/api/v1/services/x/series?hours=1&region=US-CA").get_json()
    ny = api.get("/api/v1/services/x/series?hours=1&region=US-NY").get_json()
    assert sum(us["reports"]) >= sum(ca["reports"]) + sum(ny["reports"])
    login = api.get("/api/v1/services/x/series?hours=1&problem=login").get_json()
    assert sum(login["reports"]) == sum(ny["reports"])
    assert five["timestamps"][0].endswith(("0:00Z", "5:00Z"))


def test_series_without_baseline_has_null_band(api) -> None:
    body = api.get("/api/v1/services/x/series?hours=1&region=JP").get_json()
    assert set(body["expected"]) == {None} and set(body["reports"]) == {0.0}


def test_map_per_country_and_state(api) -> None:
    world = api.get("/api/v1/services/x/map?level=country").get_json()
    rows = {r["region"]: r for r in world["regions"]}
    assert {"US", "GB"} <= rows.keys()
    us = rows["US"]
    assert us["name"] == "United States"
    assert us["ratio"] == pytest.approx(us["observed"] / us["expected"], rel=1e-3)
    assert us["ratio"] > 2
    states = api.get("/api/v1/services/x/map?level=US").get_json()
    codes = {r["region"] for r in states["regions"]}
    assert codes <= {"US-CA", "US-NY"} and "US-CA" in codes
    assert states["window_minutes"] == 15


def test_incident_queries(api, redis_conn: redis.Redis) -> None:
    active = api.get("/api/v1/incidents?active=1").get_json()["incidents"]
    assert active and all(d["status"] == "open" for d in active)
    doc = active[0]
    for field in (
        *REPLAY_FIELDS,
        "evidence",
        "events",
    ):
        assert field in doc
    assert doc["evidence"]["trigger"]
    assert api.get("/api/v1/incidents?active=1&service=chirp").get_json()["count"] == 0
    assert api.get("/api/v1/incidents?since=2999-01-01T00:00:00Z&active=0").get_json()["count"] == 0
    assert api.get(f"/api/v1/incidents?since={int(time.time())}").get_json()["count"] >= 1


def test_deliveries_show_outcomes_but_no_secret(redis_conn: redis.Redis, live: Settings) -> None:
    url = "https://user:pw@hooks.example.com/h?token=t0p"
    s = dataclasses.replace(live, webhooks=({"url": url, "secret": "s3", "services": []},))
    webhooks.record(
        redis_conn,
        {
            "delivery": "wh-1",
            "service": "x",
            "incident": "x:1",
            "event": "open",
            "outcome": "delivered",
        },
    )
    client = create_app({"TESTING": True, "OUTAGE_SETTINGS": s}).test_client()
    body = client.get("/api/v1/webhooks/deliveries?service=x").get_json()
    assert body["deliveries"][0]["outcome"] == "delivered"
    assert body["subscriptions"][0]["url"] == "https://hooks.example.com/h"
    text = json.dumps(body)
    assert "t0p" not in text and "pw" not in text and "s3" not in text
    assert client.get("/api/v1/webhooks/deliveries?service=y").get_json()["count"] == 0


def test_etag_changes_with_the_data(api, redis_conn: redis.Redis) -> None:
    first = api.get("/api/v1/incidents").headers["ETag"]
    webhooks.record(
        redis_conn,
        {
            "delivery": "wh-2",
            "service": "x",
            "incident": "x:1",
            "event": "open",
            "outcome": "failed",
        },
    )
    redis_conn.delete("{svc:x}:status")
    assert api.get("/api/v1/services/x").get_json()["status"]["level"] == "ok"
    redis_conn.srem("outage:incidents:open", *redis_conn.smembers("outage:incidents:open"))
    assert api.get("/api/v1/incidents?active=1").get_json()["count"] == 0
    assert api.get("/api/v1/incidents").headers["ETag"] == first


def _refs(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.add(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def test_openapi_describes_every_endpoint(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    app = client.application
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and not rule.rule.startswith("/api/v1/_"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), path))
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert routes <= documented, routes - documented
    assert ("post", "/api/v1/reports") in documented
    for ref in _refs(doc, set()):
        section, name = ref.split("/")[-2:]
        assert name in doc["components"][section], ref
    for path, item in doc["paths"].items():
        for op in item.values():
            assert op["summary"] and op["responses"], path
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), path
    assert doc["webhooks"]["incident"]["post"]["parameters"][1]["name"] == "X-Outage-Signature"


def test_endpoint_summaries_for_the_docs_page() -> None:
    from web.openapi import endpoint_summaries

    ops = endpoint_summaries()
    assert {"method": "GET", "path": "/api/v1/incidents"}.items() <= ops[0].items() or any(
        o["path"] == "/api/v1/incidents" and o["method"] == "GET" for o in ops
    )
    assert all(o["summary"] for o in ops)


PATHS = [
    "/api/v1/services/{s}",
    "/api/v1/services/{s}/series",
    "/api/v1/services/{s}/map",
    "/api/v1/incidents",
    "/api/v1/webhooks/deliveries",
]
PARAM_NAMES = [
    "hours",
    "step",
    "region",
    "problem",
    "level",
    "active",
    "since",
    "limit",
    "service",
    "incident",
]


def test_no_input_makes_a_500(client) -> None:
    from urllib.parse import quote

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.sampled_from(PATHS),
        st.one_of(st.just("x"), st.text(max_size=30)),
        st.dictionaries(st.sampled_from(PARAM_NAMES), st.text(max_size=20), max_size=4),
    )
    def check(path: str, slug: str, query: dict) -> None:
        resp = client.get(path.format(s=quote(slug, safe="") or "x"), query_string=query)
        assert resp.status_code < 500, (path, slug, query, resp.get_data(as_text=True))
        if resp.status_code >= 400:
            assert resp.get_json()["error"]["code"]

    check()
