"""One minute of statistics over all series: backlog repayment, window tests, CUSUMs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.baseline import Baseline
from detector.nbstats import cusum_step, nb_sf
from detector.params import Params
from detector.state import MinuteState

GLOBAL_ROW = 0
"""Row of the ("*", "*") series in every index."""

_SCREEN_Z2 = 6.25
"""Squared z-score below which a window is not worth an exact tail probability."""


@dataclass(frozen=True)
class MinuteTests:
    """Test results of one minute; arrays have one row per series."""

    minute: int
    x: np.ndarray
    """Counted reporters this minute after backlog repayment, shape (n,)."""
    mu: np.ndarray
    """Expected counted reporters this minute, shape (n,)."""
    window_obs: np.ndarray
    """Observed counts per window, shape (n, n_windows)."""
    window_exp: np.ndarray
    window_var: np.ndarray
    window_raw: np.ndarray
    """Raw reports per window, shape (n, n_windows)."""
    p: np.ndarray
    """Window tail probabilities, 1 where a gate failed, shape (n, n_windows)."""
    p_ratio: np.ndarray
    """Window tail probabilities where the relative gates (ratio, reporter diversity) pass,
    before the count gates; 1 elsewhere, shape (n, n_windows)."""
    cusum_ratio: np.ndarray
    """CUSUM scores where the run passes its ratio gate, 0 elsewhere, shape (n, n_ratios)."""
    window_alarm: np.ndarray
    cusum: np.ndarray
    """CUSUM scores, shape (n, n_ratios)."""
    cusum_alarm: np.ndarray
    """CUSUM alarms after gates, shape (n, n_ratios)."""
    alarm: np.ndarray
    """Any test alarmed (gates passed), shape (n,)."""
    alpha: np.ndarray
    """Window-test threshold per series, shape (n,)."""
    cusum_h: np.ndarray
    """CUSUM threshold per series, shape (n,)."""
    prefix_diversity: float | None
    low_diversity: bool
    """True when the service's recent reports come from too few network prefixes."""


def repay_backlog(
    state: MinuteState, minute: int, x: np.ndarray, mu: np.ndarray, active: bool, params: Params
) -> np.ndarray:
    """Return x with bursts after an ingestion gap first repaying the missing mass.

    A run of minutes where the global count is below gap_fraction of expected, missing at
    least gap_min_expected reports, is an ingestion gap; per-series deficits then become a
    credit that absorbs excess counts for backlog_ttl_minutes.
    """
    if active:
        if x[GLOBAL_ROW] <= params.gap_fraction * mu[GLOBAL_ROW]:
            state.gap_deficit += np.maximum(mu - x, 0.0)
            state.gap_expected += float(mu[GLOBAL_ROW])
        else:
            if state.gap_expected >= params.gap_min_expected:
                state.credit += params.backlog_credit_factor * state.gap_deficit
                state.credit_until = minute + params.backlog_ttl_minutes
            state.gap_deficit[:] = 0.0
            state.gap_expected = 0.0
    if minute > state.credit_until and state.credit_until >= 0:
        state.credit[:] = 0.0
        state.credit_until = -1
    if state.credit_until < 0:
        return x
    repay = np.minimum(state.credit, np.maximum(x - mu, 0.0))
    state.credit -= repay
    return x - repay


def _prefix_diversity(state: MinuteState, minute: int) -> float | None:
    """Return network prefixes / counted reporters of the service, the lower of this
    minute's and the last 5 minutes' (so a burst is judged at once); None if unknown."""
    worst = None
    for span in (1, 5):
        minutes = np.arange(minute - span + 1, minute + 1) % state.params.recent_minutes
        prefixes = state.ring_prefix[minutes]
        known = prefixes >= 0
        reporters = float(state.ring_x[GLOBAL_ROW, minutes[known]].sum())
        if known.any() and reporters > 0:
            ratio = float(prefixes[known].sum()) / reporters
            worst = ratio if worst is None else min(worst, ratio)
    return worst


def alarm_weights(n: int, params: Params) -> np.ndarray:
    """Return each series' share of the false-alarm budget, in series-equivalents, shape (n,).

    The global series gets 1; all other series share params.child_alarm_budget equally, so
    a service's nominal false-alarm rate stays bounded however many series it grows.
    """
    weights = np.ones(n)
    if n > 1:
        weights[1:] = min(1.0, params.child_alarm_budget / (n - 1))
    return weights


