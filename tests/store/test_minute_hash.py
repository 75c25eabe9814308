"""The minute-hash fields: one module names them, and the ingestion script agrees with it."""

from __future__ import annotations

import time

import pytest
import redis

from store import keys, minute_hash
from store.config import Settings
from web.ingest import Outcome, Report
from web.report_store import WRITE_SCRIPT, ReportStore


def test_field_names() -> None:
    assert minute_hash.reports_field("US-CA", "app") == "r|US-CA|app"
    assert minute_hash.reporters_field("*", "login") == "u|*|login"
    assert minute_hash.leaf("GB", "app") == "GB|app"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ({b"r|US-CA|app": b"3", b"u|US-CA|app": b"2"}, {("US-CA", "app"): (3, 2)}),
        ({b"r|*|login": b"4"}, {("*", "login"): (4, None)}),
        ({b"u|GB|app": b"5"}, {("GB", "app"): (5, 5)}),
        ({b"r|GB|app": b"1", b"u|GB|app": b"3"}, {("GB", "app"): (3, 3)}),
        (
            {b"r|ZZ|app": b"1", b"x|US|app": b"1", b"r|US": b"2", b"r|US|app": b"1"},
            {("US", "app"): (1, None)},
        ),
    ],
)
def test_parse(raw: dict, expected: dict) -> None:
    assert minute_hash.parse(raw) == expected


def test_parse_reads_what_the_writers_write() -> None:
    raw = {
        minute_hash.reports_field("US", "app").encode(): b"7",
        minute_hash.reporters_field("US", "app").encode(): b"5",
        minute_hash.reports_field(minute_hash.UNKNOWN_REGION, "login").encode(): b"2",
    }
    assert minute_hash.parse(raw) == {("US", "app"): (7, 5), ("*", "login"): (2, None)}


def test_the_ingestion_script_takes_its_field_names_from_the_module() -> None:
    assert f"'{minute_hash.REPORTS}{minute_hash.SEP}' .. field" in WRITE_SCRIPT
    assert f"'{minute_hash.REPORTERS}{minute_hash.SEP}' .. field" in WRITE_SCRIPT
    assert "$" not in WRITE_SCRIPT


def test_the_ingestion_script_writes_what_parse_reads(redis_conn: redis.Redis) -> None:
    at = time.time()
    reports = [
        Report("x", "app", "US-CA", at, "reporter-a", "net-a"),
        Report("x", "app", "US-CA", at, "reporter-a", "net-a"),  # a duplicate: raw only
        Report("x", "login", "*", at, "reporter-b", "net-b"),
    ]
    assert ReportStore(Settings()).write(redis_conn, reports) == Outcome(2, 1)
    raw = redis_conn.hgetall(keys.minute_counts("x", int(at // 60)))
    assert {k.decode() for k in raw} == {
        minute_hash.reports_field("US-CA", "app"),
        minute_hash.reporters_field("US-CA", "app"),
        minute_hash.reports_field("*", "login"),
        minute_hash.reporters_field("*", "login"),
    }
    assert minute_hash.parse(raw) == {("US-CA", "app"): (2, 1), ("*", "login"): (1, 1)}
    entry = redis_conn.xrange(keys.stream("x"))[0][1]
    assert entry[b"region"] in (b"US-CA", b"*") and entry[b"problem"] in (b"app", b"login")
