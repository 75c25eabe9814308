"""What the pages read: the detection API's JSON, fetched in-process, turned into figure rows.

Every reader tolerates missing data (an endpoint not deployed, a service with no reports
yet, Redis down) by returning an empty result, so a page always renders; when Redis is
unreachable `g.live_unavailable` is set once and later reads are skipped instead of each
waiting for its own timeout.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from flask import current_app, g, request
from werkzeug.exceptions import HTTPException

from store import keys
from store.catalog import Catalog
from store.connections import NoRedisConfigured
from web import figures, maps
from web.errors import ApiError
from web.extensions import outage

log = logging.getLogger("outage.web.pages")

LEVELS: dict[str, dict[str, Any]] = {
    "unknown": {"rank": 0, "label": "No data"},
    "ok": {"rank": 1, "label": "No problems"},
    "possible": {"rank": 2, "label": "Possible problems"},
    "problems": {"rank": 3, "label": "Problems"},
    "outage": {"rank": 4, "label": "Outage"},
}
"""Status levels, from least to most severe, with the words a badge shows."""

COMMENTS_SHOWN = 20
"""Recent comments on a service page."""


def api_get(path: str, **query: Any) -> dict | None:
    """GET one of our own API endpoints in-process and return its JSON, or None.

    None means: no such endpoint (yet), a 4xx, live data unavailable, or an error in the
    endpoint (logged): the page then shows that part empty instead of failing as a whole.
    """
    if g.get("live_unavailable"):
        return None
    app = current_app._get_current_object()
    try:
        endpoint, args = app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return None
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    remote = request.remote_addr if request else None
    with app.test_request_context(
        path, query_string=params, environ_base={"REMOTE_ADDR": remote or "127.0.0.1"}
    ):
        try:
            resp = app.make_response(app.view_functions[endpoint](**args))
        except (ApiError, HTTPException):
            return None
        except (redis.RedisError, NoRedisConfigured) as exc:
            log.warning("live data unavailable for the pages: %s", exc)
            g.live_unavailable = True
            return None
        except Exception:  # one broken endpoint must not take the whole page down
            log.exception("page data from %s failed", path)
            return None
    if resp.status_code != 200:
        return None
    body = resp.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _num(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def to_epoch(value: Any) -> int | None:
    """Read epoch seconds, milliseconds, minutes or an ISO 8601 string as epoch seconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        v = float(value)
        if v > 1e11:  # milliseconds
            return int(v // 1000)
        if v < 1e8:  # epoch minutes
            return int(v * 60)
        return int(v)
    try:
        stamp = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


def parse_series(body: Mapping | None) -> figures.Series:
    """Turn the series endpoint's JSON (timestamps, reports, expected, upper) into a Series."""
    times = (body or {}).get("timestamps")
    if not isinstance(times, list) or not times:
        return figures.Series(times=(), reports=())
    epochs = [to_epoch(t) for t in times]
    keep = [i for i, t in enumerate(epochs) if t is not None]

    def column(name: str) -> list[float]:
        values = body.get(name)
        if not isinstance(values, list) or len(values) != len(times):
            return []
        out = [_num(values[i], math.nan) for i in keep]
        return out if any(math.isfinite(v) for v in out) else []

    return figures.Series(
        times=[epochs[i] for i in keep],
        reports=column("reports") or [0.0] * len(keep),
        baseline=column("expected"),
        upper=column("upper"),
    )


def parse_status(body: Mapping | None) -> dict:
    """Pick the level, onset and evidence out of a service (`status` object inside)."""
    inner = (body or {}).get("status")
    inner = inner if isinstance(inner, dict) else {}
    level = inner.get("level")
    level = level if level in LEVELS else "unknown"
    incident = inner.get("incident") if isinstance(inner.get("incident"), dict) else {}
    learning = inner.get("baseline") in (None, "insufficient_history")
    return {
        "level": level,
        "learning": learning,
        "since": incident.get("started_at"),
        "observed": None if inner.get("observed") is None else _num(inner["observed"]),
        "expected": None if inner.get("expected") is None else _num(inner["expected"]),
        "window": int(_num(inner.get("window_minutes"), 15)) or 15,
        "p_value": inner.get("p_value"),
        "affected": [str(r) for r in inner.get("affected_regions") or []],
        "problems": [p for p in inner.get("top_problems") or [] if isinstance(p, dict)],
        "updated_at": inner.get("updated_at"),
    }


def parse_regions(body: Mapping | None) -> list[maps.RegionRow]:
    """Turn the map endpoint's JSON into map rows (observed and expected over its window)."""
    raw = (body or {}).get("regions")
    rows = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("region"), str):
            continue
        expected, ratio = item.get("expected"), item.get("ratio")
        rows.append(
            maps.RegionRow(
                region=item["region"].upper(),
                observed=_num(item.get("observed")),
                expected=None if expected is None else _num(expected),
                ratio=None if ratio is None else _num(ratio, math.nan),
            )
        )
    return [r for r in rows if r.region != "*"]


