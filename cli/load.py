"""`outage load COUNTS.csv`: import a history of counts (the replay CSV) into Redis.

The file is read twice: once to check every row (nothing is written if one is wrong), once
to write. Rows for the same (minute, service, region, problem) are summed, as replay does;
the sums are written with HSET, so loading the same file twice gives the same counts. A file
sorted by minute streams in constant memory; an unsorted one is summed in memory first.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from detector.clock import iso_to_minute, minute_to_iso
from detector.regions import GLOBAL, validate_region
from store import keys, minute_hash
from store.catalog import load_catalog
from store.config import Settings, load_settings
from store.connections import NoRedisConfigured, redis_client

REQUIRED = ("minute", "service", "region", "problem", "reports")
DETECTOR_PARTS = ("index", "history", "baseline", "state", "meta")
"""Persisted detector parts deleted after a load, so detection rebuilds from the history."""

FLUSH_FIELDS = 20000
"""Hash fields written per pipelined round trip."""

LOCK_WAIT_SECONDS = 180.0
"""How long to wait for a running detection job of a service to release its lock."""

MAX_ERRORS = 10
"""Row errors listed before the check gives up."""

Row = tuple[int, str, str, str, int, int]
"""(epoch minute, service, region, problem, reports, reporters)."""


class LoadError(ValueError):
    """A counts file that cannot be loaded; the message lists what is wrong."""


@dataclass
class Check:
    """What the first pass found out about the file."""

    rows: int = 0
    sorted_by_minute: bool = True
    services: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def read_rows(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, Row]]:
    """Yield (line number, row) from a counts CSV; raise LoadError on a malformed row."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise LoadError(
                f"{path}:1: header lacks {', '.join(missing)} "
                f"(expected {','.join(REQUIRED)}[,reporters])"
            )
        pos = [header.index(c) for c in REQUIRED]
        rep = header.index("reporters") if "reporters" in header else None
        for lineno, record in enumerate(reader, start=2):
            if progress is not None:
                progress.tick(sum(len(c) + 1 for c in record))
            if not record or all(not c.strip() for c in record):
                continue
            where = f"{path}:{lineno}"
            if len(record) != len(header):
                raise LoadError(f"{where}: expected {len(header)} fields, got {len(record)}")
            cells = [record[i].strip() for i in pos]
            reporters_text = record[rep].strip() if rep is not None else ""
            yield lineno, _parse(cells, reporters_text, where)


def _parse(cells: list[str], reporters_text: str, where: str) -> Row:
    minute_text, service, region_text, problem, reports_text = cells
    try:
        minute = iso_to_minute(minute_text)
        region = GLOBAL if region_text == GLOBAL else validate_region(region_text)
        reports = int(reports_text)
        reporters = int(reporters_text) if reporters_text else reports
    except ValueError as exc:
        raise LoadError(f"{where}: {exc}") from None
    if not service or not problem:
        raise LoadError(f"{where}: service and problem must not be empty")
    if reports < 0 or reporters < 0 or reporters > reports:
        raise LoadError(f"{where}: need 0 <= reporters <= reports, got {reporters}/{reports}")
    return minute, service, region, problem, reports, reporters


class Progress:
    """Percent of the file read, on stderr, at most once a second."""

    def __init__(self, label: str, total: int, quiet: bool = False):
        self.label, self.total, self.quiet = label, max(total, 1), quiet
        self.done, self.last = 0, time.monotonic()

    def tick(self, size: int) -> None:
        self.done += size
        now = time.monotonic()
        if not self.quiet and now - self.last >= 1.0:
            self.last = now
            print(
                f"{self.label}: {min(100, 100 * self.done // self.total)}%",
                file=sys.stderr,
                flush=True,
            )


def check(path: Path, known: dict[str, set[str]] | None, quiet: bool = False) -> Check:
    """First pass: parse every row, note services and whether minutes only go up."""
    found, last = Check(), None
    try:
        for lineno, (minute, service, _, problem, _, _) in read_rows(
            path, Progress("checking", path.stat().st_size, quiet)
        ):
            found.rows += 1
            found.services.add(service)
            if last is not None and minute < last:
                found.sorted_by_minute = False
            last = minute
            if known is not None and problem not in known.get(service, {problem}):
                found.errors.append(f"{path}:{lineno}: {service} has no problem {problem!r}")
            if known is not None and service not in known:
                found.unknown.add(service)
            if len(found.errors) >= MAX_ERRORS:
                break
    except (LoadError, UnicodeDecodeError, csv.Error) as exc:
        found.errors.append(str(exc))
    return found


@dataclass
class Written:
    """What the second pass wrote, and what it skipped."""

    rows: int = 0
    too_old: int = 0
    future: int = 0
    first: dict[str, int] = field(default_factory=dict)


