"""Plotly figures as plain dicts: rows in, figure out. No Flask, no Redis, no I/O at call time.

The pages embed these dicts as JSON and plotly.js draws them; tests check them without a
browser (tests/web/test_figures.py) and the browser tests check that they really draw.
Times are UTC. A figure dict has `data`, `layout` and `config` (what `Plotly.newPlot` takes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pycountry

TOPOJSON_URL = "/static/topojson/"
"""Where plotly.js finds world_110m.json and usa_110m.json (never its CDN)."""

CENTROIDS = Path(__file__).parent / "static" / "topojson" / "centroids.json"
"""[lon, lat] of countries and common subdivisions, for bubbles at centroids."""

LEVEL_COLOURS = {"ok": "#1a7f37", "possible": "#9a6700", "problems": "#bc4c00",
                 "outage": "#cf222e", "unknown": "#57606a"}
"""Line colour per status level (each passes 4.5:1 contrast on white)."""

SPAN_FILLS = {"possible": "rgba(212, 167, 44, 0.18)", "problems": "rgba(219, 109, 40, 0.18)",
              "outage": "rgba(207, 34, 46, 0.16)"}
"""Shading of incident spans on the chart, by severity."""

REPORTS_COLOUR = "#0a58ca"
BASELINE_COLOUR = "#57606a"
BAND_FILL = "rgba(87, 96, 106, 0.16)"

RATIO_MAX_LOG2 = 5.0
"""Ratios are coloured on a log2 scale from 1x (0) to 32x and above (5)."""

RATIO_SCALE = [[0.0, "#fff4e5"], [0.2, "#fdd49e"], [0.4, "#fc8d59"], [0.6, "#e34a33"],
               [0.8, "#b30000"], [1.0, "#67000d"]]
"""Colour scale for reports-to-baseline ratios (light = normal, dark red = 32x)."""

FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13,
        "color": "#1b1f24"}

BASE_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"]}


@dataclass(frozen=True)
class Series:
    """Reports per minute with the baseline: parallel lists, times as epoch seconds (UTC)."""

    times: Sequence[int]
    reports: Sequence[float]
    baseline: Sequence[float] = ()
    upper: Sequence[float] = ()

    def __post_init__(self) -> None:
        n = len(self.times)
        for name in ("reports", "baseline", "upper"):
            values = getattr(self, name)
            if values and len(values) != n:
                raise ValueError(f"series.{name} has {len(values)} values for {n} times")


@dataclass(frozen=True)
class Span:
    """An incident on the chart: start and end in epoch seconds (end None while open)."""

    start: int
    end: int | None
    severity: str = "problems"
    label: str = ""


@dataclass(frozen=True)
class RegionRow:
    """One region on a map: reports observed and expected over the map's window.

    `expected` is None while the region has no baseline; `ratio` is observed/expected as the
    API computed it (None without a baseline).
    """

    region: str
    observed: float
    expected: float | None
    ratio: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_ratio(self) -> float | None:
        """Observed over expected (expected floored at 0.1, so 3 over 0 is 30, not inf)."""
        if self.ratio is not None and math.isfinite(self.ratio):
            return max(0.0, self.ratio)
        if self.expected is None:
            return None
        return self.observed / max(self.expected, 0.1)


@dataclass(frozen=True)
class ProblemRow:
    """One problem type's share of reports now and normally (0..1)."""

    slug: str
    label: str
    now: float
    normal: float


