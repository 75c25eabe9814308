"""Human pages: services, a service's live chart and maps, the outage map, incidents, API docs.

Pages read the same JSON the detection API serves (dispatched in-process through
`pagedata.api_get`), so a page never disagrees with the API. `/live/...` answers the data of a
page (figures and texts) with an ETag; static/app.js polls it and the series endpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import plotly
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    render_template,
    request,
    send_file,
    url_for,
)
from markupsafe import Markup, escape

from web import figures, maps, pagedata
from web.extensions import outage
from web.forms import report_form_for
from web.pagedata import LEVELS, api_get

bp = Blueprint("pages", __name__)
T = TypeVar("T")

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
"""plotly.js as bundled inside the plotly Python package: the version plotly.py was built for."""

PLOTLY_VERSION = version("plotly")

POLL_SERIES_MS = 5000
"""How often a chart asks the series endpoint for new minutes (If-None-Match keeps it cheap)."""

POLL_PAGE_MS = 15000
"""How often a page refreshes its maps, status and comments (one detection cycle)."""

SPARK_STEP = 15
"""Minutes per point of the sparklines on the service list."""

SUBDIVISION_COUNTRIES = 6
"""Countries (most reports first) whose states or regions a service map shows as bubbles."""

SHARED_DATA_SECONDS = 5.0
"""How long one process reuses the service list and the all-services map for every viewer
(both read every service; app.config["PAGES_CACHE_SECONDS"] overrides it)."""

LONG_CACHE = 365 * 86400
"""Seconds browsers keep the versioned plotly.js bundle."""


def init_app(app: Flask) -> None:
    """Register the template helpers the pages use."""
    app.add_template_filter(utc_time, "utc")
    app.add_template_filter(iso_time, "iso")
    app.add_template_global(plotly_url, "plotly_url")
    app.add_template_global(LEVELS, "LEVELS")
    app.add_template_global(maps.region_name, "region_name")
    app.add_template_filter(code_spans, "code_spans")


def _stamp(value) -> datetime | None:
    """Read epoch seconds or an ISO 8601 string as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def utc_time(value, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """Format a time for people, always in UTC (pages add local time on hover)."""
    stamp = _stamp(value)
    return stamp.strftime(fmt) if stamp else ""


def iso_time(value) -> str:
    """Format a time as ISO 8601 UTC for `<time datetime>`."""
    stamp = _stamp(value)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else ""


def code_spans(text: str) -> Markup:
    """Escape text and show its `backticked` parts as code (the OpenAPI descriptions use them)."""
    parts = str(escape(text or "")).split("`")
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)))


def plotly_url() -> str:
    """Return the URL of the bundled plotly.js, versioned so it can be cached for a year."""
    return url_for("pages.plotly_js", v=PLOTLY_VERSION)


@bp.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    """Serve plotly.js from the plotly package's own bundle (never a CDN)."""
    resp = send_file(PLOTLY_JS, mimetype="text/javascript", conditional=True, max_age=LONG_CACHE)
    resp.headers["Cache-Control"] = f"public, max-age={LONG_CACHE}, immutable"
    return resp


def shared(name: str, build: Callable[[], T]) -> T:
    """Return build(), reusing the result for a few seconds across requests of this app."""
    ttl = float(current_app.config.get("PAGES_CACHE_SECONDS", SHARED_DATA_SECONDS))
    now = time.monotonic()
    _shared = current_app.extensions.setdefault("pages_shared", {})
    hit = _shared.get(name)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    value = build()
    if not g.get("live_unavailable"):
        _shared[name] = (now, value)
    return value


def _json_with_etag(body: dict) -> Response:
    """Answer a page's live data, or 304 when the client already has it."""
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True)
    etag = hashlib.sha1(raw.encode()).hexdigest()[:20]
    if etag in request.if_none_match:
        resp = Response(status=304)
    else:
        resp = Response(raw, mimetype="application/json")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


# ------------------------------------------------------------------------------ index
def index_data(query: str = "") -> dict:
    """Every service with its level and a 24-hour sparkline, active problems first."""
    rows = [dict(r) for r in shared("index", service_rows)]
    q = query.strip().lower()
    for row in rows:
        haystack = f"{row['name']} {row['slug']} {row['category']}".lower()
        row["hidden"] = bool(q) and q not in haystack
    return {
        "services": rows,
        "query": query,
        "active": sum(1 for r in rows if LEVELS[r["level"]]["rank"] >= 2),
    }


