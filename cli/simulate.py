"""`outage simulate`: write a seeded, labelled synthetic scenario (counts.csv, labels.json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detector.scenarios import generate, labels, write_counts_csv

MIN_DAYS = 5
"""Shortest scenario: fewer days leave no room for history before the scored days."""


def main(argv: list[str] | None = None) -> int:
    """Run `outage simulate --seed N --days D OUTDIR`: write counts.csv and labels.json."""
    parser = argparse.ArgumentParser(
        prog="outage simulate",
        description="Write a seeded, labelled synthetic scenario: seasonal counts with outages "
        "and nuisances (spam bursts, holidays, ingestion gaps ...) and the labels that score "
        "a detector on it.",
    )
    parser.add_argument("outdir", type=Path, help="directory for counts.csv and labels.json")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed (default 1)")
    parser.add_argument(
        "--days", type=int, default=35, help=f"days simulated (default 35, at least {MIN_DAYS})"
    )
    parser.add_argument("--services", type=int, default=8, help="number of services (default 8)")
    parser.add_argument(
        "--eval-days",
        type=int,
        default=None,
        help="scored days at the end (default 2/5 of days, at most 14)",
    )
    args = parser.parse_args(argv)
    if args.days < MIN_DAYS:
        parser.error(
            f"--days must be at least {MIN_DAYS}: the scenario needs days of normal history "
            "before the days it scores"
        )
    try:
        scenario = generate(args.seed, args.days, args.services, args.eval_days)
    except ValueError as exc:
        parser.error(f"cannot build a {args.days}-day scenario with these options ({exc})")
    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = write_counts_csv(scenario, args.outdir / "counts.csv")
    with open(args.outdir / "labels.json", "w") as fh:
        json.dump(labels(scenario), fh, indent=1)
    print(
        f"wrote {rows} rows to {args.outdir / 'counts.csv'}, "
        f"{len(scenario.outages)} outages and {len(scenario.nuisances)} nuisances to "
        f"{args.outdir / 'labels.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
