"""Oracle tests: every statistic against plain scipy / numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detector.nbstats import (
    cusum_step,
    cusum_tilt,
    nb_cdf,
    nb_quantile,
    nb_sf,
    nb_size_prob,
    nb_variance,
    tilt_table,
)
from detector.params import Params


@pytest.mark.parametrize(
    "mean,var,count",
    [
        (0.01, 0.02, 1),
        (0.5, 1.0, 4),
        (3.0, 9.0, 20),
        (100.0, 300.0, 200),
        (2000.0, 2000.0 * 3 + 0.01 * 2000.0**2, 6000),
        (1e5, 1e9, 3e5),
    ],
)
def test_nb_sf_matches_scipy(mean: float, var: float, count: float) -> None:
    n, p = nb_size_prob(np.array([mean]), np.array([var]))
    want = stats.nbinom.sf(count - 1, n[0], p[0])
    got = nb_sf(np.array([count]), np.array([mean]), np.array([var]))[0]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-300)


def test_nb_sf_is_poisson_without_extra_variance() -> None:
    counts = np.arange(0, 30)
    got = nb_sf(counts, np.full(30, 4.0), np.full(30, 4.0))
    want = np.where(counts > 0, stats.poisson.sf(counts - 1, 4.0), 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nb_sf_vectorised_equals_elementwise() -> None:
    rng = np.random.default_rng(1)
    mean = rng.uniform(0.01, 50, 200)
    var = mean * rng.uniform(1.0, 5.0, 200)
    count = rng.integers(0, 120, 200).astype(float)
    got = nb_sf(count, mean, var)
    for i in range(0, 200, 17):
        assert got[i] == pytest.approx(nb_sf(count[i : i + 1], mean[i : i + 1], var[i : i + 1])[0])
    n, p = nb_size_prob(mean, var)
    want = np.where(count > 0, stats.nbinom.sf(count - 1, n, p), 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-300)


def test_nb_cdf_and_quantile_match_scipy() -> None:
    mean, var = np.array([2.0, 40.0]), np.array([5.0, 100.0])
    n, p = nb_size_prob(mean, var)
    np.testing.assert_allclose(
        nb_cdf(np.array([3.0, 50.0]), mean, var), stats.nbinom.cdf([3, 50], n, p), rtol=1e-9
    )
    np.testing.assert_array_equal(nb_quantile(0.99, mean, var), stats.nbinom.ppf(0.99, n, p))


def test_huge_counts_stay_finite() -> None:
    got = nb_sf(np.array([1e7, 1e9]), np.array([1e6, 1e8]), np.array([2e6, 2e8]))
    assert np.all(np.isfinite(got)) and np.all(got >= 0) and np.all(got < 1e-100)


def test_nb_variance_is_max_of_linear_and_quadratic() -> None:
    m = np.array([0.1, 10.0, 1000.0])
    got = nb_variance(m, 2.0, 1.2, 0.01)
    np.testing.assert_allclose(got, np.maximum(2.0 * m, 1.2 * m + 0.01 * m * m))


@pytest.mark.parametrize("phi", [1.0, 1.3, 2.0, 5.0])
@pytest.mark.parametrize("rho", [2.0, 5.0])
def test_cusum_tilt_makes_a_martingale(phi: float, rho: float) -> None:
    theta = cusum_tilt(np.array([phi]), np.array([rho]))[0, 0]
    m = 0.8
    x = np.arange(0, 400)
    if phi == 1.0:
        pmf = stats.poisson.pmf(x, m)
    else:
        pmf = stats.nbinom.pmf(x, m / (phi - 1.0), 1.0 / phi)
    score = theta * (x * np.log(rho) - (rho - 1.0) * m)
    assert float((pmf * np.exp(score)).sum()) == pytest.approx(1.0, rel=1e-6)
    assert 0.0 < theta <= 1.0


def test_cusum_step_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(3)
    x = rng.poisson(2.0, (50, 3)).astype(float)
    mu = np.full((50, 3), 1.5)
    ratios = np.array([2.0, 5.0])
    tilt = np.array([[1.0, 1.0], [0.5, 0.4], [0.7, 0.6]])
    score = np.zeros((3, 2))
    plain = np.zeros((3, 2))
    for t in range(50):
        score = cusum_step(score, x[t], mu[t], tilt, ratios)
        for i in range(3):
            for k, rho in enumerate(ratios):
                step = tilt[i, k] * (x[t, i] * np.log(rho) - (rho - 1) * mu[t, i])
                plain[i, k] = max(0.0, plain[i, k] + step)
    np.testing.assert_allclose(score, plain)


def test_thresholds_follow_the_false_alarm_target() -> None:
    params = Params()
    assert params.alpha == pytest.approx(1.0 / (525_600 * params.n_tests))
    assert params.cusum_threshold == pytest.approx(np.log(525_600 * params.n_tests))
    stricter = Params(false_alarms_per_series_year=0.1)
    assert stricter.alpha < params.alpha
    assert stricter.cusum_threshold > params.cusum_threshold


def test_tilt_table_matches_the_exact_tilt() -> None:
    ratios = np.array([1.5, 2.0, 5.0])
    table = tilt_table(tuple(ratios))
    rng = np.random.default_rng(17)
    dispersion = np.concatenate([[1.0, 1.0 + 1e-9, 2.0, 1e5], np.exp(rng.uniform(0, 9, 200))])
    exact = cusum_tilt(dispersion, ratios)
    got = table(dispersion)
    assert got.shape == exact.shape == (len(dispersion), 3)
    assert np.allclose(got, exact, rtol=2e-3, atol=1e-6)
    assert tilt_table(tuple(ratios)) is table  # shared, built once
