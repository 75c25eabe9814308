"""Twitter S-H-ESD peer (AnomalyDetection R package; Hochenbaum, Vallis, Kejariwal 2017).

Seasonal Hybrid ESD: remove the seasonal component of an STL decomposition with a periodic
seasonal window and the median of the data, then run a one-sided generalized ESD test (Rosner
1983) with the median and MAD instead of the mean and standard deviation, flagging at most
`max_anoms` of the points. Run causally in the package's live mode (`only_last`): every
CADENCE minutes, on the trailing WINDOW_DAYS days of minute counts (period 1440), report the
anomalies that fall in the newest CADENCE minutes.

The periodic STL seasonal is the per-phase mean of the detrended series; the robust STL
(robust=TRUE, as the package calls it) downweights outliers, which we approximate by the
per-phase median after removing a one-period moving-average trend.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from peers.common import Decision, Peer, counts_of

PERIOD = 1440
"""Observations per seasonal period (minute data, daily season), as the package picks."""

WINDOW_DAYS = 4
"""Days in the sliding window (the package needs at least 2 periods)."""

CADENCE = 5
"""Minutes between runs; each run reports anomalies among its newest CADENCE minutes."""

MAX_ANOMS = 0.02
"""Largest fraction of the window flagged (the package's examples use 0.02; default 0.10)."""


def _mad_sorted(a: np.ndarray, sizes: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Return the MAD (x1.4826, as R's mad) of every prefix a[:m] of sorted a, m in sizes.

    Exact order statistics of |a[:m] - med| found by bisection on the value, vectorised over
    the prefixes.
    """

    def kth(q: np.ndarray) -> np.ndarray:
        lo = np.zeros_like(med)
        hi = np.maximum(med - a[0], a[sizes - 1] - med) + 1.0
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            count = np.minimum(np.searchsorted(a, med + mid, "right"), sizes) - np.searchsorted(
                a, med - mid, "left"
            )
            ok = count >= q + 1
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid)
        return hi

    lower = kth((sizes - 1) // 2)
    upper = kth(sizes // 2)
    return 1.4826 * 0.5 * (lower + upper)


def esd_statistics(residual: np.ndarray, k: int) -> np.ndarray:
    """Return the one-sided ESD statistics R_1..R_k of residual (largest removed first).

    R_i = (max - median) / MAD of the points left after removing the i-1 largest; NaN once
    the MAD is zero (the package stops there).
    """
    a = np.sort(residual)
    n = a.size
    sizes = n - np.arange(k)
    med = np.where(
        sizes % 2 == 1,
        a[(sizes - 1) // 2],
        0.5 * (a[np.maximum(sizes // 2 - 1, 0)] + a[sizes // 2]),
    )
    mad = _mad_sorted(a, sizes, med)
    top = a[sizes - 1]
    r = np.where(mad > 0, (top - med) / np.where(mad > 0, mad, 1.0), np.nan)
    zero = np.flatnonzero(~(mad > 0))
    if zero.size:
        r[zero[0] :] = np.nan
    return r


def esd_critical(n: int, k: int, alpha: float) -> np.ndarray:
    """Return the one-sided generalized ESD critical values lambda_1..lambda_k for n points."""
    i = np.arange(1, k + 1)
    p = 1.0 - alpha / (n - i + 1)
    t = stats.t.ppf(p, n - i - 1)
    return t * (n - i) / np.sqrt((n - i - 1 + t**2) * (n - i + 1))


def seasonal_residual(window: np.ndarray) -> np.ndarray:
    """Return data minus the periodic seasonal component minus the median, shape as window."""
    n = window.size
    c = np.concatenate(([0.0], np.cumsum(window)))
    half = PERIOD // 2
    idx = np.arange(n)
    lo = np.clip(idx - half, 0, n)
    hi = np.clip(idx + half, 0, n)
    trend = (c[hi] - c[lo]) / (hi - lo)
    phases = (window - trend).reshape(-1, PERIOD)
    seasonal = np.median(phases, axis=0)
    seasonal -= seasonal.mean()
    return window - np.tile(seasonal, n // PERIOD) - np.median(window)


class Shesd(Peer):
    """Seasonal hybrid ESD on a trailing window, newest minutes only."""

    name = "shesd"
    threshold = 0.05
    """ESD significance level alpha (the package default)."""
    sweep = (0.5, 0.2, 0.05, 0.01, 1e-3, 1e-4, 1e-6, 1e-9)

    def prepare(self, service, leaf_keys, start_minute, reports, reporters):
        """Run the ESD iterations of every causal window whose newest minutes rank in the top k."""
        series = counts_of(reports, reporters).sum(axis=0)
        n_total = series.size
        width = WINDOW_DAYS * PERIOD
        k = int(MAX_ANOMS * width)
        runs = []
        for end in range(width, n_total + 1, CADENCE):
            window = series[end - width : end]
            res = seasonal_residual(window)
            newest = res[-CADENCE:].max()
            kth_largest = np.partition(res, width - k)[width - k]
            if newest < kth_largest:
                continue
            # rank (1-based, largest first) of the newest block's biggest residual
            rank = int((res > newest).sum()) + 1
            runs.append(
                (
                    end - 1,
                    rank,
                    esd_statistics(res, k),
                    float(window[-CADENCE:].mean()),
                    float(np.median(window)),
                )
            )
        return runs, n_total, width, k

    def decide(self, state, threshold):
        """Alarm at a run's last minute when ESD at alpha=threshold flags a newest point."""
        runs, n_total, width, k = state
        lam = esd_critical(width, k, threshold)
        alarm = np.zeros(n_total, dtype=bool)
        observed = np.zeros(n_total)
        expected = np.zeros(n_total)
        for t, rank, r, obs, med in runs:
            above = np.flatnonzero(r > lam)
            if above.size and above[-1] + 1 >= rank:
                alarm[t] = True
                observed[t], expected[t] = obs, med
        onset = np.arange(n_total) - (CADENCE - 1)
        return Decision(alarm, onset, observed, expected)
