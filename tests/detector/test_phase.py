"""Clock-change (DST) detection: a clean shift is found within about a day and realigned;
ordinary heavy-tailed traffic with outages, bursts, a gap and holidays never shifts."""

from __future__ import annotations

import numpy as np
import pytest

from detector.baseline import fit_baseline
from detector.params import SLOT_MINUTES, SLOTS_PER_DAY, SLOTS_PER_WEEK, Params
from detector.phase import detect_shifts, realign
from detector.series import SeriesIndex

P = Params()
DAY = 24 * 60
START = 2_000 * 7 * DAY  # a Monday 00:00 UTC (epoch minute), far from zero
LEAVES = [("DE", "login"), ("DE", "app"), ("IN", "login"), ("IN", "app")]
OFFSET_H = {"DE": 1.0, "IN": 5.5}
RATE = {"DE": 6.0, "IN": 4.0}  # reports per minute per leaf on average


def _shape(local_hour: np.ndarray) -> np.ndarray:
    """Mean-one daily cycle, peak / trough about 6, peak mid-afternoon local."""
    g = np.cos(2 * np.pi * (local_hour - 15.0) / 24) + 0.4 * np.cos(
        4 * np.pi * (local_hour - 12.0) / 24
    )
    out = np.exp(0.9 * g)
    return out / out.mean()


