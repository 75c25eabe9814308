"""Shared plumbing for the peer detectors: aggregation, rolling sums, alarm episodes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

MERGE_GAP = 30
"""Quiet minutes after the last alarm before a peer's episode closes (and merge distance)."""


@dataclass(frozen=True)
class Decision:
    """Per-minute output of a peer at one threshold; index t uses data up to minute t only."""

    alarm: np.ndarray
    """True where the peer alarms at the end of minute t, shape (n_minutes,)."""
    onset: np.ndarray
    """Estimated onset minute index for an alarm at t (ignored elsewhere), shape (n_minutes,)."""
    observed: np.ndarray
    """Observed rate behind the decision, per minute, shape (n_minutes,)."""
    expected: np.ndarray
    """Expected rate behind the decision, per minute, shape (n_minutes,)."""


def iso(epoch_minute: int) -> str:
    """Return the ISO 8601 UTC string (Z) of an epoch minute."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=int(epoch_minute))
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def counts_of(reports: np.ndarray, reporters: np.ndarray | None) -> np.ndarray:
    """Return the counts a peer judges: distinct reporters when present, else raw reports."""
    arr = reporters if reporters is not None else reports
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"counts must be 2-D (n_leaf, n_minutes), got shape {arr.shape}")
    return arr


def by_country(leaf_keys: list[tuple[str, str]], counts: np.ndarray) -> np.ndarray:
    """Return counts summed per country (ISO 3166-2 rolls up), shape (n_countries, n_minutes)."""
    countries = sorted({region.split("-")[0] for region, _ in leaf_keys})
    out = np.zeros((len(countries), counts.shape[1]))
    for i, (region, _) in enumerate(leaf_keys):
        out[countries.index(region.split("-")[0])] += counts[i]
    return out


def rolling_sum(x: np.ndarray, width: int) -> np.ndarray:
    """Return trailing sums over `width` minutes along the last axis (partial at the start)."""
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., width:] = c[..., width:] - c[..., :-width]
    return out


def lagged(x: np.ndarray, lag: int, fill: float = np.nan) -> np.ndarray:
    """Return x shifted right by `lag` minutes along the last axis, head filled with `fill`."""
    out = np.full_like(x, fill, dtype=np.float64)
    if lag < x.shape[-1]:
        out[..., lag:] = x[..., : x.shape[-1] - lag]
    return out


def episodes(
    service: str, start_minute: int, decision: Decision, merge_gap: int = MERGE_GAP
) -> list[dict]:
    """Merge alarm minutes into incidents (DESIGN 3.2 dicts); an episode closes after
    `merge_gap` quiet minutes and is left open (ended_at None) if the data ends first."""
    idx = np.flatnonzero(decision.alarm)
    if idx.size == 0:
        return []
    n = decision.alarm.size
    breaks = np.flatnonzero(np.diff(idx) > merge_gap)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [idx.size - 1]))
    out = []
    for f, last in zip(firsts, lasts, strict=True):
        t0, t1 = int(idx[f]), int(idx[last])
        closed = t1 + merge_gap < n
        peak = float(np.max(decision.observed[t0 : t1 + 1]))
        out.append(
            {
                "service": service,
                "region": "*",
                "problem": "*",
                "started_at": iso(start_minute + min(t0, int(decision.onset[t0]))),
                "detected_at": iso(start_minute + t0 + 1),
                "ended_at": iso(start_minute + t1 + 1) if closed else None,
                "severity": "outage",
                "peak_per_min": peak,
                "expected_per_min": float(decision.expected[t0]),
                "p_value": None,
                "regions": [],
                "problems": [],
            }
        )
    return out


class Peer:
    """A peer detector: an expensive threshold-free `prepare` and a cheap `decide`."""

    name = "peer"
    threshold: float = 0.0
    sweep: tuple[float, ...] = ()
    """Thresholds for the recall/false-alarm curve, strictest last."""

    def prepare(
        self,
        service: str,
        leaf_keys: list[tuple[str, str]],
        start_minute: int,
        reports: np.ndarray,
        reporters: np.ndarray | None,
    ) -> object:
        """Return whatever decide() needs; must look at each minute causally."""
        raise NotImplementedError

    def decide(self, state: object, threshold: float) -> Decision:
        """Return the per-minute decision at a threshold."""
        raise NotImplementedError

    def incidents(
        self, service: str, start_minute: int, state: object, threshold: float | None = None
    ) -> list[dict]:
        """Return incidents at a threshold (the default when None)."""
        thr = self.threshold if threshold is None else threshold
        return episodes(service, start_minute, self.decide(state, thr))

    def __call__(
        self,
        service: str,
        leaf_keys: list[tuple[str, str]],
        start_minute: int,
        reports: np.ndarray,
        reporters: np.ndarray | None = None,
    ) -> list[dict]:
        """Run on one service's leaf counts, shape (n_leaf, n_minutes); return incidents."""
        state = self.prepare(service, leaf_keys, start_minute, reports, reporters)
        return self.incidents(service, start_minute, state)
