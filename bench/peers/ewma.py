"""isupmap-style EWMA peer: EWMA mean and variance, >= 3 sigma, >= 5 reports, 2 runs.

As described (DESIGN 6): an exponentially weighted mean and variance of the report count per
detection run; a run is a surge when the count is at least 3 sigma above the mean and at least 5
reports; an alarm needs 2 consecutive surge runs; the baseline is frozen during a surge. Runs
are every 5 minutes on the service's 5-minute count.
"""

from __future__ import annotations

import numpy as np

from peers.common import Decision, Peer, counts_of

RUN = 5
"""Minutes per detection run (count window and cadence)."""

ALPHA = 0.1
"""EWMA weight of the newest run (memory of about 10 runs)."""

MIN_REPORTS = 5
"""Minimum count in a run for a surge."""

CONSECUTIVE = 2
"""Consecutive surge runs needed to alarm."""

WARMUP_RUNS = 288
"""Runs (one day) used to seed the EWMA before any alarm."""


def surges(x: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the surge flag and the frozen-aware EWMA mean per run, shapes (n_runs,)."""
    n = x.size
    flag = np.zeros(n, dtype=bool)
    means = np.zeros(n)
    seed = x[: min(n, WARMUP_RUNS)]
    mu, var = float(seed.mean()), float(seed.var())
    for k in range(n):
        xk = float(x[k])
        # Poisson floor on the variance: an EWMA variance of zero would make 1 report a surge.
        sigma = np.sqrt(max(var, mu, 1e-9))
        means[k] = mu
        if k >= WARMUP_RUNS and xk >= MIN_REPORTS and xk - mu >= threshold * sigma:
            flag[k] = True
            continue
        diff = xk - mu
        mu += ALPHA * diff
        var = (1.0 - ALPHA) * (var + ALPHA * diff * diff)
    return flag, means


class Ewma3Sigma(Peer):
    """Alarm after 2 consecutive 5-minute runs at >= 3 EWMA sigma and >= 5 reports."""

    name = "ewma_3sigma"
    threshold = 3.0
    """Sigmas above the EWMA mean."""
    sweep = (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)

    def prepare(self, service, leaf_keys, start_minute, reports, reporters):
        """Return the service's 5-minute run counts and the minute count."""
        series = counts_of(reports, reporters).sum(axis=0)
        n = series.size
        n_runs = n // RUN
        runs = series[: n_runs * RUN].reshape(n_runs, RUN).sum(axis=1)
        return runs, n

    def decide(self, state, threshold):
        """Alarm at the last minute of every run that completes 2 consecutive surges."""
        runs, n = state
        flag, means = surges(runs, threshold)
        streak = flag.copy()
        for j in range(1, CONSECUTIVE):
            streak[j:] &= flag[:-j]
            streak[:j] = False
        alarm = np.zeros(n, dtype=bool)
        ends = np.arange(runs.size) * RUN + RUN - 1
        alarm[ends[streak]] = True
        onset = np.zeros(n, dtype=np.int64)
        onset[ends] = ends - CONSECUTIVE * RUN + 1
        observed = np.zeros(n)
        expected = np.zeros(n)
        observed[ends] = runs / RUN
        expected[ends] = means / RUN
        return Decision(alarm, onset, observed, expected)
