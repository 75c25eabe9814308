"""The `outage` command: one entry point, one subcommand per role or tool."""

from __future__ import annotations

import argparse
import importlib
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

from store import logs
from store.config import ConfigError

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"

BENCHMARKS = ("quality", "real", "replay", "ingest", "detect")
"""The benchmarks `outage bench` runs: bench/<name>.py with a main(argv). The other modules
in bench/ (quality_run, quality_score, quality_plot, matched, real_data, peers) are their
helpers."""

# name -> (module:function taking argv, one-line help). Each module owns its own parser.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("cli.up:main", "run everything on this machine (Redis, web, worker, scheduler)"),
    "web": ("cli.roles:web_main", "run the web server (gunicorn) only"),
    "worker": ("cli.roles:worker_main", "run one RQ worker (detection, webhooks)"),
    "scheduler": ("cli.roles:scheduler_main", "run the scheduler that enqueues detection"),
    "load": ("cli.load:main", "import a history of counts (replay CSV) into Redis"),
    "replay": ("cli.replay:main", "offline causal detection over a counts CSV"),
    "simulate": ("cli.simulate:main", "write a seeded synthetic scenario (CSV + labels)"),
    "demo": ("cli.demo:main", "feed a synthetic stream of reports with outages"),
    "bench": ("cli.main:bench_main", "run a benchmark: quality, real, ingest, detect, replay"),
}


def _resolve(target: str) -> Callable[[list[str]], int]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def bench_main(argv: list[str]) -> int:
    """Run bench/<name>.py from the source checkout with the remaining arguments."""
    parser = argparse.ArgumentParser(
        prog="outage bench",
        description="Run a benchmark and print its table. Benchmarks live in bench/ of a checkout.",
    )
    parser.add_argument("name", choices=BENCHMARKS, help="which benchmark")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options of that benchmark")
    if not BENCH_DIR.is_dir():
        print("outage bench needs a source checkout (bench/ was not found)", file=sys.stderr)
        return 2
    ns = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    module = runpy.run_path(str(BENCH_DIR / f"{ns.name}.py"), run_name=f"bench_{ns.name}")
    return int(module["main"](ns.args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outage",
        description="Crowd-report outage detector. Start with `outage up` (add --demo to see "
        "synthetic outages); `outage COMMAND --help` explains each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; see `outage --help`")
    try:
        logs.configure()
        return int(_resolve(COMMANDS[name][0])(rest) or 0)
    except ConfigError as exc:
        print(f"outage {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
