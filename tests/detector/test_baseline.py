"""Baseline fitting: modes by history length, robustness, borrowing, interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from detector.baseline import BaselineMode, expected_per_minute, fit_baseline
from detector.params import SLOTS_PER_DAY, SLOTS_PER_WEEK, Params

PARAMS = Params()
H = PARAMS.history_slots
NOW = 5000 * SLOTS_PER_WEEK  # an absolute slot on a week boundary


def daily_shape() -> np.ndarray:
    """Expected 15-minute counts by slot of week with a daily cycle, shape (672,)."""
    slot = np.arange(SLOTS_PER_WEEK)
    return 30.0 + 20.0 * np.sin(2 * np.pi * (slot % SLOTS_PER_DAY) / SLOTS_PER_DAY)


def ring_from(series: np.ndarray, first_slot: int) -> np.ndarray:
    """Place counts for absolute slots first_slot.. into a ring, shape (n, H)."""
    hist = np.zeros((series.shape[0], H), dtype=np.int64)
    slots = np.arange(first_slot, first_slot + series.shape[1])
    hist[:, slots % H] = series
    return hist


def fit(
    hist: np.ndarray,
    first_slot: int,
    excluded: np.ndarray | None = None,
    donors: np.ndarray | None = None,
    depths: np.ndarray | None = None,
):
    n = hist.shape[0]
    return fit_baseline(
        hist,
        np.zeros(H, bool) if excluded is None else excluded,
        NOW,
        first_slot,
        np.full(n, -1) if donors is None else donors,
        np.zeros(n, np.int64) if depths is None else depths,
        PARAMS,
    )


def seasonal_counts(weeks: float, seed: int = 0) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    length = int(weeks * SLOTS_PER_WEEK)
    first = NOW - length
    mean = daily_shape()[(np.arange(first, NOW)) % SLOTS_PER_WEEK]
    return rng.poisson(mean)[None, :], first


@pytest.mark.parametrize(
    "hours,mode",
    [
        (2, BaselineMode.INSUFFICIENT_HISTORY),
        (8, BaselineMode.FLAT),
        (50, BaselineMode.DAILY),
        (24 * 9, BaselineMode.WEEKLY),
    ],
)
def test_mode_follows_history_length(hours: int, mode: BaselineMode) -> None:
    counts, first = seasonal_counts(hours / 168)
    base = fit(ring_from(counts, first), first)
    assert base.mode is mode
    if mode is BaselineMode.INSUFFICIENT_HISTORY:
        assert not base.ready(PARAMS).any()
        assert np.all(base.profile == 0)
    else:
        assert np.all(np.isfinite(base.profile)) and base.ready(PARAMS).all()


def test_weekly_profile_tracks_the_seasonal_mean() -> None:
    counts, first = seasonal_counts(3)
    base = fit(ring_from(counts, first), first)
    truth = daily_shape()
    assert np.abs(base.profile[0] - truth).mean() / truth.mean() < 0.06
    assert 1.0 <= base.phi[0] < 1.6


def test_two_days_give_a_daily_profile() -> None:
    counts, first = seasonal_counts(2 / 7)
    base = fit(ring_from(counts, first), first)
    assert base.mode is BaselineMode.DAILY
    truth = daily_shape()
    assert np.abs(base.profile[0] - truth).mean() / truth.mean() < 0.12
    assert base.c2[0] >= PARAMS.daily_level_cv**2


def test_excluded_incident_slots_are_not_learned() -> None:
    counts, first = seasonal_counts(3)
    spiked = counts.copy()
    week2 = NOW - SLOTS_PER_WEEK - 200
    spiked[0, week2 - first : week2 - first + 8] *= 50
    excluded = np.zeros(H, bool)
    excluded[np.arange(week2, week2 + 8) % H] = True
    clean = fit(ring_from(counts, first), first)
    guarded = fit(ring_from(spiked, first), first, excluded=excluded)
    naive = fit(ring_from(spiked, first), first)
    at = np.arange(week2, week2 + 8) % SLOTS_PER_WEEK
    drift = np.abs(guarded.profile[0, at] - clean.profile[0, at]).max()
    assert drift < 0.25 * clean.profile[0, at].mean()
    assert naive.profile[0, at].mean() > clean.profile[0, at].mean()


def test_slow_growth_scales_old_weeks_to_the_recent_level() -> None:
    counts, first = seasonal_counts(4)
    growth = np.linspace(1.0, 1.4, counts.shape[1])
    grown = np.random.default_rng(5).poisson(daily_shape()[np.arange(first, NOW) % 672] * growth)
    base = fit(ring_from(grown[None, :], first), first)
    recent_level = (daily_shape() * 1.35).mean()
    assert base.profile[0].mean() == pytest.approx(recent_level, rel=0.06)


def test_sparse_child_borrows_parent_shape() -> None:
    counts, first = seasonal_counts(2)
    rng = np.random.default_rng(9)
    child = rng.binomial(counts[0], 0.01)
    hist = ring_from(np.vstack([counts, child]), first)
    base = fit(hist, first, donors=np.array([-1, 0]), depths=np.array([0, 1]))
    ratio = base.profile[1] / base.profile[0]
    assert ratio.std() / ratio.mean() < 0.25  # shape follows the parent
    assert ratio.mean() == pytest.approx(child.sum() / counts.sum(), rel=0.5)


def test_all_zero_history_is_not_ready() -> None:
    hist = np.zeros((2, H), dtype=np.int64)
    base = fit(hist, NOW - 3 * SLOTS_PER_WEEK)
    assert base.mode is BaselineMode.WEEKLY
    assert not base.ready(PARAMS).any()
    assert np.all(base.profile > 0)  # floored, never zero or NaN


def test_expected_per_minute_interpolates_between_slot_centres() -> None:
    profile = np.zeros((1, SLOTS_PER_WEEK))
    profile[0, 10], profile[0, 11] = 15.0, 30.0
    minutes = np.arange(10 * 15, 12 * 15)
    got = expected_per_minute(profile, minutes)[0]
    centre = (np.arange(SLOTS_PER_WEEK) + 0.5) * 15
    want = np.interp(minutes + 0.5, centre, profile[0] / 15.0, period=SLOTS_PER_WEEK * 15)
    np.testing.assert_allclose(got, want, atol=1e-12)
