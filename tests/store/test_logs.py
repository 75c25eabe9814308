"""Structured logs: one JSON object per line, gunicorn access lines without client IPs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from store import logs
from store.config import Settings, load_settings


def record(name: str, msg: str, args=None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    line = logs.JsonFormatter().format(
        record("outage.jobs", "shard %d done", (3,), shard=3, services=12)
    )
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "outage.jobs"
    assert doc["msg"] == "shard 3 done" and doc["shard"] == 3 and doc["services"] == 12
    assert doc["ts"].endswith("Z") and "\n" not in line


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("outage", "failed")
        rec.exc_info = sys.exc_info()
    doc = json.loads(logs.JsonFormatter().format(rec))
    assert "ValueError: boom" in doc["exc"]


def test_access_lines_become_fields_without_the_client_ip() -> None:
    atoms = {
        "h": "203.0.113.9",
        "m": "POST",
        "U": "/api/v1/reports",
        "s": "202",
        "B": 30,
        "L": "0.004100",
        "a": "curl/8",
        "r": "POST /api/v1/reports HTTP/1.1",
    }
    rec = record("gunicorn.access", logs.ACCESS_FORMAT, (atoms,))
    line = logs.JsonFormatter().format(rec)
    doc = json.loads(line)
    assert doc["status"] == 202 and doc["path"] == "/api/v1/reports"
    assert doc["duration_s"] == 0.0041 and doc["method"] == "POST"
    assert "203.0.113.9" not in line
    assert "%(h)s" not in logs.ACCESS_FORMAT


def test_configure_switches_styles(tmp_path: Path, capsys) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure(
            load_settings(
                {
                    "OUTAGE_DATA_DIR": str(tmp_path),
                    "OUTAGE_LOG_JSON": "1",
                    "OUTAGE_LOG_LEVEL": "warning",
                }
            )
        )
        logging.getLogger("outage.test").info("hidden")
        logging.getLogger("outage.test").warning("shown")
        err = capsys.readouterr().err.strip().splitlines()
        assert [json.loads(x)["msg"] for x in err] == ["shown"]
        logs.configure(Settings())
        logging.getLogger("outage.test").info("plain")
        assert "outage.test INFO plain" in capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_gunicorn_logconfig_is_valid_for_dictconfig() -> None:
    import logging.config

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for json_lines in (False, True):
            config = logs.gunicorn_logconfig(Settings(log_json=json_lines))
            assert config["loggers"]["gunicorn.access"]["propagate"] is False
            logging.config.dictConfig(config)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name in ("gunicorn.access", "gunicorn.error"):
            logging.getLogger(name).handlers.clear()
