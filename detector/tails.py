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
peak of the running episode (0: none), minutes below the threshold since its last exceedance,
and decayed sums over closed episodes: count, excess, squared excess, exposure minutes.
"""

from __future__ import annotations

import numpy as np

from detector.params import MINUTES_PER_YEAR, Params

TAIL_COLUMNS = 6
PEAK, BELOW, COUNT, SUM, SUM2, EXPOSURE = range(TAIL_COLUMNS)

XI_MAX = 0.45
"""Largest GPD shape used: the method of moments needs xi < 1/2 (finite variance)."""


def evidence(p: np.ndarray, alpha: np.ndarray, cusum: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Return the normalised evidence E of each series, shape (n,).

    p: window tail probabilities before effect-size gates, shape (n, n_windows); alpha and h:
    the model thresholds, shape (n,); cusum: CUSUM scores, shape (n, n_ratios).
    """
    log_alpha = np.log(alpha)[:, None]
    windows = np.log(np.maximum(p, 1e-300)) / log_alpha
    return np.maximum(windows.max(axis=1), (cusum / h[:, None]).max(axis=1))


def learn(
    tail: np.ndarray,
    e: np.ndarray,
    learn_rows: np.ndarray,
    params: Params,
    drop_rows: np.ndarray | None = None,
) -> None:
    """Add one minute of evidence to the episode statistics of the rows that learn, in place.

    An episode starts when E exceeds params.tail_threshold and ends after tail_run_minutes
    below it; its peak's excess then joins the decayed sums. Rows that do not learn this
    minute (an ingestion gap, a backlog) keep their running episode as it is; drop_rows
    (inside an incident) lose it: an outage is not the quiet state.
    """
    decay = np.exp(-1.0 / (params.tail_days * 1440.0))
    tail[:, COUNT:] *= decay
    tail[:, EXPOSURE] += learn_rows
    u = params.tail_threshold
    over = learn_rows & (e > u)
    tail[over, PEAK] = np.maximum(tail[over, PEAK], e[over])
    tail[over, BELOW] = 0.0
    running = learn_rows & ~over & (tail[:, PEAK] > 0.0)
    tail[running, BELOW] += 1.0
    done = np.flatnonzero(running & (tail[:, BELOW] >= params.tail_run_minutes))
    if done.size:
        y = tail[done, PEAK] - u
        tail[done, COUNT] += 1.0
        tail[done, SUM] += y
        tail[done, SUM2] += y * y
        tail[done, PEAK] = 0.0
        tail[done, BELOW] = 0.0
    if drop_rows is not None:
        tail[drop_rows, PEAK] = 0.0
        tail[drop_rows, BELOW] = 0.0


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
