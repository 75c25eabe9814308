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
    "possible": "rgba(212, 167, 44, 0.22)",
    "problems": "rgba(219, 109, 40, 0.22)",
    "outage": "rgba(207, 34, 46, 0.2)",
}
"""Shading of incident spans on the chart, by severity."""

REPORTS_COLOUR = "#0a58ca"
BASELINE_COLOUR = "#1b1f24"
BAND_FILL = "rgba(87, 96, 106, 0.18)"

FONT = {
    "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
    "size": 13,
    "color": "#1b1f24",
}

BASE_CONFIG = {
    "displaylogo": False,
    "displayModeBar": False,
    "responsive": True,
}
"""No mode bar: its buttons offered an upload to Plotly's cloud and added tab stops."""


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


def clean_values(values: Iterable[float | None]) -> list[float | None]:
    """Turn NaN and infinities into None (JSON null: a gap in the line)."""
    return [None if v is None or not math.isfinite(v) else round(float(v), 3) for v in values]


def plot_config(**extra) -> dict:
    return {**BASE_CONFIG, **extra}


def lower_band(series: Series) -> list[float | None]:
    """The lower edge of the band of normal: as far below the expected level as the upper
    bound is above it, never below zero."""
    out: list[float | None] = []
    for exp, up in zip(series.baseline, series.upper, strict=True):
        ok = exp is not None and up is not None and math.isfinite(exp) and math.isfinite(up)
        out.append(max(0.0, 2 * exp - up) if ok else None)
    return out


def _per(step: int) -> str:
    return "minute" if step == 1 else f"{step} minutes"


