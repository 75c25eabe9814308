"""Turn per-minute alarms into one incident per service outage: open, escalate, close, reopen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from detector.baseline import Baseline
from detector.incidents import (
    EventKind,
    Evidence,
    Incident,
    IncidentEvent,
    Severity,
)
from detector.params import Params
from detector.regions import GLOBAL
from detector.scopes import (
    affected_rows,
    attribute,
    contains,
    in_band,
    longest_window,
    settled,
)
from detector.series import Key
from detector.state import MinuteState
from detector.step import MinuteTests

_MAX_RATIO = 100.0


def onset_offset(x: np.ndarray, mu: np.ndarray, ratio: float) -> int:
    """Return the index maximising the log-likelihood of a rise by `ratio` from there to the end.

    x, mu: observed and expected per minute, oldest first, shape (L,).
    """
    llr = x * np.log(ratio) - (ratio - 1.0) * mu
    suffix = np.cumsum(llr[::-1])[::-1]
    return int(len(suffix) - 1 - np.argmax(suffix[::-1]))


def end_offset(x: np.ndarray, mu: np.ndarray, ratio: float) -> int:
    """Return the index of the last minute still consistent with a rise by `ratio`, or -1.

    x, mu: observed and expected per minute, oldest first, shape (L,).
    """
    llr = x * np.log(ratio) - (ratio - 1.0) * mu
    prefix = np.cumsum(llr)
    best = int(np.argmax(prefix))
    return best if prefix[best] > 0 else -1


def severity_for(ratio: float, count: float, minutes: int, params: Params) -> Severity:
    """Grade an incident from its 15-minute ratio, counted reporters and age in minutes."""
    if (
        ratio >= params.outage_ratio
        and count >= params.outage_min_reporters
        and minutes >= params.outage_minutes
    ):
        return Severity.OUTAGE
    if (
        ratio >= params.problems_ratio
        and count >= params.problems_min_reporters
        and minutes >= params.problems_minutes
    ):
        return Severity.PROBLEMS
    return Severity.POSSIBLE


@dataclass
class Lifecycle:
    """The incident state machine of one service (mutable, JSON-serialisable)."""

    service: str
    params: Params
    open: Incident | None = None
    last_closed: Incident | None = None
    closed_at: int | None = None
    quiet_since: int | None = None
    flaps: int = 0
    """Times the open (or last closed) incident was reopened within close_quiet_minutes of
    its close: each doubles the quiet time that closes it."""

    def to_state(self) -> dict[str, Any]:
        """Return the lifecycle as a JSON-ready dict."""
        return {
            "open": None if self.open is None else self.open.to_state(),
            "last_closed": None if self.last_closed is None else self.last_closed.to_state(),
            "closed_at": self.closed_at,
            "quiet_since": self.quiet_since,
            "flaps": self.flaps,
        }

    @classmethod
    def from_state(cls, service: str, params: Params, raw: dict[str, Any]) -> Lifecycle:
        """Restore a lifecycle saved by to_state."""

        def load(x: dict[str, Any] | None) -> Incident | None:
            return None if x is None else Incident.from_state(x)

        return cls(
            service,
            params,
            load(raw["open"]),
            load(raw["last_closed"]),
            raw["closed_at"],
            raw["quiet_since"],
            raw.get("flaps", 0),
        )

    def step(
        self,
        tests: MinuteTests,
        state: MinuteState,
        keys: list[Key],
        depths: np.ndarray,
        base: Baseline,
    ) -> list[IncidentEvent]:
        """Advance the state machine by one minute of test results."""
        t = tests.minute
        if self.open is None:
            if not tests.alarm.any() or tests.low_diversity:
                return []
            row = self._scope_row(tests, depths)
            last = self.last_closed
            if (
                last is not None
                and last.ended_at is not None
                and self.closed_at is not None
                and t - last.ended_at <= self.params.reopen_gap_minutes
                and self._rises_again(tests, keys, last)
                and not self._new_event(tests, last)
            ):
                since = max(self.closed_at + 1, t - self.params.recent_minutes + 1)
                state.inc_obs += state.recent("ring_x", slice(None), since, t).sum(axis=1)
                state.inc_exp += state.recent("ring_mu", slice(None), since, t).sum(axis=1)
                self.open = last.evolve(ended_at=None)
                if t - self.closed_at <= self.params.close_quiet_minutes:
                    self.flaps += 1  # back sooner than the quiet time that closed it
                kind = EventKind.REOPEN
            else:
                # The onset search must not reach back into the last incident: its outage
                # would become this one's onset (and its id this one's).
                after = None if last is None else last.ended_at
                self.open = self._new_incident(tests, state, keys, row, after)
                self.flaps = 0
                kind = EventKind.OPEN
            self.quiet_since = None
            self.open = self._refresh(tests, state, keys, depths, base, self.open)
            return [IncidentEvent(kind, self.open)]
        split = self._split_row(tests, state)
        if split is not None:
            # A much stronger onset after a long weak episode is a new event: end the weak
            # incident where the strong window starts and open a fresh one (not a reopen).
            row, w = split
            closed = self._end(state, t, tests.minute - w + 1)
            self.open = self._new_incident(tests, state, keys, row, closed.ended_at)
            self.open = self._refresh(tests, state, keys, depths, base, self.open)
            self.flaps = 0
            return [
                IncidentEvent(EventKind.CLOSE, closed),
                IncidentEvent(EventKind.OPEN, self.open),
            ]
        state.inc_obs += tests.x
        state.inc_exp += tests.mu
        before = self.open.severity
        self.open = self._refresh(tests, state, keys, depths, base, self.open)
        events = []
        if self.open.severity.rank > before.rank:
            events.append(IncidentEvent(EventKind.ESCALATE, self.open))
        if not settled(tests, state, base, keys, self.open, self.params):
            self.quiet_since = None
            return events
        if self.quiet_since is None:
            self.quiet_since = t
        if t - self.quiet_since + 1 < self.quiet_minutes() or not in_band(
            tests, keys, self.open, self.params
        ):
            return events
        row = keys.index((self.open.region, self.open.problem))
        events.append(IncidentEvent(EventKind.CLOSE, self._close(state, row, t)))
        return events

    def quiet_minutes(self) -> int:
        """Return the consecutive settled minutes that close the open incident: doubled by
        each quick reopen (up to close_quiet_max_minutes), so a flapping series stays open."""
        params = self.params
        return min(
            params.close_quiet_minutes * 2**self.flaps,
            max(params.close_quiet_max_minutes, params.close_quiet_minutes),
        )

    def _scope_row(self, tests: MinuteTests, depths: np.ndarray) -> int:
        rows = np.flatnonzero(tests.alarm)
        order = np.lexsort((rows, tests.p[rows].min(axis=1), depths[rows]))
        return int(rows[order[0]])

    def _rises_again(self, tests: MinuteTests, keys: list[Key], last: Incident) -> bool:
        """Tell whether the closed incident's area alarms again: its scope, a child it listed
        as affected, or a series containing its scope (anything else is a new incident)."""
        scope = (last.region, last.problem)
        rows = set(affected_rows(keys, last))
        return any(i in rows or contains(keys[i], scope) for i in np.flatnonzero(tests.alarm))

    def _new_event(self, tests: MinuteTests, weak: Incident) -> bool:
        """Tell whether this minute's window alarms are split_factor times stronger than the
        trigger of a 'possible' incident (so they are a new event, not its flare-up)."""
        if weak.severity is not Severity.POSSIBLE or not tests.window_alarm.any():
            return False
        ev = weak.evidence_detail
        ref = max(ev.window_observed / max(ev.window_expected, 1e-9), 1.0)
        ratio = tests.window_obs / np.maximum(tests.window_exp, 1e-9)
        return bool((tests.window_alarm & (ratio >= self.params.split_factor * ref)).any())

    def _split_row(self, tests: MinuteTests, state: MinuteState) -> tuple[int, int] | None:
        """Return (row, window) of a window alarm split_factor times stronger than the open
        'possible' incident's own ratio on that row before the window, or None.

        Only after a weak episode of at least split_after_minutes before the window, only
        for windows of at least split_min_window minutes (a one-minute spike is a flare-up of
        the episode) and for ratios of at least broad_ratio (a clear outage-sized effect)."""
        inc, params = self.open, self.params
        if inc is None or inc.severity is not Severity.POSSIBLE or not tests.window_alarm.any():
            return None
        for k in np.argsort(params.windows)[::-1]:
            w = params.windows[k]
            if (
                w < params.split_min_window
                or tests.minute - w + 1 - inc.started_at < params.split_after_minutes
            ):
                continue
            obs, exp = tests.window_obs[:, k], tests.window_exp[:, k]
            # the window includes this minute, which inc_obs does not hold yet
            prior_obs = state.inc_obs - (obs - tests.x)
            prior_exp = np.maximum(state.inc_exp - (exp - tests.mu), 1e-9)
            prior = np.maximum(prior_obs / prior_exp, 1.0)
            ratio = obs / np.maximum(exp, 1e-9)
            hit = (
                tests.window_alarm[:, k]
                & (ratio >= params.split_factor * prior)
                & (ratio >= params.broad_ratio)
            )
            if hit.any():
                return int(np.flatnonzero(hit)[np.argmax(ratio[hit])]), w
        return None

    def _new_incident(
        self,
        tests: MinuteTests,
        state: MinuteState,
        keys: list[Key],
        row: int,
        not_before: int | None = None,
    ) -> Incident:
        t, params = tests.minute, self.params
        first = max(
            state.first_minute or t,
            t - params.recent_minutes + 1,
            not_before if not_before is not None else -1,
        )
        x = state.recent("ring_x", row, first, t)
        mu = state.recent("ring_mu", row, first, t)
        short = min(5, len(x))
        ratio = float(
            np.clip(x[-short:].sum() / max(mu[-short:].sum(), 1e-9), params.min_ratio, _MAX_RATIO)
        )
        start = first + onset_offset(x, mu, ratio)
        state.inc_obs[:] = state.recent("ring_x", slice(None), start, t).sum(axis=1)
        state.inc_exp[:] = state.recent("ring_mu", slice(None), start, t).sum(axis=1)
        evidence = self._evidence(tests, keys, row)
        return Incident(
            Incident.make_id(self.service, start),
            self.service,
            keys[row][0],
            keys[row][1],
            start,
            t + 1,
            None,
            Severity.POSSIBLE,
            0.0,
            0.0,
            1.0,
            (),
            (),
            evidence,
        )

    def _evidence(self, tests: MinuteTests, keys: list[Key], row: int) -> Evidence:
        params = self.params
        if tests.window_alarm[row].any():
            k = int(np.argmin(tests.p[row]))
            trigger = f"nb_window_{params.windows[k]}min"
            stat, threshold = float(tests.p[row, k]), float(tests.alpha[row])
        else:
            k = -1
            j = int(np.argmax(np.where(tests.cusum_alarm[row], tests.cusum[row], -1.0)))
            trigger = f"cusum_x{params.cusum_ratios[j]:g}"
            stat, threshold = float(tests.cusum[row, j]), float(tests.cusum_h[row])
        obs, raw = float(tests.window_obs[row, k]), float(tests.window_raw[row, k])
        return Evidence(
            trigger,
            keys[row][0],
            keys[row][1],
            stat,
            threshold,
            obs,
            float(tests.window_exp[row, k]),
            None if raw <= 0 or obs == raw else obs / raw,
            tests.prefix_diversity,
            int(tests.alarm.sum()),
        )

    def _scope(
        self,
        tests: MinuteTests,
        state: MinuteState,
        keys: list[Key],
        depths: np.ndarray,
        base: Baseline,
        inc: Incident,
    ) -> int:
        """Pick the incident's scope row: the widest alarmed series containing the current
        scope, then narrowed to one region and/or problem (with a baseline of its own) when
        attribution finds that it carries most of the excess.

        An alarm in a disjoint part of the service (another country, another problem) does
        not move the scope: it would keep this incident open for an unrelated rise."""
        row = keys.index((inc.region, inc.problem))
        alarmed = [int(i) for i in np.flatnonzero(tests.alarm) if contains(keys[i], keys[row])]
        if alarmed:
            best = min(alarmed, key=lambda i: depths[i])
            if depths[best] < depths[row]:
                row = best
        ready = base.ready(self.params)
        region, problem = keys[row]
        regions, problems, _, _ = attribute(
            keys, keys[row], state.inc_obs, state.inc_exp, base, self.params
        )
        excess = np.maximum(state.inc_obs - state.inc_exp, 0.0)
        total = max(float(excess[row]), 1e-9)
        countries = [r for r in regions if "-" not in r]
        if region == GLOBAL and len(countries) == 1:
            pos = keys.index((countries[0], problem))
            if excess[pos] >= self.params.scope_share * total and ready[pos]:
                region = countries[0]
        if problem == GLOBAL and len(problems) == 1:
            pos = keys.index((keys[row][0], problems[0]))
            narrow = (region, problems[0])
            if (
                excess[pos] >= self.params.scope_share * total
                and narrow in keys
                and ready[keys.index(narrow)]
            ):
                problem = problems[0]
        return keys.index((region, problem))

    def _refresh(
        self,
        tests: MinuteTests,
        state: MinuteState,
        keys: list[Key],
        depths: np.ndarray,
        base: Baseline,
        inc: Incident,
    ) -> Incident:
        params, t = self.params, tests.minute
        row = self._scope(tests, state, keys, depths, base, inc)
        peak, expected = inc.peak_per_min, inc.expected_per_min
        moved = (inc.region, inc.problem) != keys[row]
        if tests.x[row] > peak or moved:
            since = max(inc.started_at, t - params.recent_minutes + 1)
            x = state.recent("ring_x", row, since, t)
            mu = state.recent("ring_mu", row, since, t)
            k = int(np.argmax(x))
            if x[k] > peak or moved:
                peak, expected = float(x[k]), float(mu[k])
        k = longest_window(params)
        obs15, exp15 = float(tests.window_obs[row, k]), float(tests.window_exp[row, k])
        severity = severity_for(obs15 / max(exp15, 1e-9), obs15, t - inc.started_at + 1, params)
        if severity.rank < inc.severity.rank:
            severity = inc.severity
        regions, problems, rshares, pshares = attribute(
            keys, keys[row], state.inc_obs, state.inc_exp, base, params
        )
        evidence = replace(
            inc.evidence_detail,
            region_shares=rshares,
            problem_shares=pshares,
            alarmed_series=max(inc.evidence_detail.alarmed_series, int(tests.alarm.sum())),
        )
        return inc.evolve(
            region=keys[row][0],
            problem=keys[row][1],
            severity=severity,
            peak_per_min=peak,
            expected_per_min=expected,
            p_value=min(inc.p_value, float(tests.p[row].min())),
            regions=regions,
            problems=problems,
            evidence_detail=evidence,
        )

    def _close(self, state: MinuteState, row: int, t: int) -> Incident:
        """Close the open incident at minute t; it ended at the last minute consistent with a
        min_ratio rise before its scope settled."""
        if self.open is None or self.quiet_since is None:
            raise RuntimeError("close without an open incident")
        params = self.params
        first = max(
            self.open.started_at,
            self.quiet_since - max(params.windows),
            t - params.recent_minutes + 1,
        )
        if first > self.quiet_since:
            # The ring no longer holds the minutes before the scope settled (the close waited
            # longer than recent_minutes): the incident ended when it settled.
            return self._end(state, t, self.quiet_since)
        x = state.recent("ring_x", row, first, self.quiet_since)
        mu = state.recent("ring_mu", row, first, self.quiet_since)
        end = first + end_offset(x, mu, params.min_ratio) + 1
        return self._end(state, t, end)

    def _end(self, state: MinuteState, t: int, end: int) -> Incident:
        """Close the open incident at `end` (exclusive) at minute t; restart the CUSUMs."""
        if self.open is None:
            raise RuntimeError("close without an open incident")
        closed = self.open.evolve(ended_at=max(end, self.open.started_at + 1))
        self.last_closed, self.closed_at = closed, t
        self.open, self.quiet_since = None, None
        state.cusum[:] = 0.0
        state.run_obs[:] = 0.0
        state.run_exp[:] = 0.0
        state.run_len[:] = 0.0
        return closed
