"""`outage bench quality`: labelled scenarios, ours and the peer detectors side by side.

Loadable from the source checkout by path (runpy/importlib): it puts its own directory and the
checkout root on sys.path, then `main(argv) -> int` does the work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE), str(_HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from matched import (  # noqa: E402
    MATCHED_RATES,
    calibration_table,
    matched_row,
    matched_table,
    promised_per_service_week,
    series_equivalents,
)
from quality_run import OURS_SWEEP, Result, evaluate_all  # noqa: E402

from detector.scenarios import generate  # noqa: E402

DEFAULT_SEED = 7001
"""Scenario seed of the published table (distinct from every detector test seed)."""

QUICK = {"days": 14, "n_services": 6}
"""Scenario size of --quick: under a minute on two cores with --no-matched, about three
minutes with the matched table (ours replayed at every target)."""

FULL = {"days": 35, "n_services": 10}
"""Scenario size of the default run: under five minutes on two cores with --no-matched, about
15 minutes with the matched table."""

JSON_KEYS = (
    "recall",
    "precision",
    "false_alarms_per_service_week",
    "median_delay_min",
    "p90_delay_min",
    "median_delay_ratio",
    "median_delay_ratio_poisson",
)
"""Headline metrics of every detector in --json (more keys follow them)."""


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _share(m: dict, suffix: str = "") -> str:
    """Return "recall (detected/total)" over the outages with floor < duration/2."""
    rec, total = (
        m[f"recall_floor_under_half_duration{suffix}"],
        m[f"outages_floor_under_half_duration{suffix}"],
    )
    return "-" if rec is None else f"{rec:.2f} ({round(rec * total)}/{total})"


def _kinds(kinds: list[str]) -> str:
    """Return "burst x136, dst, gap x2": each nuisance kind once, with its count."""
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in counts.items())


def table(results: list[Result]) -> str:
    """Return the headline table, one row per detector, as Markdown."""
    head = (
        "| detector | recall | recall (floor<dur/2) | precision | false alarms / service-week "
        "| median delay (min) | p90 delay (min) | median delay / floor "
        "| median delay / Poisson floor | CPU s |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.metrics
        if m is None:
            lines.append(f"| {r.name} | n/a ({r.note}) | | | | | | | | |")
            continue
        lines.append(
            f"| {r.name} | {_fmt(m['recall'])} | {_share(m)} "
            f"| {_fmt(m['precision'])} "
            f"| {_fmt(m['false_alarms_per_service_week'], 1)} | {_fmt(m['median_delay_min'], 1)} "
            f"| {_fmt(m['p90_delay_min'], 1)} | {_fmt(m['median_delay_ratio'], 1)} "
            f"| {_fmt(m['median_delay_ratio_poisson'], 1)} | {r.cpu_seconds:.1f} |"
        )
    return "\n".join(lines)


def details(results: list[Result]) -> str:
    """Return the secondary table: recall by difficulty, false alarms by cause, onsets."""
    bins = ("easy", "moderate", "hard")
    lines = [
        "| detector | recall easy / moderate / hard | recall (Poisson floor<dur/2) "
        "| false alarms / series-day | duplicates | median onset error (min) "
        "| false alarms by cause |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.metrics
        if m is None:
            continue
        rec = " / ".join(_fmt(m["recall_by_difficulty"][b][0]) for b in bins)
        causes = ", ".join(f"{k} {v}" for k, v in m["false_alarms_by_cause"].items()) or "-"
        lines.append(
            f"| {r.name} | {rec} | {_share(m, '_poisson')} "
            f"| {_fmt(m['false_alarms_per_series_day'], 3)} "
            f"| {m['duplicates']} | {_fmt(m['median_onset_error_min'], 1)} | {causes} |"
        )
    return "\n".join(lines)


def curves(results: list[Result]) -> dict[str, list[tuple[float, float | None]]]:
    """Return each swept detector's (false alarms per service-week, recall) points, its
    default threshold included."""
    out = {}
    for r in results:
        if r.metrics is None or not r.sweep:
            continue
        m = r.metrics
        out[r.name] = [(fa, rec) for _, rec, fa in r.sweep] + [
            (m["false_alarms_per_service_week"], m["recall"])
        ]
    return out


def calibration(results: list[Result], summary: dict) -> list[tuple]:
    """Return ours' (target per series-year, promised and realised false alarms per
    service-week, false alarms counted) for every swept target."""
    ours = next((r for r in results if r.name == "ours" and r.metrics), None)
    if ours is None:
        return []
    weeks = summary["services"] * summary["eval_days"] / 7.0
    eq = summary["series_equivalents_per_service"]
    return [(t, promised_per_service_week(t, eq), fa, round(fa * weeks)) for t, _, fa in ours.sweep]


def matched_section(results: list[Result], summary: dict) -> str:
    """Return the matched false-alarm table and ours' calibration, as printed."""
    rows = calibration(results, summary)
    text = (
        "Recall at matched false-alarm rates (threshold sweeps, log-interpolated; '-': no "
        "threshold that strict):\n\n" + matched_table(curves(results))
    )
    if rows:
        text += (
            f"\n\nCalibration of ours (promised = target x "
            f"{summary['series_equivalents_per_service']:.2f} series-equivalents per service "
            "/ 52.14 weeks):\n\n" + calibration_table(rows)
        )
    return text


