"""The detection API: chart series, region maps, incidents, webhook deliveries, OpenAPI.

Every successful GET under /api/ carries an ETag (a hash of the body) and answers 304 to a
matching If-None-Match; views choose their Cache-Control with `cache_for`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, overload

from flask import Blueprint, Flask, Response, current_app, request

from detector import clock
from detector.regions import validate_region
from store import incidents, keys, webhooks
from store.catalog import SLUG
from store.detectors import detector_params
from web import queries
from web.errors import ApiError
from web.extensions import outage

bp = Blueprint("detection_api", __name__, url_prefix="/api/v1")

MAX_HOURS = 168
"""Longest chart window, hours (also limited by OUTAGE_RETENTION_DAYS)."""

STEPS = queries.STEPS

MAX_LIMIT = 1000
"""Most incidents or deliveries returned by one request."""

COUNTRY = re.compile(r"^[A-Z]{2}$")


def cache_for(seconds: int, public: bool = True) -> Callable:
    """Give a view's successful responses `Cache-Control: public, max-age=<seconds>`."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any):
            resp = current_app.make_response(view(*args, **kwargs))
            scope = "public" if public else "private"
            resp.headers["Cache-Control"] = f"{scope}, max-age={seconds}"
            return resp

        return inner

    return wrap


def init_app(app: Flask) -> None:
    @app.after_request
    def _etag(resp: Response) -> Response:
        if (
            request.method in ("GET", "HEAD")
            and request.path.startswith("/api/")
            and resp.status_code == 200
            and not resp.is_streamed
        ):
            resp.headers.setdefault("Cache-Control", "no-cache")
            resp.set_etag(hashlib.sha256(resp.get_data()).hexdigest()[:32])
            resp.make_conditional(request)
        return resp


# ------------------------------------------------------------------------------ params
def known_service(slug: str) -> dict[str, Any]:
    """Return the catalog entry of a service (or a bare one for data-only services); 404."""
    ext = outage()
    svc = ext.catalog.get(slug)
    if svc is not None:
        return svc.to_dict()
    if SLUG.match(slug) and ext.redis.sismember(keys.ACTIVE_SERVICES, slug):
        return {"slug": slug, "name": slug, "category": None, "problems": [], "problem_labels": {}}
    raise ApiError(404, f"unknown service {slug[:80]!r}", field="service")


@overload
def int_param(name: str, default: int, low: int, high: int) -> int: ...
@overload
def int_param(name: str, default: None, low: int, high: int) -> int | None: ...
def int_param(name: str, default: int | None, low: int, high: int) -> int | None:
    """Parse an integer query parameter within [low, high]; 422 otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise ApiError(422, f"{name} must be a whole number", field=name)
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(422, f"{name} must be between {low} and {high}", field=name)
    return value


def bool_param(name: str) -> bool | None:
    """Parse 1/0/true/false/yes/no; None when absent; 422 otherwise."""
    raw = request.args.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("0", "false", "no"):
        return False
    raise ApiError(422, f"{name} must be 1 or 0", field=name)


def time_param(name: str) -> int | None:
    """Parse an ISO 8601 UTC time or unix seconds into unix seconds; 422 otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if re.fullmatch(r"[0-9]{1,12}", raw):
        return int(raw)
    try:
        from datetime import datetime

        text = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422,
            f"{name} must be an ISO 8601 time (2024-01-01T00:00:00Z) or unix seconds",
            field=name,
        ) from None
    if stamp.tzinfo is None:
        raise ApiError(422, f"{name} needs a time zone, e.g. a trailing Z", field=name)
    return int(stamp.timestamp())