def _traffic(
    seed: int, days: int, shift_at: int | None = None, events: bool = False, shape: float = 2.0
) -> np.ndarray:
    """Return per-minute leaf counts (n_leaf, days * DAY): Poisson of per-minute gamma rates
    of the given shape (15-minute variance / mean 3-10 at shape 2, 10-40 at shape 0.5), a
    weekend factor; DE's clock +60 min from minute shift_at (or -60 if shift_at < 0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY, dtype=float)
    rows = []
    for region, _ in LEAVES:
        local = t + OFFSET_H[region] * 60
        if region == "DE" and shift_at is not None:
            local = local + (
                np.where(t >= shift_at, 60.0, 0.0)
                if shift_at >= 0
                else np.where(t < -shift_at, 60.0, 0.0)
            )
        hour = (local % DAY) / 60
        weekend = np.where((local // DAY) % 7 >= 5, 0.8, 1.0)
        mean = RATE[region] * _shape(hour) * weekend
        if events:
            local_day = local // DAY
            mean = mean * np.where(local_day == 10, 1.45, 1.0)  # holiday, more reports
            mean = mean * np.where(local_day == 17, 0.6, 1.0)  # holiday, fewer reports
        rows.append(mean)
    mean = np.vstack(rows)
    lam = mean * rng.gamma(shape, 1.0 / shape, size=mean.shape)
    counts = rng.poisson(lam).astype(float)
    if events:
        # undetected bursts on morning ramps, an outage, an ingestion gap
        for day, hour, hours, factor in (
            (9, 7, 2, 5.0),
            (13, 8, 1, 8.0),
            (19, 16, 3, 4.0),
            (22, 6, 2, 3.0),
        ):
            s = day * DAY + hour * 60
            counts[:2, s : s + hours * 60] *= factor
        counts[:, 15 * DAY + 600 : 15 * DAY + 640] = 0.0
    return counts


def _series(counts: np.ndarray) -> tuple[SeriesIndex, np.ndarray]:
    """Return the series index and the 15-minute counts of every series, (n, slots)."""
    index = SeriesIndex()
    for leaf in LEAVES:
        index.leaf_position(leaf)
    up = np.stack([index.rollup(np.eye(len(LEAVES))[i]) for i in range(len(LEAVES))], axis=1)
    slots = counts.reshape(len(LEAVES), -1, SLOT_MINUTES).sum(axis=2)
    return index, up @ slots


class _Replay:
    """Hourly refits over precomputed slot counts, the way ServiceDetector.refresh_baseline
    runs them (shift check with the fit in use, realign, refit)."""

    def __init__(self, counts: np.ndarray, excluded_slots: np.ndarray | None = None) -> None:
        self.index, self.full = _series(counts)
        self.n, self.total = self.full.shape
        self.first = START // SLOT_MINUTES
        self.hist = np.zeros((self.n, P.history_slots), dtype=np.int64)
        self.excluded = np.zeros(P.history_slots, dtype=bool)
        self.excluded_slots = set() if excluded_slots is None else set(excluded_slots.tolist())
        self.filled = 0
        self.baseline = None
        self.shifts: list[tuple[int, dict]] = []

    def run(self, until_slot: int) -> None:
        keys = self.index.keys
        donors, depths = self.index.donors(), self.index.depths()
        while self.filled < until_slot:
            for rel in range(self.filled, self.filled + 4):
                ring = (self.first + rel) % P.history_slots
                self.hist[:, ring] = self.full[:, rel]
                self.excluded[ring] = rel in self.excluded_slots
            self.filled += 4
            now = self.first + self.filled
            if self.baseline is not None:
                shifts = detect_shifts(
                    self.hist, self.excluded, now, self.first, keys, self.baseline, P
                )
                if shifts:
                    self.shifts.append((now - self.first, shifts))
                    realign(self.hist, self.excluded, now, self.first, keys, shifts, P)
            self.baseline = fit_baseline(
                self.hist, self.excluded, now, self.first, donors, depths, P
            )


def test_clean_shift_is_found_within_a_day_and_realigned() -> None:
    change_day = 16
    shift_at = change_day * DAY + 60  # 01:00 UTC
    counts = _traffic(5, change_day + 4, shift_at)
    rep = _Replay(counts)
    change_slot = shift_at // SLOT_MINUTES
    rep.run(change_slot + 30 * 4)
    assert len(rep.shifts) == 1, rep.shifts
    at, shifts = rep.shifts[0]
    assert set(shifts) == {"DE"}
    shift, change = shifts["DE"]
    assert shift == 4
    assert at - change_slot <= 28 * 4  # found within about a day
    assert abs(change - rep.first - change_slot) <= 8  # change located within 2 hours
    # the realigned history is in the new time: the global series still sums its countries,
    # the refit profile follows the shifted morning ramp, and nothing shifts again
    keys = rep.index.keys
    row = {k: i for i, k in enumerate(keys)}
    now = rep.first + rep.filled
    ring = np.arange(now - 3 * SLOTS_PER_WEEK, now) % P.history_slots
    np.testing.assert_array_equal(
        rep.hist[row[("*", "*")], ring],
        rep.hist[row[("DE", "*")], ring] + rep.hist[row[("IN", "*")], ring],
    )
    np.testing.assert_array_equal(
        rep.hist[row[("DE", "*")], ring],
        rep.hist[row[("DE", "login")], ring] + rep.hist[row[("DE", "app")], ring],
    )
    profile = rep.baseline.profile[row[("DE", "*")]]
    tail = np.arange(rep.filled, rep.filled + SLOTS_PER_DAY)
    t = (tail * SLOT_MINUTES).astype(float)
    new_time = _shape((t + 120) % DAY / 60) * 2 * RATE["DE"] * SLOT_MINUTES
    old_time = _shape((t + 60) % DAY / 60) * 2 * RATE["DE"] * SLOT_MINUTES
    fitted = profile[(rep.first + tail) % SLOTS_PER_WEEK]
    weekday = ((rep.first + tail) // SLOTS_PER_DAY) % 7 < 5
    err_new = np.median(np.abs(np.log(fitted / new_time))[weekday])
    err_old = np.median(np.abs(np.log(fitted / old_time))[weekday])
    assert err_new < 0.6 * err_old
    rep.run(rep.filled + 2 * SLOTS_PER_DAY)
    assert len(rep.shifts) == 1


def test_fall_back_is_found_too() -> None:
    shift_at = 16 * DAY + 60
    counts = _traffic(6, 18, -shift_at)  # DE an hour ahead until shift_at, then back
    rep = _Replay(counts)
    rep.run(shift_at // SLOT_MINUTES + 36 * 4)
    assert [s["DE"][0] for _, s in rep.shifts] == [-4]


@pytest.mark.parametrize(("seed", "shape"), [(1, 2.0), (2, 0.5)])
def test_no_shift_on_heavy_tailed_traffic_with_events(seed: int, shape: float) -> None:
    counts = _traffic(seed, 27, None, events=True, shape=shape)
    outage = np.arange(12 * SLOTS_PER_DAY + 40, 12 * SLOTS_PER_DAY + 52)
    counts[:, outage[0] * SLOT_MINUTES : (outage[-1] + 1) * SLOT_MINUTES] *= 6.0
    rep = _Replay(counts, excluded_slots=outage)
    rep.run(counts.shape[1] // SLOT_MINUTES)
    assert rep.shifts == []