def service_rows() -> list[dict]:
    """Every service's level, sparkline and reports in the last hour, problems first."""
    catalog = outage().catalog
    listed = api_get("/api/v1/services") or {}
    state = {
        s.get("slug"): pagedata.parse_status(s)
        for s in listed.get("services", [])
        if isinstance(s, dict)
    }
    rows = []
    for order, svc in enumerate(catalog.services):
        status = state.get(svc.slug) or pagedata.parse_status({})
        series = pagedata.parse_series(
            api_get(f"/api/v1/services/{svc.slug}/series", hours=24, step=SPARK_STEP)
        )
        hour = 60 // SPARK_STEP
        rows.append(
            {
                "slug": svc.slug,
                "name": svc.name,
                "category": svc.category_name,
                "level": status["level"],
                "label": LEVELS[status["level"]]["label"],
                "order": order,
                "reports_hour": round(sum(series.reports[-hour:])),
                "sparkline": (
                    figures.sparkline(series, status["level"], minutes=SPARK_STEP)
                    if series.times
                    else None
                ),
            }
        )
    rows.sort(key=lambda r: (-LEVELS[r["level"]]["rank"], r["order"]))
    return rows


@bp.get("/")
def index():
    data = index_data(request.args.get("q", "")[:100])
    return render_template("index.html", live_url=url_for("pages.live_index"), **data)


@bp.get("/live/index.json")
def live_index():
    data = index_data()
    return _json_with_etag(
        {
            "figures": {
                f"spark-{r['slug']}": r["sparkline"] for r in data["services"] if r["sparkline"]
            },
            "badges": {
                f"badge-{r['slug']}": {"level": r["level"], "label": r["label"]}
                for r in data["services"]
            },
            "texts": {f"count-{r['slug']}": str(r["reports_hour"]) for r in data["services"]},
        }
    )


# ---------------------------------------------------------------------------- service
def status_sentence(name: str, status: dict) -> str:
    """Say the current status in words, e.g. 'User reports indicate problems at X since ...'."""
    level = status["level"]
    if level == "unknown":
        return f"No reports about {name} have been analysed yet."
    if level == "ok":
        if status["learning"]:
            return f"No problems detected at {name}; we are still learning what is normal for it."
        return f"User reports indicate no current problems at {name}."
    what = {"possible": "possible problems", "problems": "problems", "outage": "an outage"}[level]
    since = utc_time(status["since"], "%H:%M UTC") if status["since"] else ""
    return f"User reports indicate {what} at {name}" + (f" since {since}." if since else ".")


def region_maps(slug: str) -> tuple[list[maps.RegionRow], list[maps.RegionRow], int]:
    """Countries of a service, plus the states or regions of its busiest countries."""
    body = api_get(f"/api/v1/services/{slug}/map", level="country") or {}
    countries = pagedata.parse_regions(body)
    busiest = sorted((r for r in countries if r.observed > 0), key=lambda r: -r.observed)
    subs: list[maps.RegionRow] = []
    for country in busiest[:SUBDIVISION_COUNTRIES]:
        body_sub = api_get(f"/api/v1/services/{slug}/map", level=country.region)
        subs.extend(r for r in pagedata.parse_regions(body_sub) if "-" in r.region)
    return countries, subs, int(body.get("window_minutes") or 15)


def _by_ratio(rows: list[maps.RegionRow]) -> list[maps.RegionRow]:
    return sorted(rows, key=lambda r: (-(r.effective_ratio or 0.0), -r.observed, r.region))


def service_data(slug: str) -> dict:
    """Everything the service page shows: status, chart, table, maps, problems, comments."""
    svc = outage().catalog.get(slug)
    if svc is None:
        abort(404, f"There is no service called {slug!r}.")
    status = pagedata.parse_status(api_get(f"/api/v1/services/{slug}"))
    series = pagedata.parse_series(api_get(f"/api/v1/services/{slug}/series", hours=24))
    incidents = api_get("/api/v1/incidents", service=slug, since=_day_ago())
    countries, subs, window = region_maps(slug)
    states = [r for r in subs if r.region.startswith("US-")]
    labels = {p.slug: p.label for p in svc.problems}
    problems = pagedata.problem_rows(status, labels)
    return {
        "service": svc,
        "status": status,
        "sentence": status_sentence(svc.name, status),
        "label": LEVELS[status["level"]]["label"],
        "reports_15": round(sum(series.reports[-15:])),
        "reports_hour": round(sum(series.reports[-60:])),
        "chart": figures.service_chart(series, pagedata.service_spans(incidents)),
        "has_series": bool(series.times),
        "table": figures.table_rows(series) if series.times else [],
        "world": maps.world_map(countries + subs, window_minutes=window),
        "us": maps.us_map(states, window_minutes=window) if states else None,
        "window": window,
        "problems": maps.problem_mix(problems) if problems else None,
        "problem_rows": problems,
        "regions": _by_ratio(countries + subs)[:12],
        "comments": pagedata.comments(slug, labels),
        "series_url": f"/api/v1/services/{slug}/series?hours=24",
    }


