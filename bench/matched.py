"""Recall at matched false-alarm rates, and the false-alarm rate ours promises (DESIGN 6).

Detectors are compared at the same false-alarm rate, never one default threshold against
another: each detector's threshold sweep gives points (false alarms per service-week, recall);
their upper-left (Pareto) frontier is interpolated linearly in log false-alarm rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from detector.params import MINUTES_PER_YEAR, Params
from detector.series import SeriesIndex
from detector.step import alarm_weights

MATCHED_RATES = (0.03, 0.1, 0.3, 1.0, 3.0)
"""False alarms per service-week at which recall is compared."""

OURS_TARGETS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""False alarms per series-year swept for ours (Params.false_alarms_per_series_year)."""

WEEKS_PER_YEAR = MINUTES_PER_YEAR / (7 * 1440)
"""Weeks in the detector's year (525,600 minutes = 365 days): 52.14, not 52.18."""

Point = tuple[float, float]
"""(false alarms per service-week, recall) of one threshold."""


def frontier(points: Iterable[tuple[float, float | None]]) -> list[Point]:
    """Return the points no other point beats, by false-alarm rate ascending.

    A point is kept when every point with at most its false-alarm rate has lower recall, so
    recall strictly rises along the result. Points without a recall are dropped.
    """
    clean = sorted(
        (float(fa), float(rec))
        for fa, rec in points
        if rec is not None and fa is not None and math.isfinite(fa)
    )
    out: list[Point] = []
    for fa, rec in clean:
        if out and out[-1][0] == fa:
            out[-1] = (fa, max(out[-1][1], rec))
            continue
        if not out or rec > out[-1][1]:
            out.append((fa, rec))
    return out


def recall_at(points: Iterable[tuple[float, float | None]], rate: float) -> float | None:
    """Return the recall reachable at `rate` false alarms per service-week, or None when no
    threshold is that strict.

    Between two frontier points recall is interpolated linearly in log false-alarm rate; a
    point with no false alarm at all lies infinitely far left on that scale, so recall stays at
    its value up to the next point. Beyond the loosest point recall stays at its value.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    front = frontier(points)
    if not front or front[0][0] > rate:
        return None
    below = [p for p in front if p[0] <= rate]
    fa0, r0 = below[-1]
    if len(below) == len(front) or fa0 == rate or fa0 == 0.0:
        return r0
    fa1, r1 = front[len(below)]
    share = (math.log(rate) - math.log(fa0)) / (math.log(fa1) - math.log(fa0))
    return r0 + share * (r1 - r0)


def matched_row(
    points: Iterable[tuple[float, float | None]], rates: Sequence[float] = MATCHED_RATES
) -> list[float | None]:
    """Return recall_at for every rate."""
    pts = list(points)
    return [recall_at(pts, r) for r in rates]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:g}"


def matched_table(
    curves: dict[str, list[tuple[float, float | None]]], rates: Sequence[float] = MATCHED_RATES
) -> str:
    """Return the Markdown table of recall at each matched false-alarm rate, one row per
    detector; `curves` maps a detector to its (false alarms per service-week, recall) points."""
    head = " | ".join(f"recall at {_rate(r)} FA/svc-wk" for r in rates)
    lines = [
        f"| detector | {head} | points |",
        "|---|" + "---|" * len(rates) + "---|",
    ]
    for name, points in curves.items():
        cells = " | ".join(_cell(v) for v in matched_row(points, rates))
        lines.append(f"| {name} | {cells} | {len(points)} |")
    return "\n".join(lines)


def series_equivalents(leaf_keys: Iterable[tuple[str, str]], params: Params | None = None) -> float:
    """Return the false-alarm budget of one service in series-equivalents: the sum of
    detector.step.alarm_weights over the series its leaves roll up into."""
    index = SeriesIndex()
    for key in leaf_keys:
        index.leaf_position(tuple(key))
    return float(alarm_weights(len(index), params or Params()).sum())


def promised_per_service_week(target: float, equivalents: float) -> float:
    """Return the false alarms per service-week that `target` per series-year promises for a
    service of `equivalents` series-equivalents."""
    return target * equivalents / WEEKS_PER_YEAR


def calibration_table(rows: Sequence[tuple[float, float, float | None, int | None]]) -> str:
    """Return the calibration of ours as Markdown: rows are (target per series-year, promised
    and realised false alarms per service-week, false alarms counted)."""
    targets = " | ".join(_rate(t) for t, _, _, _ in rows)
    promised = " | ".join(f"{p:.3g}" for _, p, _, _ in rows)
    realised = " | ".join(
        "-" if r is None else f"{r:.3g}" + ("" if n is None else f" ({n})") for _, _, r, n in rows
    )
    ratio = " | ".join("-" if r is None or p <= 0 else f"{r / p:.2g}x" for _, p, r, _ in rows)
    sep = "---|" * len(rows)
    return "\n".join(
        [
            f"| ours: target FA / series-year | {targets} |",
            f"|---|{sep}",
            f"| promised FA / service-week | {promised} |",
            f"| realised FA / service-week (count) | {realised} |",
            f"| realised / promised | {ratio} |",
        ]
    )
