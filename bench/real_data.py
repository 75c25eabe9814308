"""Real count series from shared/data/real as minute counts with scored events (bench real).

Two public sets (see README.md of that directory): Downdetector's 24-hour charts around 132
cloud incidents it declared (15-minute buckets), and nine hourly app-crash series with hand
labels. Each coarse bucket is spread over its minutes by a multinomial draw from a generator
seeded by the bench seed and the window (or series) number, so both constructions of the
Downdetector set see the same minute counts, and a count is never created or lost.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DOWNDETECTOR = "downdetector-cloud"
"""Directory of the Downdetector windows."""

APP_CRASHES = "microsoft-app-crashes"
"""Directory of the app-crash series."""

DD_BUCKET = 15
"""Minutes per Downdetector bucket."""

APP_BUCKET = 60
"""Minutes per app-crash bucket."""

BASE_SKIP_BUCKETS = 8
"""Buckets (2 h) just before a Downdetector peak left out of the pre-incident level."""

MIN_BASE_BUCKETS = 8
"""Buckets needed before that for the pre-incident level (else the window's lower quartile)."""

COLD_EVAL_MINUTES = 360
"""Minutes of a cold-start window before scoring starts (ours' default min_history_hours)."""

WARMUP_DAYS = 7
"""Days of history before scoring starts on the long series (the Downdetector-style peer's
minimum history, and the age at which ours switches to a weekly profile)."""

HALF_DAY = 720
"""Largest overlap (minutes) when a window is moved by whole days next to the previous one."""


@dataclass(frozen=True)
class RealSeries:
    """One service of a real set: minute counts and the events to find in them."""

    name: str
    start_minute: int
    """Epoch minute of counts[0]."""
    counts: np.ndarray
    """Reports per minute, int64, shape (n_minutes,)."""
    events: tuple[dict, ...]
    """Scorer outages: id, service, start and end minute indices, duration_min, floors (inf)."""
    eval_start: int
    """Minute index from which events and incidents are scored."""
    filler: np.ndarray
    """True where a minute is filler between windows, not real data (never scored), bool."""

    @property
    def scored_minutes(self) -> int:
        """Minutes of real data from eval_start on (the false-alarm exposure)."""
        return int((~self.filler[self.eval_start :]).sum())


@dataclass(frozen=True)
class RealSet:
    """One scored construction of a data set."""

    name: str
    title: str
    series: tuple[RealSeries, ...]
    tolerance: int
    """Minutes by which event spans are widened when matching (and for false alarms)."""
    note: str = ""


@dataclass(frozen=True)
class Window:
    """One Downdetector chart: 15-minute buckets and the declared peak."""

    provider: str
    window: int
    start_minute: int
    buckets: np.ndarray
    peak: int


def spread(buckets: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """Return minute counts, shape (n * width,): each bucket's count spread uniformly at
    random over its `width` minutes (multinomial), so every bucket keeps its exact total."""
    counts = np.asarray(buckets, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("buckets must be a 1-D array of non-negative counts")
    return rng.multinomial(counts, np.full(width, 1.0 / width)).reshape(-1).astype(np.int64)


def level_high(buckets: np.ndarray, peak: int) -> float:
    """Return the largest bucket count still near the pre-incident level of a window: at most
    max(2 x level, level + 3 sqrt(max(level, 1))), the level being the median of the buckets
    up to 2 h before the peak (the window's lower quartile when there are too few)."""
    x = np.asarray(buckets, dtype=np.float64)
    pre = x[: max(0, peak - BASE_SKIP_BUCKETS)]
    base = float(np.median(pre)) if pre.size >= MIN_BASE_BUCKETS else float(np.percentile(x, 25))
    return max(2.0 * base, base + 3.0 * math.sqrt(max(base, 1.0)))


def _run_end(x: np.ndarray, start: int, high: float) -> int:
    """Return the first bucket from `start` on where x and the next bucket are both <= high."""
    stop = start
    while stop < x.size and (x[stop] > high or (stop + 1 < x.size and x[stop + 1] > high)):
        stop += 1
    return stop


def declared_span(buckets: np.ndarray, peak: int) -> tuple[int, int]:
    """Return the [first, stop) buckets of the incident around `peak`: from the rise before
    the peak until the counts are back near the pre-incident level (see level_high). A single
    quiet bucket inside the rise or the decay does not end the span."""
    x = np.asarray(buckets, dtype=np.float64)
    high = level_high(x, peak)
    first = peak
    while first > 0 and (x[first - 1] > high or (first > 1 and x[first - 2] > high)):
        first -= 1
    return first, _run_end(x, peak + 1, high)


def _epoch_minute(text: str) -> int:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) // 60


def read_windows(root: Path) -> list[Window]:
    """Read the Downdetector windows (windows.csv, index.csv), sorted by provider and start."""
    base = root / DOWNDETECTOR
    rows: dict[tuple[str, int], list[tuple[int, int]]] = {}
    with open(base / "windows.csv", newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            key = (r["provider"], int(r["window"]))
            rows.setdefault(key, []).append(
                (_epoch_minute(r["bucket_start_utc"]), int(r["reports_per_15min"]))
            )
    out = []
    with open(base / "index.csv", newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            key = (r["provider"], int(r["window"]))
            cells = sorted(rows.get(key, []))
            starts = [m for m, _ in cells]
            if not cells or any(
                b - a != DD_BUCKET for a, b in zip(starts, starts[1:], strict=False)
            ):
                raise ValueError(f"window {key} is empty or not on a 15-minute grid")
            peak = _epoch_minute(r["peak_bucket_utc"])
            if peak not in starts:
                raise ValueError(f"window {key}: peak bucket {r['peak_bucket_utc']} not in it")
            out.append(
                Window(
                    key[0],
                    key[1],
                    starts[0],
                    np.array([c for _, c in cells], dtype=np.int64),
                    starts.index(peak),
                )
            )
    return sorted(out, key=lambda w: (w.provider, w.start_minute, w.window))


def _event(eid: int, service: str, start: int, end: int) -> dict:
    return {
        "id": eid,
        "service": service,
        "start": int(start),
        "end": int(end),
        "duration_min": int(end - start),
        "info_floor_min": math.inf,
        "cusum_floor_min": math.inf,
    }


def _window_minutes(w: Window, seed: int) -> np.ndarray:
    return spread(w.buckets, DD_BUCKET, np.random.default_rng([seed, w.window]))


def cold_start_set(windows: list[Window], seed: int) -> RealSet:
    """Return every window as its own service, its hours before the peak the only history."""
    series = []
    for w in windows:
        if w.buckets.size * DD_BUCKET <= COLD_EVAL_MINUTES:
            continue
        name = f"{w.provider}-{w.window}"
        first, stop = declared_span(w.buckets, w.peak)
        minutes = _window_minutes(w, seed)
        series.append(
            RealSeries(
                name,
                w.start_minute,
                minutes,
                (_event(0, name, first * DD_BUCKET, stop * DD_BUCKET),),
                COLD_EVAL_MINUTES,
                np.zeros(minutes.size, dtype=bool),
            )
        )
    return RealSet(
        "downdetector-cold",
        "Downdetector cloud windows, each on its own (cold start)",
        tuple(series),
        2 * DD_BUCKET,
        f"{len(series)} windows of 24 h, scored from hour {COLD_EVAL_MINUTES // 60}",
    )


@dataclass
class _Segment:
    """Windows of one provider that overlap in real time, joined (real minutes)."""

    start: int
    minutes: np.ndarray
    spans: list[tuple[int, int]]
    open_spans: list[tuple[int, float]]
    """(index in spans, level_high) of spans still running when their window ended."""

    @property
    def end(self) -> int:
        return self.start + self.minutes.size

    def extend_open_spans(self) -> None:
        """Let a span that ran to its window's end go on through the windows continuing it,
        with the same rule on 15-minute sums of the joined minutes."""
        for i, high in self.open_spans:
            a, b = self.spans[i]
            rest = self.minutes[b - self.start :]
            if rest.size == 0:
                continue
            blocks = np.add.reduceat(rest, np.arange(0, rest.size, DD_BUCKET))
            self.spans[i] = (a, min(self.end, b + DD_BUCKET * _run_end(blocks, 0, high)))

    def quiet_rate(self) -> float:
        mask = np.ones(self.minutes.size, dtype=bool)
        for a, b in self.spans:
            mask[max(0, a - self.start) : max(0, b - self.start)] = False
        return float(self.minutes[mask].mean()) if mask.any() else float(self.minutes.mean())


def _segments(windows: list[Window], seed: int) -> list[_Segment]:
    """Join windows overlapping in real time: a later window continues from the end of the
    earlier one (the bucket it cuts keeps only its share of the spread minutes)."""
    segs: list[_Segment] = []
    for w in sorted(windows, key=lambda w: w.start_minute):
        minutes = _window_minutes(w, seed)
        first, stop = declared_span(w.buckets, w.peak)
        span = (w.start_minute + first * DD_BUCKET, w.start_minute + stop * DD_BUCKET)
        if segs and w.start_minute < segs[-1].end:
            seg = segs[-1]
            skip = seg.end - w.start_minute
            if skip < minutes.size:
                seg.minutes = np.concatenate([seg.minutes, minutes[skip:]])
        else:
            seg = _Segment(w.start_minute, minutes, [], [])
            segs.append(seg)
        if stop == w.buckets.size:
            seg.open_spans.append((len(seg.spans), level_high(w.buckets, w.peak)))
        seg.spans.append(span)
    for seg in segs:
        seg.extend_open_spans()
    return segs


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        elif b > a:
            out.append((a, b))
    return out


def concatenated_series(
    provider: str, windows: list[Window], seed: int, warmup_days: int = WARMUP_DAYS
) -> RealSeries:
    """Return one provider's windows as one long series, each moved by whole days (so every
    minute keeps its real time of day) to start within 12 h of the previous one's end.

    An overlap is cut in its middle; a gap is filled with seeded Poisson counts at the mean
    quiet rate of the two neighbours (marked as filler: it is history, never scored).
    """
    segs = _segments(windows, seed)
    rng = np.random.default_rng([seed, sum(map(ord, provider))])
    chunks: list[np.ndarray] = [segs[0].minutes]
    fills: list[np.ndarray] = [np.zeros(segs[0].minutes.size, dtype=bool)]
    kept = [(segs[0].start, segs[0].end, 0)]  # placed [from, to) and shift of each segment
    end = segs[0].end
    for prev, seg in zip(segs, segs[1:], strict=False):
        placed = seg.start - 1440 * ((seg.start - end + HALF_DAY) // 1440)
        head = 0
        if placed < end:
            cut = placed + (end - placed) // 2
            drop = end - cut
            chunks[-1] = chunks[-1][: chunks[-1].size - drop]
            fills[-1] = fills[-1][: fills[-1].size - drop]
            lo, _, shift = kept[-1]
            kept[-1] = (lo, cut, shift)
            head = cut - placed
        elif placed > end:
            rate = 0.5 * (prev.quiet_rate() + seg.quiet_rate())
            chunks.append(rng.poisson(rate, placed - end).astype(np.int64))
            fills.append(np.ones(placed - end, dtype=bool))
        chunks.append(seg.minutes[head:])
        fills.append(np.zeros(seg.minutes.size - head, dtype=bool))
        kept.append((placed + head, placed + seg.minutes.size, placed - seg.start))
        end = placed + seg.minutes.size
    origin = segs[0].start
    spans = []
    for seg, (lo, hi, shift) in zip(segs, kept, strict=True):
        for a, b in seg.spans:
            a, b = max(a + shift, lo), min(b + shift, hi)
            if b > a:
                spans.append((a - origin, b - origin))
    events = tuple(_event(i, provider, a, b) for i, (a, b) in enumerate(_merge_spans(spans)))
    return RealSeries(
        provider,
        origin,
        np.concatenate(chunks),
        events,
        warmup_days * 1440,
        np.concatenate(fills),
    )


def concatenated_set(windows: list[Window], seed: int, warmup_days: int = WARMUP_DAYS) -> RealSet:
    """Return one long series per provider (see concatenated_series)."""
    providers = sorted({w.provider for w in windows})
    every = [
        concatenated_series(p, [w for w in windows if w.provider == p], seed, warmup_days)
        for p in providers
    ]
    series = tuple(s for s in every if s.counts.size > s.eval_start)
    filler = sum(int(s.filler.sum()) for s in every) / max(1, sum(s.counts.size for s in every))
    return RealSet(
        "downdetector-concat",
        "Downdetector cloud windows, one long series per provider (real time of day)",
        series,
        2 * DD_BUCKET,
        f"{len(series)} providers, {sum(len(s.events) for s in series)} events, "
        f"{filler:.0%} filler, scored after {warmup_days} days",
    )


def read_app_series(path: Path) -> tuple[int, np.ndarray, np.ndarray]:
    """Return (epoch minute of the first hour, hourly counts, labels) of one app-crash CSV.

    Repeated hours keep their first row; missing values and missing hours get the rounded
    mean of the nearest known hours on each side, and label 0.
    """
    first: dict[int, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            first.setdefault(_epoch_minute(r["TimeStamp"]), (r["Value"], r["Label"]))
    hours = sorted(first)
    if not hours:
        raise ValueError(f"{path}: no rows")
    n = (hours[-1] - hours[0]) // APP_BUCKET + 1
    values = np.full(n, np.nan)
    labels = np.zeros(n, dtype=bool)
    for m in hours:
        i = (m - hours[0]) // APP_BUCKET
        raw, label = first[m]
        values[i] = float(raw) if raw.strip() else np.nan
        labels[i] = label.strip() == "1"
    known = np.flatnonzero(~np.isnan(values))
    if known.size == 0:
        raise ValueError(f"{path}: no values")
    for i in np.flatnonzero(np.isnan(values)):
        left, right = known[known < i], known[known > i]
        near = ([values[left[-1]]] if left.size else []) + (
            [values[right[0]]] if right.size else []
        )
        values[i] = np.mean(near)
    return hours[0], np.rint(values).astype(np.int64), labels


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def app_crash_set(root: Path, seed: int, warmup_days: int = WARMUP_DAYS) -> RealSet:
    """Return every app-crash series long enough to score; events are runs of Label=1 hours."""
    series, skipped = [], []
    for number, path in enumerate(sorted((root / APP_CRASHES).glob("*.csv"))):
        start, hourly, labels = read_app_series(path)
        name = path.stem
        if hourly.size * APP_BUCKET <= warmup_days * 1440:
            skipped.append(name)
            continue
        minutes = spread(hourly, APP_BUCKET, np.random.default_rng([seed, number]))
        events = tuple(
            _event(i, name, a * APP_BUCKET, b * APP_BUCKET)
            for i, (a, b) in enumerate(_runs(labels))
        )
        series.append(
            RealSeries(
                name,
                start,
                minutes,
                events,
                warmup_days * 1440,
                np.zeros(minutes.size, dtype=bool),
            )
        )
    note = f"{len(series)} series, scored after {warmup_days} days"
    if skipped:
        note += f"; {', '.join(skipped)} not scored (no data after the warm-up)"
    return RealSet(
        "app-crashes",
        "Microsoft app-crash series (hourly, hand labels)",
        tuple(series),
        APP_BUCKET,
        note,
    )
