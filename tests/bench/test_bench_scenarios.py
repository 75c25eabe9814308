"""Tests of the seeded scenario generator (detector/scenarios.py)."""

import csv
import json

import numpy as np
import pytest

from detector import scenarios
from detector.scenarios_events import NUISANCE_KINDS, outage_profile

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
    for svc in scenario.services:
        assert svc.reports.shape == svc.reporters.shape == svc.baseline.shape
        assert svc.reports.shape == (len(svc.leaf_keys), scenario.n_minutes)
        assert (svc.reporters >= 0).all()
        assert (svc.reports >= svc.reporters).all()
        assert 0.01 * 0.05 <= svc.baseline.min() and svc.baseline.max() <= 50 * 30


def test_every_nuisance_kind_is_placed_in_the_scored_window(scenario):
    kinds = {n["kind"] for n in scenario.nuisances}
    assert kinds == set(NUISANCE_KINDS)
    for n in scenario.nuisances:
        if n["kind"] != "trend":
            assert n["start"] >= scenario.eval_start


def test_outage_windows_are_elevated(scenario):
    by_name = {s.name: s for s in scenario.services}
    assert scenario.outages
    for o in scenario.outages:
        svc = by_name[o["service"]]
        rows = [i for i, (r, p) in enumerate(svc.leaf_keys)
                if r in o["regions"] and p in o["problems"]]
        assert rows
        assert 1.5 <= o["ratio"] <= 30 and 5 <= o["duration_min"] <= 360
        assert o["outage_per_min"] > o["base_per_min"] > 0
        seen = svc.reporters[rows, o["start"]:o["end"]].sum()
        expected = svc.baseline[rows, o["start"]:o["end"]].sum()
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


def test_outage_profile_ramps_plateaus_and_decays():
    p = outage_profile(20, ramp=4, decay=5)
    assert p.shape == (20,)
    assert p[0] == pytest.approx(0.25) and p[3] == 1.0 and p[14] == 1.0
    assert p[-1] == pytest.approx(0.2) and (np.diff(p[15:]) < 0).all()


@pytest.mark.parametrize("kwargs", [{"days": 2}, {"n_services": 0}, {"days": 10, "eval_days": 10}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        scenarios.generate(1, **{"days": 10, **kwargs})


def test_simulate_writes_csv_and_labels(tmp_path):
    assert scenarios.main(["--seed", "5", "--days", "8", "--services", "2", str(tmp_path)]) == 0
    with open(tmp_path / "counts.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["minute", "service", "region", "problem", "reports", "reporters"]
    assert rows[0]["minute"].endswith("Z") and all(int(r["reports"]) > 0 for r in rows[:100])
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert set(labels) >= {"outages", "nuisances", "eval_start", "services"}
    sc = scenarios.generate(5, days=8, n_services=2)
    total = sum(int(r["reporters"]) for r in rows)
    assert total == sum(int(s.reporters.sum()) for s in sc.services)
    o = labels["outages"][0]
    assert {"service", "regions", "problems", "start", "end", "base_per_min",
            "outage_per_min"} <= set(o)
    assert scenarios.parse_minute(o["start"]) == sc.start_minute + sc.outages[0]["start"]
