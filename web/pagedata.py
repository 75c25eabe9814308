"""What the pages read: the same query functions the API views call, turned into figure rows.

Pages never go through the API's views or its JSON: they call web/queries.py (and
store/incidents.py) directly, with epoch times throughout. Every reader tolerates missing
data (a service with no reports yet, Redis down) by returning an empty result, so a page
always renders; when Redis is unreachable `g.live_unavailable` is set once and later reads
are skipped instead of each waiting for its own timeout.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
from flask import g

from detector import clock
from detector.clock import iso_to_minute
from store import incidents, keys
from store.catalog import Catalog
from store.connections import NoRedisConfigured
from store.detectors import detector_params
from web import figures, maps, queries
from web.extensions import outage

log = logging.getLogger("outage.web.pages")
T = TypeVar("T")
D = TypeVar("D")

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


def guarded(read: Callable[[], T], default: D) -> T | D:
    """Run one Redis read for a page; on a Redis failure note it once and return default."""
    if g.get("live_unavailable"):
        return default
    try:
        return read()
    except (redis.RedisError, NoRedisConfigured) as exc:
        log.warning("live data unavailable for the pages: %s", exc)
        g.live_unavailable = True
        return default


def _num(value: Any, default: float = 0.0) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def to_epoch(value: Any) -> int | None:
    """Read a stored ISO 8601 UTC minute (incidents, comments) as epoch seconds, or None."""
    if not isinstance(value, str):
        return None
    try:
        return iso_to_minute(value) * 60
    except ValueError:
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(stamp.timestamp()) if stamp.tzinfo else None


def statuses(slugs: list[str]) -> dict[str, dict]:
    """Read the stored status of each service, parsed for the pages."""
    found = guarded(lambda: queries.statuses(outage().redis, slugs), None)
    if found is None:  # Redis unreachable: say nothing rather than "no problems"
        return {slug: parse_status(None) for slug in slugs}
    return {slug: parse_status(found.get(slug) or queries.empty_status()) for slug in slugs}


@dataclass(frozen=True)
class Chart:
    """A chart's series with its bucket width and the running (partial) bucket."""

    series: figures.Series
    step: int
    current: tuple[int, float] | None = None
    """(epoch seconds at which the running bucket starts, counted reports so far)."""


def last_minute() -> int:
    """The last complete minute, as detection and the API's series read it (after the
    grace for late reports)."""
    return clock.last_complete_minute(time.time(), outage().settings.detect_grace)


def chart_series(slug: str, hours: int, step: int, *, after: int | None = None) -> Chart:
    """Read a service's chart: whole `step`-minute buckets over `hours` up to the last
    complete minute, plus the running bucket (it includes the current minute). `after`
    (epoch seconds) keeps only buckets starting at or after it (live updates)."""
    ext = outage()
    last = last_minute()
    start, end = queries.series_window(hours, step, last)
    if after is not None:
        start = max(start, after // 60 - (after // 60) % step)

    def read() -> Chart:
        params = detector_params(ext.settings)
        data = queries.series_data(ext.redis, slug, None, None, start, end, step, params)
        now = int(time.time() // 60)  # the running bucket includes the minute still going
        running = queries.current_counted(ext.redis, slug, None, None, end + 1, max(now, end + 1))
        return Chart(
            figures.Series(
                times=[int(m) * 60 for m in data.minutes],
                reports=data.counted.tolist(),
                baseline=[] if data.expected is None else data.expected.tolist(),
                upper=[] if data.upper is None else data.upper.tolist(),
            ),
            step,
            ((end + 1) * 60, running),
        )

    return guarded(read, Chart(figures.Series(times=(), reports=()), step))


def region_rows(slug: str, level: str) -> tuple[list[maps.RegionRow], int]:
    """Read observed, expected and ratio per region of a level ("country" or "US")."""
    ext = outage()

    def read() -> dict:
        params = detector_params(ext.settings)
        return queries.region_map(ext.redis, slug, level, last_minute(), params)

    body = guarded(read, {})
    return parse_regions(body), int(body.get("window_minutes") or queries.MAP_WINDOW)


def incident_list(
    service: str | None = None,
    active: bool | None = None,
    since_seconds: int | None = None,
    limit: int = 100,
) -> list[dict]:
    """Read incidents newest first (the stored documents the API also serves)."""
    return guarded(
        lambda: incidents.query(
            outage().redis,
            active=active,
            service=service,
            since_seconds=since_seconds,
            limit=limit,
        ),
        [],
    )


def parse_status(doc: Mapping | None) -> dict:
    """Pick the level, onset and evidence out of a stored status document."""
    inner = doc if isinstance(doc, Mapping) else {}
    level = inner.get("level")
    level = level if level in LEVELS else "unknown"
    incident = inner.get("incident") if isinstance(inner.get("incident"), dict) else {}
    learning = inner.get("baseline") in (None, "insufficient_history")
    return {
        "level": level,
        "learning": learning,
        "since": to_epoch(incident.get("started_at")),
        "observed": None if inner.get("observed") is None else _num(inner["observed"]),
        "expected": None if inner.get("expected") is None else _num(inner["expected"]),
        "window": int(_num(inner.get("window_minutes"), 15)) or 15,
        "p_value": inner.get("p_value"),
        "affected": [str(r) for r in inner.get("affected_regions") or []],
        "problems": [p for p in inner.get("top_problems") or [] if isinstance(p, dict)],
        "updated_at": inner.get("updated_at"),
    }


def parse_regions(body: Mapping | None) -> list[maps.RegionRow]:
    """Turn a region map (queries.region_map) into map rows."""
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


def service_spans(found: list[dict]) -> list[figures.Span]:
    """Incident spans for a service chart."""
    spans = []
    for inc in found:
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


def incident_rows(found: list[dict], catalog: Catalog) -> list[dict]:
    """Rows of the incidents table, with service, problem and region names."""
    rows = []
    for inc in found:
        slug = str(inc.get("service") or "")
        svc = catalog.get(slug)
        labels = {p.slug: p.label for p in svc.problems} if svc else {}
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
                "regions": [maps.region_name(str(r)) for r in (inc.get("regions") or [])][:6],
                "problems": [labels.get(str(p), str(p)) for p in (inc.get("problems") or [])][:4],
            }
        )
    return rows


def comments(slug: str, labels: Mapping[str, str], n: int = COMMENTS_SHOWN) -> list[dict]:
    """Recent comments of a service, newest first, as plain text (templates escape them)."""
    raw = guarded(lambda: outage().redis.lrange(keys.comments(slug), 0, n - 1), [])
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
