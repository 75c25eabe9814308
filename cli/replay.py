"""`outage replay COUNTS.csv`: offline causal detection, JSON Lines of incidents out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from detector.params import Params
from detector.replay import CountsFormatError, Progress, parse_counts, read_counts_csv, replay_rows
from store.config import ConfigError, load_detector_params, parse_detector_params

HISTORY_HOURS = 24
"""Below this much history a replay says that the detector is still learning."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outage replay",
        description="Causal offline detection over a counts CSV "
        "(minute,service,region,problem,reports[,reporters]). The decision at "
        "minute t uses only rows with minute <= t, through the same detector "
        "code as the live workers. Writes one JSON object per incident.",
    )
    parser.add_argument(
        "counts",
        help="counts CSV, header minute,service,region,problem,reports[,reporters], one row "
        "per minute and series, absent rows meaning zero; '-' reads stdin",
    )
    parser.add_argument(
        "--out", metavar="incidents.jsonl", help="write JSON Lines here instead of stdout"
    )
    parser.add_argument(
        "--params",
        metavar="JSON",
        help="detector parameter overrides, a JSON object of fields of detector.params.Params "
        "(default: OUTAGE_DETECTOR_PARAMS, as the workers read it; else the defaults)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    return parser


def resolve_params(given: str | None) -> tuple[Params | None, str]:
    """Return the detector params of a replay (None: the defaults) and how the summary names
    them: --params when given, else OUTAGE_DETECTOR_PARAMS like the workers; ConfigError."""
    if given is not None:
        pairs, source = parse_detector_params(given, "--params"), "--params"
    else:
        pairs, source = load_detector_params(), "OUTAGE_DETECTOR_PARAMS"
    if not pairs:
        return None, "default params"
    return Params(**dict(pairs)), f"params from {source} {json.dumps(dict(pairs), sort_keys=True)}"


def main(argv: list[str] | None = None) -> int:
    """Run `outage replay`; return the process exit code."""
    args = _parser().parse_args(argv)
    say: Progress | None = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    started = time.perf_counter()
    try:
        params, described = resolve_params(args.params)
        if args.counts == "-":
            rows = parse_counts(sys.stdin, "<stdin>")
        else:
            rows = read_counts_csv(args.counts)
    except (OSError, CountsFormatError, ConfigError) as exc:
        print(f"outage replay: error: {exc}", file=sys.stderr)
        return 2
    incidents = replay_rows(rows, params, progress=say)
    lines = "".join(json.dumps(i.to_dict()) + "\n" for i in incidents)
    if args.out:
        Path(args.out).write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    if say is not None:
        services = len({r[1] for r in rows})
        minutes = len({r[0] for r in rows})
        by_level = Counter(str(i.severity) for i in incidents)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(by_level.items())) or "none"
        say(
            f"replayed {len(rows)} rows, {services} services, {minutes} distinct minutes in "
            f"{time.perf_counter() - started:.1f} s with {described}: "
            f"{len(incidents)} incidents ({detail})"
        )
        span_hours = (max(r[0] for r in rows) - min(r[0] for r in rows)) / 60 if rows else 0
        if span_hours < HISTORY_HOURS:
            say(
                f"note: the counts cover {span_hours:.1f} hours; the detector first learns "
                f"what is normal for each series, so give it at least {HISTORY_HOURS} hours "
                "(better a week or more) of history before the period you want checked"
            )
    return 0
