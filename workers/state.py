"""The worker's side of the persisted detector: its in-process cache and the status
document written with every save (loading and version tokens: store/detectors.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from detector.clock import minute_to_iso
from detector.engine import ServiceDetector
from detector.status import ServiceStatus
from store.detectors import DetectorCache

CACHE = DetectorCache()
"""A worker process's detectors, one per service it detects (kept between jobs by a
non-forking worker)."""

STATUS_WINDOW = 15
"""Minutes summed into a status's `observed` / `expected` (like 15-minute report buckets)."""


def _num(value: Any) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def _shares(shares: Iterable[Any], name: str) -> list[dict[str, Any]]:
    return [
        {
            name: s.name,
            "observed": _num(s.observed),
            "expected": _num(s.expected),
            "share": _num(s.share),
            "normal_share": _num(s.normal_share),
        }
        for s in shares
    ]


def status_document(
    detector: ServiceDetector, service: str, st: ServiceStatus | None = None
) -> dict[str, Any]:
    """Return the stored status of a service (the API's `status` object); `st`: the
    detector's status() if the caller has it already."""
    st = detector.status() if st is None else st
    observed = [float(v) for v in st.observed]
    expected = [float(v) for v in st.expected]
    obs = sum(observed[-STATUS_WINDOW:])
    exp = sum(expected[-STATUS_WINDOW:])
    incident = None
    if st.incident is not None:
        incident = {"id": st.incident.id, **st.incident.to_dict()}
    return {
        "service": service,
        "level": str(st.level),
        "baseline": st.baseline.name.lower(),
        "updated_at": None if st.minute is None else minute_to_iso(st.minute + 1),
        "window_minutes": min(STATUS_WINDOW, len(observed)),
        "observed": _num(obs),
        "expected": _num(exp),
        "ratio": _num(obs / exp) if exp > 0 else None,
        "p_value": None if st.p_value is None else float(st.p_value),
        "recent": {
            "start": None if st.window_start is None else minute_to_iso(st.window_start),
            "observed": [_num(v) for v in observed],
            "expected": [_num(v) for v in expected],
        },
        "incident": incident,
        "affected_regions": list(st.affected_regions),
        "regions": _shares(st.regions, "region"),
        "top_problems": _shares(st.problems, "problem"),
    }
