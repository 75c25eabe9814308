"""Downdetector-style peer: 15-minute counts vs the average for that time of day.

Downdetector's methodology page: a baseline of typical report volume per service "based on the
average number of reports for that given time of day" over a long past period, and an incident
only when reports are "significantly higher" than that baseline. Run per country (one
Downdetector site per country), every minute on the trailing 15 minutes.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from peers.common import Decision, Peer, by_country, counts_of, lagged, rolling_sum

WINDOW = 15
"""Bucket width, minutes."""

HISTORY_DAYS = 28
"""Past days averaged for the same time of day."""

MIN_HISTORY_DAYS = 7
"""Days of history needed before the peer may alarm."""

MIN_COUNT = 10
"""Minimum reports in the 15-minute bucket before an alarm."""


class DowndetectorStyle(Peer):
    """Alarm when a country's 15-minute count is significantly above its time-of-day average."""

    name = "downdetector_style"
    threshold = 5.0
    """-log10 of the Poisson upper-tail p-value needed: p < 1e-5."""
    sweep = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 14.0, 20.0, 30.0, 50.0)

    def prepare(self, service, leaf_keys, start_minute, reports, reporters):
        """Return per-country 15-minute counts, baselines and significance (-log10 p)."""
        per_country = by_country(leaf_keys, counts_of(reports, reporters))
        window = rolling_sum(per_country, WINDOW)
        total = np.zeros_like(window)
        days = np.zeros_like(window)
        for d in range(1, HISTORY_DAYS + 1):
            past = lagged(window, d * 1440)
            ok = ~np.isnan(past)
            total[ok] += past[ok]
            days += ok
        base = np.where(days > 0, total / np.maximum(days, 1), np.nan)
        base = np.maximum(base, 0.5)
        score = -stats.poisson.logsf(window - 1, base) / np.log(10.0)
        score[days < MIN_HISTORY_DAYS] = 0.0
        score[window < MIN_COUNT] = 0.0
        return window, base, score

    def decide(self, state, threshold):
        """Alarm at t when any country's score reaches the threshold."""
        window, base, score = state
        alarm = (score >= threshold).any(axis=0)
        n = alarm.size
        return Decision(
            alarm,
            np.arange(n) - (WINDOW - 1),
            window.sum(axis=0) / WINDOW,
            np.nansum(base, axis=0) / WINDOW,
        )
