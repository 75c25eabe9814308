"""Tests of the seeded scenario generator (detector/scenarios.py)."""

import numpy as np
import pytest
from scipy import stats

from detector import scenarios
from detector.scenarios_bursts import BURST_KIND, SPARSE_RATE_RANGE
from detector.scenarios_events import (
    NUISANCE_KINDS,
    information_floor,
    nb_log_ratio,
    outage_profile,
)

SEED = 4242  # distinct from the bench's published seed and the detector's test seeds


@pytest.fixture(scope="module")
def scenario():
    return scenarios.generate(SEED, days=12, n_services=4)


def test_same_seed_same_scenario(scenario):
    again = scenarios.generate(SEED, days=12, n_services=4)
    for a, b in zip(scenario.services, again.services, strict=True):
        assert a.leaf_keys == b.leaf_keys
        np.testing.assert_array_equal(a.reports, b.reports)
        np.testing.assert_array_equal(a.reporters, b.reporters)
    assert scenarios.labels(scenario) == scenarios.labels(again)


def test_other_seed_other_scenario(scenario):
    other = scenarios.generate(SEED + 1, days=12, n_services=4)
    assert not np.array_equal(scenario.services[0].reporters, other.services[0].reporters)


def test_counts_are_consistent(scenario):
    sparse = scenario.meta["sparse_services"]
    assert len(sparse) == 1  # a quarter of four services
    for svc in scenario.services:
        assert svc.reports.shape == svc.reporters.shape == svc.baseline.shape
        assert svc.reports.shape == (len(svc.leaf_keys), scenario.n_minutes)
        assert (svc.reporters >= 0).all()
        assert (svc.reports >= svc.reporters).all()
        assert svc.baseline.max() <= 50 * 30
        if svc.name in sparse:
            lo, hi = SPARSE_RATE_RANGE
            assert lo <= svc.baseline.sum(axis=0).mean() <= 1.3 * hi  # drift and trend
        else:
            assert 0.01 * 0.05 <= svc.baseline.min()


def test_every_nuisance_kind_is_placed_in_the_scored_window(scenario):
    kinds = {n["kind"] for n in scenario.nuisances}
    assert kinds == set(NUISANCE_KINDS) | {BURST_KIND}
    for n in scenario.nuisances:
        if n["kind"] not in ("trend", BURST_KIND):
            assert n["start"] >= scenario.eval_start


def test_bursts_are_labelled_where_their_reporters_are(scenario):
    by_name = {s.name: s for s in scenario.services}
    bursts = [n for n in scenario.nuisances if n["kind"] == BURST_KIND]
    assert {b["services"][0] for b in bursts} == set(by_name)  # sparse and dense services
    assert any(b["start"] < scenario.eval_start for b in bursts)  # in the history too
    gaps = [n for n in scenario.nuisances if n["kind"] == "gap"]
    for b in bursts:
        svc = by_name[b["services"][0]]
        rows = [i for i, (r, _) in enumerate(svc.leaf_keys) if r == b["regions"][0]]
        seen = svc.reporters[rows, b["start"] : b["end"]].sum()
        if not any(g["start"] < b["end"] and b["start"] < g["end"] for g in gaps):
            assert seen >= b["reports"]  # a gap's backlog flush moves them
        if svc.name in scenario.meta["sparse_services"]:
            assert 2 <= b["reports"] <= 6 and b["end"] - b["start"] <= 20
        else:
            assert b["peak_ratio"] >= 2.0


def test_some_outages_have_the_crowd_shape_and_sparse_ones_stay_detectable():
    sc = scenarios.generate(SEED, days=28, n_services=12)
    shapes = {o["shape"] for o in sc.outages}
    assert shapes == {"plateau", "crowd"}
    sparse = [o for o in sc.outages if o["service"] in sc.meta["sparse_services"]]
    assert len(sc.meta["sparse_services"]) == 3
    # about one a week on a sparse service, four on a dense one
    assert 6 <= len(sparse) <= 24 < len(sc.outages) - len(sparse)
    assert all(o["shape"] == "crowd" for o in sparse)
    for o in sparse:
        assert o["base_per_min"] < 0.05 and o["outage_per_min"] > 10 * o["base_per_min"]
    # their information floor is finite and well inside the outage for nearly all of them
    reachable = [o for o in sparse if o["info_floor_min"] < o["duration_min"] / 2]
    assert len(reachable) >= 0.8 * len(sparse)


def test_without_phenomena_the_earlier_recipe_is_drawn_again():
    # pinned from the generator before issue 12: same draws, so earlier results stay comparable
    sc = scenarios.generate(SEED, days=12, n_services=4, phenomena=False)
    assert [int(s.reporters.sum()) for s in sc.services] == [31242, 320583, 114965, 13121]
    assert len(sc.outages) == 24 and sc.meta["sparse_services"] == []
    assert {o["shape"] for o in sc.outages} == {"plateau"}
    assert {n["kind"] for n in sc.nuisances} == set(NUISANCE_KINDS)


