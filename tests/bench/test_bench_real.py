"""`outage bench real`: conversion of the real sets, labels, the absent-data path (bench/real.py).

The fixtures under fixtures/real are hand-written, a few rows in the real files' formats; the
real data never enters the repository.
"""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from real_data import (
    APP_BUCKET,
    DD_BUCKET,
    Window,
    app_crash_set,
    cold_start_set,
    concatenated_series,
    declared_span,
    read_app_series,
    read_windows,
    spread,
)

REAL = Path(__file__).resolve().parents[2] / "bench" / "real.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "real"
DAY = 1440


def test_spread_preserves_every_bucket_exactly():
    buckets = np.array([0, 1, 7, 250, 3, 0, 91], dtype=np.int64)
    minutes = spread(buckets, DD_BUCKET, np.random.default_rng(11))
    assert minutes.shape == (buckets.size * DD_BUCKET,)
    assert minutes.dtype == np.int64 and (minutes >= 0).all()
    np.testing.assert_array_equal(minutes.reshape(-1, DD_BUCKET).sum(axis=1), buckets)


def test_spread_is_seeded():
    buckets = np.arange(40, dtype=np.int64)
    first = spread(buckets, APP_BUCKET, np.random.default_rng(5))
    np.testing.assert_array_equal(first, spread(buckets, APP_BUCKET, np.random.default_rng(5)))
    assert not np.array_equal(first, spread(buckets, APP_BUCKET, np.random.default_rng(6)))


def test_spread_rejects_negative_counts():
    with pytest.raises(ValueError):
        spread(np.array([1, -1]), 15, np.random.default_rng(0))


def test_declared_span_runs_from_the_rise_to_back_near_the_level():
    quiet = [1, 0, 2, 1, 0, 1, 1, 0, 2, 1] * 2
    buckets = np.array(quiet + [2, 9, 40, 60, 3, 12, 8, 3, 2, 1, 1, 0])
    # level 1 -> "near" is at most 4; one quiet bucket (3) inside the decay does not end it
    assert declared_span(buckets, peak=23) == (21, 27)


def test_declared_span_of_a_lone_peak_bucket():
    buckets = np.array([0] * 12 + [30] + [0] * 5)
    assert declared_span(buckets, peak=12) == (12, 13)


def test_read_windows_from_fixture():
    windows = read_windows(FIXTURES)
    assert [(w.provider, w.window, w.buckets.size, w.peak) for w in windows] == [
        ("aws", 11, 15, 10),
        ("aws", 12, 4, 2),
    ]
    assert windows[0].start_minute % 60 == 0  # 10:00:07 -> the minute 10:00


def _window(number, start, peak_height, peak=48, size=95):
    buckets = np.ones(size, dtype=np.int64)
    buckets[peak] = peak_height
    return Window("p", number, start, buckets, peak)


def test_cold_start_set_scores_each_window_after_its_history():
    windows = [_window(1, 29 * DAY, 50), _window(2, 31 * DAY, 9, peak=10, size=20)]
    rs = cold_start_set(windows, seed=3)
    # the 5-hour window is shorter than the 6 hours of history: not scored
    assert [s.name for s in rs.series] == ["p-1"]
    (series,) = rs.series
    assert int(series.counts.sum()) == int(windows[0].buckets.sum())
    assert series.eval_start == 360 and not series.filler.any()
    (event,) = series.events
    assert (event["start"], event["end"]) == (48 * DD_BUCKET, 49 * DD_BUCKET)


@pytest.mark.parametrize(
    ("offset", "gap"),
    [
        (1740, 315),  # starts 315 min after the first one ends: left there, gap filled
        (4380, 75),  # 2 days + 2955 min after it: moved back 2 days, 75-min gap
    ],
)
def test_concatenation_keeps_time_of_day_and_marks_filler(offset, gap):
    first_start = 29 * DAY + 600
    second_start = first_start + offset
    windows = [_window(1, first_start, 50), _window(2, second_start, 70)]
    s = concatenated_series("p", windows, seed=1, warmup_days=0)
    assert s.start_minute == first_start
    assert int(s.filler.sum()) == gap
    assert s.counts.size == 2 * 95 * DD_BUCKET + gap
    real = s.counts[~s.filler]
    assert int(real.sum()) == int(sum(w.buckets.sum() for w in windows))
    first, second = s.events
    assert (s.start_minute + second["start"]) % DAY == (second_start + 48 * DD_BUCKET) % DAY
    assert second["start"] - first["start"] == 95 * DD_BUCKET + gap


