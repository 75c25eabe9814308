"""Plotly figures as plain dicts: rows in, figure out. No Flask, no Redis, no I/O at call time.

The pages embed these dicts as JSON and plotly.js draws them; tests check them without a
browser (tests/web/test_figures.py) and the browser tests check that they really draw.
Times are UTC. A figure dict has `data`, `layout` and `config` (what `Plotly.newPlot` takes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

LEVEL_COLOURS = {
    "ok": "#1a7f37",
    "possible": "#9a6700",
    "problems": "#bc4c00",
    "outage": "#cf222e",
    "unknown": "#57606a",
}
"""Line colour per status level (each passes 4.5:1 contrast on white)."""

SPAN_FILLS = {
    "possible": "rgba(212, 167, 44, 0.18)",
    "problems": "rgba(219, 109, 40, 0.18)",
    "outage": "rgba(207, 34, 46, 0.16)",
}
"""Shading of incident spans on the chart, by severity."""

REPORTS_COLOUR = "#0a58ca"
BASELINE_COLOUR = "#57606a"
BAND_FILL = "rgba(87, 96, 106, 0.16)"

FONT = {
    "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
    "size": 13,
    "color": "#1b1f24",
}

BASE_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"],
}


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


def utc_label(epoch_s: float) -> str:
    """Format epoch seconds as the naive 'YYYY-MM-DD HH:MM' UTC string plotly.js reads."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M")


def _clean(values: Iterable[float | None]) -> list[float | None]:
    """Turn NaN and infinities into None (JSON null: a gap in the line)."""
    return [None if v is None or not math.isfinite(v) else round(float(v), 3) for v in values]


def plot_config(**extra) -> dict:
    return {**BASE_CONFIG, **extra}


def service_chart(series: Series, spans: Sequence[Span] = (), *, now: int | None = None) -> dict:
    """Build the live chart: reports per minute, baseline with its upper band, incident spans.

    Each trace carries `meta.field`, the series field that feeds it, so the page can append
    fresh minutes from the series endpoint without rebuilding the figure.
    """
    x = [utc_label(t) for t in series.times]
    data: list[dict] = []
    if series.baseline:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Expected (baseline)",
                "uid": "baseline",
                "x": x,
                "y": _clean(series.baseline),
                "meta": {"field": "expected"},
                "line": {"color": BASELINE_COLOUR, "width": 1.5, "dash": "dash"},
                "hovertemplate": "%{y:.1f} expected<extra></extra>",
            }
        )
    if series.upper:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Upper bound of normal",
                "uid": "upper",
                "x": x,
                "y": _clean(series.upper),
                "meta": {"field": "upper"},
                "line": {"color": "rgba(87, 96, 106, 0.5)", "width": 1},
                "fill": "tonexty" if series.baseline else "none",
                "fillcolor": BAND_FILL,
                "hovertemplate": "%{y:.1f} upper bound<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Reports",
            "uid": "reports",
            "x": x,
            "y": _clean(series.reports),
            "meta": {"field": "reports"},
            "line": {"color": REPORTS_COLOUR, "width": 1.75},
            "hovertemplate": "<b>%{y:.0f} reports</b><extra></extra>",
        }
    )
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
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "layer": "below",
                "x0": utc_label(x0),
                "x1": utc_label(max(x1, x0 + 60)),
                "y0": 0,
                "y1": 1,
                "fillcolor": SPAN_FILLS.get(span.severity, SPAN_FILLS["problems"]),
                "line": {"width": 0},
            }
        )
        if labelled_at is None or x0 - labelled_at >= label_gap:
            labelled_at = x0
            near_end = first is not None and x0 > last - label_gap  # keep the label inside
            notes.append(
                {
                    "xref": "x",
                    "yref": "paper",
                    "y": 1,
                    "yanchor": "top",
                    "x": utc_label(x1 if near_end else x0),
                    "xanchor": "right" if near_end else "left",
                    "showarrow": False,
                    "text": span.label or span.severity,
                    "font": {"size": 11},
                    "bgcolor": "rgba(255, 255, 255, 0.75)",
                }
            )
    layout = {
        "font": FONT,
        "height": 340,
        "margin": {"l": 48, "r": 12, "t": 36, "b": 44},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "xaxis": {
            "type": "date",
            "title": {"text": "Time (UTC)"},
            "tickformat": "%H:%M",
            "hoverformat": "%a %d %b %H:%M UTC",
            "gridcolor": "#eaeef2",
            **({"range": [x[0], x[-1]]} if x else {}),
        },
        "yaxis": {
            "title": {"text": "Reports per minute"},
            "rangemode": "tozero",
            "gridcolor": "#eaeef2",
            "fixedrange": True,
        },
        "shapes": shapes,
        "annotations": notes,
    }
    return {"data": data, "layout": layout, "config": plot_config()}


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
    return Series(
        times=order,
        reports=[sums[t][0] for t in order],
        baseline=[sums[t][1] for t in order] if series.baseline else (),
        upper=[sums[t][2] for t in order] if series.upper else (),
    )


def table_rows(series: Series, minutes: int = 15) -> list[dict]:
    """Rows for the chart's table alternative, newest first: reports vs expected per bucket."""
    b = bucket(series, minutes)
    rows = []
    for i, t in enumerate(b.times):
        rows.append(
            {
                "time": utc_label(t),
                "epoch": t,
                "reports": round(b.reports[i]),
                "expected": round(b.baseline[i], 1) if b.baseline else None,
                "upper": round(b.upper[i], 1) if b.upper else None,
            }
        )
    return rows[::-1]


def sparkline(series: Series, level: str = "ok", minutes: int = 15) -> dict:
    """Build a 24-hour sparkline: bucketed reports over a faint baseline, no axes."""
    b = bucket(series, minutes) if series.times else series
    x = [utc_label(t) for t in b.times]
    colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["unknown"])
    data = []
    if b.baseline:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": _clean(b.baseline),
                "line": {"color": "#afb8c1", "width": 1},
                "hoverinfo": "skip",
                "name": "expected",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": _clean(b.reports),
            "line": {"color": colour, "width": 2},
            "fill": "tozeroy",
            "fillcolor": _tint(colour),
            "hoverinfo": "skip",
            "name": "reports",
        }
    )
    layout = {
        "height": 44,
        "margin": {"l": 0, "r": 0, "t": 2, "b": 2},
        "showlegend": False,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"visible": False, "type": "date", "fixedrange": True},
        "yaxis": {"visible": False, "rangemode": "tozero", "fixedrange": True},
    }
    return {"data": data, "layout": layout, "config": plot_config(staticPlot=True)}


def _tint(hex_colour: str, alpha: float = 0.12) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"
