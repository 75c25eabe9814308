"""A duplicate report is not counted anywhere: not in Redis, the series, the chart or detection.

The case that used to slip through: a reporter's first report counts ("app"), a second about
another problem ("messages") is a duplicate, so the "messages" leaf has raw reports and no
counted reporter. Its counted field must read 0, not "unknown, use the raw reports".
"""

from __future__ import annotations

import time

import redis

from detector.engine import ServiceDetector
from store import keys, minute_hash
from store.config import Settings
from web import queries
from web.ingest import Outcome, Report
from web.report_store import ReportStore
from workers.detection import read_minutes


def _write_one_and_a_duplicate(conn: redis.Redis, at: float) -> int:
    reports = [
        Report("x", "app", "US", at, "reporter-a", "net-a"),
        Report("x", "messages", "US", at, "reporter-a", "net-a"),
    ]
    assert ReportStore(Settings()).write(conn, reports) == Outcome(1, 1)
    return int(at // 60)


def test_the_counted_field_is_stored_even_when_zero(redis_conn: redis.Redis) -> None:
    minute = _write_one_and_a_duplicate(redis_conn, time.time())
    raw = redis_conn.hgetall(keys.minute_counts("x", minute))
    assert raw[minute_hash.reporters_field("US", "messages").encode()] == b"0"
    assert minute_hash.parse(raw) == {("US", "app"): (1, 1), ("US", "messages"): (1, 0)}


def test_the_series_counts_no_duplicate(redis_conn: redis.Redis) -> None:
    minute = _write_one_and_a_duplicate(redis_conn, time.time())
    for problem, counted in (("messages", 0), ("app", 1), (None, 1)):
        body = queries.series(redis_conn, "x", None, problem, minute, minute, 1)
        assert body["reports"] == [counted], problem
    body = queries.series(redis_conn, "x", None, None, minute, minute, 1)
    assert body["raw_reports"] == [2]


def test_the_api_series_counts_no_duplicate(client) -> None:
    env = {"REMOTE_ADDR": "198.51.100.9"}
    headers = {"User-Agent": "dup-test/1"}
    first = client.post(
        "/api/v1/reports",
        json={"service": "x", "problem": "app"},
        environ_base=env,
        headers=headers,
    )
    again = client.post(
        "/api/v1/reports",
        json={"service": "x", "problem": "login"},
        environ_base=env,
        headers=headers,
    )
    assert first.get_json()["accepted"] == 1 and again.get_json()["duplicates"] == 1
    body = queries.series(
        client.application.extensions["outage"].redis,
        "x",
        None,
        "login",
        int(time.time() // 60) - 1,
        int(time.time() // 60),
        1,
    )
    assert sum(body["reports"]) == 0 and sum(body["raw_reports"]) == 1


def test_detection_counts_no_duplicate(redis_conn: redis.Redis) -> None:
    minute = _write_one_and_a_duplicate(redis_conn, time.time() - 120)
    ((read_minute, leaves, _),) = read_minutes(redis_conn, "x", minute, minute)
    assert read_minute == minute
    assert leaves[("US", "messages")] == (1, 0)
    detector = ServiceDetector("x")
    detector.advance(minute, leaves)
    assert detector.status().observed[-1] == 1.0  # one reporter, not two reports


def test_loaded_history_without_reporters_keeps_its_meaning() -> None:
    raw = {minute_hash.reports_field("US", "app").encode(): b"4"}
    assert minute_hash.parse(raw) == {("US", "app"): (4, None)}