def _window_sums(
    state: MinuteState, minute: int, x: np.ndarray, raw: np.ndarray, mu: np.ndarray, params: Params
) -> None:
    """Record a minute in the ring and slide the window sums (exact recount hourly)."""
    size = params.recent_minutes
    state.ring[:, :, minute % size] = np.stack([x, mu, raw], axis=1)
    if minute % 60 == 0:
        cols = (minute - np.arange(max(params.windows))) % size
        picks = np.asarray(params.windows) - 1
        state.win = np.cumsum(state.ring[:, :, cols], axis=2)[:, :, picks]
        return
    leaving = (minute - np.asarray(params.windows)) % size
    state.win += state.ring[:, :, minute % size, None] - state.ring[:, :, leaving]
    np.maximum(state.win, 0.0, out=state.win)


def mix_shifted(
    obs: np.ndarray,
    exp: np.ndarray,
    mix_parent: np.ndarray,
    params: Params,
    phi: np.ndarray | None = None,
) -> np.ndarray:
    """Tell which problem series rose more than the other problems of their region.

    obs, exp: window sums, shape (n, k); mix_parent: row of (region, "*") for a problem
    series, -1 otherwise, shape (n,); phi: variance / mean of each series, shape (n,).
    A problem's ratio must be mix_shift times the rest's and, when phi is given, its count
    significant given its region's count: under a broad rise (every problem scaled alike)
    the problem's count given the region's is binomial with its normal share s, variance
    phi s (1 - s) N; the shift must exceed mix_z of those standard deviations. A problem
    whose rest of region has almost no expected reports (a one-problem service) counts as
    shifted. Returns shape (n, k).
    """
    out = np.zeros(obs.shape, dtype=bool)
    rows = np.flatnonzero(mix_parent >= 0)
    if rows.size == 0:
        return out
    parent = mix_parent[rows]
    rest_obs = obs[parent] - obs[rows]
    rest_exp = exp[parent] - exp[rows]
    ratio = obs[rows] / np.maximum(exp[rows], 1e-9)
    rest_ratio = rest_obs / np.maximum(rest_exp, 1e-9)
    shifted = ratio >= params.mix_shift * rest_ratio
    if phi is not None:
        share = np.clip(exp[rows] / np.maximum(exp[parent], 1e-9), 0.0, 1.0)
        total = obs[parent]
        spread = np.sqrt(phi[rows, None] * share * (1.0 - share) * np.maximum(total, 1.0))
        shifted &= obs[rows] - share * total >= params.mix_z * spread
    out[rows] = (rest_exp < 1.0) | shifted
    return out


def cusum_gates(
    run_obs: np.ndarray, run_exp: np.ndarray, run_len: np.ndarray, params: Params
) -> np.ndarray:
    """Effect-size gates of a CUSUM run (all arrays of shape (n, n_ratios)).

    The ratio gate scales with the evidence: min_ratio for a run shorter than
    sustained_minutes (a short burst must be a clear effect, the baseline may be off by tens
    of percent for a few minutes), sustained_ratio once the run has lasted that long.
    """
    return (
        (run_obs >= params.min_reporters)
        & (run_obs - run_exp >= params.min_excess)
        & (run_obs >= _ratio_gate(run_len, params) * run_exp)
    )


def _ratio_gate(run_len: np.ndarray, params: Params) -> np.ndarray:
    """Return the ratio a CUSUM run of this length must show (see cusum_gates)."""
    return np.where(run_len >= params.sustained_minutes, params.sustained_ratio, params.min_ratio)


