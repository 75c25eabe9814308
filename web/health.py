"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint

from web.errors import error_response
from web.extensions import outage

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Redis is reachable, so the app can take reports."""
    try:
        outage().redis.ping()
    except Exception as exc:  # any failure to reach Redis means "not ready"
        return error_response(
            503,
            f"Redis unreachable: {type(exc).__name__}",
            "unavailable",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready"}