def write(
    conn: redis.Redis,
    path: Path,
    settings: Settings,
    now: float,
    sorted_rows: bool,
    quiet: bool = False,
) -> Written:
    """Second pass: sum rows per hash field and HSET the sums (idempotent)."""
    keep = settings.retention_days * 86400
    now_minute = int(now // 60)
    oldest = now_minute - settings.retention_days * 1440 + 1
    pending: dict[tuple[str, int], dict[str, int]] = {}
    done = Written()
    size = 0
    current = None
    for _, (minute, service, region, problem, reports, reporters) in read_rows(
        path, Progress("loading", path.stat().st_size, quiet)
    ):
        if minute < oldest:
            done.too_old += 1
            continue
        if minute > now_minute:
            done.future += 1
            continue
        if sorted_rows and current is not None and minute != current and size >= FLUSH_FIELDS:
            _flush(conn, pending, keep)  # all pending minutes are complete in a sorted file
            size = 0
        current = minute
        fields = pending.setdefault((service, minute), {})
        for name, value in (
            (minute_hash.reports_field(region, problem), reports),
            (minute_hash.reporters_field(region, problem), reporters),
        ):
            size += name not in fields
            fields[name] = fields.get(name, 0) + value
        done.rows += 1
        done.first[service] = min(done.first.get(service, minute), minute)
    _flush(conn, pending, keep)
    return done


def _flush(conn: redis.Redis, pending: dict[tuple[str, int], dict[str, int]], keep: int) -> None:
    pipe = conn.pipeline(transaction=False)
    for (service, minute), fields in pending.items():
        key = keys.minute_counts(service, minute)
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expireat(key, minute * 60 + keep)
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()
    pending.clear()


KEEP_MINIMUM = """
local first = redis.call('GET', KEYS[1])
if (not first) or tonumber(first) > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
"""

RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def reset_detection(conn: redis.Redis, service: str, first: int, keep: int) -> bool:
    """Record the earliest minute and drop the service's detector so it rebuilds from the
    stored history; hold the detection lock meanwhile. Return False if it stayed locked."""
    conn.register_script(KEEP_MINIMUM)(keys=[keys.first_minute(service)], args=[first, keep])
    conn.sadd(keys.ACTIVE_SERVICES, service)
    token, lock = uuid.uuid4().hex, keys.detect_lock(service)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not conn.set(lock, token, nx=True, ex=60):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    try:
        conn.delete(
            *(keys.detector_part(service, p) for p in DETECTOR_PARTS),
            keys.detector_version(service),
            keys.baseline_version(service),
        )
    finally:
        conn.eval(RELEASE, 1, lock, token)
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outage load",
        description="Import a history of counts (the replay CSV: "
        "minute,service,region,problem,reports[,reporters]) into Redis, so detection starts "
        "with a baseline. Idempotent: the counts named in the file are set, not added. "
        "Rows older than OUTAGE_RETENTION_DAYS or in the future are skipped.",
    )
    parser.add_argument("path", type=Path, help="counts CSV (header required)")
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="also load services and problems that are not in the catalog",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    settings = load_settings()
    say = (lambda *a: None) if ns.quiet else (lambda *a: print(*a, file=sys.stderr))
    if not ns.path.is_file():
        print(f"outage load: no such file: {ns.path}", file=sys.stderr)
        return 2
    catalog = load_catalog(settings.catalog_path)
    known = None if ns.allow_unknown else {s.slug: set(s.problem_slugs) for s in catalog.services}
    found = check(ns.path, known, ns.quiet)
    if found.unknown:
        found.errors.append(
            "services not in the catalog: "
            + ", ".join(sorted(found.unknown))
            + " (add them to the catalog, or pass --allow-unknown)"
        )
    if found.errors:
        print("outage load: nothing was loaded:\n  " + "\n  ".join(found.errors), file=sys.stderr)
        return 2
    try:
        conn = redis_client(settings.redis_url, timeout=30)
        now = time.time()
        done = write(conn, ns.path, settings, now, found.sorted_by_minute, ns.quiet)
        keep = settings.retention_days * 86400
        locked = [
            service
            for service, first in sorted(done.first.items())
            if not reset_detection(conn, service, first, keep)
        ]
    except (NoRedisConfigured, redis.RedisError) as exc:
        print(f"outage load: Redis: {exc}", file=sys.stderr)
        return 1
    if done.too_old:
        oldest = int(now // 60) - settings.retention_days * 1440 + 1
        say(
            f"warning: skipped {done.too_old} rows older than the retention of "
            f"{settings.retention_days} days (before {minute_to_iso(oldest)})"
        )
    if done.future:
        say(f"warning: skipped {done.future} rows in the future")
    say(
        f"loaded {done.rows} rows for {len(done.first)} services"
        + (
            f" ({', '.join(sorted(done.first))}); detection rebuilds from the stored history"
            if done.first
            else ""
        )
    )
    if locked:
        print(
            "outage load: detection was busy for " + ", ".join(locked) + "; the counts are "
            "loaded, run the same command again to reset their detection",
            file=sys.stderr,
        )
        return 1
    return 0