def region_param(name: str = "region") -> str | None:
    """Parse an ISO 3166 region code ("*" or empty = everywhere); 422 otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw or raw == "*":
        return None
    try:
        if not raw.isascii():  # validate_region upper-cases: "ﬁ" would become "FI"
            raise ValueError(f"region must be an ASCII ISO 3166 code, got {raw[:16]!r}")
        return validate_region(raw[:16])
    except ValueError as exc:
        raise ApiError(422, str(exc), field=name) from None


def problem_param(svc: dict[str, Any]) -> str | None:
    """Parse a problem slug of the service ("*" or empty = all problems); 422 otherwise."""
    raw = request.args.get("problem", "").strip()
    if not raw or raw == "*":
        return None
    if not SLUG.match(raw) or (svc["problems"] and raw not in svc["problems"]):
        raise ApiError(422, f"unknown problem {raw[:40]!r} for {svc['slug']}", field="problem")
    return raw


def last_complete_minute() -> int:
    """The last minute detection reads too (after OUTAGE_DETECT_GRACE), so a chart's last
    point is never a minute whose reports are still arriving."""
    return clock.last_complete_minute(time.time(), outage().settings.detect_grace)


# ------------------------------------------------------------------------------- views
@bp.get("/services/<slug>/series")
@cache_for(5)
def service_series(slug: str):
    """Per-minute (or per-step) counted reports of a scope with its baseline and upper band."""
    svc = known_service(slug)
    retention_hours = outage().settings.retention_days * 24
    hours = int_param("hours", 24, 1, MAX_HOURS)
    region = region_param()
    problem = problem_param(svc)
    step = int_param("step", None, 1, 60)
    if step is None:
        step = 1 if hours <= 24 else 15
    if step not in STEPS:
        raise ApiError(422, f"step must be one of {', '.join(map(str, STEPS))}", field="step")
    hours = min(hours, retention_hours)
    start, end = queries.series_window(hours, step, last_complete_minute())
    body = queries.series(
        outage().redis, slug, region, problem, start, end, step, detector_params(outage().settings)
    )
    body["hours"] = hours
    return body


@bp.get("/services/<slug>/map")
@cache_for(5)
def service_map(slug: str):
    """Observed (last 15 minutes), expected and ratio per country or per subdivision."""
    known_service(slug)
    level = request.args.get("level", "country").strip() or "country"
    if level != "country":
        ascii_only = level.isascii()  # before upper(): "ﬁ".upper() is "FI"
        level = level.upper()
        try:
            if not ascii_only or not COUNTRY.match(level):
                raise ValueError
            validate_region(level)
        except ValueError:
            raise ApiError(
                422,
                "level must be 'country' or an ISO 3166-1 alpha-2 code such as US",
                field="level",
            ) from None
    return queries.region_map(
        outage().redis, slug, level, last_complete_minute(), detector_params(outage().settings)
    )


@bp.get("/incidents")
@cache_for(5)
def incident_list():
    """Incidents newest first, as in `outage replay` output plus id, status and evidence."""
    active = bool_param("active")
    since = time_param("since")
    limit = int_param("limit", 100, 1, MAX_LIMIT)
    service = request.args.get("service", "").strip() or None
    if service is not None:
        known_service(service)
    found = incidents.query(
        outage().redis, active=active, service=service, since_seconds=since, limit=limit
    )
    return {"incidents": found, "count": len(found)}


@bp.get("/webhooks/deliveries")
@cache_for(0, public=False)
def webhook_deliveries():
    """Recent webhook delivery attempts, newest first (receiver URLs without secrets)."""
    limit = int_param("limit", 100, 1, MAX_LIMIT)
    service = request.args.get("service", "").strip() or None
    incident = request.args.get("incident", "").strip() or None
    found = webhooks.recent(outage().redis, limit=limit, service=service, incident=incident)
    subs = [
        {
            "id": webhooks.subscription_id(s["url"]),
            "url": webhooks.public_url(s["url"]),
            "services": s["services"],
        }
        for s in outage().settings.webhooks
    ]
    return {"subscriptions": subs, "deliveries": found, "count": len(found)}


@bp.get("/openapi.json")
@cache_for(300)
def openapi_document():
    """The OpenAPI 3.1 description of this API."""
    from web.openapi import document

    return document()
