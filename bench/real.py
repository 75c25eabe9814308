"""`outage bench real`: ours and the peers on real, labelled count series (shared/data/real).

Loadable from the source checkout by path (runpy/importlib): it puts its own directory and the
checkout root on sys.path, then `main(argv) -> int` does the work. The data never enters the
repository; without it the benchmark says so in one line and succeeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE), str(_HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
from matched import (  # noqa: E402
    MATCHED_RATES,
    OURS_TARGETS,
    calibration_table,
    matched_row,
    matched_table,
    promised_per_service_week,
    series_equivalents,
)
from peers import DowndetectorStyle, EarsC2, EarsC3, Ewma3Sigma, Peer, Shesd  # noqa: E402
from quality_score import score, to_minute  # noqa: E402
from real_data import (  # noqa: E402
    APP_CRASHES,
    DOWNDETECTOR,
    WARMUP_DAYS,
    RealSet,
    app_crash_set,
    cold_start_set,
    concatenated_set,
    read_windows,
)

from detector.params import Params  # noqa: E402
from detector.replay import replay_arrays  # noqa: E402

DEFAULT_DATA = _HERE.parent.parent / "shared" / "data" / "real"
"""Where the data lives next to a checkout (../shared/data/real)."""

DEFAULT_SEED = 7001
"""Seed of the multinomial spreading and the filler of the published tables."""

LEAF = ("*", "*")
"""The one leaf every real series is fed as: the service's global, all-problems series (the
data has no region or problem split), so ours runs one series per service, as every peer."""

QUICK_TARGETS = (0.1, 1.0, 100.0)
"""Ours' targets (false alarms per series-year) swept with --quick."""

QUICK_STRIDE = 4
"""With --quick only every QUICK_STRIDE-th cold-start window and app series is run."""

WEEK = 7 * 1440


@dataclass
class Run:
    """One detector on one real set: pooled metrics at its default and at every sweep point."""

    name: str
    default: dict
    sweep: list[tuple[float, dict]] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def points(self) -> list[tuple[float, float | None]]:
        """Return (false alarms per service-week, recall) of the default and every sweep point."""
        pts = [(m["false_alarms_per_service_week"], m["recall"]) for _, m in self.sweep]
        return pts + [(self.default["false_alarms_per_service_week"], self.default["recall"])]


def pooled(rs: RealSet, incidents: dict[str, list[dict]]) -> dict:
    """Score each series with bench/quality_score.score and pool: recall over all events,
    false alarms per service-week of real, scored data (incidents detected in filler dropped)."""
    events = detected = false = 0
    delays: list[float] = []
    for s in rs.series:
        kept = []
        for inc in incidents.get(s.name, []):
            t = to_minute(inc["detected_at"]) - s.start_minute - 1
            if not (0 <= t < s.filler.size and s.filler[t]):
                kept.append(inc)
        m = score(
            kept,
            list(s.events),
            [],
            start_minute=s.start_minute,
            eval_start=s.eval_start,
            n_minutes=s.counts.size,
            n_services=1,
            n_series=1,
            tolerance=rs.tolerance,
        )
        events += m["outages"]
        detected += m["detected"]
        false += m["false_alarms"]
        delays += [r["delay_min"] for r in m["per_outage"] if r["detected"]]
    weeks = sum(s.scored_minutes for s in rs.series) / WEEK
    return {
        "events": events,
        "detected": detected,
        "recall": detected / events if events else None,
        "false_alarms": false,
        "false_alarms_per_service_week": false / weeks if weeks else None,
        "precision": detected / (detected + false) if detected + false else None,
        "median_delay_min": statistics.median(delays) if delays else None,
        "p90_delay_min": float(np.percentile(delays, 90)) if delays else None,
        "service_weeks": weeks,
    }


def run_ours(rs: RealSet, targets: tuple[float, ...]) -> Run:
    """Replay ours at its default and at every false-alarm target."""
    default = Params().false_alarms_per_series_year

    def incidents(target: float) -> dict[str, list[dict]]:
        params = Params(false_alarms_per_series_year=target)
        out = {}
        for s in rs.series:
            try:
                found = replay_arrays(
                    s.name, [LEAF], s.start_minute, s.counts[None, :], params=params
                )
            except Exception as exc:
                # Say where, so a detector failure on real data can be replayed on its own.
                raise RuntimeError(
                    f"ours failed on {rs.name} series {s.name} (start minute {s.start_minute}, "
                    f"target {target:g} per series-year): {exc}"
                ) from exc
            out[s.name] = [i.to_dict() for i in found]
        return out

    t0 = time.process_time()
    base = pooled(rs, incidents(default))
    cpu = time.process_time() - t0
    sweep = [(t, base if t == default else pooled(rs, incidents(t))) for t in targets]
    return Run("ours", base, sweep, cpu)


def run_peer(peer: Peer, rs: RealSet) -> Run:
    """Run a peer on every series (same input as ours) at its default and sweep thresholds."""
    t0 = time.process_time()
    states = {
        s.name: (
            s.start_minute,
            peer.prepare(s.name, [LEAF], s.start_minute, s.counts[None, :], None),
        )
        for s in rs.series
    }

    def incidents(thr: float | None) -> dict[str, list[dict]]:
        return {name: peer.incidents(name, start, st, thr) for name, (start, st) in states.items()}

    base = pooled(rs, incidents(None))
    cpu = time.process_time() - t0
    return Run(peer.name, base, [(t, pooled(rs, incidents(t))) for t in peer.sweep], cpu)


