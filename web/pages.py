"""Human pages: services, a service's live chart and maps, the outage map, incidents, API docs.

Pages read through the same query functions as the API views (`web/pagedata.py` over
`web/queries.py`), so a page never disagrees with the API. A page's data is sent once, in
the page; `/live/...` answers what changed since (figures and texts, with an ETag), and a
chart's live poll asks only for buckets after the last one it has.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

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
from werkzeug.exceptions import NotFound

from web import figures, maps, pagedata, queries
from web.errors import error_response, wants_json
from web.extensions import outage
from web.forms import report_form_for, subdivision_choices
from web.pagedata import LEVELS

bp = Blueprint("pages", __name__)
T = TypeVar("T")

PLOTLY_JS = Path(__file__).resolve().parent / "static" / "vendor" / "plotly.min.js"
"""Our partial plotly.js bundle (scatter, bar, choropleth, scattergeo): web/plotly_bundle."""


def _bundle_version() -> str:
    with PLOTLY_JS.open("rb") as f:
        found = re.search(rb"plotly\.js v([0-9][0-9A-Za-z.+-]*)", f.read(200))
    return found.group(1).decode() if found else "0"


PLOTLY_VERSION = _bundle_version()
"""The plotly.js version of the bundle (from its banner), which versions its URL."""

POLL_SERIES_MS = 5000
"""How often a chart asks for new buckets (If-None-Match keeps it cheap)."""

POLL_PAGE_MS = 15000
"""How often a page refreshes its maps, status and comments (one detection cycle)."""

RANGES = {6: 1, 24: 5, 168: 30}
"""Chart ranges a page offers, hours -> minutes per point (24 hours is the default)."""

DEFAULT_HOURS = 24

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
    """Register the template helpers the pages use and the site's 404 page."""
    app.add_template_filter(utc_time, "utc")
    app.add_template_filter(iso_time, "iso")
    app.add_template_global(plotly_url, "plotly_url")
    app.add_template_global(LEVELS, "LEVELS")
    app.add_template_global(maps.region_name, "region_name")
    app.add_template_filter(code_spans, "code_spans")
    app.add_template_filter(figure_hash, "figure_hash")
    app.register_error_handler(404, not_found)


