"""Tests of the real crowd-report phenomena of the scenario generator (scenarios_bursts.py)."""

import numpy as np
import pytest
from scipy import stats

from detector.scenarios_bursts import (
    MINUTES_PER_WEEK,
    crowd_profile,
    draw_crowd_shape,
    hawkes_bursts,
    sparse_bursts,
    split_by_share,
)

SEED = 1212  # issue 12; distinct from the bench's published seed and the other test seeds
DAY = 1440


def test_sparse_bursts_are_the_labelled_reports_and_nothing_else():
    rng = np.random.default_rng(SEED)
    n = 26 * MINUTES_PER_WEEK
    counts, bursts = sparse_bursts(rng, n, 0.0, bursts_per_week=1.5)
    assert counts.shape == (n,) and counts.dtype == np.int64
    assert 1.5 * 26 - 4 * np.sqrt(1.5 * 26) <= len(bursts) <= 1.5 * 26 + 4 * np.sqrt(1.5 * 26)
    inside = np.zeros(n, dtype=bool)
    for b in bursts:
        assert 0 <= b["start"] < b["end"] <= n and b["end"] - b["start"] <= 20
        assert 2 <= b["reports"] <= 6
        assert counts[b["start"]] > 0 and counts[b["end"] - 1] > 0  # spans are tight
        inside[b["start"] : b["end"]] = True
    assert counts.sum() == sum(b["reports"] for b in bursts)
    assert counts[~inside].sum() == 0
    assert [b["start"] for b in bursts] == sorted(b["start"] for b in bursts)


@pytest.mark.parametrize("rate", [0.001, 0.0025, 0.01, 0.05])
def test_sparse_background_rate_is_the_requested_rate(rate):
    rng = np.random.default_rng(SEED)
    n = 26 * MINUTES_PER_WEEK
    counts, bursts = sparse_bursts(rng, n, rate, bursts_per_week=1.5)
    background = counts.sum() - sum(b["reports"] for b in bursts)
    # Poisson: within four standard deviations of rate * n
    assert abs(background - rate * n) <= 4 * np.sqrt(rate * n)
    # the bursts add about 1.5 per week of 4 reports on average
    assert counts.mean() == pytest.approx(rate + 1.5 * 4 / MINUTES_PER_WEEK, rel=0.2)


def test_sparse_bursts_are_seeded():
    a = sparse_bursts(np.random.default_rng(SEED), 20_000, 0.01, 3.0)
    b = sparse_bursts(np.random.default_rng(SEED), 20_000, 0.01, 3.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_per_min": -0.1},
        {"size_range": (0, 3)},
        {"size_range": (5, 2)},
        {"bursts_per_week": -1.0},
        {"spread_minutes": 0},
    ],
)
def test_sparse_bursts_reject_bad_arguments(kwargs):
    args = {"rate_per_min": 0.01, "bursts_per_week": 1.0, **kwargs}
    with pytest.raises(ValueError):
        sparse_bursts(np.random.default_rng(SEED), 1000, **args)


def _seasonal(n: int, mean: float) -> np.ndarray:
    shape = np.exp(0.8 * np.cos(2 * np.pi * np.arange(n) / DAY))
    return mean * shape / shape.mean()


@pytest.fixture(scope="module")
def dense():
    """Sixty days of a dense series (5 reports/min on average) with self-exciting bursts."""
    n = 60 * DAY
    mean = _seasonal(n, 5.0)
    counts, clusters = hawkes_bursts(np.random.default_rng(SEED), n, mean)
    return mean, counts, clusters


def test_hawkes_clusters_are_heavier_tailed_than_a_negative_binomial(dense):
    # Compare with a negative binomial of the same minute mean and variance around a flat mean:
    # independent minutes, so its 15-minute sums are NB(15 r, p) exactly.
    n = 60 * DAY
    counts, _ = hawkes_bursts(np.random.default_rng(SEED + 1), n, 5.0)
    mu, var = counts.mean(), counts.var()
    assert var > mu  # overdispersed at the minute level
    r = mu * mu / (var - mu)
    sums = counts.reshape(-1, 15).sum(axis=1)
    nb_q999 = stats.nbinom.ppf(0.999, 15 * r, r / (r + mu))
    assert np.quantile(sums, 0.999) > 1.5 * nb_q999
    # the clusters add a few percent of volume, not a second baseline
    assert mu == pytest.approx(5.0, rel=0.1)