def peers() -> list[Peer]:
    """Return the peers that need no ground truth (the oracle needs the true baseline)."""
    return [DowndetectorStyle(), Ewma3Sigma(), EarsC2(), EarsC3(), Shesd()]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def default_table(runs: list[Run]) -> str:
    """Return the default-threshold table as Markdown."""
    lines = [
        "| detector | recall | detected / events | false alarms / service-week | precision "
        "| median delay (min) | p90 delay (min) | CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        m = r.default
        lines.append(
            f"| {r.name} | {_fmt(m['recall'])} | {m['detected']}/{m['events']} "
            f"| {_fmt(m['false_alarms_per_service_week'], 3)} | {_fmt(m['precision'])} "
            f"| {_fmt(m['median_delay_min'], 0)} | {_fmt(m['p90_delay_min'], 0)} "
            f"| {r.cpu_seconds:.1f} |"
        )
    return "\n".join(lines)


def calibration(rs: RealSet, ours: Run) -> list[tuple[float, float, float | None, int | None]]:
    """Return (target, promised, realised false alarms per service-week, count) per target."""
    eq = series_equivalents([LEAF])
    return [
        (t, promised_per_service_week(t, eq), m["false_alarms_per_service_week"], m["false_alarms"])
        for t, m in ours.sweep
    ]


def evaluate(rs: RealSet, targets: tuple[float, ...], say: Callable[[str], None]) -> list[Run]:
    """Return ours' and every peer's runs on one set."""
    say(f"{rs.name}: ours ({len(targets)} targets) ...")
    runs = [run_ours(rs, targets)]
    for peer in peers():
        say(f"{rs.name}: {peer.name} ...")
        runs.append(run_peer(peer, rs))
    return runs


def report(rs: RealSet, runs: list[Run]) -> str:
    """Return the printed section of one set: facts, default table, matched table, calibration."""
    weeks = runs[0].default["service_weeks"]
    head = (
        f"## {rs.title}\n{rs.note}; {runs[0].default['events']} scored events, "
        f"{weeks:.1f} service-weeks scored, events widened by {rs.tolerance} min\n"
    )
    return "\n".join(
        [
            head,
            "Default thresholds:\n",
            default_table(runs),
            "\nRecall at matched false-alarm rates (threshold sweeps, log-interpolated; "
            "'-': no threshold that strict):\n",
            matched_table({r.name: r.points() for r in runs}),
            "\nCalibration of ours (promised = target x 1 series-equivalent / 52.14 weeks):\n",
            calibration_table(calibration(rs, runs[0])),
        ]
    )


def to_json(rs: RealSet, runs: list[Run]) -> dict:
    """Return one set's results as plain data."""
    return {
        "title": rs.title,
        "note": rs.note,
        "tolerance_min": rs.tolerance,
        "detectors": {
            r.name: {
                **r.default,
                "cpu_seconds": round(r.cpu_seconds, 3),
                "sweep": [
                    {"threshold": t, **{k: v for k, v in m.items() if k != "service_weeks"}}
                    for t, m in r.sweep
                ],
                "matched": dict(zip(map(str, MATCHED_RATES), matched_row(r.points()), strict=True)),
            }
            for r in runs
        },
        "calibration": [
            {"target_per_series_year": t, "promised_per_service_week": p, "realised": q}
            for t, p, q, _ in calibration(rs, runs[0])
        ],
    }


def build_sets(root: Path, seed: int, quick: bool, warmup_days: int) -> list[RealSet]:
    """Return the constructions of every data set present under root."""
    sets: list[RealSet] = []
    if (root / DOWNDETECTOR).is_dir():
        windows = read_windows(root)
        cold = cold_start_set(windows, seed)
        if quick:
            cold = RealSet(
                cold.name,
                cold.title,
                cold.series[::QUICK_STRIDE],
                cold.tolerance,
                f"{cold.note} (--quick: every {QUICK_STRIDE}th window)",
            )
        sets += [cold, concatenated_set(windows, seed, warmup_days)]
    if (root / APP_CRASHES).is_dir():
        apps = app_crash_set(root, seed, warmup_days)
        if quick:
            apps = RealSet(
                apps.name,
                apps.title,
                apps.series[::2],
                apps.tolerance,
                f"{apps.note} (--quick: every 2nd series)",
            )
        sets.append(apps)
    return [rs for rs in sets if rs.series]


def main(argv: list[str] | None = None) -> int:
    """Run `outage bench real [--data DIR] [--quick] [--seed N] [--json]`."""
    parser = argparse.ArgumentParser(
        prog="outage bench real",
        description="Score ours and the peers on real labelled count series (Downdetector "
        "cloud incidents, Microsoft app crashes) at default thresholds and at matched "
        "false-alarm rates. The full run takes several minutes on two cores.",
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"data directory (default {DEFAULT_DATA})"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="spreading seed")
    parser.add_argument(
        "--quick", action="store_true", help="fewer windows, series and targets (about a minute)"
    )
    parser.add_argument(
        "--warmup-days",
        type=int,
        default=WARMUP_DAYS,
        help=f"history before scoring on the long series (default {WARMUP_DAYS})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    root = args.data
    sets = build_sets(root, args.seed, args.quick, args.warmup_days) if root.is_dir() else []
    if not sets:
        print(f"outage bench real: no real data at {root} (see its README.md); nothing to do")
        return 0
    wall = time.perf_counter()
    say = (lambda _: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    targets = QUICK_TARGETS if args.quick else OURS_TARGETS
    results = [(rs, evaluate(rs, targets, say)) for rs in sets]
    if args.json:
        doc = {"seed": args.seed, "sets": {rs.name: to_json(rs, runs) for rs, runs in results}}
        print(json.dumps(doc, indent=1))
        return 0
    print(f"real data from {root}, seed {args.seed}\n")
    print("\n\n".join(report(rs, runs) for rs, runs in results))
    print(f"\nwall time {time.perf_counter() - wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
