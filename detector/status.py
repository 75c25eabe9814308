"""A service's current status: level, observed vs expected, incident and shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from detector.baseline import BaselineMode
from detector.incidents import Incident, Level, Share
from detector.nbstats import nb_sf
from detector.regions import GLOBAL, region_depth

if TYPE_CHECKING:
    from detector.engine import ServiceDetector


@dataclass(frozen=True)
class ServiceStatus:
    """What a service looks like after the last minute fed to its detector."""

    service: str
    minute: int | None
    """Last epoch minute seen, None before any data."""
    level: Level
    baseline: BaselineMode
    """INSUFFICIENT_HISTORY means no test runs yet (p_value is None)."""
    window_start: int | None
    """Epoch minute of observed[0] / expected[0]."""
    observed: tuple[float, ...]
    """Counted reporters per minute of the global series over the recent window."""
    expected: tuple[float, ...]
    """Expected reporters per minute of the global series over the same minutes."""
    p_value: float | None
    """Smallest window tail probability of the global series now; None without baseline."""
    incident: Incident | None
    affected_regions: tuple[str, ...]
    regions: tuple[Share, ...]
    """Countries over the last 15 minutes: share now vs normal share, most reports first."""
    problems: tuple[Share, ...]
    """Problems over the last 15 minutes: share now vs normal share, most reports first."""


def _shares(
    det: ServiceDetector, rows: list[int], obs: np.ndarray, exp: np.ndarray, pos: int
) -> tuple[Share, ...]:
    order = sorted(rows, key=lambda i: (-obs[i], det.index.keys[i]))
    total_obs, total_exp = max(float(obs[0]), 1e-9), max(float(exp[0]), 1e-9)
    return tuple(
        Share(
            det.index.keys[i][pos],
            float(obs[i]),
            float(exp[i]),
            float(obs[i]) / total_obs,
            float(exp[i]) / total_exp,
        )
        for i in order[: det.params.max_listed]
    )


def build_status(det: ServiceDetector) -> ServiceStatus:
    """Build the ServiceStatus of a detector from its rings and lifecycle."""
    st, params = det.state, det.params
    incident = det.lifecycle.open
    level = Level.OK if incident is None else Level(str(incident.severity))
    if st.last_minute is None or st.first_minute is None:
        return ServiceStatus(
            det.service, None, level, det.baseline.mode, None, (), (), None, None, (), (), ()
        )
    t = st.last_minute
    start = max(st.first_minute, t - params.status_minutes + 1)
    observed = st.recent("ring_x", 0, start, t)
    expected = st.recent("ring_mu", 0, start, t)
    span = min(15, t - st.first_minute + 1)
    obs15 = st.recent("ring_x", slice(None), t - span + 1, t).sum(axis=1)
    exp15 = st.recent("ring_mu", slice(None), t - span + 1, t).sum(axis=1)
    p_value = None
    if det.baseline.mode is not BaselineMode.INSUFFICIENT_HISTORY and det.ready[0]:
        best = 1.0
        for w in params.windows:
            w = min(w, t - st.first_minute + 1)
            o = st.recent("ring_x", 0, t - w + 1, t).sum()
            e = st.recent("ring_mu", 0, t - w + 1, t).sum()
            var = det.baseline.variance(e, 0, minutes=w)
            best = min(best, float(nb_sf(o, e, var)))
        p_value = best
    keys = det.index.keys
    countries = [i for i, (r, q) in enumerate(keys) if q == GLOBAL and region_depth(r) == 1]
    problems = [i for i, (r, q) in enumerate(keys) if r == GLOBAL and q != GLOBAL]
    return ServiceStatus(
        det.service,
        t,
        level,
        det.baseline.mode,
        start,
        tuple(float(v) for v in observed),
        tuple(float(v) for v in expected),
        p_value,
        incident,
        () if incident is None else incident.regions,
        _shares(det, countries, obs15, exp15, 0),
        _shares(det, problems, obs15, exp15, 1),
    )