def utc_label(epoch_s: float) -> str:
    """Format epoch seconds as the naive 'YYYY-MM-DD HH:MM' UTC string plotly.js reads."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M")


def _clean(values: Iterable[float | None]) -> list[float | None]:
    """Turn NaN and infinities into None (JSON null: a gap in the line)."""
    return [None if v is None or not math.isfinite(v) else round(float(v), 3) for v in values]


def _config(**extra) -> dict:
    return {**BASE_CONFIG, **extra}


def service_chart(series: Series, spans: Sequence[Span] = (), *, now: int | None = None) -> dict:
    """Build the live chart: reports per minute, baseline with its upper band, incident spans.

    Each trace carries `meta.field`, the series field that feeds it, so the page can append
    fresh minutes from the series endpoint without rebuilding the figure.
    """
    x = [utc_label(t) for t in series.times]
    data: list[dict] = []
    if series.baseline:
        data.append({
            "type": "scatter", "mode": "lines", "name": "Expected (baseline)", "uid": "baseline",
            "x": x, "y": _clean(series.baseline), "meta": {"field": "expected"},
            "line": {"color": BASELINE_COLOUR, "width": 1.5, "dash": "dash"},
            "hovertemplate": "%{y:.1f} expected<extra></extra>",
        })
    if series.upper:
        data.append({
            "type": "scatter", "mode": "lines", "name": "Upper bound of normal", "uid": "upper",
            "x": x, "y": _clean(series.upper), "meta": {"field": "upper"},
            "line": {"color": "rgba(87, 96, 106, 0.5)", "width": 1},
            "fill": "tonexty" if series.baseline else "none", "fillcolor": BAND_FILL,
            "hovertemplate": "%{y:.1f} upper bound<extra></extra>",
        })
    data.append({
        "type": "scatter", "mode": "lines", "name": "Reports", "uid": "reports",
        "x": x, "y": _clean(series.reports), "meta": {"field": "reports"},
        "line": {"color": REPORTS_COLOUR, "width": 1.75},
        "hovertemplate": "<b>%{y:.0f} reports</b><extra></extra>",
    })
    first = series.times[0] if series.times else None
    last = series.times[-1] if series.times else now
    shapes, notes = [], []
    label_gap = 0.08 * (last - first) if first is not None and last is not None else 0
    labelled_at = None
    for span in sorted(spans, key=lambda sp: sp.start):
        x0 = span.start if first is None else max(span.start, first)
        x1 = span.end if span.end is not None else (now or last)
        if x1 is None or last is None:
            continue
        x1 = min(x1, last)
        if x1 < x0:
            continue  # entirely outside the chart's window
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "layer": "below",
                       "x0": utc_label(x0), "x1": utc_label(max(x1, x0 + 60)), "y0": 0,
                       "y1": 1, "fillcolor": SPAN_FILLS.get(span.severity, SPAN_FILLS["problems"]),
                       "line": {"width": 0}})
        if labelled_at is None or x0 - labelled_at >= label_gap:
            labelled_at = x0
            near_end = first is not None and x0 > last - label_gap  # keep the label inside
            notes.append({"xref": "x", "yref": "paper", "y": 1, "yanchor": "top",
                          "x": utc_label(x1 if near_end else x0),
                          "xanchor": "right" if near_end else "left", "showarrow": False,
                          "text": span.label or span.severity, "font": {"size": 11},
                          "bgcolor": "rgba(255, 255, 255, 0.75)"})
    layout = {
        "font": FONT, "height": 340, "margin": {"l": 48, "r": 12, "t": 36, "b": 44},
        "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "hovermode": "x unified", "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "xaxis": {"type": "date", "title": {"text": "Time (UTC)"}, "tickformat": "%H:%M",
                  "hoverformat": "%a %d %b %H:%M UTC", "gridcolor": "#eaeef2",
                  **({"range": [x[0], x[-1]]} if x else {})},
        "yaxis": {"title": {"text": "Reports per minute"}, "rangemode": "tozero",
                  "gridcolor": "#eaeef2", "fixedrange": True},
        "shapes": shapes, "annotations": notes,
    }
    return {"data": data, "layout": layout, "config": _config()}


def bucket(series: Series, minutes: int) -> Series:
    """Sum the series into `minutes`-wide buckets aligned to UTC (baseline and band summed)."""
    if minutes <= 0:
        raise ValueError("bucket width must be positive")
    width = minutes * 60
    order: list[int] = []
    sums: dict[int, list[float]] = {}
    for i, t in enumerate(series.times):
        start = int(t) // width * width
        if start not in sums:
            order.append(start)
            sums[start] = [0.0, 0.0, 0.0]
        acc = sums[start]
        for j, values in enumerate((series.reports, series.baseline, series.upper)):
            v = values[i] if values else None
            if v is not None and math.isfinite(v):
                acc[j] += float(v)
    return Series(times=order, reports=[sums[t][0] for t in order],
                  baseline=[sums[t][1] for t in order] if series.baseline else (),
                  upper=[sums[t][2] for t in order] if series.upper else ())


def table_rows(series: Series, minutes: int = 15) -> list[dict]:
    """Rows for the chart's table alternative, newest first: reports vs expected per bucket."""
    b = bucket(series, minutes)
    rows = []
    for i, t in enumerate(b.times):
        rows.append({"time": utc_label(t), "epoch": t, "reports": round(b.reports[i]),
                     "expected": round(b.baseline[i], 1) if b.baseline else None,
                     "upper": round(b.upper[i], 1) if b.upper else None})
    return rows[::-1]