def service_chart(
    series: Series,
    spans: Sequence[Span] = (),
    *,
    now: int | None = None,
    step: int = 1,
    current: tuple[int, float] | None = None,
) -> dict:
    """Build the live chart: reports per `step` minutes, the expected level drawn on top of
    them with the band of normal around it, incident spans, and the running (partial)
    bucket drawn apart so a new report shows at once.

    Each trace carries `meta.field`, the series field that feeds it, so the page can put
    fresh buckets in without rebuilding the figure.
    """
    x = [utc_label(t) for t in series.times]
    data: list[dict] = []
    band = bool(series.baseline and series.upper)
    if band:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Band of normal",
                "uid": "lower",
                "x": x,
                "y": clean_values(lower_band(series)),
                "meta": {"field": "lower"},
                "line": {"width": 0, "color": BAND_FILL},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Normal range",
                "uid": "upper",
                "x": x,
                "y": clean_values(series.upper),
                "meta": {"field": "upper"},
                "line": {"width": 0, "color": BAND_FILL},
                "fill": "tonexty",
                "fillcolor": BAND_FILL,
                "hovertemplate": "%{y:.0f} upper bound of normal<extra></extra>",
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Reports",
            "uid": "reports",
            "x": x,
            "y": clean_values(series.reports),
            "meta": {"field": "reports"},
            "line": {"color": REPORTS_COLOUR, "width": 2, "shape": "linear"},
            "hovertemplate": "<b>%{y:.0f} reports</b><extra></extra>",
        }
    )
    if series.baseline:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Expected",
                "uid": "baseline",
                "x": x,
                "y": clean_values(series.baseline),
                "meta": {"field": "expected"},
                "line": {"color": BASELINE_COLOUR, "width": 2, "dash": "dash"},
                "hovertemplate": "%{y:.1f} expected<extra></extra>",
            }
        )
    value_notes: list[dict] = []
    right = x[-1] if x else None
    if current is not None:
        at, value = current
        right = utc_label(at)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "So far (this " + ("minute" if step == 1 else f"{step} min") + ")",
                "uid": "current",
                "x": [right],
                "y": [round(float(value), 3)],
                "meta": {"field": "current"},
                "marker": {
                    "color": "#ffffff",
                    "size": 10,
                    "line": {"color": REPORTS_COLOUR, "width": 2.5},
                },
                "hovertemplate": "<b>%{y:.0f} reports so far</b><extra></extra>",
            }
        )
    if series.reports:
        last = series.reports[-1]
        if last is not None and math.isfinite(last) and last > 0:
            value_notes.append(
                {
                    "x": x[-1],
                    "y": round(float(last), 3),
                    "xref": "x",
                    "yref": "y",
                    "text": f"<b>{last:.0f}</b>",
                    "showarrow": True,
                    "arrowhead": 0,
                    "ax": -24,
                    "ay": -22,
                    "font": {"size": 13, "color": REPORTS_COLOUR},
                    "bgcolor": "rgba(255, 255, 255, 0.85)",
                }
            )
    first = series.times[0] if series.times else None
    last_t = series.times[-1] if series.times else now
    shapes: list[dict] = []
    notes: list[dict] = []
    label_gap = 0.08 * (last_t - first) if first is not None and last_t is not None else 0
    labelled_at = None
    for span in sorted(spans, key=lambda sp: sp.start):
        x0 = span.start if first is None else max(span.start, first)
        x1 = span.end if span.end is not None else (now or last_t)
        if x1 is None or last_t is None:
            continue
        x1 = min(x1, last_t + step * 60)
        if x1 < x0:
            continue  # entirely outside the chart's window
        colour = LEVEL_COLOURS.get(span.severity, LEVEL_COLOURS["problems"])
        for y0, fill in (
            (0, SPAN_FILLS.get(span.severity, SPAN_FILLS["problems"])),
            (0.97, colour),
        ):
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "layer": "below",
                    "x0": utc_label(x0),
                    "x1": utc_label(max(x1, x0 + step * 60)),
                    "y0": y0,
                    "y1": 1,
                    "fillcolor": fill,
                    "line": {"width": 0},
                }
            )
        if labelled_at is None or x0 - labelled_at >= label_gap:
            labelled_at = x0
            near_end = first is not None and x0 > last_t - label_gap  # keep the label inside
            notes.append(
                {
                    "xref": "x",
                    "yref": "paper",
                    "y": 0.96,
                    "yanchor": "top",
                    "x": utc_label(x1 if near_end else x0),
                    "xanchor": "right" if near_end else "left",
                    "showarrow": False,
                    "text": span.label or span.severity,
                    "font": {"size": 12, "color": colour},
                    "bgcolor": "rgba(255, 255, 255, 0.85)",
                }
            )
    peak = max(
        (
            v
            for col in (series.reports, series.upper)
            for v in col
            if v is not None and math.isfinite(v)
        ),
        default=0.0,
    )
    if current is not None:
        peak = max(peak, current[1])
    yaxis: dict = {
        "title": {"text": f"Reports per {_per(step)}"},
        "rangemode": "tozero",
        "gridcolor": "#eaeef2",
        "fixedrange": True,
    }
    if peak < 5:  # a quiet or empty service: whole reports, not ticks at 0.2
        yaxis.update({"range": [0, 5], "dtick": 1, "autorange": False})
    layout = {
        "font": FONT,
        "height": 340,
        "margin": {"l": 52, "r": 16, "t": 36, "b": 44},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "xaxis": {
            "type": "date",
            "tickformat": "%H:%M" if len(series.times) * step <= 1440 else "%a %d",
            "hoverformat": "%a %d %b %H:%M UTC",
            "gridcolor": "#eaeef2",
            **({"range": [x[0], right]} if x else {}),
        },
        "yaxis": yaxis,
        "shapes": shapes,
        "annotations": notes + value_notes,
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


def sparkline_svg(series: Series, level: str = "ok", minutes: int = 15) -> str:
    """Draw a 24-hour sparkline as inline SVG markup (no script, no plotly.js): bucketed
    reports as a filled line over a faint expected line, scaled to the taller of the two."""
    b = bucket(series, minutes) if series.times else series
    width, height = 240.0, 44.0
    values = [v if v is not None and math.isfinite(v) else 0.0 for v in b.reports]
    expected = [v if v is not None and math.isfinite(v) else 0.0 for v in b.baseline]
    top = max([*values, *expected, 1.0])
    n = max(len(values) - 1, 1)

    def points(ys: Sequence[float]) -> str:
        return " ".join(
            f"{i * width / n:.1f},{height - 2 - (height - 4) * y / top:.1f}"
            for i, y in enumerate(ys)
        )

    colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["unknown"])
    parts = [
        f'<svg class="spark" viewBox="0 0 {width:.0f} {height:.0f}" preserveAspectRatio="none" '
        'aria-hidden="true" focusable="false">'
    ]
    if values:
        line = points(values)
        parts.append(
            f'<polygon points="0,{height:.0f} {line} {width:.0f},{height:.0f}" '
            f'fill="{_tint(colour)}"/>'
        )
        if expected:
            parts.append(
                f'<polyline points="{points(expected)}" fill="none" stroke="#afb8c1" '
                'stroke-width="1" vector-effect="non-scaling-stroke"/>'
            )
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2" '
            'vector-effect="non-scaling-stroke"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _tint(hex_colour: str, alpha: float = 0.12) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"