def test_concatenation_cuts_an_overlap_in_its_middle():
    first_start = 29 * DAY
    second_start = first_start + 2 * DAY + 1380  # placed 45 minutes before the first's end
    windows = [_window(1, first_start, 50), _window(2, second_start, 70)]
    s = concatenated_series("p", windows, seed=1, warmup_days=0)
    assert not s.filler.any()
    assert s.counts.size == 2 * 95 * DD_BUCKET - 45
    assert len(s.events) == 2


def test_read_app_series_dedups_and_fills_missing_hours():
    start, hourly, labels = read_app_series(FIXTURES / "microsoft-app-crashes" / "app1-01.csv")
    assert hourly.tolist() == [4, 6, 4, 3, 4, 5, 90, 70, 6, 5]  # 02:00 empty, 04:00 absent
    assert labels.tolist() == [False] * 6 + [True, True] + [False] * 2
    assert start % 60 == 0


def test_app_crash_set_events_are_label_runs():
    rs = app_crash_set(FIXTURES, seed=2, warmup_days=0)
    (series,) = rs.series
    assert series.counts.size == 10 * APP_BUCKET
    assert [(e["start"], e["end"]) for e in series.events] == [(360, 480)]
    assert int(series.counts.sum()) == 4 + 6 + 4 + 3 + 4 + 5 + 90 + 70 + 6 + 5


def test_app_series_too_short_for_the_warmup_is_not_scored():
    rs = app_crash_set(FIXTURES, seed=2, warmup_days=7)
    assert rs.series == () and "app1-01" in rs.note


def test_absent_data_is_one_line_and_success(tmp_path, capsys):
    main = runpy.run_path(str(REAL))["main"]
    assert main(["--data", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no real data" in out


def test_fixture_end_to_end_json(capsys):
    main = runpy.run_path(str(REAL))["main"]
    assert main(["--data", str(FIXTURES), "--quick", "--warmup-days", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["sets"]) == {"downdetector-concat", "app-crashes"}
    for data in doc["sets"].values():
        assert {"ours", "ears_c2", "shesd"} <= set(data["detectors"])
        ours = data["detectors"]["ours"]
        assert set(ours["matched"]) == {"0.03", "0.1", "0.3", "1.0", "3.0"}
        assert [c["target_per_series_year"] for c in data["calibration"]] == [0.1, 1.0, 100.0]


def test_span_open_at_a_window_end_goes_on_through_the_next_window():
    first = _window(1, 29 * DAY, 50, peak=90)
    first.buckets[90:] = 50  # still at its peak when the window ends
    later = np.ones(95, dtype=np.int64)
    later[:5], later[5:10], later[60] = 50, 30, 200  # continues the first, then its own peak
    second = Window("p", 2, first.start_minute + 90 * DD_BUCKET, later, 60)
    s = concatenated_series("p", [first, second], seed=4, warmup_days=0)
    assert s.counts.size == (90 + 95) * DD_BUCKET and not s.filler.any()
    spans = [(e["start"], e["end"]) for e in s.events]
    # the first incident lasts while the continuation stays above its level (5 more buckets)
    assert spans == [(90 * DD_BUCKET, 100 * DD_BUCKET), (150 * DD_BUCKET, 151 * DD_BUCKET)]


def test_a_detector_failure_names_the_series_and_target(monkeypatch):
    import real

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(real, "replay_arrays", broken)
    rs = app_crash_set(FIXTURES, seed=2, warmup_days=0)
    # the default target runs first
    with pytest.raises(
        RuntimeError, match=r"app-crashes series app1-01 \(start minute \d+, target 1 "
    ):
        real.run_ours(rs, (0.1,))