def sparkline(series: Series, level: str = "ok", minutes: int = 15) -> dict:
    """Build a 24-hour sparkline: bucketed reports over a faint baseline, no axes."""
    b = bucket(series, minutes) if series.times else series
    x = [utc_label(t) for t in b.times]
    colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["unknown"])
    data = []
    if b.baseline:
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": _clean(b.baseline),
                     "line": {"color": "#afb8c1", "width": 1}, "hoverinfo": "skip",
                     "name": "expected"})
    data.append({"type": "scatter", "mode": "lines", "x": x, "y": _clean(b.reports),
                 "line": {"color": colour, "width": 2}, "fill": "tozeroy",
                 "fillcolor": _tint(colour), "hoverinfo": "skip", "name": "reports"})
    layout = {"height": 44, "margin": {"l": 0, "r": 0, "t": 2, "b": 2}, "showlegend": False,
              "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
              "xaxis": {"visible": False, "type": "date", "fixedrange": True},
              "yaxis": {"visible": False, "rangemode": "tozero", "fixedrange": True}}
    return {"data": data, "layout": layout, "config": _config(staticPlot=True)}


def _tint(hex_colour: str, alpha: float = 0.12) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def ratio_z(ratio: float | None) -> float:
    """Map a reports-to-baseline ratio to the colour axis: log2, clipped to [0, 5]."""
    if ratio is None or math.isnan(ratio) or ratio <= 1.0:
        return 0.0
    if math.isinf(ratio):
        return RATIO_MAX_LOG2
    return round(min(math.log2(ratio), RATIO_MAX_LOG2), 3)


COLORBAR = {"title": {"text": "Reports vs normal", "side": "top"},
            "tickvals": [0, 1, 2, 3, 4, 5], "ticktext": ["1x", "2x", "4x", "8x", "16x", "32x+"],
            "orientation": "h", "x": 0.5, "xanchor": "center", "y": 0, "yanchor": "top",
            "thickness": 10, "len": 0.6, "lenmode": "fraction", "outlinewidth": 0}
"""A horizontal colour key under the map, so the map keeps the full width on phones."""


@lru_cache(maxsize=1)
def centroids() -> dict:
    """Load the shipped table of country and subdivision centroids."""
    return json.loads(CENTROIDS.read_text())


def region_name(code: str) -> str:
    """Return the English name of an ISO 3166-1/-2 code, or the code itself."""
    if "-" in code:
        sub = pycountry.subdivisions.get(code=code)
        return sub.name if sub else code
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or (country.name if country else code)


@lru_cache(maxsize=512)
def alpha3(code: str) -> str | None:
    """Return the ISO 3166-1 alpha-3 code plotly's world map uses, or None."""
    country = pycountry.countries.get(alpha_2=code)
    return country.alpha_3 if country else None


def centroid(code: str) -> tuple[float, float] | None:
    """Return (lon, lat) of a subdivision, else of its country, else None."""
    table = centroids()
    hit = table["subdivisions"].get(code) or table["countries"].get(code.split("-")[0])
    return (hit[0], hit[1]) if hit else None


def _hover(rows: Sequence[RegionRow]) -> list[list]:
    out = []
    for r in rows:
        ratio = r.effective_ratio
        vs = "no baseline yet" if ratio is None else f"{ratio:.1f}x normal"
        expected = "" if r.expected is None else f"{r.expected:.1f} expected"
        out.append([region_name(r.region), r.region, round(r.observed), vs, expected])
    return out


def _hovertemplate(window_minutes: int) -> str:
    return ("<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]} reports in "
            f"{window_minutes} min<br>" "%{customdata[3]}<br>%{customdata[4]}<extra></extra>")


def _geo(scope: str) -> dict:
    geo = {"scope": scope, "fitbounds": False, "showframe": False, "showcoastlines": False,
           "showland": True, "landcolor": "#eaeef2", "showcountries": True,
           "countrycolor": "#ffffff", "bgcolor": "rgba(0,0,0,0)", "showlakes": False}
    if scope == "world":
        geo.update({"projection": {"type": "natural earth"}, "lataxis": {"range": [-58, 85]}})
    else:
        geo.update({"projection": {"type": "albers usa"}, "showsubunits": True,
                    "subunitcolor": "#ffffff"})
    return geo