def not_found(exc: NotFound):
    """Answer a 404 with the site's header and navigation (JSON for API clients)."""
    message = exc.description or "Not found"
    if wants_json():
        return error_response(404, message)
    if message == NotFound.description:
        message = "There is no page at this address."
    resp = Response(render_template("404.html", message=message), status=404)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _stamp(value) -> datetime | None:
    """Read epoch seconds or an ISO 8601 string as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    seconds = pagedata.to_epoch(str(value))
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


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
    """Serve our partial plotly.js bundle (never a CDN), cached for a year."""
    resp = send_file(PLOTLY_JS, mimetype="text/javascript", conditional=True, max_age=LONG_CACHE)
    resp.headers["Cache-Control"] = f"public, max-age={LONG_CACHE}, immutable"
    return resp


@bp.get("/regions/<country>.json")
def regions_json(country: str) -> Response:
    """The states or regions of a country for the report form (its script fills the list)."""
    code = country.upper() if re.fullmatch(r"[A-Za-z]{2}", country) else ""
    resp = Response(
        json.dumps({"country": code, "regions": subdivision_choices(code)}),
        mimetype="application/json",
    )
    resp.headers["Cache-Control"] = "public, max-age=86400"
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


def figure_hash(fig: dict | None) -> str:
    """A short hash of a figure: the page and its live poll name figures the client has."""
    raw = json.dumps(fig, separators=(",", ":"), sort_keys=True)
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def changed_figures(figs: dict[str, dict]) -> dict:
    """The live answer's figures, less those the client says it has (`?have=h1,h2`)."""
    have = set(request.args.get("have", "").split(","))
    hashes = {k: figure_hash(v) for k, v in figs.items()}
    return {"hashes": hashes, "figures": {k: v for k, v in figs.items() if hashes[k] not in have}}


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
    state = pagedata.statuses(catalog.slugs())
    rows = []
    for order, svc in enumerate(catalog.services):
        status = state[svc.slug]
        series = pagedata.chart_series(svc.slug, 24, SPARK_STEP).series
        rows.append(
            {
                "slug": svc.slug,
                "name": svc.name,
                "category": svc.category_name,
                "level": status["level"],
                "label": LEVELS[status["level"]]["label"],
                "order": order,
                "reports_hour": round(sum(series.reports[-60 // SPARK_STEP :])),
                "sparkline": Markup(figures.sparkline_svg(series, status["level"], SPARK_STEP))
                if series.times
                else None,
            }
        )
    rows.sort(key=lambda r: (-LEVELS[r["level"]]["rank"], r["order"]))
    return rows


@bp.get("/")
def index():
    data = index_data(request.args.get("q", "")[:100])
    return render_template(
        "index.html", live_url=url_for("pages.live_index"), poll_page_ms=POLL_PAGE_MS, **data
    )


@bp.get("/live/index.json")
def live_index():
    data = index_data()
    return _json_with_etag(
        {
            "svgs": {
                f"spark-{r['slug']}": str(r["sparkline"])
                for r in data["services"]
                if r["sparkline"]
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
    countries, window = pagedata.region_rows(slug, "country")
    busiest = sorted((r for r in countries if r.observed > 0), key=lambda r: -r.observed)
    subs: list[maps.RegionRow] = []
    for country in busiest[:SUBDIVISION_COUNTRIES]:
        rows, _ = pagedata.region_rows(slug, country.region)
        subs.extend(r for r in rows if "-" in r.region)
    return countries, subs, window


def _by_ratio(rows: list[maps.RegionRow]) -> list[maps.RegionRow]:
    return sorted(rows, key=lambda r: (-(r.effective_ratio or 0.0), -r.observed, r.region))


def chosen_hours() -> int:
    """The chart range a page was asked for (`?hours=`), else the default."""
    raw = request.args.get("hours", "")
    return int(raw) if raw.isdigit() and int(raw) in RANGES else DEFAULT_HOURS


def chart_figure(slug: str, hours: int) -> tuple[dict, pagedata.Chart]:
    """A service's chart figure over `hours` with its incident spans and running bucket."""
    chart = pagedata.chart_series(slug, hours, RANGES[hours])
    since = int(time.time()) - hours * 3600
    spans = pagedata.service_spans(pagedata.incident_list(service=slug, since_seconds=since))
    fig = figures.service_chart(chart.series, spans, step=chart.step, current=chart.current)
    return fig, chart


def others_with_problems(slug: str) -> list[dict]:
    """Other services with reported problems now, most severe first."""
    return [
        r
        for r in shared("index", service_rows)
        if r["slug"] != slug and LEVELS[r["level"]]["rank"] >= 2
    ][:8]


def service_data(slug: str, hours: int = DEFAULT_HOURS) -> dict:
    """Everything the service page shows: status, chart, table, maps, problems, comments."""
    svc = outage().catalog.get(slug)
    if svc is None:
        abort(404, f"There is no service called {slug!r}.")
    status = pagedata.statuses([slug])[slug]
    chart, data = chart_figure(slug, hours)
    series = data.series
    per_hour = 60 // data.step
    running = data.current[1] if data.current else 0.0
    countries, subs, window = region_maps(slug)
    states = [r for r in subs if r.region.startswith("US-")]
    labels = {p.slug: p.label for p in svc.problems}
    problems = pagedata.problem_rows(status, labels)
    return {
        "service": svc,
        "status": status,
        "sentence": status_sentence(svc.name, status),
        "label": LEVELS[status["level"]]["label"],
        "reports_hour": round(sum(series.reports[-per_hour:]) + running),
        "chart": chart,
        "hours": hours,
        "ranges": list(RANGES),
        "step": data.step,
        "has_series": bool(series.times),
        "table": figures.table_rows(series, max(15, data.step)) if series.times else [],
        "world": maps.world_map(countries + subs, window_minutes=window),
        "us": maps.us_map(states, window_minutes=window) if states else None,
        "window": window,
        "problems": maps.problem_mix(problems) if problems else None,
        "problem_rows": problems,
        "regions": _by_ratio(countries + subs)[:12],
        "comments": pagedata.comments(slug, labels),
        "others": others_with_problems(slug),
        "chart_url": url_for("pages.live_chart", slug=slug, hours=hours),
    }


@bp.get("/s/<slug>")
def service(slug: str):
    data = service_data(slug, chosen_hours())
    return render_template(
        "service.html",
        form=report_form_for(data["service"]),
        live_url=url_for("pages.live_service", slug=slug),
        poll_series_ms=POLL_SERIES_MS,
        poll_page_ms=POLL_PAGE_MS,
        **data,
    )


@bp.get("/s/<slug>/thanks")
def thanks(slug: str):
    """After a report (the form redirects here): what was counted, and the chart with the
    reporter's own report in the running bucket."""
    svc = outage().catalog.get(slug)
    if svc is None:
        abort(404, f"There is no service called {slug!r}.")
    labels = {p.slug: p.label for p in svc.problems}
    problem = request.args.get("problem", "")
    region = request.args.get("region", "")
    chart, _ = chart_figure(slug, DEFAULT_HOURS)
    resp = Response(
        render_template(
            "thanks.html",
            service=svc,
            duplicate=request.args.get("counted") == "0",
            problem_label=labels.get(problem, ""),
            region_name=maps.region_name(region)
            if re.fullmatch(r"[A-Z]{2}(-[A-Z0-9]{1,3})?", region)
            else "",
            dedup_minutes=max(1, outage().settings.dedup_seconds // 60),
            chart=chart,
            chart_url=url_for("pages.live_chart", slug=slug, hours=DEFAULT_HOURS),
            poll_series_ms=POLL_SERIES_MS,
        )
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/live/s/<slug>/chart.json")
def live_chart(slug: str):
    """The chart's buckets from `after` (epoch seconds) on, and the running bucket: what a
    chart needs to move forward without reloading its whole figure."""
    if outage().catalog.get(slug) is None:
        abort(404)
    hours = chosen_hours()
    raw_after = request.args.get("after", "")
    after = int(raw_after) if raw_after.isdigit() else None
    chart = pagedata.chart_series(slug, hours, RANGES[hours], after=after)
    first, _ = queries.series_window(hours, RANGES[hours], pagedata.last_minute())
    s = chart.series
    clean = figures.clean_values
    return _json_with_etag(
        {
            "x": [figures.utc_label(t) for t in s.times],
            "reports": clean(s.reports),
            "expected": clean(s.baseline) if s.baseline else None,
            "upper": clean(s.upper) if s.upper else None,
            "lower": clean(figures.lower_band(s)) if s.baseline and s.upper else None,
            "current": None
            if chart.current is None
            else {"x": figures.utc_label(chart.current[0]), "y": round(chart.current[1], 3)},
            "start": figures.utc_label(first * 60),
        }
    )


@bp.get("/live/s/<slug>.json")
def live_service(slug: str):
    data = service_data(slug)
    figs = {"map-world": data["world"]}
    if data["us"]:
        figs["map-us"] = data["us"]
    if data["problems"]:
        figs["problems"] = data["problems"]
    return _json_with_etag(
        {
            **changed_figures(figs),
            "texts": {
                "status-sentence": data["sentence"],
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
        }
    )


# -------------------------------------------------------------------------------- map
def map_data() -> dict:
    """Reports per region summed over every service (shared for a few seconds)."""
    return shared("map", all_regions)


def all_regions() -> dict:
    """Reports per region summed over every service. A region is coloured, and names a
    service "most affected", only for services with an incident now that are above normal
    there."""
    catalog = outage().catalog
    state = pagedata.statuses(catalog.slugs())
    totals: dict[str, dict] = {}
    window = 15
    for svc in catalog.services:
        troubled = LEVELS[state[svc.slug]["level"]]["rank"] >= 2
        countries, subs, window = region_maps(svc.slug)
        for row in countries + subs:
            acc = totals.setdefault(
                row.region, {"observed": 0.0, "expected": None, "worst": "", "worst_ratio": 1.0}
            )
            acc["observed"] += row.observed
            if row.expected is not None:
                acc["expected"] = (acc["expected"] or 0.0) + row.expected
            ratio = row.effective_ratio or 0.0
            if troubled and row.observed > 0 and ratio > acc["worst_ratio"]:
                acc["worst"], acc["worst_ratio"] = svc.name, ratio
    rows = [
        maps.RegionRow(
            code,
            v["observed"],
            v["expected"],
            extra={"worst": v["worst"]},
            colour_ratio=v["worst_ratio"] if v["worst"] else 0.0,
        )
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
    return _json_with_etag(changed_figures({"map-world": data["world"], "map-us": data["us"]}))


# -------------------------------------------------------------------------- incidents
def incidents_data() -> dict:
    """The incidents table under the filters of the query string."""
    catalog = outage().catalog
    service = request.args.get("service", "")
    service = service if catalog.get(service) else ""
    active = request.args.get("active", "")
    active = active if active in ("true", "false") else ""
    since = request.args.get("since", "")[:10]
    seconds = pagedata.since_seconds(since)
    if seconds is None:
        since = ""
    found = pagedata.incident_list(
        service=service or None,
        active=None if not active else active == "true",
        since_seconds=seconds,
    )
    return {
        "rows": pagedata.incident_rows(found, catalog),
        "services": catalog.services,
        "chosen": {"service": service, "active": active, "since": since},
    }


@bp.get("/incidents")
def incidents_page():
    return render_template(
        "incidents.html",
        live_url=url_for("pages.live_incidents", **request.args),
        poll_page_ms=POLL_PAGE_MS,
        **incidents_data(),
    )


@bp.get("/live/incidents.json")
def live_incidents():
    html = render_template("_incident_rows.html", **incidents_data())
    return _json_with_etag({"html": {"incident-rows": html}})


# -------------------------------------------------------------------------------- api
@bp.get("/api")
def api_page():
    from web.openapi import document

    ops, info = pagedata.openapi_operations(document())
    return render_template("api.html", operations=ops, info=info, base=request.host_url.rstrip("/"))