def scenario_summary(scenario, size: dict) -> dict:
    """Return the scenario facts printed with the results."""
    scored = [o for o in scenario.outages if o["start"] >= scenario.eval_start]
    from quality_score import difficulty, floor_under_half_duration

    return {
        "seed": scenario.seed,
        "days": scenario.days,
        "eval_days": scenario.meta["eval_days"],
        "services": len(scenario.services),
        "series": scenario.meta["n_series"],
        "outages_scored": len(scored),
        "outages_by_difficulty": {
            b: sum(difficulty(o) == b for o in scored) for b in ("easy", "moderate", "hard")
        },
        "outages_floor_under_half_duration": sum(floor_under_half_duration(o) for o in scored),
        "outages_floor_under_half_duration_poisson": sum(
            floor_under_half_duration(o, "cusum_floor_min") for o in scored
        ),
        "nuisances": sorted(n["kind"] for n in scenario.nuisances),
        "series_equivalents_per_service": sum(
            series_equivalents(svc.leaf_keys) for svc in scenario.services
        )
        / len(scenario.services),
        **{k: v for k, v in size.items() if k not in ("days",)},
    }


def to_json(results: list[Result], summary: dict) -> dict:
    """Return the --json document: headline metrics per detector plus the scenario."""
    detectors = {}
    for r in results:
        m = r.metrics or {}
        entry = {k: m.get(k) for k in JSON_KEYS}
        entry.update(
            {
                "cpu_seconds": round(r.cpu_seconds, 3),
                "available": r.metrics is not None,
                "false_alarms_per_series_day": m.get("false_alarms_per_series_day"),
                "false_alarms_by_cause": m.get("false_alarms_by_cause"),
                "duplicates": m.get("duplicates"),
                "median_onset_error_min": m.get("median_onset_error_min"),
                "recall_by_difficulty": m.get("recall_by_difficulty"),
                **{
                    k: m.get(k)
                    for k in (
                        "recall_floor_under_half_duration",
                        "outages_floor_under_half_duration",
                        "recall_floor_under_half_duration_poisson",
                        "outages_floor_under_half_duration_poisson",
                    )
                },
            }
        )
        if r.sweep:
            entry["sweep"] = [
                {"threshold": t, "recall": rec, "false_alarms_per_service_week": fa}
                for t, rec, fa in r.sweep
            ]
        detectors[r.name] = entry
    for name, points in curves(results).items():
        detectors[name]["matched"] = dict(
            zip(map(str, MATCHED_RATES), matched_row(points), strict=True)
        )
    doc = {"detectors": detectors, "scenario": summary}
    rows = calibration(results, summary)
    if rows:
        doc["calibration"] = [
            {
                "target_per_series_year": t,
                "promised_per_service_week": p,
                "realised_per_service_week": q,
            }
            for t, p, q, _ in rows
        ]
    return doc


def main(argv: list[str] | None = None) -> int:
    """Run `outage bench quality [--seed N] [--quick] [--json] [--plot FILE.html]
    [--no-matched]`."""
    parser = argparse.ArgumentParser(
        prog="outage bench quality",
        description="Score ours and the peer detectors on seeded, labelled scenarios, at "
        "their default thresholds and at matched false-alarm rates (threshold sweeps; ours "
        f"is replayed at {len(OURS_SWEEP)} false-alarm targets, so the full run takes about "
        "10-15 minutes on two cores; --no-matched skips the sweeps).",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"scenario seed (default {DEFAULT_SEED})"
    )
    parser.add_argument("--quick", action="store_true", help="small scenario, under a minute")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help="override the scenario's days (default 35, or 14 with --quick)",
    )
    parser.add_argument(
        "--services",
        type=int,
        default=None,
        help="override the number of services (default 10, or 6 with --quick)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.html",
        help="write a self-contained Plotly page (sweeps every threshold)",
    )
    parser.add_argument(
        "--no-matched",
        action="store_true",
        help="skip the threshold sweeps and the matched false-alarm table (faster)",
    )
    args = parser.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    if args.days is not None:
        size["days"] = args.days
    if args.services is not None:
        size["n_services"] = args.services
    wall = time.perf_counter()
    try:
        scenario = generate(args.seed, **size)
    except ValueError as exc:
        parser.error(str(exc))
    say = (
        (lambda _: None)
        if args.json
        else (lambda name: print(f"running {name} ...", file=sys.stderr))
    )
    sweep = args.plot is not None or not args.no_matched
    results = evaluate_all(scenario, sweep=sweep, progress=say)
    summary = scenario_summary(scenario, size)
    if args.plot is not None:
        from quality_plot import write_plot

        write_plot(results, summary, args.plot)
    if args.json:
        print(json.dumps(to_json(results, summary), indent=1))
        return 0
    by_bin = "/".join(str(v) for v in summary["outages_by_difficulty"].values())
    print(
        f"scenario: seed {scenario.seed}, {scenario.days} days ({summary['eval_days']} scored), "
        f"{summary['services']} services, {summary['series']} series, "
        f"{summary['outages_scored']} scored outages (easy/moderate/hard {by_bin}, "
        f"floor < duration/2: {summary['outages_floor_under_half_duration']}, "
        f"Poisson floor < duration/2: {summary['outages_floor_under_half_duration_poisson']}), "
        f"nuisances: {_kinds(summary['nuisances'])}"
    )
    print()
    print(table(results))
    print()
    print(details(results))
    if sweep:
        print()
        print(matched_section(results, summary))
    if args.plot is not None:
        print(f"\nplot written to {args.plot}")
    print(f"\nwall time {time.perf_counter() - wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