def world_map(rows: Sequence[RegionRow], *, window_minutes: int = 15,
              topojson_url: str = TOPOJSON_URL) -> dict:
    """Build the world map: countries coloured by ratio, subdivisions as bubbles."""
    countries = [r for r in rows if "-" not in r.region and alpha3(r.region)]
    subs = [r for r in rows if "-" in r.region and centroid(r.region)]
    data: list[dict] = [{
        "type": "choropleth", "locationmode": "ISO-3", "name": "Countries",
        "locations": [alpha3(r.region) for r in countries],
        "z": [ratio_z(r.effective_ratio) for r in countries],
        "customdata": _hover(countries), "hovertemplate": _hovertemplate(window_minutes),
        "zmin": 0, "zmax": RATIO_MAX_LOG2, "colorscale": RATIO_SCALE, "colorbar": COLORBAR,
        "marker": {"line": {"color": "#57606a", "width": 0.5}},
    }]
    if subs:
        top = max((r.observed for r in subs), default=1.0) or 1.0
        data.append({
            "type": "scattergeo", "mode": "markers", "name": "Subdivisions",
            "lon": [centroid(r.region)[0] for r in subs],
            "lat": [centroid(r.region)[1] for r in subs],
            "customdata": _hover(subs), "hovertemplate": _hovertemplate(window_minutes),
            "marker": {"size": [8 + 22 * math.sqrt(max(r.observed, 0) / top) for r in subs],
                       "color": [ratio_z(r.effective_ratio) for r in subs], "cmin": 0,
                       "cmax": RATIO_MAX_LOG2, "colorscale": RATIO_SCALE, "showscale": False,
                       "opacity": 0.85, "line": {"color": "#1b1f24", "width": 1}},
        })
    layout = {"font": FONT, "height": 420, "margin": {"l": 0, "r": 0, "t": 8, "b": 60},
              "geo": _geo("world"), "showlegend": False, "dragmode": False,
              "paper_bgcolor": "#ffffff"}
    return {"data": data, "layout": layout,
            "config": _config(topojsonURL=topojson_url, scrollZoom=False)}


def us_map(rows: Sequence[RegionRow], *, window_minutes: int = 15,
           topojson_url: str = TOPOJSON_URL) -> dict:
    """Build the US map: states (`US-XX` rows) coloured by ratio."""
    states = [r for r in rows if r.region.startswith("US-") and len(r.region) == 5]
    data = [{
        "type": "choropleth", "locationmode": "USA-states", "name": "States",
        "locations": [r.region[3:] for r in states],
        "z": [ratio_z(r.effective_ratio) for r in states],
        "customdata": _hover(states), "hovertemplate": _hovertemplate(window_minutes),
        "zmin": 0, "zmax": RATIO_MAX_LOG2, "colorscale": RATIO_SCALE, "colorbar": COLORBAR,
        "marker": {"line": {"color": "#57606a", "width": 0.5}},
    }]
    layout = {"font": FONT, "height": 400, "margin": {"l": 0, "r": 0, "t": 8, "b": 60},
              "geo": _geo("usa"), "showlegend": False, "dragmode": False,
              "paper_bgcolor": "#ffffff"}
    return {"data": data, "layout": layout,
            "config": _config(topojsonURL=topojson_url, scrollZoom=False)}


def problem_mix(rows: Sequence[ProblemRow]) -> dict:
    """Build the 'most reported problems' bars: share now against the normal share."""
    ordered = sorted(rows, key=lambda r: r.now, reverse=True)[::-1]  # biggest on top
    labels = [r.label for r in ordered]
    data = [
        {"type": "bar", "orientation": "h", "name": "Normal", "y": labels,
         "x": [round(100 * r.normal, 1) for r in ordered], "marker": {"color": "#afb8c1"},
         "hovertemplate": "%{y}: %{x:.0f}% normally<extra></extra>"},
        {"type": "bar", "orientation": "h", "name": "Now", "y": labels,
         "x": [round(100 * r.now, 1) for r in ordered], "marker": {"color": REPORTS_COLOUR},
         "texttemplate": "%{x:.0f}%", "textposition": "outside", "cliponaxis": False,
         "hovertemplate": "%{y}: %{x:.0f}% now<extra></extra>"},
    ]
    layout = {"font": FONT, "height": 90 + 36 * max(len(rows), 1), "barmode": "group",
              "margin": {"l": 130, "r": 40, "t": 28, "b": 32},
              "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom",
                         "traceorder": "reversed"},
              "xaxis": {"title": {"text": "Share of reports (%)"}, "rangemode": "tozero",
                        "fixedrange": True, "gridcolor": "#eaeef2"},
              "yaxis": {"fixedrange": True, "automargin": True},
              "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff"}
    return {"data": data, "layout": layout, "config": _config(displayModeBar=False)}
