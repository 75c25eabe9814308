"""Self-contained Plotly page for `outage bench quality --plot`."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from quality_run import Result

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")
"""One colour per detector, in table order."""


def figure(results: list[Result], summary: dict) -> go.Figure:
    """Return the figure: recall vs false alarms (threshold sweeps), delays, floor vs duration."""
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.4, 0.3, 0.3],
        subplot_titles=(
            "Recall vs false alarms (threshold sweep; marker = default)",
            "Detection delay (min)",
            "Outages: floor vs duration",
        ),
    )
    for r, color in zip(results, PALETTE, strict=False):
        if r.metrics is None:
            continue
        pts = sorted((p for p in r.sweep if p[1] is not None), key=lambda p: (p[2], p[1]))
        if pts:
            fig.add_trace(
                go.Scatter(
                    x=[max(p[2], 0.01) for p in pts],
                    y=[p[1] for p in pts],
                    mode="lines+markers",
                    marker={"size": 4, "color": color},
                    line={"color": color},
                    name=f"{r.name} sweep",
                    legendgroup=r.name,
                    text=[f"threshold {p[0]:g}" for p in pts],
                ),
                row=1,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=[max(r.metrics["false_alarms_per_service_week"], 0.01)],
                y=[r.metrics["recall"]],
                mode="markers",
                marker={"size": 12, "color": color},
                name=f"{r.name} default",
                legendgroup=r.name,
            ),
            row=1,
            col=1,
        )
        delays = [row["delay_min"] for row in r.metrics["per_outage"] if row["detected"]]
        fig.add_trace(
            go.Box(
                y=delays,
                name=r.name,
                boxpoints="all",
                jitter=0.4,
                marker={"color": color},
                line={"color": color},
                showlegend=False,
                legendgroup=r.name,
            ),
            row=1,
            col=2,
        )
    ours = next((r for r in results if r.name == "ours" and r.metrics), None)
    ref = ours or next((r for r in results if r.metrics), None)
    if ref is not None:
        rows = ref.metrics["per_outage"]
        for detected, color in ((True, "green"), (False, "red")):
            sel = [
                row
                for row in rows
                if row["detected"] is detected and math.isfinite(row["floor_min"])
            ]
            fig.add_trace(
                go.Scatter(
                    x=[row["duration_min"] for row in sel],
                    y=[row["floor_min"] for row in sel],
                    mode="markers",
                    marker={"color": color},
                    name=f"{ref.name}: {'detected' if detected else 'missed'}",
                ),
                row=1,
                col=3,
            )
        fig.add_trace(
            go.Scatter(
                x=[5, 400],
                y=[5, 400],
                mode="lines",
                line={"dash": "dot", "color": "gray"},
                name="floor = duration",
            ),
            row=1,
            col=3,
        )
    fig.update_xaxes(type="log", title_text="false alarms per service-week", row=1, col=1)
    fig.update_yaxes(title_text="event recall", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(type="log", title_text="minutes", row=1, col=2)
    fig.update_xaxes(type="log", title_text="duration (min)", row=1, col=3)
    fig.update_yaxes(type="log", title_text="floor (min, NB, ramp included)", row=1, col=3)
    fig.update_layout(
        title=(
            f"outage bench quality: seed {summary['seed']}, {summary['services']} services, "
            f"{summary['eval_days']} scored days, {summary['outages_scored']} outages"
        ),
        height=560,
        width=1500,
    )
    return fig


def write_plot(results: list[Result], summary: dict, path: Path) -> None:
    """Write the figure as one HTML file with plotly.js inline (no CDN)."""
    figure(results, summary).write_html(str(path), include_plotlyjs=True, full_html=True)
