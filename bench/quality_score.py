"""Score incidents against scenario labels: recall, precision, false alarms, delays."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np

TOLERANCE = 15
"""Minutes of slack around an outage span when matching incidents (and nuisances)."""

DIFFICULTY_BINS = (("easy", 0.0, 0.1), ("moderate", 0.1, 1.0), ("hard", 1.0, math.inf))
"""Outage difficulty by floor / duration: name, lower and upper bound."""

FLOORS = (("", "info_floor_min"), ("_poisson", "cusum_floor_min"))
"""Metric-name suffix and label key of each delay floor. The floor (`info_floor_min`): the
minutes until a CUSUM that knows the true rates has gathered log(ARL0) of expected evidence,
with the outage's ramp, regional stagger and negative-binomial dispersion. The Poisson floor
(`cusum_floor_min`): DESIGN 4's log(ARL0) / KL for a Poisson step from the base to the
plateau rate, which ignores ramp and dispersion and so understates real delays."""


def to_minute(text: str | None) -> int | None:
    """Return the epoch minute of an ISO 8601 UTC string, or None."""
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) // 60


def _span(inc: dict, base: int, n_minutes: int) -> tuple[int, int, int]:
    """Return (start, detect, end) minute indices of an incident relative to base."""
    detect = to_minute(inc["detected_at"]) - base
    start = to_minute(inc["started_at"]) - base
    end = to_minute(inc["ended_at"])
    end = n_minutes if end is None else end - base
    return min(start, detect), detect, max(end, detect)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def floor_under_half_duration(outage: dict, key: str = "info_floor_min") -> bool:
    """Return whether an outage's floor is under half its duration (issue 4's recall
    target population: recall >= 95% of these)."""
    return outage[key] < outage["duration_min"] / 2.0


def difficulty(outage: dict) -> str:
    """Return the difficulty bin of an outage from its floor / duration."""
    ratio = outage["info_floor_min"] / max(1, outage["duration_min"])
    return next((name for name, _, hi in DIFFICULTY_BINS if ratio < hi), DIFFICULTY_BINS[-1][0])


def score(
    incidents: list[dict],
    outages: list[dict],
    nuisances: list[dict],
    *,
    start_minute: int,
    eval_start: int,
    n_minutes: int,
    n_services: int,
    n_series: int,
    tolerance: int = TOLERANCE,
) -> dict:
    """Return metrics of `incidents` (DESIGN 3.2 dicts) against labels; times are minute
    indices from start_minute, scoring only outages starting and incidents detected in
    [eval_start, n_minutes).

    An incident matches an outage of its service when it is detected no earlier than
    `tolerance` minutes before the outage starts and its [started_at, ended_at or end of data]
    overlaps the outage span widened by `tolerance`. The first match (by detection) is the
    detection; later ones are duplicates. Unmatched incidents are false alarms, attributed to
    the most specific overlapping nuisance of that service, else "none".
    """
    if not 0 <= eval_start < n_minutes:
        raise ValueError(f"eval_start {eval_start} outside [0, {n_minutes})")
    spans = sorted((_span(i, start_minute, n_minutes), i["service"]) for i in incidents)
    scored = [(s, svc) for s, svc in spans if eval_start <= s[1] < n_minutes]
    detections: dict[int, tuple[int, int, int]] = {}
    duplicates = 0
    false_alarms: Counter[str] = Counter()
    for (start, detect, end), svc in scored:
        hits = [
            o
            for o in outages
            if o["service"] == svc
            and detect >= o["start"] - tolerance
            and start < o["end"] + tolerance
            and end > o["start"] - tolerance
        ]
        if not hits:
            false_alarms[_cause(svc, start, end, nuisances, tolerance)] += 1
            continue
        fresh = [o for o in hits if o["id"] not in detections]
        for o in fresh:
            detections[o["id"]] = (start, detect, end)
        if not fresh and any(o["start"] >= eval_start for o in hits):
            duplicates += 1
    scored_outages = [o for o in outages if eval_start <= o["start"] < n_minutes]
    delays, onset_err = [], []
    ratios: dict[str, list[float]] = {suffix: [] for suffix, _ in FLOORS}
    half = {suffix: [0, 0] for suffix, _ in FLOORS}  # detected, total with floor < duration/2
    by_bin: dict[str, list[int]] = {name: [0, 0] for name, _, _ in DIFFICULTY_BINS}
    rows = []
    for o in scored_outages:
        hit = detections.get(o["id"])
        by_bin[difficulty(o)][1] += 1
        row = {
            "id": o["id"],
            "service": o["service"],
            "duration_min": o["duration_min"],
            "floor_min": o["info_floor_min"],
            "poisson_floor_min": o["cusum_floor_min"],
            "detected": hit is not None,
            "delay_min": None,
        }
        for suffix, key in FLOORS:
            if floor_under_half_duration(o, key):
                half[suffix][1] += 1
                half[suffix][0] += hit is not None
        if hit is not None:
            by_bin[difficulty(o)][0] += 1
            delay = max(0, hit[1] - o["start"])
            delays.append(delay)
            onset_err.append(hit[0] - o["start"])
            for suffix, key in FLOORS:
                if math.isfinite(o[key]):
                    ratios[suffix].append(delay / o[key])
            row["delay_min"] = delay
        rows.append(row)
    n_detected = len([r for r in rows if r["detected"]])
    n_false = sum(false_alarms.values())
    eval_days = (n_minutes - eval_start) / 1440.0
    return {
        "outages": len(scored_outages),
        "detected": n_detected,
        "recall": n_detected / len(scored_outages) if scored_outages else None,
        "precision": n_detected / (n_detected + n_false) if n_detected + n_false else None,
        "false_alarms": n_false,
        "false_alarms_by_cause": dict(sorted(false_alarms.items())),
        "false_alarms_per_series_day": n_false / (n_series * eval_days),
        "false_alarms_per_service_week": n_false / (n_services * eval_days / 7.0),
        "duplicates": duplicates,
        "median_delay_min": _pct(delays, 50),
        "p90_delay_min": _pct(delays, 90),
        **{f"median_delay_ratio{suffix}": _pct(ratios[suffix], 50) for suffix, _ in FLOORS},
        "median_onset_error_min": _pct(onset_err, 50),
        "median_abs_onset_error_min": _pct([abs(e) for e in onset_err], 50),
        "recall_by_difficulty": {
            name: (hit / total if total else None, total) for name, (hit, total) in by_bin.items()
        },
        **{
            f"recall_floor_under_half_duration{suffix}": hit / total if total else None
            for suffix, (hit, total) in half.items()
        },
        **{
            f"outages_floor_under_half_duration{suffix}": total
            for suffix, (_, total) in half.items()
        },
        "per_outage": rows,
    }


def _cause(service: str, start: int, end: int, nuisances: list[dict], tolerance: int) -> str:
    """Return the kind of the shortest nuisance of `service` overlapping [start, end)."""
    hits = [
        n
        for n in nuisances
        if service in n["services"]
        and start < n["end"] + tolerance
        and end > n["start"] - tolerance
    ]
    if not hits:
        return "none"
    return min(hits, key=lambda n: n["end"] - n["start"])["kind"]
