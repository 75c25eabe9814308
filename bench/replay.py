"""Benchmark: replay speed of the detector in series-minutes per second (not a test).

Builds seeded data for one service whose leaves roll up to about 200 series, runs
detector.replay.replay_arrays over three weeks of minutes and prints a table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from detector.engine import ServiceDetector
from detector.replay import replay_arrays

COUNTRIES = ("US", "GB", "DE", "FR", "JP")
SUBDIVISIONS = {
    "US": ("US-CA", "US-NY", "US-TX", "US-FL"),
    "GB": ("GB-LND", "GB-MAN", "GB-BIR", "GB-GLG"),
    "DE": ("DE-BE", "DE-BY", "DE-HH", "DE-NW"),
    "FR": ("FR-IDF", "FR-ARA", "FR-PAC", "FR-OCC"),
    "JP": ("JP-13", "JP-27", "JP-23", "JP-01"),
}
PROBLEMS = ("app", "website", "login", "server-connection", "images", "links", "payments")
EPOCH_START = 28_000_000 - 28_000_000 % 10080


def build(minutes: int, seed: int) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Return leaf keys, reports and reporters, shape (n_leaf, minutes), with two outages."""
    rng = np.random.default_rng(seed)
    keys = [
        (sub, problem)
        for country in COUNTRIES
        for sub in SUBDIVISIONS[country]
        for problem in PROBLEMS
    ]
    t = np.arange(minutes)
    daily = 1.0 + 0.6 * np.cos(2 * np.pi * (t / 1440.0 - 0.8))
    base = rng.uniform(0.02, 0.6, len(keys))[:, None] * daily[None, :]
    for start in (minutes - 5 * 1440 + 600, minutes - 2 * 1440 + 900):
        base[: len(keys) // 2, start : start + 45] *= 8.0
    reports = rng.negative_binomial(base / 1.0, 0.5)
    reporters = rng.binomial(reports, 0.95)
    return keys, reports, reporters


def main(argv: list[str] | None = None) -> int:
    """Run the replay speed benchmark and print a table; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="outage bench replay", description="Replay speed of the detector on seeded data."
    )
    parser.add_argument("--weeks", type=float, default=3.0, help="minutes of data, in weeks")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    minutes = int(args.weeks * 10080)
    keys, reports, reporters = build(minutes, args.seed)
    probe = ServiceDetector("bench")
    probe.advance(EPOCH_START, {key: (1, 1) for key in keys})
    n_series = len(probe.series_keys())
    started, cpu = time.perf_counter(), time.process_time()
    incidents = replay_arrays("bench", keys, EPOCH_START, reports, reporters)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rate = n_series * minutes / seconds
    print(
        f"{'series':>8} {'leaves':>7} {'minutes':>8} {'seconds':>8} {'cpu s':>7} "
        f"{'series-min/s':>13} {'incidents':>9}"
    )
    print(
        f"{n_series:>8} {len(keys):>7} {minutes:>8} {seconds:>8.1f} {cpu:>7.1f} "
        f"{rate:>13,.0f} {len(incidents):>9}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
