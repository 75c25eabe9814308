"""ServiceDetector: all causal detection state of one service, one call per minute.

The live worker and `outage replay` both drive detection only through advance(), so a
replay reproduces exactly what the live system would have raised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from detector.baseline import (
    MINUTES_PER_WEEK,
    Baseline,
    BaselineMode,
    expected_per_minute,
    fit_baseline,
)
from detector.dispersion import residual_moments
from detector.incidents import EventKind, IncidentEvent
from detector.lifecycle import Lifecycle
from detector.nbstats import nb_quantile, tilt_table
from detector.params import SLOT_MINUTES, SLOTS_PER_WEEK, Params
from detector.phase import detect_shifts, realign
from detector.series import Key, SeriesIndex
from detector.state import MinuteState, pack, unpack
from detector.status import ServiceStatus, build_status
from detector.step import alarm_weights, repay_backlog, run_tests
from detector.tails import evidence
from detector.tails import learn as learn_tail
from detector.tails import thresholds as tail_thresholds

PARTS = ("index", "history", "baseline", "state")
"""Names of the persisted parts: series index, 15-minute history, fitted baseline, state."""

FORMAT_VERSION = 1


def _as_count(value: object, what: str) -> int:
    """Return value as a non-negative int or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return int(value)


class ServiceDetector:
    """Causal detection state of one service, vectorised over its series."""

    def __init__(self, service: str, params: Params | None = None) -> None:
        if not isinstance(service, str) or not service:
            raise ValueError("service must be a non-empty string")
        self.service = service
        self.params = params or Params()
        self.index = SeriesIndex()
        self.state = MinuteState(1, self.params)
        self.hist = np.zeros((1, self.params.history_slots), dtype=np.int64)
        self.excluded = np.zeros(self.params.history_slots, dtype=bool)
        self.baseline = Baseline.empty(1)
        self.ready = np.zeros(1, dtype=bool)
        self.lifecycle = Lifecycle(service, self.params)
        self._dirty = set(PARTS)
        self._tilt_table = tilt_table(tuple(self.params.cusum_ratios))
        self._minute_decay = math.exp(-1.0 / (self.params.minute_noise_days * 24 * 60))
        self._shape_cache()

    # ----------------------------------------------------------------- public queries
    @property
    def last_minute(self) -> int | None:
        """Epoch minute of the last advance, or None before the first."""
        return self.state.last_minute

    def series_keys(self) -> list[Key]:
        """List the (region, problem) keys of every series, in row order."""
        return list(self.index.keys)

    def status(self) -> ServiceStatus:
        """Summarise the service now: level, observed vs expected, incident, shares."""
        return build_status(self)

    def expected_band(self, key: Key, minutes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return expected reporters per minute and its 99% NB upper band at epoch minutes.

        Both have the shape of minutes; zeros while the series has no fitted baseline.
        """
        row = self.index.position(key)
        if row is None:
            raise KeyError(f"unknown series {key!r}")
        minutes = np.asarray(minutes, dtype=np.int64)
        if not self.ready[row]:
            return np.zeros(minutes.shape), np.zeros(minutes.shape)
        mu = np.maximum(
            expected_per_minute(self.baseline.profile[row : row + 1], minutes.ravel())[0],
            self.params.min_rate_per_min,
        )
        var = self.baseline.variance(mu, row, minutes=1)
        return mu.reshape(minutes.shape), nb_quantile(0.99, mu, var).reshape(minutes.shape)

    # ----------------------------------------------------------------------- advance
    def advance(
        self,
        minute: int,
        leaf_counts: Mapping[Key, tuple[int, int | None]],
        prefixes: int | None = None,
    ) -> list[IncidentEvent]:
        """Feed one complete minute of leaf counts; return the incident events it caused.

        leaf_counts: (region, problem) -> (reports, distinct reporters or None).
        prefixes: distinct network prefixes of the whole service this minute (live only).
        Skipped minutes since the last call count as zero reports.
        """
        minute = _as_count(minute, "minute")
        last = self.state.last_minute
        if last is not None and minute <= last:
            raise ValueError(f"minute {minute} is not after the last minute {last}")
        if prefixes is not None:
            prefixes = _as_count(prefixes, "prefixes")
        rows: list[tuple[Key, int, int]] = []
        known = self.index.known_leaves
        for key, value in leaf_counts.items():
            if key not in known:
                key = self.index.check_leaf(key)
            try:
                reports, reporters = value
            except (TypeError, ValueError):
                raise ValueError(
                    f"counts of {key!r} must be (reports, reporters or None)"
                ) from None
            if type(reports) is not int or reports < 0:
                reports = _as_count(reports, "reports")
            if reporters is None:
                reporters = reports
            elif type(reporters) is not int or reporters < 0:
                reporters = _as_count(reporters, "reporters")
            if reporters > reports:
                raise ValueError(f"{key!r}: reporters ({reporters}) exceed reports ({reports})")
            rows.append((key, reports, reporters))
        events: list[IncidentEvent] = []
        if last is not None and minute > last + 1:
            # Step the silent minutes before registering this minute's new series (causality).
            zeros = np.zeros(len(self.index))
            for skipped in range(last + 1, minute):
                events.extend(self._step(skipped, zeros, zeros, None))
        leaf_pos = [
            known[key] if key in known else self.index.leaf_position(key) for key, _, _ in rows
        ]
        self._sync_size()
        raw = np.zeros(len(self.index.leaves))
        counted = np.zeros(len(self.index.leaves))
        for pos, (_, reports, reporters) in zip(leaf_pos, rows, strict=True):
            raw[pos] += reports
            counted[pos] += reporters
        events.extend(
            self._step(minute, self.index.rollup(counted), self.index.rollup(raw), prefixes)
        )
        return events

    def refresh_baseline(self) -> None:
        """Refit the baseline from the completed 15-minute slots (advance does it hourly)."""
        if self.state.slot is None or self.state.first_minute is None:
            return
        first_slot = -(-self.state.first_minute // SLOT_MINUTES)
        shifts = detect_shifts(
            self.hist,
            self.excluded,
            self.state.slot,
            first_slot,
            self.index.keys,
            self.baseline,
            self.params,
        )
        if shifts:
            realign(
                self.hist,
                self.excluded,
                self.state.slot,
                first_slot,
                self.index.keys,
                shifts,
                self.params,
            )
            self._dirty.add("history")
        self.baseline = fit_baseline(
            self.hist,
            self.excluded,
            self.state.slot,
            first_slot,
            self._donors,
            self._depths,
            self.params,
            self.state.minute_moments,
        )
        self.ready = self.baseline.ready(self.params)
        self._shape_cache()
        self._dirty.add("baseline")

    def _step(
        self, t: int, x: np.ndarray, raw: np.ndarray, prefixes: int | None
    ) -> list[IncidentEvent]:
        st, params = self.state, self.params
        if st.first_minute is None:
            st.first_minute = t
        slot = t // SLOT_MINUTES
        if st.slot is None:
            st.slot = slot
        elif slot != st.slot:
            ring = st.slot % params.history_slots
            self.hist[:, ring] = st.slot_counts.astype(np.int64)
            self.excluded[ring] = st.slot_excluded
            st.slot_counts[:] = 0.0
            st.slot, st.slot_excluded = slot, self.lifecycle.open is not None
            self._dirty.add("history")
        if t % 60 == 0:
            self.refresh_baseline()
        st.slot_counts += x
        base = self.baseline
        mu = np.maximum(self._expected_now(t), params.min_rate_per_min)
        active = bool(self.ready[0])
        x_adj = repay_backlog(st, t, x, mu, active, params)
        # The CUSUM tilt follows this minute's rate; each increment's tilt solves the NB
        # moment equation of that minute's distribution (to 1e-4, from a table), so exp(S)
        # stays a martingale and ARL0 >= exp(h) holds as with a fixed tilt.
        disp = self._disp_a + self._disp_b * mu
        tests = run_tests(
            st,
            t,
            x_adj,
            raw,
            mu,
            base,
            self.ready,
            self._alpha_eff,
            self._h_eff,
            self._tilt_table(disp),
            self._mix_parent,
            prefixes,
            params,
        )
        events = self.lifecycle.step(tests, st, self.index.keys, self._depths, base)
        for event in events:
            if event.kind is EventKind.OPEN:
                self._exclude_since(event.incident.started_at)
            elif event.kind is EventKind.REOPEN and event.incident.ended_at is not None:
                self._exclude_since(event.incident.ended_at)
        if self.lifecycle.open is not None:
            st.slot_excluded = True
        elif st.credit_until < 0 and st.gap_expected == 0.0:
            self._learn_minute_noise(x_adj, mu)
        learn_tail(
            st.tail,
            evidence(tests.p_ratio, self._alpha, tests.cusum_ratio, self._h),
            self.ready & (st.credit_until < 0) & (st.gap_expected == 0.0),
            params,
            self.lifecycle.open is not None,
            self._theta,
        )
        st.last_minute = t
        self._dirty.add("state")
        return events

    def _learn_minute_noise(self, x: np.ndarray, mu: np.ndarray) -> None:
        """Add this minute's residuals of ready series to the decayed one-minute moments
        (not during an incident, an ingestion gap or its backlog repayment), each count
        clipped at robust_z standard deviations of the current fit as in fit_baseline."""
        sd = np.sqrt(mu * (self._disp_a + self._disp_b * mu))
        x = np.minimum(x, np.ceil(mu + self.params.robust_z * sd))
        mom = self.state.minute_moments
        mom *= self._minute_decay
        mom += residual_moments(x[:, None], mu[:, None], self.ready[:, None])

    def _expected_now(self, t: int) -> np.ndarray:
        """Expected reporters per minute of every series at minute t (see expected_per_minute)."""
        q = ((t % MINUTES_PER_WEEK) + 0.5) / SLOT_MINUTES - 0.5
        j0 = math.floor(q)
        frac = q - j0
        j0 %= SLOTS_PER_WEEK
        j1 = (j0 + 1) % SLOTS_PER_WEEK
        return ((1.0 - frac) * self._profile_t[j0] + frac * self._profile_t[j1]) / SLOT_MINUTES

    def _exclude_since(self, minute: int) -> None:
        """Mark completed history slots from minute's slot on as incident (not normal)."""
        if self.state.slot is None:
            return
        first = max(minute // SLOT_MINUTES, self.state.slot - self.params.history_slots)
        slots = np.arange(first, self.state.slot, dtype=np.int64)
        if slots.size:
            self.excluded[slots % self.params.history_slots] = True
            self._dirty.add("history")

    # -------------------------------------------------------------------- growth
    def _shape_cache(self) -> None:
        self._donors = self.index.donors()
        self._depths = self.index.depths()
        weights = alarm_weights(len(self.index), self.params)
        self._alpha = self.params.alpha * weights
        self._h = self.params.cusum_threshold - np.log(weights)
        # Thresholds raised where the series' own evidence tail is heavier than the model's.
        self._theta = tail_thresholds(self.state.tail, weights, self.params)
        self._alpha_eff = self._alpha**self._theta
        self._h_eff = self._h * self._theta
        self._profile_t = np.ascontiguousarray(self.baseline.profile.T)
        self._mix_parent = self.index.mix_parents()
        self._disp_a, self._disp_b = self.baseline.minute_dispersion(self.params)

    def _sync_size(self) -> None:
        """Grow every per-series array to the index size (new series are not ready)."""
        n = len(self.index)
        old = self.hist.shape[0]
        if n == old:
            return
        extra = n - old
        self.hist = np.concatenate(
            [self.hist, np.zeros((extra, self.hist.shape[1]), dtype=np.int64)]
        )
        self.state.grow(n)
        self.baseline = self.baseline.grown(extra)
        self.ready = np.concatenate([self.ready, np.zeros(extra, dtype=bool)])
        self._shape_cache()
        self._dirty.update(PARTS)

    # ---------------------------------------------------------------- persistence
    def to_parts(self) -> dict[str, bytes]:
        """Serialise all state as separate parts (see PARTS); safe formats, no pickle."""
        base = self.baseline
        return {
            "index": self.index.to_json(),
            "history": pack({"hist": self.hist, "excluded": self.excluded}, compress=True),
            "baseline": pack(
                {
                    "profile": base.profile,
                    "phi": base.phi,
                    "phi_q": base.phi_q,
                    "c2": base.c2,
                    "own_counts": base.own_counts,
                    "ready": self.ready,
                    **{
                        name: getattr(base, name)
                        for name in ("c2_minute", "phi_free")
                        if getattr(base, name) is not None
                    },
                },
                {"mode": str(base.mode), "fitted_slot": base.fitted_slot},
            ),
            "state": pack(
                self.state.arrays(),
                {
                    **self.state.meta(),
                    "lifecycle": self.lifecycle.to_state(),
                    "service": self.service,
                    "format": FORMAT_VERSION,
                },
            ),
        }

    def dirty_parts(self) -> dict[str, bytes]:
        """Return only the parts changed since load or the last call, and mark them clean."""
        parts = self.to_parts()
        out = {name: parts[name] for name in PARTS if name in self._dirty}
        self._dirty.clear()
        return out

    @classmethod
    def from_parts(
        cls, service: str, parts: Mapping[str, bytes], params: Params | None = None
    ) -> ServiceDetector:
        """Restore a detector saved by to_parts; raise ValueError on inconsistent parts."""
        missing = [name for name in PARTS if name not in parts]
        if missing:
            raise ValueError(f"missing detector parts: {missing}")
        det = cls(service, params)
        p = det.params
        det.index = SeriesIndex.from_json(parts["index"])
        hist, _ = unpack(parts["history"])
        arrays, meta = unpack(parts["baseline"])
        st_arrays, st_meta = unpack(parts["state"])
        if st_meta.get("format") != FORMAT_VERSION or st_meta.get("service") != service:
            raise ValueError("state part belongs to another service or format")
        n = len(det.index)
        if (
            hist["hist"].shape != (n, p.history_slots)
            or st_arrays["ring"].shape != (n, 3, p.recent_minutes)
            or arrays["profile"].shape[0] != n
        ):
            raise ValueError("detector parts do not match the series index or params")
        det.hist, det.excluded = hist["hist"], hist["excluded"]
        det.baseline = Baseline(
            BaselineMode(meta["mode"]),
            arrays["profile"],
            arrays["phi"],
            arrays["phi_q"],
            arrays["c2"],
            int(meta["fitted_slot"]),
            arrays["own_counts"],
            arrays.get("c2_minute"),
            arrays.get("phi_free"),
        )
        det.ready = arrays["ready"]
        lifecycle = st_meta.pop("lifecycle")
        st_meta.pop("service")
        st_meta.pop("format")
        det.state = MinuteState.restore(st_arrays, st_meta, p)
        det.lifecycle = Lifecycle.from_state(service, p, lifecycle)
        det._shape_cache()
        det._dirty.clear()
        return det
