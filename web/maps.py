"""Plotly map figures (world, US states) and the problem mix, as plain dicts: rows in,
figure out. No Flask, no Redis, no I/O at call time beyond the shipped centroid table.

Style (font, config) comes from web.figures; map outlines are served from the package
(TOPOJSON_URL), never a CDN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pycountry

from web.figures import FONT, REPORTS_COLOUR, plot_config

TOPOJSON_URL = "/static/topojson/"
"""Where plotly.js finds world_110m.json and usa_110m.json (never its CDN)."""

CENTROIDS = Path(__file__).parent / "static" / "topojson" / "centroids.json"
"""[lon, lat] of countries and common subdivisions, for bubbles at centroids."""

RATIO_MAX_LOG2 = 5.0
"""Ratios are coloured on a log2 scale from 1x (0) to 32x and above (5)."""

RATIO_SCALE = [
    [0.0, "#fff4e5"],
    [0.2, "#fdd49e"],
    [0.4, "#fc8d59"],
    [0.6, "#e34a33"],
    [0.8, "#b30000"],
    [1.0, "#67000d"],
]
"""Colour scale for reports-to-baseline ratios (light = normal, dark red = 32x)."""


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
    colour_ratio: float | None = None
    """The ratio the map colours by, when it is not `effective_ratio` (the all-services map
    colours only by services with an incident)."""

    @property
    def shade(self) -> float:
        """The colour-axis value of this row (see ratio_z)."""
        return ratio_z(self.colour_ratio if self.colour_ratio is not None else self.effective_ratio)

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


def ratio_z(ratio: float | None) -> float:
    """Map a reports-to-baseline ratio to the colour axis: log2, clipped to [0, 5]."""
    if ratio is None or math.isnan(ratio) or ratio <= 1.0:
        return 0.0
    if math.isinf(ratio):
        return RATIO_MAX_LOG2
    return round(min(math.log2(ratio), RATIO_MAX_LOG2), 3)


COLORBAR = {
    "title": {"text": "Reports vs normal", "side": "top"},
    "tickvals": [0, 1, 2, 3, 4, 5],
    "ticktext": ["1x", "2x", "4x", "8x", "16x", "32x+"],
    "orientation": "h",
    "x": 0.5,
    "xanchor": "center",
    "y": 0,
    "yanchor": "top",
    "thickness": 10,
    "len": 0.6,
    "lenmode": "fraction",
    "outlinewidth": 0,
}
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
    return (
        "<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]} reports in "
        f"{window_minutes} min<br>"
        "%{customdata[3]}<br>%{customdata[4]}<extra></extra>"
    )


def _geo(scope: str) -> dict:
    geo = {
        "scope": scope,
        "fitbounds": False,
        "showframe": False,
        "showcoastlines": False,
        "showland": True,
        "landcolor": "#eaeef2",
        "showcountries": True,
        "countrycolor": "#ffffff",
        "bgcolor": "rgba(0,0,0,0)",
        "showlakes": False,
    }
    if scope == "world":
        geo.update({"projection": {"type": "natural earth"}, "lataxis": {"range": [-58, 85]}})
    else:
        geo.update(
            {"projection": {"type": "albers usa"}, "showsubunits": True, "subunitcolor": "#ffffff"}
        )
    return geo


def world_map(
    rows: Sequence[RegionRow], *, window_minutes: int = 15, topojson_url: str = TOPOJSON_URL
) -> dict:
    """Build the world map: countries coloured by ratio, subdivisions as bubbles."""
    countries = [r for r in rows if "-" not in r.region and alpha3(r.region)]
    subs = [r for r in rows if "-" in r.region and centroid(r.region)]
    data: list[dict] = [
        {
            "type": "choropleth",
            "locationmode": "ISO-3",
            "name": "Countries",
            "locations": [alpha3(r.region) for r in countries],
            "z": [r.shade for r in countries],
            "customdata": _hover(countries),
            "hovertemplate": _hovertemplate(window_minutes),
            "zmin": 0,
            "zmax": RATIO_MAX_LOG2,
            "colorscale": RATIO_SCALE,
            "colorbar": COLORBAR,
            "marker": {"line": {"color": "#57606a", "width": 0.5}},
        }
    ]
    if subs:
        top = max((r.observed for r in subs), default=1.0) or 1.0
        data.append(
            {
                "type": "scattergeo",
                "mode": "markers",
                "name": "Subdivisions",
                "lon": [centroid(r.region)[0] for r in subs],
                "lat": [centroid(r.region)[1] for r in subs],
                "customdata": _hover(subs),
                "hovertemplate": _hovertemplate(window_minutes),
                "marker": {
                    "size": [8 + 22 * math.sqrt(max(r.observed, 0) / top) for r in subs],
                    "color": [r.shade for r in subs],
                    "cmin": 0,
                    "cmax": RATIO_MAX_LOG2,
                    "colorscale": RATIO_SCALE,
                    "showscale": False,
                    "opacity": 0.85,
                    "line": {"color": "#1b1f24", "width": 1},
                },
            }
        )
    layout = {
        "font": FONT,
        "height": 420,
        "margin": {"l": 0, "r": 0, "t": 8, "b": 60},
        "geo": _geo("world"),
        "showlegend": False,
        "dragmode": False,
        "paper_bgcolor": "#ffffff",
    }
    return {
        "data": data,
        "layout": layout,
        "config": plot_config(topojsonURL=topojson_url, scrollZoom=False),
    }


def us_map(
    rows: Sequence[RegionRow], *, window_minutes: int = 15, topojson_url: str = TOPOJSON_URL
) -> dict:
    """Build the US map: states (`US-XX` rows) coloured by ratio."""
    states = [r for r in rows if r.region.startswith("US-") and len(r.region) == 5]
    data = [
        {
            "type": "choropleth",
            "locationmode": "USA-states",
            "name": "States",
            "locations": [r.region[3:] for r in states],
            "z": [r.shade for r in states],
            "customdata": _hover(states),
            "hovertemplate": _hovertemplate(window_minutes),
            "zmin": 0,
            "zmax": RATIO_MAX_LOG2,
            "colorscale": RATIO_SCALE,
            "colorbar": COLORBAR,
            "marker": {"line": {"color": "#57606a", "width": 0.5}},
        }
    ]
    layout = {
        "font": FONT,
        "height": 400,
        "margin": {"l": 0, "r": 0, "t": 8, "b": 60},
        "geo": _geo("usa"),
        "showlegend": False,
        "dragmode": False,
        "paper_bgcolor": "#ffffff",
    }
    return {
        "data": data,
        "layout": layout,
        "config": plot_config(topojsonURL=topojson_url, scrollZoom=False),
    }


def problem_mix(rows: Sequence[ProblemRow]) -> dict:
    """Build the 'most reported problems' bars: share now against the normal share."""
    ordered = sorted(rows, key=lambda r: r.now, reverse=True)[::-1]  # biggest on top
    labels = [r.label for r in ordered]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "Normal",
            "y": labels,
            "x": [round(100 * r.normal, 1) for r in ordered],
            "marker": {"color": "#afb8c1"},
            "hovertemplate": "%{y}: %{x:.0f}% normally<extra></extra>",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "Now",
            "y": labels,
            "x": [round(100 * r.now, 1) for r in ordered],
            "marker": {"color": REPORTS_COLOUR},
            "texttemplate": "%{x:.0f}%",
            "textposition": "outside",
            "cliponaxis": False,
            "hovertemplate": "%{y}: %{x:.0f}% now<extra></extra>",
        },
    ]
    layout = {
        "font": FONT,
        "height": 90 + 36 * max(len(rows), 1),
        "barmode": "group",
        "margin": {"l": 130, "r": 40, "t": 28, "b": 32},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "reversed",
        },
        "xaxis": {
            "title": {"text": "Share of reports (%)"},
            "rangemode": "tozero",
            "fixedrange": True,
            "gridcolor": "#eaeef2",
        },
        "yaxis": {"fixedrange": True, "automargin": True},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    return {"data": data, "layout": layout, "config": plot_config(displayModeBar=False)}
