"""Logging set-up shared by every role: plain lines, or JSON lines with OUTAGE_LOG_JSON=1.

A JSON line holds `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, `pid`, any `extra=`
fields of the call, and `exc` for exceptions; gunicorn's access lines become `method`,
`path`, `status`, `bytes`, `duration_s`, `user_agent`. Client IPs are never logged: the
product promises not to keep them, and behind a proxy they would be the proxy's anyway.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from store.config import ConfigError, Settings, load_settings

TEXT_FORMAT = "%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"
"""Line format when JSON is off."""

ACCESS_FORMAT = '"%(r)s" %(s)s %(b)s %(L)ss "%(a)s"'
"""gunicorn access line in text mode (no %(h)s: no client IP)."""

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            doc.update(_access_fields(record.args))
        else:
            doc["msg"] = record.getMessage()
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def _access_fields(atoms: Mapping) -> dict[str, Any]:
    def get(key: str) -> Any:
        try:
            return atoms[key]
        except KeyError:
            return None

    status = str(get("s") or "")
    duration = get("L")
    return {
        "msg": "request",
        "method": get("m"),
        "path": get("U"),
        "status": int(status) if status.isdigit() else status,
        "bytes": get("B"),
        "duration_s": float(duration) if duration else None,
        "user_agent": get("a"),
    }


def formatter(json_lines: bool) -> logging.Formatter:
    """Return the formatter for the chosen style."""
    return JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)


def configure(settings: Settings | None = None) -> None:
    """Send every log record of this process to stderr in the configured style and level."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError:  # the command reports the bad value itself; log plainly meanwhile
            settings = Settings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings.log_json))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def gunicorn_logconfig(settings: Settings) -> dict[str, Any]:
    """Return gunicorn's `logconfig_dict`: app, error and access logs in one style."""
    if settings.log_json:
        fmt: dict[str, Any] = {"()": "store.logs.JsonFormatter"}
    else:
        fmt = {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "outage": fmt,
            "access": {"format": "%(message)s"} if not settings.log_json else fmt,
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "outage",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": settings.log_level,
                "handlers": ["stderr"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["access"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
    }
