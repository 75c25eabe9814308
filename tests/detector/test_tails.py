"""Tail calibration (detector/tails.py) against plain computations and seeded samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detector.params import MINUTES_PER_YEAR, Params
from detector.tails import (
    BELOW,
    COUNT,
    EXPOSURE,
    PEAK,
    SUM,
    SUM2,
    TAIL_COLUMNS,
    evidence,
    learn,
    thresholds,
)

NO_DECAY = Params(tail_days=1e12)


def _feed(values: list[float], params: Params = NO_DECAY) -> np.ndarray:
    tail = np.zeros((1, TAIL_COLUMNS))
    for v in values:
        learn(tail, np.array([v]), np.array([True]), params)
    return tail


def test_evidence_is_one_at_each_model_threshold() -> None:
    alpha, h = np.array([1e-6, 1e-4]), np.array([12.0, 8.0])
    p = np.array([[1.0, 1e-6, 0.5], [1.0, 1.0, 1.0]])
    cusum = np.array([[0.0, 3.0], [8.0, 2.0]])
    assert evidence(p, alpha, cusum, h) == pytest.approx([1.0, 1.0])
    assert evidence(np.ones((1, 3)), alpha[:1], np.zeros((1, 2)), h[:1]) == pytest.approx([0.0])


def test_evidence_without_cusums_is_the_windows() -> None:
    p = np.array([[1e-3, 1.0]])
    got = evidence(p, np.array([1e-6]), np.zeros((1, 0)), np.array([12.0]))
    assert got == pytest.approx([0.5])


def test_an_episode_is_one_peak_and_ends_after_a_run_below() -> None:
    u, run = NO_DECAY.tail_threshold, NO_DECAY.tail_run_minutes
    tail = _feed([0.1, 0.5, 0.9, 0.2, 0.7] + [0.0] * (run - 1))
    assert tail[0, PEAK] == pytest.approx(0.9)  # still running: one minute short
    learn(tail, np.array([0.0]), np.array([True]), NO_DECAY)
    assert tail[0, COUNT] == pytest.approx(1.0)
    assert tail[0, SUM] == pytest.approx(0.9 - u)
    assert tail[0, SUM2] == pytest.approx((0.9 - u) ** 2)
    assert tail[0, PEAK] == 0.0 and tail[0, BELOW] == 0.0
    assert tail[0, EXPOSURE] == pytest.approx(5 + run)


def test_a_paused_row_keeps_its_episode() -> None:
    tail = _feed([0.8])
    learn(tail, np.array([0.9]), np.array([False]), NO_DECAY)  # a gap minute: paused
    assert tail[0, PEAK] == pytest.approx(0.8)
    assert tail[0, EXPOSURE] == pytest.approx(1.0)


def test_a_sustained_rise_is_not_learned() -> None:
    """Above the threshold for longer than tail_burst_minutes: an outage, not a burst."""
    run, burst = NO_DECAY.tail_run_minutes, NO_DECAY.tail_burst_minutes
    tail = _feed([0.9] * (burst + 1) + [0.0] * run)
    assert tail[0, COUNT] == 0.0 and tail[0, PEAK] == 0.0
    tail = _feed([0.9] * burst + [0.0] * run)
    assert tail[0, COUNT] == pytest.approx(1.0)


def test_a_huge_burst_is_learned_at_the_cap() -> None:
    tail = _feed([50.0] + [0.0] * NO_DECAY.tail_run_minutes)
    assert tail[0, SUM] == pytest.approx(NO_DECAY.tail_max_factor - NO_DECAY.tail_threshold)


def test_few_episodes_keep_the_model_threshold() -> None:
    tail = np.zeros((2, TAIL_COLUMNS))
    tail[:, COUNT] = [0.0, NO_DECAY.tail_min_episodes - 1]
    tail[:, SUM] = 10.0
    tail[:, SUM2] = 100.0
    tail[:, EXPOSURE] = 1e4
    assert thresholds(tail, np.ones(2), NO_DECAY) == pytest.approx([1.0, 1.0])


def test_exponential_excesses_give_the_exponential_quantile() -> None:
    """Excesses with variance >= mean^2 (xi clipped to 0): u + sigma log(rate / target)."""
    params = Params(tail_max_factor=100.0)
    k, sigma, minutes = 50.0, 0.3, 30 * 1440.0
    tail = np.zeros((1, TAIL_COLUMNS))
    tail[0, [COUNT, SUM, SUM2, EXPOSURE]] = [k, k * sigma, k * 2 * sigma**2, minutes]
    target = params.false_alarms_per_series_year / MINUTES_PER_YEAR
    want = params.tail_threshold + sigma * np.log(k / minutes / target)
    assert thresholds(tail, np.ones(1), params)[0] == pytest.approx(want)


def test_gpd_threshold_matches_scipy_on_its_own_sample() -> None:
    """Seeded GPD excesses (xi = 0.3): the threshold is scipy's quantile at the target rate
    within the sampling error of 4,000 episodes, and a smaller weight raises it."""
    rng = np.random.default_rng(31)
    xi, sigma, k = 0.3, 0.2, 4000
    y = stats.genpareto.rvs(xi, scale=sigma, size=k, random_state=rng)
    params = Params(tail_max_factor=100.0)
    minutes = 365 * 1440.0
    tail = np.zeros((2, TAIL_COLUMNS))
    tail[:, [COUNT, SUM, SUM2, EXPOSURE]] = [k, y.sum(), (y * y).sum(), minutes]
    got = thresholds(tail, np.array([1.0, 0.1]), params)
    target = params.false_alarms_per_series_year / MINUTES_PER_YEAR
    truth = params.tail_threshold + stats.genpareto.isf(target / (k / minutes), xi, scale=sigma)
    assert got[0] == pytest.approx(truth, rel=0.25)
    assert got[1] > got[0]


def test_thresholds_never_drop_below_the_model_nor_above_the_cap() -> None:
    tail = np.zeros((2, TAIL_COLUMNS))
    # Rare small episodes: model threshold. Frequent huge episodes: the cap.
    tail[0, [COUNT, SUM, SUM2, EXPOSURE]] = [10.0, 0.1, 0.002, 1e7]
    tail[1, [COUNT, SUM, SUM2, EXPOSURE]] = [1000.0, 5000.0, 50000.0, 1e4]
    got = thresholds(tail, np.ones(2), NO_DECAY)
    assert got[0] == 1.0
    assert got[1] == NO_DECAY.tail_max_factor


@pytest.mark.parametrize(("mode", "want"), [("learn", 3.0), ("censor", 1.5), ("drop", None)])
def test_an_alarmed_burst_is_learned_censored_or_dropped(mode: str, want: float | None) -> None:
    params = Params(tail_days=1e12, tail_alarmed=mode)
    tail = np.zeros((1, TAIL_COLUMNS))
    theta = np.array([1.5])
    learn(tail, np.array([3.0]), np.array([True]), params, alarmed=True, theta=theta)
    for _ in range(params.tail_run_minutes):
        learn(tail, np.array([0.0]), np.array([True]), params, theta=theta)
    if want is None:
        assert tail[0, COUNT] == 0.0
    else:
        assert tail[0, COUNT] == pytest.approx(1.0)
        assert tail[0, SUM] == pytest.approx(want - params.tail_threshold)
