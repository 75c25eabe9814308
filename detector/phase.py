"""Detect a country's clock change (DST) in the 15-minute history and realign older history.

A clock change moves a country's daily pattern by an hour in UTC, while the weekly baseline
keeps the old time for weeks. At each hourly refit, every country series with enough counts
compares its last `phase_lookback_hours` of 15-minute counts with a reference read at the
same slots and an hour earlier or later. The comparison is built to survive heavy-tailed
counts, outages, bursts and level changes:

* the reference is the median of the same slots in past weeks, smoothed like the profile
  (the fitted profile itself already contains the recent data, so it cannot be used);
* levels are free: one level per day (days start at the reference's daily trough, where a
  holiday or weekend step usually falls), so a trend or a day-long factor does not look like
  a shift, while a moved morning ramp or evening decline does;
* the noise scale is measured, not assumed: log residuals are standardised by the baseline's
  NB variance (phi / m + c2), then by their median absolute deviation at no shift (never
  below 1: the data may be noisier than the model, not cleaner), and scored with a Huber loss,
  so that a burst or an outage slot adds a bounded amount; incident slots are left out;
* the evidence is a CUSUM of the per-slot loss differences of the shifted reference over the
  unshifted one (a change point test: the change slot is where the CUSUM last left zero), and
  it must come from both rising and falling parts of the day (a clock change moves the morning
  ramp and the evening decline alike; a burst, a holiday step or an evening peak mostly one).

A shift is adopted only when the CUSUM reaches `phase_threshold`; the country's history (its
subdivisions and problems too) before the change slot is then moved into the new time and
the global series take the difference, so that the refit right after is in the new time.
Needs a week of history before the lookback (weekly mode), and checks countries only: a
country whose regions change clocks on different days (or not at all) is not realigned.
"""

from __future__ import annotations

import numpy as np

from detector.baseline import Baseline, BaselineMode
from detector.params import SLOTS_PER_DAY, SLOTS_PER_WEEK, Params
from detector.regions import GLOBAL, region_depth
from detector.series import Key

SHIFT_SLOTS = 4
"""One hour of 15-minute slots: the size of a clock change."""

MAD_SCALE = 1.4826
"""Median absolute deviation to standard deviation of a normal distribution."""


def _huber(x: np.ndarray, k: float) -> np.ndarray:
    """Return the Huber loss: x^2 / 2 inside [-k, k], linear outside."""
    a = np.abs(x)
    return np.where(a <= k, 0.5 * x * x, k * a - 0.5 * k * k)


