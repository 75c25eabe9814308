"""`outage load COUNTS.csv` against the real test Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.load import main
from detector.clock import minute_to_iso
from store import keys

NOW = int(time.time() // 60)
HEADER = "minute,service,region,problem,reports,reporters\n"


@pytest.fixture
def env(monkeypatch, settings):
    """Point `outage load` (which reads the environment) at the test Redis."""
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    return settings


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def minute(offset: int) -> str:
    return minute_to_iso(NOW - offset)


def hash_of(redis_conn, service: str, offset: int) -> dict[str, int]:
    raw = redis_conn.hgetall(keys.minute_counts(service, NOW - offset))
    return {k.decode(): int(v) for k, v in raw.items()}


def test_load_writes_counts_and_is_idempotent(env, redis_conn, tmp_path, capsys) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [
            f"{minute(10)},x,US,app,7,5",
            f"{minute(10)},x,US-CA,login,3,",
            f"{minute(12)},youtube,*,streaming,2,2",
            f"{minute(10)},x,US,app,1,1",  # a repeated row is summed, as replay does
            f"{minute(11)},x,GB,app,0,0",
        ],
    )
    assert main([str(path)]) == 0
    first = {"r|US|app": 8, "u|US|app": 6, "r|US-CA|login": 3, "u|US-CA|login": 3}
    assert hash_of(redis_conn, "x", 10) == first
    assert hash_of(redis_conn, "youtube", 12) == {"r|*|streaming": 2, "u|*|streaming": 2}
    assert main([str(path)]) == 0
    assert hash_of(redis_conn, "x", 10) == first
    ttl = redis_conn.ttl(keys.minute_counts("x", NOW - 10))
    assert abs(ttl - ((NOW - 10) * 60 + env.retention_days * 86400 - time.time())) <= 2
    assert int(redis_conn.get(keys.first_minute("x"))) == NOW - 11
    assert redis_conn.smembers(keys.ACTIVE_SERVICES) == {b"x", b"youtube"}
    err = capsys.readouterr().err
    assert "loaded 5 rows for 2 services" in err


def test_load_adds_to_live_minutes_only_what_it_names(env, redis_conn, tmp_path) -> None:
    key = keys.minute_counts("x", NOW - 5)
    redis_conn.hset(key, mapping={"r|US|app": 4, "u|US|app": 4, "r|FR|app": 9})
    redis_conn.set(keys.first_minute("x"), NOW - 100)
    assert main([str(write_csv(tmp_path / "c.csv", [f"{minute(5)},x,US,app,2,1"]))]) == 0
    assert hash_of(redis_conn, "x", 5) == {"r|US|app": 2, "u|US|app": 1, "r|FR|app": 9}
    assert int(redis_conn.get(keys.first_minute("x"))) == NOW - 100  # the minimum is kept


def test_load_resets_the_services_detector(env, redis_conn, tmp_path) -> None:
    parts = [keys.detector_part("x", p) for p in ("index", "history", "baseline", "state", "meta")]
    others = [keys.detector_version("x"), keys.baseline_version("x")]
    for k in parts + others + [keys.detector_part("youtube", "state"), keys.status("x")]:
        redis_conn.set(k, b"blob")
    assert main([str(write_csv(tmp_path / "c.csv", [f"{minute(3)},x,US,app,1,1"]))]) == 0
    assert redis_conn.exists(*parts, *others) == 0
    assert redis_conn.exists(keys.detector_part("youtube", "state"))  # other services untouched
    assert not redis_conn.exists(keys.detect_lock("x"))


def test_load_waits_for_a_running_detection_job(env, redis_conn, tmp_path, monkeypatch) -> None:
    import cli.load as load

    monkeypatch.setattr(load, "LOCK_WAIT_SECONDS", 0.6)
    redis_conn.set(keys.detect_lock("x"), b"job", ex=30)
    redis_conn.set(keys.detector_part("x", "state"), b"blob")
    assert main([str(write_csv(tmp_path / "c.csv", [f"{minute(3)},x,US,app,1,1"]))]) == 1
    assert hash_of(redis_conn, "x", 3) == {"r|US|app": 1, "u|US|app": 1}  # counts are in
    assert redis_conn.get(keys.detect_lock("x")) == b"job"


def test_rows_without_reporters_count_reports_as_reporters(env, redis_conn, tmp_path) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [f"{minute(2)},x,DE,app,6"],
        header="minute,service,region,problem,reports\n",
    )
    assert main([str(path)]) == 0
    assert hash_of(redis_conn, "x", 2) == {"r|DE|app": 6, "u|DE|app": 6}


def test_columns_in_any_order_and_unsorted_rows(env, redis_conn, tmp_path) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [f"3,app,{minute(1)},x,US", f"2,app,{minute(9)},x,US", f"1,app,{minute(1)},x,US"],
        header="reports,problem,minute,service,region\n",
    )
    assert main([str(path)]) == 0
    assert hash_of(redis_conn, "x", 1)["r|US|app"] == 4
    assert hash_of(redis_conn, "x", 9)["r|US|app"] == 2


def test_large_sorted_file_streams_in_chunks(env, redis_conn, tmp_path, monkeypatch) -> None:
    import cli.load as load

    monkeypatch.setattr(load, "FLUSH_FIELDS", 50)
    rows = [f"{minute(m)},x,US,app,{m},{m}" for m in range(300, 0, -1)]
    assert main([str(write_csv(tmp_path / "c.csv", rows)), "--quiet"]) == 0
    assert all(hash_of(redis_conn, "x", m) == {"r|US|app": m, "u|US|app": m} for m in range(1, 301))


def test_old_and_future_rows_are_skipped_with_a_warning(env, redis_conn, tmp_path, capsys) -> None:
    too_old = env.retention_days * 1440 + 5
    path = write_csv(
        tmp_path / "c.csv",
        [
            f"{minute(too_old)},x,US,app,1,1",
            f"{minute(-60)},x,US,app,1,1",
            f"{minute(4)},x,US,app,1,1",
        ],
    )
    assert main([str(path)]) == 0
    assert not redis_conn.exists(keys.minute_counts("x", NOW - too_old))
    assert not redis_conn.exists(keys.minute_counts("x", NOW + 60))
    assert int(redis_conn.get(keys.first_minute("x"))) == NOW - 4
    err = capsys.readouterr().err
    assert "skipped 1 rows older than the retention" in err and "1 rows in the future" in err


@pytest.mark.parametrize(
    "rows,message",
    [
        (["2024-01-01T00:00:00Z,x,US,app,1,1", "garbage,x,US,app,1,1"], "not an ISO 8601"),
        (["2024-01-01T00:00:30Z,x,US,app,1,1"], "whole minute"),
        (["2024-01-01T00:00:00,x,US,app,1,1"], "UTC offset"),
        (["2024-01-01T00:00:00Z,x,XX,app,1,1"], "unknown ISO 3166-1"),
        (["2024-01-01T00:00:00Z,x,US,app,-1,0"], "reporters <= reports"),
        (["2024-01-01T00:00:00Z,x,US,app,1,2"], "reporters <= reports"),
        (["2024-01-01T00:00:00Z,x,US,app,many,1"], "invalid literal"),
        (["2024-01-01T00:00:00Z,x,US,app,1"], "expected 6 fields"),
        (["2024-01-01T00:00:00Z,,US,app,1,1"], "must not be empty"),
        (["2024-01-01T00:00:00Z,x,US,streaming,1,1"], "x has no problem 'streaming'"),
        (["2024-01-01T00:00:00Z,acme,US,app,1,1"], "services not in the catalog: acme"),
    ],
)
def test_bad_files_load_nothing_and_say_why(
    env, redis_conn, tmp_path, capsys, rows, message
) -> None:
    good = f"{minute(1)},x,US,app,1,1"
    assert main([str(write_csv(tmp_path / "c.csv", [good, *rows]))]) == 2
    err = capsys.readouterr().err
    assert "nothing was loaded" in err and message in err
    assert redis_conn.dbsize() == 0


def test_bad_header_and_missing_file(env, tmp_path, capsys) -> None:
    assert main([str(write_csv(tmp_path / "c.csv", [], header="when,what\n"))]) == 2
    assert "header lacks minute" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.csv")]) == 2


def test_unknown_services_load_with_allow_unknown(env, redis_conn, tmp_path) -> None:
    path = write_csv(tmp_path / "c.csv", [f"{minute(1)},acme,US,checkout,2,2"])
    assert main([str(path), "--allow-unknown"]) == 0
    assert hash_of(redis_conn, "acme", 1) == {"r|US|checkout": 2, "u|US|checkout": 2}
    assert redis_conn.sismember(keys.ACTIVE_SERVICES, "acme")


def test_redis_unreachable_is_exit_1(env, tmp_path, monkeypatch, capsys) -> None:
    from cli.redis_server import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main([str(write_csv(tmp_path / "c.csv", [f"{minute(1)},x,US,app,1,1"]))]) == 1
    assert "Redis" in capsys.readouterr().err
