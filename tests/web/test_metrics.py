"""GET /metrics: the process metrics, the fleet metrics read from Redis, and their failures."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from cli.redis_server import free_port
from store import keys, metrics
from tests.conftest import TEST_API_KEY

REQUIRED = {
    "outage_reports",
    "outage_reports_rejected",
    "outage_ingest_duration_seconds",
    "outage_detection_cycle_seconds",
    "outage_detection_series_evaluated",
    "outage_incidents_open",
    "outage_webhook_deliveries",
    "outage_rq_queue_depth",
}


def scrape(client) -> dict[str, dict]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    families = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        families[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return families


def sample(families: dict, family: str, name: str | None = None, **labels: str) -> float:
    return families[family].get((name or family, tuple(sorted(labels.items()))), 0.0)


def before(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_exposes_everything_the_issue_lists(client) -> None:
    metrics.count_reports(1, 1, ["invalid_problem"])
    metrics.webhook(client.application.extensions["outage"].redis, "delivered")
    families = scrape(client)
    assert REQUIRED <= families.keys(), REQUIRED - families.keys()
    assert all(
        name.startswith("outage_")
        for name in families
        if name.split("_")[0] not in ("process", "python")
    )


def test_count_reports_counts_outcomes_and_reasons() -> None:
    acc, dup = (
        before("outage_reports_total", outcome="accepted"),
        before("outage_reports_total", outcome="duplicate"),
    )
    bad = before("outage_reports_rejected_total", reason="invalid_region")
    metrics.count_reports(
        3, 2, ["invalid_region", {"index": 4, "error": {"code": "invalid_region", "message": "x"}}]
    )
    assert before("outage_reports_total", outcome="accepted") == acc + 3
    assert before("outage_reports_total", outcome="duplicate") == dup + 2
    assert before("outage_reports_rejected_total", reason="invalid_region") == bad + 2


def test_labels_stay_bounded() -> None:
    assert metrics.label("Rate-Limited") == "rate_limited"
    assert metrics.label("<script>") == "other"
    assert metrics.label("x" * 200) == "other"


def test_requests_feed_the_ingest_histogram_and_refusals(client) -> None:
    count = before("outage_ingest_duration_seconds_count", source="api")
    refused = before("outage_reports_rejected_total", reason="unsupported_media_type")
    client.post("/api/v1/reports", json={"service": "x", "problem": "app"})
    resp = client.post("/api/v1/reports", data="x", content_type="text/plain")
    assert resp.status_code == 415
    code = resp.get_json()["error"]["code"]
    assert before("outage_ingest_duration_seconds_count", source="api") == count + 2
    assert before("outage_reports_rejected_total", reason=metrics.label(code)) >= refused + 1
    families = scrape(client)
    assert (
        sample(
            families,
            "outage_http_requests",
            "outage_http_requests_total",
            route="/api/v1/reports",
            method="POST",
            status="415",
        )
        >= 1
    )


def test_client_chosen_methods_do_not_become_labels(client) -> None:
    client.open("/healthz", method="BREW")
    families = scrape(client)
    methods = {dict(labels)["method"] for _, labels in families["outage_http_requests"]}
    assert "BREW" not in methods and "other" in methods


def test_fleet_metrics_come_from_redis(client, redis_conn: redis.Redis) -> None:
    metrics.observe_cycle(redis_conn, 0.3, services=5, series=120)
    metrics.observe_cycle(redis_conn, 7.0, services=5, series=80)
    metrics.webhook(redis_conn, "failed")
    metrics.webhook(redis_conn, "delivered")
    metrics.webhook(redis_conn, "delivered")
    for i, severity in enumerate(["outage", "outage", "possible", "closed-one"]):
        doc = {
            "id": f"i{i}",
            "severity": "problems" if severity == "closed-one" else severity,
            "status": "closed" if severity == "closed-one" else "open",
        }
        redis_conn.set(keys.incident(f"svc{i}", f"i{i}"), json.dumps(doc))
        redis_conn.sadd(keys.OPEN_INCIDENTS, f"svc{i}|i{i}")
    redis_conn.sadd(keys.OPEN_INCIDENTS, "gone|i9")  # a stale member is not counted
    from rq import Queue

    for n in range(3):
        Queue("detect", connection=redis_conn).enqueue("workers.jobs.detect_shard", n, 4, 1)
    families = scrape(client)
    hist = "outage_detection_cycle_seconds"
    assert sample(families, hist, hist + "_count") == 2
    assert sample(families, hist, hist + "_bucket", le="0.5") == 1
    assert sample(families, hist, hist + "_bucket", le="10.0") == 2
    assert sample(families, hist, hist + "_sum") == pytest.approx(7.3)
    assert (
        sample(
            families, "outage_detection_series_evaluated", "outage_detection_series_evaluated_total"
        )
        == 200
    )
    assert sample(families, "outage_detection_last_job_timestamp_seconds") > 1e9
    assert (
        sample(
            families,
            "outage_webhook_deliveries",
            "outage_webhook_deliveries_total",
            outcome="delivered",
        )
        == 2
    )
    assert sample(families, "outage_incidents_open", severity="outage") == 2
    assert sample(families, "outage_incidents_open", severity="possible") == 1
    assert sample(families, "outage_incidents_open", severity="problems") == 0
    assert sample(families, "outage_rq_queue_depth", queue="detect") == 3
    assert sample(families, "outage_metrics_redis_up", redis="data") == 1


def test_an_unreachable_redis_is_reported_not_raised() -> None:
    from store.connections import redis_client

    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    collector = metrics.FleetCollector(dead, dead, ["detect"])
    families = {f.name: f for f in collector.collect()}
    assert set(families) == {"outage_metrics_redis_up"}
    assert {s.labels["redis"]: s.value for s in families["outage_metrics_redis_up"].samples} == {
        "data": 0,
        "queues": 0,
    }
    metrics.observe_cycle(dead, 1.0, 1, 1)  # helpers never raise
    metrics.webhook(dead, "delivered")
    dead.close()


def test_a_metrics_token_guards_the_endpoint(settings) -> None:
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "OUTAGE_SETTINGS": dataclasses.replace(settings, metrics_token="scrape-token-123"),
        }
    )
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert ok.status_code == 200 and b"outage_rq_queue_depth" in ok.data


def test_api_key_fixture_is_usable() -> None:
    assert ":" in TEST_API_KEY  # the cluster tests build Bearer tokens from it