def problem_rows(status: Mapping, labels: Mapping[str, str]) -> list[maps.ProblemRow]:
    """Problem shares now and normally, from the status's `top_problems`."""
    rows = []
    for item in status.get("problems") or []:
        slug = item.get("problem")
        if isinstance(slug, str) and _num(item.get("observed")) > 0:
            rows.append(
                maps.ProblemRow(
                    slug,
                    labels.get(slug, slug),
                    _num(item.get("share")),
                    _num(item.get("normal_share")),
                )
            )
    return rows


def _incidents(body: Mapping | None) -> list[dict]:
    items = (body or {}).get("incidents")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def service_spans(body: Mapping | None) -> list[figures.Span]:
    """Incident spans for a service chart."""
    spans = []
    for inc in _incidents(body):
        start = to_epoch(inc.get("started_at"))
        if start is None:
            continue
        severity = str(inc.get("severity") or "problems")
        spans.append(
            figures.Span(
                start=start,
                end=to_epoch(inc.get("ended_at")),
                severity=severity,
                label=LEVELS.get(severity, {}).get("label", severity),
            )
        )
    return spans


def incident_rows(body: Mapping | None, catalog: Catalog) -> list[dict]:
    """Rows of the incidents table."""
    rows = []
    for inc in _incidents(body):
        slug = str(inc.get("service") or "")
        svc = catalog.get(slug)
        start, end = to_epoch(inc.get("started_at")), to_epoch(inc.get("ended_at"))
        minutes = None
        if start is not None:
            minutes = ((end or int(datetime.now(UTC).timestamp())) - start) // 60
        severity = str(inc.get("severity") or "")
        rows.append(
            {
                "service": slug,
                "name": svc.name if svc else slug,
                "severity": severity,
                "severity_label": LEVELS.get(severity, {}).get("label", severity),
                "open": inc.get("ended_at") is None,
                "started_at": inc.get("started_at"),
                "detected_at": inc.get("detected_at"),
                "ended_at": inc.get("ended_at"),
                "minutes": minutes,
                "peak": _num(inc.get("peak_per_min")),
                "expected": _num(inc.get("expected_per_min")),
                "regions": [str(r) for r in (inc.get("regions") or [])][:6],
                "problems": [str(p) for p in (inc.get("problems") or [])][:4],
            }
        )
    return rows


def comments(slug: str, labels: Mapping[str, str], n: int = COMMENTS_SHOWN) -> list[dict]:
    """Recent comments of a service, newest first, as plain text (templates escape them)."""
    if g.get("live_unavailable"):
        return []
    try:
        raw = outage().redis.lrange(keys.comments(slug), 0, n - 1)
    except (redis.RedisError, NoRedisConfigured) as exc:
        log.warning("comments unavailable: %s", exc)
        g.live_unavailable = True
        return []
    out = []
    for item in raw:
        try:
            doc = json.loads(item)
        except (TypeError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            continue
        region = str(doc.get("region") or "*")
        where = maps.region_name(region) if region != "*" else ""
        problem = labels.get(str(doc.get("problem")), str(doc.get("problem") or ""))
        out.append(
            {
                "time": to_epoch(doc.get("at")),
                "text": doc["text"],
                "meta": " · ".join(x for x in (problem, where) if x),
            }
        )
    return out


def since_seconds(text: str) -> int | None:
    """Read a YYYY-MM-DD filter as epoch seconds at 00:00 UTC."""
    try:
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError:
        return None


def openapi_operations(spec: Mapping | None) -> tuple[list[dict], dict]:
    """Flatten an OpenAPI document into operations for the API docs page."""
    if not spec:
        return [], {}
    ops = []
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in ("get", "post", "put", "patch", "delete"):
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            params = [p for p in shared + (op.get("parameters") or []) if isinstance(p, dict)]
            responses = op.get("responses") or {}
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary") or "",
                    "description": op.get("description") or "",
                    "params": [
                        {
                            "name": p.get("name", ""),
                            "in": p.get("in", ""),
                            "required": bool(p.get("required")),
                            "description": p.get("description") or "",
                            "type": (p.get("schema") or {}).get("type", ""),
                        }
                        for p in params
                    ],
                    "has_body": "requestBody" in op,
                    "responses": [
                        {"code": str(code), "description": (r or {}).get("description", "")}
                        for code, r in responses.items()
                        if isinstance(r, dict | None)
                    ],
                    "anchor": f"{method}-{path}".strip("/")
                    .replace("/", "-")
                    .replace("{", "")
                    .replace("}", "")
                    .replace("<", "")
                    .replace(">", ""),
                }
            )
    return ops, dict(spec.get("info") or {})