def day_segments(prof0: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Number the days of `slots`, each day starting at the profile's daily trough, shape
    (len(slots),): a level step (a holiday, a weekend) mostly starts there, so a level per
    day absorbs it, while a clock change still moves the ramps within the day."""
    by_slot = np.zeros(SLOTS_PER_DAY)
    np.add.at(by_slot, slots % SLOTS_PER_DAY, prof0)
    trough = int(np.argmin(by_slot))
    return (slots - trough) // SLOTS_PER_DAY


def shift_evidence(
    y: np.ndarray,
    ok: np.ndarray,
    prof: dict[int, np.ndarray],
    segment: np.ndarray,
    phi: float,
    c2: float,
    huber: float,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Return, per candidate shift s != 0, the per-slot loss gains of s over no shift and the
    sign of the profile's growth at each slot (+1 rising, -1 falling), shape (len(y),) each.

    y: recent 15-minute counts (chronological); ok: their validity; prof[s]: the profile
    read s slots later at each of them (prof[0] unshifted); segment: day number of each slot
    (one level per day, the median log ratio of its valid slots); phi, c2: the series' NB
    dispersion (variance phi m + c2 m^2). Invalid slots gain 0.
    """
    log_y = np.log(y + 0.5)
    mean = np.mean(list(prof.values()), axis=0)
    level0 = np.exp(np.median((log_y - np.log(mean + 0.5))[ok])) if ok.any() else 1.0
    mu = level0 * mean
    sd = np.sqrt(phi / (mu + 0.5) + c2)
    resid = {}
    for s, p in prof.items():
        r = log_y - np.log(level0 * p + 0.5)
        for day in np.unique(segment):
            part = (segment == day) & ok
            if part.any():
                r = np.where(segment == day, r - np.median(r[part]), r)
        resid[s] = r / sd
    r0 = resid[0][ok]
    scale = 1.0
    if r0.size:
        scale = max(MAD_SCALE * float(np.median(np.abs(r0 - np.median(r0)))), 1.0)
    loss0 = _huber(resid[0] / scale, huber)
    rising = np.sign(np.gradient(np.log(prof[0] + 0.5)))
    out = {}
    for s, r in resid.items():
        if s == 0:
            continue
        out[s] = (np.where(ok, loss0 - _huber(r / scale, huber), 0.0), rising)
    return out


def cusum_change(gain: np.ndarray) -> tuple[float, int]:
    """Return the CUSUM of gains at the end and the index where it last left zero."""
    s, start = 0.0, 0
    for i, g in enumerate(gain):
        s += g
        if s <= 0.0:
            s, start = 0.0, i + 1
    return s, start


def weekly_reference(
    hist: np.ndarray,
    excluded: np.ndarray,
    rows: list[int],
    ext: np.ndarray,
    weeks: list[int],
    kernel: tuple[float, ...],
) -> np.ndarray:
    """Return the reference counts of `rows` at slots `ext`, shape (len(rows), len(ext)): the
    median over the valid same slots `weeks` weeks earlier, smoothed along time with kernel
    (NaN where no past week is valid). Never uses the recent data it is compared with."""
    size = hist.shape[1]
    past = np.stack(
        [hist[rows][:, (ext - k * SLOTS_PER_WEEK) % size].astype(float) for k in weeks], axis=1
    )
    valid = np.stack([~excluded[(ext - k * SLOTS_PER_WEEK) % size] for k in weeks])
    any_valid = valid.any(axis=0)
    past = np.where(valid[None], past, np.nan)
    med = np.full((len(rows), len(ext)), np.nan)
    med[:, any_valid] = np.nanmedian(past[:, :, any_valid], axis=1)
    weights = np.asarray(kernel, dtype=float)
    half = len(weights) // 2
    have = np.isfinite(med)
    filled = np.where(have, med, 0.0)
    num = np.zeros_like(filled)
    den = np.zeros_like(filled)
    for offset, w in zip(range(-half, half + 1), weights, strict=True):
        lo, hi = max(0, -offset), min(len(ext), len(ext) - offset)
        num[:, lo:hi] += w * filled[:, lo + offset : hi + offset]
        den[:, lo:hi] += w * have[:, lo + offset : hi + offset]
    return np.where(have & (den > 0), num / np.maximum(den, 1e-12), np.nan)


def country_evidence(
    hist: np.ndarray,
    excluded: np.ndarray,
    now_slot: int,
    first_slot: int,
    keys: list[Key],
    baseline: Baseline,
    params: Params,
) -> dict[str, dict[int, tuple[float, float, float, int]]]:
    """Return {country: {s: (cusum, rising part, falling part, change slot)}} for s = +-4.

    A shift s means the country's counts at slot t now look like the reference at slot t + s
    (s = +4: traffic an hour earlier in UTC, as after a spring-forward change). The reference
    is the median of the same slots in past weeks (the fitted profile would contain the
    recent data itself), so a week of history before the lookback is needed. The CUSUM sums
    the loss gains since the change slot, where it last left zero; the rising and falling
    parts split that sum by the sign of the reference's growth. Countries with fewer than
    phase_min_daily_reports a day are left out.
    hist: 15-minute counts ring (n, H); excluded: incident slots (H,); baseline: the fit in
    use (dispersion). Only completed slots before now_slot are used.
    """
    if baseline.mode is not BaselineMode.WEEKLY:
        return {}
    size = hist.shape[1]
    length = params.phase_lookback_hours * 4
    margin = SHIFT_SLOTS + len(params.smoothing_kernel) // 2
    oldest = max(first_slot, now_slot - size)
    weeks = [
        k
        for k in range(1, params.history_weeks)
        if now_slot - length - margin - k * SLOTS_PER_WEEK >= oldest
    ]
    if not weeks:
        return {}
    rows = [
        row
        for row, (region, problem) in enumerate(keys)
        if problem == GLOBAL and region_depth(region) == 1
    ]
    if not rows:
        return {}
    slots = np.arange(now_slot - length, now_slot, dtype=np.int64)
    ext = np.arange(now_slot - length - margin, now_slot + margin, dtype=np.int64)
    ref = weekly_reference(hist, excluded, rows, ext, weeks, params.smoothing_kernel)
    base_ok = ~excluded[slots % size]
    out: dict[str, dict[int, tuple[float, float, float, int]]] = {}
    for i, row in enumerate(rows):
        region = keys[row][0]
        y = hist[row, slots % size].astype(float)
        prof = {s: ref[i, margin + s : margin + s + length] for s in (-SHIFT_SLOTS, 0, SHIFT_SLOTS)}
        ok = base_ok & np.all([np.isfinite(p) for p in prof.values()], axis=0)
        if ok.sum() < SLOTS_PER_DAY or (y * ok).sum() < (
            params.phase_min_daily_reports * ok.sum() / SLOTS_PER_DAY
        ):
            continue
        prof = {s: np.where(ok, p, 0.0) for s, p in prof.items()}
        # the reference is a median of len(weeks) noisy weeks: its Poisson-like noise adds
        phi = float(baseline.phi[row]) * (1.0 + 1.0 / len(weeks))
        evidence = shift_evidence(
            y,
            ok,
            prof,
            day_segments(prof[0], slots),
            phi,
            float(baseline.c2[row]),
            params.phase_huber,
        )
        out[region] = {}
        for s, (gain, rising) in evidence.items():
            total, start = cusum_change(gain)
            tail, side = gain[start:], rising[start:]
            out[region][s] = (
                total,
                float(tail[side > 0].sum()),
                float(tail[side < 0].sum()),
                int(slots[0]) + start,
            )
    return out


def detect_shifts(
    hist: np.ndarray,
    excluded: np.ndarray,
    now_slot: int,
    first_slot: int,
    keys: list[Key],
    baseline: Baseline,
    params: Params,
) -> dict[str, tuple[int, int]]:
    """Return {country: (shift in slots, first slot in the new time)} of adopted clock changes:
    the CUSUM reaches phase_threshold and both its rising and falling parts reach
    phase_side_share of it (the larger CUSUM wins if both shifts qualify)."""
    need = params.phase_side_share * params.phase_threshold
    out: dict[str, tuple[int, int]] = {}
    for country, cands in country_evidence(
        hist, excluded, now_slot, first_slot, keys, baseline, params
    ).items():
        good = [
            (total, s, change)
            for s, (total, up, down, change) in cands.items()
            if total >= params.phase_threshold and up >= need and down >= need
        ]
        if good:
            _, s, change = max(good)
            out[country] = (s, change)
    return out


def realign(
    hist: np.ndarray,
    excluded: np.ndarray,
    now_slot: int,
    first_slot: int,
    keys: list[Key],
    shifts: dict[str, tuple[int, int]],
    params: Params,
) -> None:
    """Move each shifted country's history before its change slot into the new time, in place.

    Slot t takes the counts of slot t + s (slots whose source is outside the moved range keep
    their counts); the country's subdivisions and problems move with it, the global series of
    each problem takes the difference, and a slot that received an incident slot's counts is
    marked excluded.
    """
    size = hist.shape[1]
    oldest = max(first_slot, now_slot - size)
    position = {key: row for row, key in enumerate(keys)}
    for country, (shift, change) in shifts.items():
        slots = np.arange(oldest, min(change, now_slot), dtype=np.int64)
        source = slots + shift
        keep = (source >= oldest) & (source < change)
        slots, source = slots[keep], source[keep]
        if slots.size == 0:
            continue
        moved_excluded = excluded[source % size].copy()
        for row, (region, problem) in enumerate(keys):
            if region != country and not region.startswith(country + "-"):
                continue
            old = hist[row, slots % size].copy()
            new = hist[row, source % size].copy()
            hist[row, slots % size] = new
            parent = position.get((GLOBAL, problem)) if region == country else None
            if parent is not None:
                hist[parent, slots % size] += new - old
        excluded[slots % size] |= moved_excluded