def _day_ago() -> str:
    now = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(now - 86400, UTC).strftime("%Y-%m-%dT%H:%M:00Z")


@bp.get("/s/<slug>")
def service(slug: str):
    data = service_data(slug)
    return render_template(
        "service.html",
        form=report_form_for(data["service"]),
        live_url=url_for("pages.live_service", slug=slug),
        poll_series_ms=POLL_SERIES_MS,
        poll_page_ms=POLL_PAGE_MS,
        **data,
    )


@bp.get("/live/s/<slug>.json")
def live_service(slug: str):
    data = service_data(slug)
    figs = {"chart": data["chart"], "map-world": data["world"]}
    if data["us"]:
        figs["map-us"] = data["us"]
    if data["problems"]:
        figs["problems"] = data["problems"]
    return _json_with_etag(
        {
            "figures": figs,
            "texts": {
                "status-sentence": data["sentence"],
                "count-15": str(data["reports_15"]),
                "count-hour": str(data["reports_hour"]),
            },
            "badges": {"status-badge": {"level": data["status"]["level"], "label": data["label"]}},
            "table": data["table"][:96],
            "comments": [
                {
                    "time": utc_time(c["time"]),
                    "iso": iso_time(c["time"]),
                    "text": c["text"],
                    "meta": c["meta"],
                }
                for c in data["comments"]
            ],
            "series_url": data["series_url"],
        }
    )


# -------------------------------------------------------------------------------- map
def map_data() -> dict:
    """Reports per region summed over every service (shared for a few seconds)."""
    return shared("map", all_regions)


def all_regions() -> dict:
    """Reports per region summed over every service, with the most affected service."""
    totals: dict[str, dict] = {}
    window = 15
    for svc in outage().catalog.services:
        countries, subs, window = region_maps(svc.slug)
        for row in countries + subs:
            acc = totals.setdefault(
                row.region, {"observed": 0.0, "expected": None, "worst": "", "worst_ratio": 0.0}
            )
            acc["observed"] += row.observed
            if row.expected is not None:
                acc["expected"] = (acc["expected"] or 0.0) + row.expected
            if row.observed > 0 and (row.effective_ratio or 0.0) > acc["worst_ratio"]:
                acc["worst"], acc["worst_ratio"] = svc.name, row.effective_ratio
    rows = [
        maps.RegionRow(code, v["observed"], v["expected"], extra={"worst": v["worst"]})
        for code, v in totals.items()
    ]
    states = [r for r in rows if r.region.startswith("US-")]
    return {
        "world": maps.world_map(rows, window_minutes=window),
        "us": maps.us_map(states, window_minutes=window),
        "window": window,
        "has_map": bool(rows),
        "regions": _by_ratio(rows)[:25],
    }


@bp.get("/map")
def map_page():
    return render_template(
        "map.html", live_url=url_for("pages.live_map"), poll_page_ms=POLL_PAGE_MS, **map_data()
    )


@bp.get("/live/map.json")
def live_map():
    data = map_data()
    return _json_with_etag({"figures": {"map-world": data["world"], "map-us": data["us"]}})


# -------------------------------------------------------------------------- incidents
@bp.get("/incidents")
def incidents_page():
    catalog = outage().catalog
    service = request.args.get("service", "")
    service = service if catalog.get(service) else ""
    active = request.args.get("active", "")
    active = active if active in ("true", "false") else ""
    since = request.args.get("since", "")[:10]
    seconds = pagedata.since_seconds(since)
    if seconds is None:
        since = ""
    query = {
        "service": service or None,
        "active": active or None,
        "since": iso_time(seconds) if seconds is not None else None,
    }
    rows = pagedata.incident_rows(api_get("/api/v1/incidents", **query) or {}, catalog)
    return render_template(
        "incidents.html",
        rows=rows,
        services=catalog.services,
        chosen={"service": service, "active": active, "since": since},
    )


# -------------------------------------------------------------------------------- api
@bp.get("/api")
def api_page():
    spec = api_get("/api/v1/openapi.json")
    ops, info = pagedata.openapi_operations(spec)
    return render_template("api.html", operations=ops, info=info, base=request.host_url.rstrip("/"))