def run_tests(
    state: MinuteState,
    minute: int,
    x: np.ndarray,
    raw: np.ndarray,
    mu: np.ndarray,
    base: Baseline,
    ready: np.ndarray,
    alpha: np.ndarray,
    threshold: np.ndarray,
    tilt: np.ndarray,
    mix_parent: np.ndarray,
    prefixes: int | None,
    params: Params,
) -> MinuteTests:
    """Record one minute and run every test on every series.

    alpha, threshold: per-series window-test level and CUSUM threshold, shape (n,).
    A rise below params.broad_ratio alarms only on a problem series whose share of its
    region grew (mix_shifted): broad moderate rises (news, holidays, big evenings, growth)
    lift every problem alike, while outages break one or two features.
    """
    _window_sums(state, minute, x, raw, mu, params)
    state.ring_prefix[minute % params.recent_minutes] = (
        -1.0 if prefixes is None else float(prefixes)
    )
    if prefixes is not None:
        state.prefix_minute = minute
    obs, exp, rawsum = state.win[:, 0].copy(), state.win[:, 1].copy(), state.win[:, 2].copy()
    var = base.variance(exp, minutes=np.asarray(params.windows, dtype=float))

    # NB and Poisson right tails are heavier than the normal's, so nothing within 2.5
    # standard deviations of the mean can reach a tail probability below ~6e-3, under the
    # evidence that detector/tails.py learns from: skip it.
    screen = ready[:, None] & (obs > exp) & ((obs - exp) ** 2 > _SCREEN_Z2 * var)
    p_raw = np.ones(obs.shape)
    if screen.any():
        p_raw[screen] = nb_sf(obs[screen], exp[screen], var[screen])
    # Relative gates (ratio, diversity, broad rise or mix shift) before the count gates: the
    # tail calibration (detector/tails.py) learns from what could alarm but for its size.
    relative = (
        screen & (obs >= params.min_ratio * exp) & (obs >= params.min_reporter_diversity * rawsum)
    )
    gated = relative.copy()
    ratios = np.asarray(params.cusum_ratios, dtype=float)
    state.cusum = cusum_step(state.cusum, x, mu, tilt, ratios) * ready[:, None]
    running = state.cusum > 0
    state.run_obs = (state.run_obs + x[:, None]) * running
    state.run_exp = (state.run_exp + mu[:, None]) * running
    state.run_len = (state.run_len + 1.0) * running
    ratio_ok = running & (state.run_obs >= _ratio_gate(state.run_len, params) * state.run_exp)
    strong = obs >= params.broad_ratio * exp
    strong_run = state.run_obs >= params.broad_ratio * state.run_exp
    weak, weak_run = relative & ~strong, ratio_ok & ~strong_run
    if weak.any() or weak_run.any():
        window_shifted = mix_shifted(obs, exp, mix_parent, params, base.phi)
        relative &= strong | window_shifted
        ratio_ok &= strong_run | window_shifted[:, -1:]
    p_ratio = np.where(relative, p_raw, 1.0)
    cusum_ratio = np.where(ratio_ok, state.cusum, 0.0)

    count_gates = (obs >= params.min_reporters) & (obs - exp >= params.min_excess)
    p = np.where(gated & count_gates, p_raw, 1.0)
    window_alarm = (p_ratio <= alpha[:, None]) & count_gates
    crossed = state.cusum >= threshold[:, None]
    cusum_alarm = (
        crossed & ratio_ok & cusum_gates(state.run_obs, state.run_exp, state.run_len, params)
    )
    scores = state.cusum.copy()
    if cusum_alarm.any():
        # Restart a CUSUM once it alarmed: a later alarm needs fresh evidence. A CUSUM that
        # crossed while its gates failed keeps its score and run, so evidence that keeps
        # accumulating (a sustained moderate rise) alarms once its effect size is clear.
        state.cusum[cusum_alarm] = 0.0
        state.run_obs[cusum_alarm] = 0.0
        state.run_exp[cusum_alarm] = 0.0
        state.run_len[cusum_alarm] = 0.0
    diversity = None
    if state.prefix_minute is not None and minute - state.prefix_minute < 5:
        diversity = _prefix_diversity(state, minute)
    low = diversity is not None and diversity < params.min_prefix_diversity
    alarm = window_alarm.any(axis=1) | cusum_alarm.any(axis=1)
    return MinuteTests(
        minute,
        x,
        mu,
        obs,
        exp,
        var,
        rawsum,
        p,
        p_ratio,
        cusum_ratio,
        window_alarm,
        scores,
        cusum_alarm,
        alarm,
        alpha,
        threshold,
        diversity,
        low,
    )
