"""Calibrate each series' alarm threshold against the tail of its own evidence (POT / SPOT).

The tests' thresholds come from a noise model: one false alarm per series-year if the quiet
state is the fitted negative binomial. Real crowd series are not: bursts that were never
outages are clustered and heavy-tailed. So each series also keeps the peaks of its own
evidence episodes (peaks over a threshold, declustered by runs) and fits a generalised Pareto
tail to them (Pickands-Balkema-de Haan; the streaming form is SPOT, Siffer et al., KDD 2017).
The level that this tail exceeds once per series-year is the series' threshold when it is
above the model's. Evidence is normalised so that 1 is the model threshold of every test:
E = max(log p / log alpha over the windows, S / h over the CUSUMs).

State per series (columns of the `tail` array, shape (n, TAIL_COLUMNS)):
peak of the running episode (0: none, LONG: a sustained rise), minutes below the threshold
since its last exceedance, its age in minutes, and decayed sums over closed episodes: count,
excess, squared excess, exposure minutes.
"""

from __future__ import annotations

import numpy as np

from detector.params import MINUTES_PER_YEAR, Params

TAIL_COLUMNS = 8
PEAK, BELOW, AGE, ALARMED, COUNT, SUM, SUM2, EXPOSURE = range(TAIL_COLUMNS)

LONG = -1.0
"""PEAK of an episode that outlasted tail_burst_minutes: ignored until it ends."""

XI_MAX = 0.45
"""Largest GPD shape used: the method of moments needs xi < 1/2 (finite variance)."""


def evidence(p: np.ndarray, alpha: np.ndarray, cusum: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Return the normalised evidence E of each series, shape (n,).

    p: window tail probabilities before the count gates, shape (n, n_windows); alpha and h:
    the model thresholds, shape (n,); cusum: CUSUM scores, shape (n, n_ratios).
    """
    log_alpha = np.log(alpha)[:, None]
    out = (np.log(np.maximum(p, 1e-300)) / log_alpha).max(axis=1)
    if cusum.shape[1]:  # a configuration may run no CUSUM
        out = np.maximum(out, (cusum / h[:, None]).max(axis=1))
    return out


def learn(
    tail: np.ndarray,
    e: np.ndarray,
    learn_rows: np.ndarray,
    params: Params,
    alarmed: bool = False,
    theta: np.ndarray | None = None,
) -> None:
    """Add one minute of evidence to the episode statistics of the rows that learn, in place.

    An episode starts when E exceeds params.tail_threshold and ends after tail_run_minutes
    below it; its peak's excess (capped at tail_max_factor) then joins the decayed sums. An
    episode above the threshold for longer than tail_burst_minutes is a sustained rise (an
    outage, a news bump), not a burst of the quiet state: it is dropped when it ends. Rows
    that do not learn this minute (not ready, an ingestion gap or its backlog) keep their
    running episode as it is and add no exposure.
    """
    decay = np.exp(-1.0 / (params.tail_days * 1440.0))
    tail[:, COUNT:] *= decay
    tail[:, EXPOSURE] += learn_rows
    u = params.tail_threshold
    over = learn_rows & (e > u)
    fresh = over & (tail[:, PEAK] == 0.0)
    tail[fresh, AGE] = 0.0
    tail[fresh, ALARMED] = 0.0
    if alarmed:
        tail[learn_rows & (tail[:, PEAK] != 0.0) | fresh, ALARMED] = 1.0
    running = learn_rows & (tail[:, PEAK] != 0.0)
    tail[running | fresh, AGE] += 1.0
    grow = over & (tail[:, PEAK] >= 0.0)
    tail[grow, PEAK] = np.maximum(tail[grow, PEAK], e[grow])
    tail[over, BELOW] = 0.0
    below = running & ~over
    tail[below, BELOW] += 1.0
    long = (tail[:, PEAK] > 0.0) & (tail[:, AGE] - tail[:, BELOW] > params.tail_burst_minutes)
    tail[long, PEAK] = LONG
    done = np.flatnonzero(below & (tail[:, BELOW] >= params.tail_run_minutes))
    if done.size:
        burst = done[tail[done, PEAK] > 0.0]
        peak = np.minimum(tail[burst, PEAK], params.tail_max_factor)
        flagged = tail[burst, ALARMED] > 0.0
        if params.tail_alarmed == "drop":
            burst, peak = burst[~flagged], peak[~flagged]
        elif params.tail_alarmed == "censor" and theta is not None:
            peak = np.where(flagged, np.minimum(peak, theta[burst]), peak)
        y = peak - u
        tail[burst, COUNT] += 1.0
        tail[burst, SUM] += y
        tail[burst, SUM2] += y * y
        tail[done, PEAK] = 0.0
        tail[done, BELOW] = 0.0


def thresholds(tail: np.ndarray, weights: np.ndarray, params: Params) -> np.ndarray:
    """Return each series' threshold in evidence units (>= 1), shape (n,).

    weights: each series' share of the false-alarm budget (series-equivalents), shape (n,).
    The GPD of the episode excesses (method of moments, shape clipped to [0, XI_MAX]) gives
    the level exceeded at the target rate params.false_alarms_per_series_year * weight;
    series with fewer than tail_min_episodes episodes keep the model threshold 1.
    """
    count, total, total2, exposure = (tail[:, c] for c in (COUNT, SUM, SUM2, EXPOSURE))
    theta = np.ones(tail.shape[0])
    fit = (count >= params.tail_min_episodes) & (exposure > 0)
    if not fit.any():
        return theta
    k, s1, s2, t = count[fit], total[fit], total2[fit], exposure[fit]
    mean = s1 / k
    var = np.maximum(s2 / k - mean * mean, 1e-12)
    xi = np.clip(0.5 * (1.0 - mean * mean / var), 0.0, XI_MAX)
    # sigma from the moments at the clipped shape: mean excess = sigma / (1 - xi).
    sigma = np.maximum(mean * (1.0 - xi), 1e-9)
    target = params.false_alarms_per_series_year * weights[fit] / MINUTES_PER_YEAR
    ratio = np.maximum(k / t / target, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(xi > 1e-6, (ratio**xi - 1.0) / np.maximum(xi, 1e-6), np.log(ratio))
    level = params.tail_threshold + sigma * growth
    theta[fit] = np.clip(level, 1.0, params.tail_max_factor)
    return theta