def test_outage_windows_are_elevated(scenario):
    by_name = {s.name: s for s in scenario.services}
    assert scenario.outages
    for o in scenario.outages:
        svc = by_name[o["service"]]
        rows = [
            i for i, (r, p) in enumerate(svc.leaf_keys) if r in o["regions"] and p in o["problems"]
        ]
        assert rows
        assert 5 <= o["duration_min"] <= 360
        if o["service"] in scenario.meta["sparse_services"]:
            assert o["ratio"] > 1.5 and o["peak_excess_per_min"] >= 0.25
        else:
            assert 1.5 <= o["ratio"] <= 30
        assert o["outage_per_min"] > o["base_per_min"] > 0
        seen = svc.reporters[rows, o["start"] : o["end"]].sum()
        expected = svc.baseline[rows, o["start"] : o["end"]].sum()
        excess = o["outage_per_min"] - o["base_per_min"]
        # strong outages must show in the counts; weak ones only in the labels' means
        if excess * o["duration_min"] > 200:
            assert seen > 1.3 * expected


def test_cusum_floor_is_log_arl0_over_kl():
    # log(525600) = 13.172; KL(4 || 2) = 4 log 2 - 2 = 0.7726; KL(2 || 0.2) = 2 log 10 - 1.8
    assert scenarios.cusum_floor(2, 4) == pytest.approx(13.172 / 0.7726, rel=1e-3)
    assert scenarios.cusum_floor(0.2, 2) == pytest.approx(13.172 / 2.8052, rel=1e-3)
    assert scenarios.cusum_floor(20, 40) == pytest.approx(13.172 / 7.726, rel=1e-3)
    assert scenarios.cusum_floor(2, 20) == 1.0
    assert scenarios.cusum_floor(2, 2) == float("inf")


def test_nb_log_ratio_tends_to_poisson_and_is_kl_at_the_mean():
    x = np.array([0.0, 1.0, 4.0, 9.0])
    poisson = x * np.log(3.0 / 1.5) - (3.0 - 1.5)
    assert np.allclose(nb_log_ratio(x, 1.5, 3.0, 1e9), poisson, atol=1e-6)
    # KL(NB(3, r=2) || NB(1.5, r=2)) against a direct sum over the NB pmf
    r = 2.0
    k = np.arange(400)
    p1 = stats.nbinom.pmf(k, r, r / (r + 3.0))
    p0 = stats.nbinom.pmf(k, r, r / (r + 1.5))
    kl = float(np.sum(p1 * np.log(p1 / p0)))
    assert float(nb_log_ratio(3.0, 1.5, 3.0, r)) == pytest.approx(kl, rel=1e-9)
    # overdispersion lowers the information per minute
    assert float(nb_log_ratio(3.0, 1.5, 3.0, r)) < float(nb_log_ratio(3.0, 1.5, 3.0, 1e9))


def test_information_floor_of_a_poisson_step_is_the_poisson_floor():
    kl = np.full(500, 4 * np.log(2) - 2)  # Poisson 2 -> 4 per minute, KL 0.7726
    assert information_floor(kl, scenarios.ARL0_MINUTES) == np.ceil(scenarios.cusum_floor(2, 4))
    assert information_floor(kl[:10], scenarios.ARL0_MINUTES) == float("inf")
    ramp = kl * np.minimum(1.0, np.arange(1, 501) / 30.0)  # a slower start takes longer
    assert information_floor(ramp, scenarios.ARL0_MINUTES) > scenarios.cusum_floor(2, 4)


@pytest.mark.parametrize(
    ("l0", "l1", "r", "ramp"), [(1.0, 3.0, 2.0, 1), (0.5, 4.0, 0.8, 10), (8.0, 16.0, 4.0, 20)]
)
def test_information_floor_is_the_oracle_cusums_median_delay(l0, l1, r, ramp):
    # An NB CUSUM that knows both rates, threshold log(ARL0), on seeded NB counts after an
    # onset with a linear ramp: its median delay sits at the information floor (within the
    # overshoot of a minute or two), never far below it.
    rng = np.random.default_rng(4242)
    n, runs = 300, 400
    prof = np.minimum(1.0, np.arange(1, n + 1) / ramp)
    m1 = l0 + (l1 - l0) * prof
    floor = information_floor(nb_log_ratio(m1, l0, m1, r), scenarios.ARL0_MINUTES)
    counts = rng.poisson(m1 * rng.gamma(r, 1.0 / r, size=(runs, n)))
    z = nb_log_ratio(counts, l0, m1, r)
    delays = []
    for row in z:
        s = 0.0
        for j, v in enumerate(row):
            s = max(0.0, s + v)
            if s >= np.log(scenarios.ARL0_MINUTES):
                delays.append(j + 1)
                break
    assert len(delays) == runs
    assert 0.8 * floor <= np.median(delays) <= 1.3 * floor + 2


def test_generated_outages_carry_both_floors():
    sc = scenarios.generate(5, days=7, n_services=4)
    assert sc.outages
    finite = [o for o in sc.outages if np.isfinite(o["info_floor_min"])]
    assert finite and len(finite) < len(sc.outages)  # some are out of reach
    for o in finite:
        assert 1.0 <= o["info_floor_min"] <= o["end"] - o["start"]
    assert all(o["cusum_floor_min"] >= 1.0 for o in sc.outages)


def test_outage_profile_ramps_plateaus_and_decays():
    p = outage_profile(20, ramp=4, decay=5)
    assert p.shape == (20,)
    assert p[0] == pytest.approx(0.25) and p[3] == 1.0 and p[14] == 1.0
    assert p[-1] == pytest.approx(0.2) and (np.diff(p[15:]) < 0).all()


@pytest.mark.parametrize("kwargs", [{"days": 2}, {"n_services": 0}, {"days": 10, "eval_days": 10}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        scenarios.generate(1, **{"days": 10, **kwargs})
