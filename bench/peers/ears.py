"""CDC EARS C2 and C3 peers (Hutwagner et al. 2003, 2005; Fricker et al. 2008).

EARS compares the current unit's count with the mean and standard deviation of 7 baseline
units lagged by 2 units. The unit here is a 15-minute count (EARS was built for daily counts,
which cannot see outages lasting minutes), evaluated every minute on the trailing 15 minutes,
with baseline units ending 45 to 135 minutes earlier. C2 alarms at 3 sigma; C3 sums
max(0, C2 - 1) over the current and the two previous units and alarms at 2.
"""

from __future__ import annotations

import numpy as np

from peers.common import Decision, Peer, counts_of, lagged, rolling_sum

UNIT = 15
"""Minutes per EARS time unit."""

BASELINE_UNITS = 7
"""Units in the moving baseline."""

LAG_UNITS = 2
"""Units between the baseline and the current unit."""

MIN_SIGMA = 1.0
"""Floor on the baseline standard deviation, reports per unit (avoids dividing by zero)."""


def c2_statistic(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return C2, the unit count and the baseline mean per minute, shapes (n_minutes,)."""
    unit = rolling_sum(series, UNIT)
    base = np.vstack([lagged(unit, UNIT * (LAG_UNITS + j)) for j in range(1, BASELINE_UNITS + 1)])
    mean = base.mean(axis=0)
    sd = np.maximum(base.std(axis=0, ddof=1), MIN_SIGMA)
    c2 = (unit - mean) / sd
    c2[np.isnan(c2)] = 0.0
    return c2, unit, np.nan_to_num(mean)


class EarsC2(Peer):
    """EARS C2: 15-minute count >= mean + 3 sd of units t-9..t-3."""

    name = "ears_c2"
    threshold = 3.0
    sweep = (2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0)

    def prepare(self, service, leaf_keys, start_minute, reports, reporters):
        """Return the C2 statistic, unit counts and baseline means of the service total."""
        return c2_statistic(counts_of(reports, reporters).sum(axis=0))

    def statistic(self, state) -> np.ndarray:
        """Return the statistic compared with the threshold, shape (n_minutes,)."""
        return state[0]

    def decide(self, state, threshold):
        """Alarm where the statistic reaches the threshold."""
        _, unit, mean = state
        alarm = self.statistic(state) >= threshold
        n = alarm.size
        return Decision(alarm, np.arange(n) - (UNIT - 1), unit / UNIT, mean / UNIT)


class EarsC3(EarsC2):
    """EARS C3: sum of max(0, C2 - 1) over the current and two previous units >= 2."""

    name = "ears_c3"
    threshold = 2.0
    sweep = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)

    def statistic(self, state) -> np.ndarray:
        """Return the C3 statistic, shape (n_minutes,)."""
        part = np.maximum(0.0, state[0] - 1.0)
        return part + lagged(part, UNIT, 0.0) + lagged(part, 2 * UNIT, 0.0)
