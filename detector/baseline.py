"""Fit per-series expected rates by slot of week from 15-minute rollups, robustly.

Shapes: n = number of series; H = history slots (ring); 672 = 15-minute slots per week.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from detector.dispersion import ROBUST_PASSES, residual_moments, solve_dispersion
from detector.nbstats import nb_variance
from detector.params import SLOT_MINUTES, SLOTS_PER_DAY, SLOTS_PER_WEEK, Params

MINUTES_PER_WEEK = SLOTS_PER_WEEK * SLOT_MINUTES


class BaselineMode(enum.StrEnum):
    """How much history the baseline could use (a named result, never NaN)."""

    INSUFFICIENT_HISTORY = "insufficient_history"
    FLAT = "flat"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline: expected 15-minute counts by slot of week, and dispersion."""

    mode: BaselineMode
    profile: np.ndarray
    """Expected counts per 15-minute slot, shape (n, 672), slot of week = slot % 672."""
    phi: np.ndarray
    """Variance / mean when all extra variance is put on short windows, shape (n,)."""
    phi_q: np.ndarray
    """Poisson overdispersion of the two-parameter fit, shape (n,)."""
    c2: np.ndarray
    """Squared coefficient of variation of the level (two-parameter fit), shape (n,)."""
    fitted_slot: int
    """Absolute slot (minute // 15) at which the fit was made (uses slots before it)."""
    own_counts: np.ndarray
    """Counts of each series in the history used by the fit, shape (n,)."""
    c2_minute: np.ndarray | None = None
    """Quadratic coefficient of one-minute counts (Var = a m + c2_minute m^2), from the
    decayed one-minute residual moments, shape (n,); None: not measured, treated as c2."""
    phi_free: np.ndarray | None = None
    """Linear coefficient of the two-parameter fit before the level-noise floor lowers it,
    shape (n,); None: unknown (see minute_dispersion)."""

    def minute_dispersion(self, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """Return (a, b), shape (n,) each: the variance / mean of one minute's count at
        expected rate mu is a + b mu (the CUSUM tilt follows it through the day).

        b = max(c2 H, c2_minute), H = level_noise_horizon: the quadratic noise counted as
        drawn afresh every minute (the one-minute dispersion) or as level noise common to the
        horizon (the H-minute one), never below the measured one-minute coefficient.
        a = max(phi_free, phi - b m): the two-parameter fit's intercept, or the linear fit
        (a day-average variance / mean) less the quadratic part at the mean rate m, whichever
        is larger (the split is poorly identified for sparse series, the sum is not).
        Counts whose variance / mean grows with the rate are less dispersed off-peak and more
        at the peak than their day-average phi; this follows them.
        """
        slope = self.c2 * params.level_noise_horizon
        if self.c2_minute is not None:
            slope = np.maximum(slope, self.c2_minute)
        mean_rate = self.profile.mean(axis=1) / SLOT_MINUTES
        intercept = self.phi - slope * mean_rate
        if self.phi_free is not None:
            intercept = np.maximum(intercept, self.phi_free)
        return np.maximum(intercept, 1.0), slope

    def ready(self, params: Params) -> np.ndarray:
        """Tell which series have enough history to be tested, shape (n,)."""
        return (self.own_counts >= params.min_series_reports) & (
            self.mode is not BaselineMode.INSUFFICIENT_HISTORY
        )

    @classmethod
    def empty(cls, n: int, fitted_slot: int = -1) -> Baseline:
        """Return the baseline of a service without enough history."""
        return cls(
            BaselineMode.INSUFFICIENT_HISTORY,
            np.zeros((n, SLOTS_PER_WEEK)),
            np.ones(n),
            np.ones(n),
            np.ones(n),
            fitted_slot,
            np.zeros(n),
        )

    def variance(
        self,
        mean: np.ndarray,
        rows: slice | int | np.ndarray = slice(None),
        minutes: float | np.ndarray = SLOT_MINUTES,
    ) -> np.ndarray:
        """Return the NB variance of window sums with this mean; mean shape (rows,) or (rows, k).

        minutes: window length(s), scalar or shape (k,). The quadratic term splits into
        minute-to-minute noise (k_iid, averages out over a window) and level noise common to a
        slot (k_lvl): c2(w) = k_lvl + k_iid / w, with c2(15) = c2 from the 15-minute history
        and c2(1) = c2_minute from one-minute residuals, so c2(w) = c2 + (c2_minute - c2)
        (15 / w - 1) / 14 for windows under a slot, never below c2.
        """
        mean = np.asarray(mean, dtype=float)
        c2_minute = self.c2 if self.c2_minute is None else self.c2_minute
        phi, phi_q, c2, extra = (
            a[rows] for a in (self.phi, self.phi_q, self.c2, np.maximum(c2_minute - self.c2, 0.0))
        )
        if mean.ndim == 2:
            phi, phi_q, c2, extra = phi[:, None], phi_q[:, None], c2[:, None], extra[:, None]
        w = np.minimum(np.asarray(minutes, dtype=float), SLOT_MINUTES)
        c2 = c2 + extra * (SLOT_MINUTES / w - 1.0) / (SLOT_MINUTES - 1.0)
        return nb_variance(mean, phi, phi_q, c2)

    def grown(self, extra: int) -> Baseline:
        """Return this baseline with `extra` unfitted rows appended."""
        return Baseline(
            self.mode,
            np.concatenate([self.profile, np.zeros((extra, SLOTS_PER_WEEK))]),
            np.concatenate([self.phi, np.ones(extra)]),
            np.concatenate([self.phi_q, np.ones(extra)]),
            np.concatenate([self.c2, np.ones(extra)]),
            self.fitted_slot,
            np.concatenate([self.own_counts, np.zeros(extra)]),
            None if self.c2_minute is None else np.concatenate([self.c2_minute, np.ones(extra)]),
            None if self.phi_free is None else np.concatenate([self.phi_free, np.ones(extra)]),
        )


def expected_per_minute(profile: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Interpolate expected reports per minute at epoch minutes, shape (n, len(minutes))."""
    minutes = np.asarray(minutes, dtype=np.int64)
    q = ((minutes % MINUTES_PER_WEEK) + 0.5) / SLOT_MINUTES - 0.5
    base = np.floor(q)
    frac = q - base
    j0 = base.astype(np.int64) % SLOTS_PER_WEEK
    j1 = (j0 + 1) % SLOTS_PER_WEEK
    return ((1.0 - frac) * profile[:, j0] + frac * profile[:, j1]) / SLOT_MINUTES


def _smooth(values: np.ndarray, kernel: tuple[float, ...]) -> np.ndarray:
    """Circularly smooth along the last axis with a centred kernel."""
    weights = np.asarray(kernel, dtype=float)
    weights = weights / weights.sum()
    half = len(weights) // 2
    out = np.zeros_like(values)
    for offset, weight in zip(range(-half, half + 1), weights, strict=True):
        out += weight * np.roll(values, offset, axis=-1)
    return out


def _robust_mean(values: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 1 of valid values after clipping each to median +- 3 sqrt(median + 1).

    Unbiased for ordinary counts, while one spike (or dip) among the weeks moves it little.
    values: shape (n, k, s); ok: shape (k, s). Returns (mean (n, s), count (s,)).
    """
    count = ok.sum(axis=0)
    ordered = np.sort(np.where(ok[None], values, np.inf), axis=1)
    lo_idx = np.broadcast_to(np.maximum(count - 1, 0) // 2, ordered[:, 0].shape)[:, None]
    hi_idx = np.broadcast_to(np.maximum(count, 1) // 2, ordered[:, 0].shape)[:, None]
    lo = np.take_along_axis(ordered, np.minimum(lo_idx, values.shape[1] - 1), axis=1)[:, 0]
    hi = np.take_along_axis(ordered, np.minimum(hi_idx, values.shape[1] - 1), axis=1)[:, 0]
    median = np.where(
        count > 0,
        0.5 * (np.where(np.isfinite(lo), lo, 0.0) + np.where(np.isfinite(hi), hi, 0.0)),
        0.0,
    )
    spread = 3.0 * np.sqrt(median + 1.0)
    clipped = np.clip(values, (median - spread)[:, None], (median + spread)[:, None])
    total = np.where(ok[None], clipped, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0), count


def _same_time_of_day(cube: np.ndarray, ok: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Return, per slot of the period, the mean of valid slots at the same time of day.

    The fallback of a slot with no valid past value (every past week of it was an incident):
    the same time of day on other days keeps the daily shape, where a flat mean would
    underestimate a peak several-fold. cube: shape (n, reps, period), period a multiple of a
    day; ok: shape (reps, period); flat: per-series fallback, shape (n,). Returns (n, period).
    """
    n, reps, period = cube.shape
    days = period // SLOTS_PER_DAY
    vals = cube.reshape(n, reps * days, SLOTS_PER_DAY)
    valid = ok.reshape(reps * days, SLOTS_PER_DAY)
    count = valid.sum(axis=0)
    daily = np.where(valid[None], vals, 0.0).sum(axis=1) / np.maximum(count, 1)
    daily = np.where(count[None] > 0, daily, flat[:, None])
    return np.tile(daily, (1, days))


def _inflation(kernel: tuple[float, ...], reps: int, mode: BaselineMode, span: int) -> float:
    """Return the factor turning in-sample squared residuals into prediction error variance."""
    if mode is BaselineMode.FLAT:
        own, sq = 1.0 / span, 1.0 / span
    else:
        weights = np.asarray(kernel, dtype=float) / sum(kernel)
        own = weights[len(weights) // 2] / reps
        sq = float((weights**2).sum()) / reps
    return (1.0 + sq) / max((1.0 - own) ** 2 + sq - own * own, 1e-3)


def _gather(
    hist: np.ndarray, excluded: np.ndarray, now_slot: int, first_slot: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the last `length` complete slots (n, length) and their validity (length,)."""
    slots = np.arange(now_slot - length, now_slot, dtype=np.int64)
    ring = slots % hist.shape[1]
    ok = (slots >= first_slot) & ~excluded[ring]
    return hist[:, ring].astype(float), ok


def _borrow(
    profile: np.ndarray,
    totals: np.ndarray,
    support: np.ndarray,
    donors: np.ndarray,
    depths: np.ndarray,
    prior: float,
) -> np.ndarray:
    """Shrink each series' profile towards its donor's shape scaled by its share.

    support: counts behind each point of the own profile, shape (n,); the own profile gets
    weight support / (support + prior).
    """
    out = profile.copy()
    for depth in range(1, int(depths.max(initial=0)) + 1):
        rows = np.flatnonzero((depths == depth) & (donors >= 0))
        if rows.size == 0:
            continue
        donor = donors[rows]
        weight = support[rows] / (support[rows] + prior)
        share = (totals[rows] + 0.5) / (totals[donor] + 1.0)
        out[rows] = weight[:, None] * profile[rows] + (1.0 - weight[:, None]) * (
            share[:, None] * out[donor]
        )
    return out


def _shrink_in_time(
    chrono: np.ndarray,
    totals: np.ndarray,
    kernel_points: float,
    donors: np.ndarray,
    params: Params,
) -> np.ndarray:
    """Shrink the profile of series without a donor towards its daily shape, and that
    towards its flat mean, by the counts behind each point (shape (n, period)).

    A sparse series' weekly profile is mostly sampling noise (a few reports per week spread
    over 672 slots); read as a shape it makes single reports look like bursts. Each level
    keeps weight support / (support + borrow_prior_counts), as in _borrow.
    kernel_points: effective slots behind one smoothed point.
    """
    n, period = chrono.shape
    rows = np.flatnonzero(donors < 0)
    if rows.size == 0:
        return chrono
    days = period // SLOTS_PER_DAY
    own = chrono[rows]
    total = totals[rows][:, None]
    flat = own.mean(axis=1, keepdims=True)
    daily = own.reshape(rows.size, days, SLOTS_PER_DAY).mean(axis=1)
    w_day = total * kernel_points / SLOTS_PER_DAY
    w_day = w_day / (w_day + params.borrow_prior_counts)
    daily = w_day * daily + (1.0 - w_day) * flat
    out = chrono.copy()
    if days > 1:
        w_week = total * kernel_points / period
        w_week = w_week / (w_week + params.borrow_prior_counts)
        out[rows] = w_week * own + (1.0 - w_week) * np.tile(daily, (1, days))
    else:
        out[rows] = daily
    return out


def fit_baseline(
    hist: np.ndarray,
    excluded: np.ndarray,
    now_slot: int,
    first_slot: int,
    donors: np.ndarray,
    depths: np.ndarray,
    params: Params,
    minute_moments: np.ndarray | None = None,
) -> Baseline:
    """Fit the baseline from the rollup ring using only slots before now_slot.

    hist: 15-minute counts ring, shape (n, H); excluded: incident slots, shape (H,);
    first_slot: first complete slot of service data; donors, depths: shape (n,);
    minute_moments: decayed residual_moments of one-minute counts, shape (n, MOMENTS) (their
    quadratic coefficient is used once a day of minutes is behind it).
    """
    n, size = hist.shape
    span = min(now_slot - first_slot, size)
    if n == 0 or span < params.min_history_hours * 4:
        return Baseline.empty(n, now_slot)
    weeks = min(span // SLOTS_PER_WEEK, params.history_weeks)
    if span >= params.weekly_after_days * SLOTS_PER_DAY and weeks >= 1:
        mode, period, reps, floor = (
            BaselineMode.WEEKLY,
            SLOTS_PER_WEEK,
            weeks,
            params.level_noise_floor,
        )
    elif span >= params.daily_after_hours * 4:
        mode, period, reps, floor = (
            BaselineMode.DAILY,
            SLOTS_PER_DAY,
            min(span // SLOTS_PER_DAY, 7),
            params.daily_level_cv,
        )
    else:
        mode, period, reps, floor = BaselineMode.FLAT, span, 1, params.cold_start_level_cv
    vals, ok = _gather(hist, excluded, now_slot, first_slot, period * reps)
    totals = (vals * ok).sum(axis=1)
    if mode is BaselineMode.FLAT:
        rate = totals / max(int(ok.sum()), 1)
        chrono = np.repeat(rate[:, None], period, axis=1)
        scale = np.ones((n, 1))
    else:
        cube = vals.reshape(n, reps, period)
        okk = ok.reshape(reps, period)
        scale = np.ones((n, reps))
        if mode is BaselineMode.WEEKLY:
            ref = cube[:, -1, :]
            for k in range(reps - 1):
                both = okk[k] & okk[-1]
                s_ref = (ref * both).sum(1)
                s_k = (cube[:, k, :] * both).sum(1)
                scale[:, k] = np.clip(
                    (s_ref + params.week_scale_prior) / (s_k + params.week_scale_prior), 0.5, 2.0
                )
        mean, count = _robust_mean(cube * scale[:, :, None], okk)
        fallback = _same_time_of_day(cube * scale[:, :, None], okk, totals / max(int(ok.sum()), 1))
        chrono = _smooth(np.where(count[None] > 0, mean, fallback), params.smoothing_kernel)
    kernel = np.asarray(params.smoothing_kernel, dtype=float)
    points = 1.0 if mode is BaselineMode.FLAT else kernel.sum() ** 2 / (kernel**2).sum() / period
    if mode is not BaselineMode.FLAT:
        chrono = _shrink_in_time(chrono, totals, points * period, donors, params)
    chrono = _borrow(chrono, totals, totals * points, donors, depths, params.borrow_prior_counts)
    chrono = np.maximum(chrono, params.min_rate_per_min * SLOT_MINUTES)
    fit = np.tile(chrono, (1, reps)) if mode is not BaselineMode.FLAT else chrono
    fit = fit / np.repeat(scale, period, axis=1)
    inflate = _inflation(params.smoothing_kernel, reps, mode, period)
    # Clip rare bursts at robust_z standard deviations and refit, starting from Poisson
    # noise: the quiet state's noise is what most slots show (a few passes converge to the
    # dispersion of an ordinary NB; detector/tails.py calibrates the bursts' tail).
    var = fit
    for _ in range(ROBUST_PASSES):
        clipped = np.minimum(vals, np.ceil(fit + params.robust_z * np.sqrt(var)))
        phi, phi_q, c2, phi_free = solve_dispersion(
            residual_moments(clipped, fit, ok, inflate), floor, params.max_overdispersion
        )
        var = nb_variance(fit, phi[:, None], phi_q[:, None], c2[:, None])
    c2_minute = None
    if minute_moments is not None:
        measured = minute_moments[:, -1] >= SLOTS_PER_DAY * SLOT_MINUTES
        c2_minute = np.where(
            measured,
            solve_dispersion(minute_moments, params.level_noise_floor, params.max_overdispersion)[
                2
            ],
            c2,
        )
    if mode is BaselineMode.FLAT:
        profile = np.repeat(chrono[:, :1], SLOTS_PER_WEEK, axis=1)
    elif mode is BaselineMode.DAILY:
        profile = np.tile(np.roll(chrono, now_slot % SLOTS_PER_DAY, axis=1), (1, 7))
    else:
        profile = np.roll(chrono, now_slot % SLOTS_PER_WEEK, axis=1)
    return Baseline(mode, profile, phi, phi_q, c2, now_slot, totals, c2_minute, phi_free)
