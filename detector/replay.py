"""Causal offline detection over a history of counts (the command: cli/replay.py).

Every path goes through ServiceDetector.advance, minute by minute, exactly as the live
worker does, so an incident is raised from rows with minute <= t only.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from detector.clock import iso_to_minute, minute_to_iso
from detector.engine import ServiceDetector
from detector.incidents import Incident
from detector.params import Params
from detector.regions import validate_region
from detector.series import Key

Row = tuple[int, str, str, str, int, int | None]
"""(epoch minute, service, region, problem, reports, reporters or None)."""

REQUIRED_COLUMNS = ("minute", "service", "region", "problem", "reports")
Progress = Callable[[str], None]
PROGRESS_MINUTES = 20_000
"""Services spanning at least this many minutes report progress (every 10%)."""


class CountsFormatError(ValueError):
    """A counts CSV that does not follow DESIGN 3.2, with the offending line."""


def _drive(
    det: ServiceDetector,
    minutes: Iterable[tuple[int, dict[Key, tuple[int, int | None]]]],
    found: dict[str, Incident],
    progress: Progress | None,
    total: int,
) -> None:
    """Advance det through (minute, counts) pairs, recording the latest incident states."""
    first, shown = None, 0
    for minute, counts in minutes:
        for event in det.advance(minute, counts):
            found[event.incident.id] = event.incident
        first = minute if first is None else first
        done = (minute - first + 1) * 10 // total
        if progress is not None and total >= PROGRESS_MINUTES and done > shown:
            shown = done
            progress(
                f"{det.service}: {done * 10}% ({minute_to_iso(minute)}, "
                f"{len(det.series_keys())} series)"
            )
    if det.lifecycle.open is not None:
        found[det.lifecycle.open.id] = det.lifecycle.open


def _ordered(found: dict[str, Incident]) -> list[Incident]:
    return sorted(found.values(), key=lambda i: (i.detected_at, i.service, i.id))


def replay_rows(
    rows: Iterable[Row], params: Params | None = None, progress: Progress | None = None
) -> list[Incident]:
    """Replay rows in any order; each service runs from its first to its last row's minute.

    Minutes without rows in between count as zero reports.
    """
    table: dict[str, dict[int, dict[Key, list[int | None]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for minute, service, region, problem, reports, reporters in rows:
        cell = table[service][minute].setdefault((region, problem), [0, 0])
        cell[0] = int(cell[0] or 0) + reports
        cell[1] = None if reporters is None or cell[1] is None else int(cell[1]) + reporters
    found: dict[str, Incident] = {}
    for service in sorted(table):
        by_minute = table[service]
        minutes = sorted(by_minute)
        det = ServiceDetector(service, params)
        feed = (
            (m, {k: (int(v[0] or 0), v[1]) for k, v in by_minute.get(m, {}).items()})
            for m in minutes
        )
        _drive(det, feed, found, progress, minutes[-1] - minutes[0] + 1)
    return _ordered(found)


def replay_arrays(
    service: str,
    leaf_keys: Sequence[Key],
    start_minute: int,
    reports: np.ndarray,
    reporters: np.ndarray | None = None,
    params: Params | None = None,
    progress: Progress | None = None,
) -> list[Incident]:
    """Replay dense counts of one service: reports (and reporters), shape (n_leaf, n_minutes)."""
    reports = np.asarray(reports)
    if reports.ndim != 2 or reports.shape[0] != len(leaf_keys):
        raise ValueError("reports must have shape (len(leaf_keys), n_minutes)")
    if reporters is not None and np.shape(reporters) != reports.shape:
        raise ValueError("reporters must have the shape of reports")
    if (reports < 0).any():
        raise ValueError("reports must be >= 0")
    keys = list(leaf_keys)
    n_minutes = reports.shape[1]

    def feed() -> Iterable[tuple[int, dict[Key, tuple[int, int | None]]]]:
        for j in range(n_minutes):
            col = reports[:, j]
            nz = np.flatnonzero(col)
            if nz.size == 0 and 0 < j < n_minutes - 1:
                continue
            reps = col[nz].tolist()
            if reporters is None:
                yield start_minute + j, {keys[i]: (r, None) for i, r in zip(nz, reps, strict=True)}
            else:
                rps = np.asarray(reporters)[nz, j].tolist()
                yield (
                    start_minute + j,
                    {keys[i]: (r, q) for i, r, q in zip(nz, reps, rps, strict=True)},
                )

    found: dict[str, Incident] = {}
    _drive(ServiceDetector(service, params), feed(), found, progress, n_minutes)
    return _ordered(found)


def _parse_count(text: str, name: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CountsFormatError(f"{where}: {name} must be an integer, got {text!r}") from None
    if value < 0:
        raise CountsFormatError(f"{where}: {name} must be >= 0, got {value}")
    return value


def parse_counts(handle: TextIO, name: str = "<counts>") -> list[Row]:
    """Parse a DESIGN 3.2 counts CSV from an open text file; raise CountsFormatError."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise CountsFormatError(f"{name}:1: empty file, expected a header row")
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CountsFormatError(
            f"{name}:1: header lacks {', '.join(missing)} "
            f"(expected {','.join(REQUIRED_COLUMNS)}[,reporters])"
        )
    pos = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, "reporters") if c in columns}
    rows: list[Row] = []
    for lineno, record in enumerate(reader, start=2):
        if not record or all(not cell.strip() for cell in record):
            continue
        where = f"{name}:{lineno}"
        if len(record) != len(columns):
            raise CountsFormatError(f"{where}: expected {len(columns)} fields, got {len(record)}")
        cell = {c: record[i].strip() for c, i in pos.items()}
        try:
            minute = iso_to_minute(cell["minute"])
            region = validate_region(cell["region"])
        except ValueError as exc:
            raise CountsFormatError(f"{where}: {exc}") from None
        if not cell["service"] or not cell["problem"]:
            raise CountsFormatError(f"{where}: service and problem must not be empty")
        reports = _parse_count(cell["reports"], "reports", where)
        reporters = None
        if cell.get("reporters"):
            reporters = _parse_count(cell["reporters"], "reporters", where)
            if reporters > reports:
                raise CountsFormatError(f"{where}: reporters ({reporters}) exceed reports")
        rows.append((minute, cell["service"], region, cell["problem"], reports, reporters))
    return rows


def read_counts_csv(path: str | Path) -> list[Row]:
    """Read a DESIGN 3.2 counts CSV (header required, any row order; absent rows are zero)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return parse_counts(handle, str(path))
