"""Gates that scale with evidence, the mix-shift test, the baseline fallback and the split of a
weak incident by a much stronger onset (oracles in plain numpy/scipy)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from detector.baseline import _same_time_of_day
from detector.incidents import Severity
from detector.params import SLOTS_PER_DAY, SLOTS_PER_WEEK, Params
from detector.replay import replay_arrays
from detector.step import cusum_gates, mix_shifted


def test_cusum_ratio_gate_relaxes_only_for_sustained_runs() -> None:
    p = Params()
    obs = np.array([[18.0], [18.0], [30.0], [4.0]])
    exp = np.array([[10.0], [10.0], [10.0], [1.0]])
    length = np.array([[5.0], [15.0], [5.0], [40.0]])
    got = cusum_gates(obs, exp, length, p)[:, 0]
    want = [
        o >= (p.sustained_ratio if n >= p.sustained_minutes else p.min_ratio) * e
        and o >= p.min_reporters
        and o - e >= p.min_excess
        for o, e, n in zip(obs[:, 0], exp[:, 0], length[:, 0], strict=True)
    ]
    assert got.tolist() == want == [False, True, True, False]


def test_mix_shift_needs_a_significant_share_given_the_region() -> None:
    p = Params()
    # rows: 0 region "*", 1 problem a, 2 problem b; windows: one column
    parent = np.array([-1, 0, 0])
    phi = np.array([1.0, 2.0, 2.0])
    exp = np.array([[100.0], [50.0], [50.0]])
    for a, b in [(70, 50), (120, 80), (60, 30), (200, 110)]:
        obs = np.array([[a + b], [a], [b]], dtype=float)
        got = mix_shifted(obs, exp, parent, p, phi)[1, 0]
        share, total = 0.5, a + b
        z = (a - share * total) / np.sqrt(2.0 * share * (1 - share) * total)
        ratio_ok = a / 50 >= p.mix_shift * (b / 50)
        assert got == (ratio_ok and z >= p.mix_z), (a, b)
    # the z-test agrees with the binomial tail in the bulk: z = 3 ~ p = 1.3e-3 for phi = 1
    assert stats.norm.sf(p.mix_z) < 2e-3


def test_same_time_of_day_fallback_is_the_masked_daily_mean() -> None:
    rng = np.random.default_rng(3)
    reps = 2
    cube = rng.poisson(20, size=(3, reps, SLOTS_PER_WEEK)).astype(float)
    ok = rng.random((reps, SLOTS_PER_WEEK)) > 0.3
    ok[:, 5::SLOTS_PER_DAY] = False  # one time of day never valid: flat fallback
    flat = np.array([1.0, 2.0, 3.0])
    got = _same_time_of_day(cube, ok, flat)
    for i in range(3):
        for j in (0, 5, 17, 400, SLOTS_PER_WEEK - 1):
            sod = j % SLOTS_PER_DAY
            vals = [
                cube[i, k, d * SLOTS_PER_DAY + sod]
                for k in range(reps)
                for d in range(7)
                if ok[k, d * SLOTS_PER_DAY + sod]
            ]
            want = np.mean(vals) if vals else flat[i]
            assert np.isclose(got[i, j], want)


def test_a_weak_episode_does_not_swallow_a_strong_outage() -> None:
    rng = np.random.default_rng(5)
    first = 28_000_000 - 28_000_000 % 10080
    n = 8 * 1440 + 600
    rate = np.full(n, 2.0)
    weak, strong = 8 * 1440 + 300, 8 * 1440 + 360
    rate[weak : weak + 120] = 4.0  # 2x: a 'possible' incident
    rate[strong : strong + 20] = 40.0  # 20x starting inside it
    reports = rng.poisson(rate)[None, :]
    incidents = replay_arrays("svc", [("US", "app")], first, reports, reports)
    late = [i for i in incidents if i.detected_at >= first + weak]
    assert len(late) == 2, [i.to_dict() for i in late]
    weak_inc, strong_inc = late
    assert weak_inc.severity is Severity.POSSIBLE
    assert weak_inc.ended_at is not None and weak_inc.ended_at <= first + strong + 1
    assert abs(strong_inc.started_at - (first + strong)) <= 2
    assert strong_inc.detected_at - (first + strong) <= 3
    assert strong_inc.severity is not Severity.POSSIBLE