def test_hawkes_labels_the_clusters_that_reach_several_times_the_local_mean(dense):
    mean, counts, clusters = dense
    assert 0.2 * 60 <= len(clusters) <= 3 * 60  # occasional: a few a week to a few a day
    ratios = np.array([c["peak_ratio"] for c in clusters])
    assert (ratios >= 2.0).all()
    assert 3.0 <= ratios.max() <= 15.0  # some reach 3-10x, none outage-sized
    for c in clusters:
        assert 0 <= c["start"] < c["end"] <= counts.size and c["reports"] >= 3
        # the counts over the cluster's span stand above the mean
        assert counts[c["start"] : c["end"]].sum() > mean[c["start"] : c["end"]].sum()
    # the biggest cluster is short: minutes to an hour, not an outage's hours
    biggest = max(clusters, key=lambda c: c["peak_ratio"])
    assert biggest["end"] - biggest["start"] <= 90


def test_hawkes_without_background_is_the_clusters_alone(dense):
    mean, _, _ = dense
    a, clusters = hawkes_bursts(np.random.default_rng(SEED), mean.size, mean, background=False)
    assert a.min() >= 0 and a.sum() >= sum(c["reports"] for c in clusters)
    assert a.sum() < 0.1 * mean.sum()
    quiet = np.ones(mean.size, dtype=bool)
    for c in clusters:
        quiet[c["start"] : c["end"]] = False
    # most minutes carry no burst report at all
    assert (a[quiet] == 0).mean() > 0.9


def test_hawkes_is_seeded_and_follows_the_mean():
    n = 10 * DAY
    a = hawkes_bursts(np.random.default_rng(SEED), n, 2.0)
    b = hawkes_bursts(np.random.default_rng(SEED), n, 2.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    zero, labelled = hawkes_bursts(np.random.default_rng(SEED), n, 0.0)
    assert zero.sum() == 0 and labelled == []


@pytest.mark.parametrize(
    "kwargs", [{"branching": 1.0}, {"kernel_minutes": 0.0}, {"base_rate_per_min": -1.0}]
)
def test_hawkes_rejects_bad_arguments(kwargs):
    args = {"base_rate_per_min": 1.0, **kwargs}
    with pytest.raises(ValueError):
        hawkes_bursts(np.random.default_rng(SEED), 1000, **args)


def test_crowd_profile_rises_fast_peaks_and_decays_long():
    p = crowd_profile(240, rise=20, hold=5, tau_fast=30.0, tail_share=0.1, tau_slow=120.0)
    assert p.shape == (240,) and 0.0 < p.min() and p.max() == pytest.approx(1.0)
    assert (np.diff(p[:20]) > 0).all() and p[19] == pytest.approx(1.0) and p[9] < 0.6
    assert (p[20:25] == pytest.approx(1.0)) and (np.diff(p[25:]) < 0).all()
    u = np.arange(240 - 25, dtype=np.float64)
    assert p[25:] == pytest.approx(0.9 * np.exp(-u / 30.0) + 0.1 * np.exp(-u / 120.0))
    # two thirds of the peak after 15 minutes, a tenth or less after two hours
    assert 0.55 <= p[25 + 15] <= 0.7 and p[25 + 120] <= 0.1


@pytest.mark.parametrize("ratio", [1.6, 3.0, 10.0, 30.0, np.inf])
def test_drawn_crowd_shapes_end_when_the_excess_is_small(ratio):
    rng = np.random.default_rng(SEED)
    for _ in range(50):
        s = draw_crowd_shape(rng, ratio)
        assert s["shape"] == "crowd" and 10 <= s["ramp_min"] <= 40
        assert s["ramp_min"] + s["hold_min"] + s["decay_min"] == s["duration_min"] <= 360
        p = crowd_profile(
            s["duration_min"] + 1,
            s["ramp_min"],
            s["hold_min"],
            s["tau_fast_min"],
            s["tail_share"],
            s["tau_slow_min"],
        )
        level = max(0.05, min(0.5, 0.5 / (ratio - 1.0)))
        assert p[s["duration_min"] - 1] >= level and p[s["duration_min"]] < level


def test_split_by_share_keeps_every_count():
    rng = np.random.default_rng(SEED)
    counts = rng.poisson(20.0, size=5000)
    parts = split_by_share(rng, counts, np.array([0.5, 0.3, 0.2]))
    assert parts.shape == (3, 5000) and parts.min() >= 0
    np.testing.assert_array_equal(parts.sum(axis=0), counts)
    assert parts.sum(axis=1) / counts.sum() == pytest.approx([0.5, 0.3, 0.2], abs=0.01)
