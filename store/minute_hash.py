"""The fields of a service-minute hash (`keys.minute_counts`): the one module that names them.

A field is `<kind>|<region>|<problem>`: kind `r` counts raw reports, kind `u` counted
(deduplicated) reporters; region `*` is unknown. Ingestion writes both for every leaf it
touches (`u` may be 0: all duplicates); only loaded history without a `reporters` column has
`r` alone, which readers take as "reporters unknown" and count the raw reports. Ingestion
(the Lua script of web/report_store.py, which takes its prefixes from here), `outage load`,
the demo and the tests write fields through these functions; detection and the charts read
them with `parse`.
"""

from __future__ import annotations

from collections.abc import Mapping

from detector.regions import is_valid_region

SEP = "|"
"""Separates the kind, the region and the problem in a field name."""

REPORTS = "r"
"""Kind of the fields that count raw reports."""

REPORTERS = "u"
"""Kind of the fields that count counted (deduplicated) reporters."""

UNKNOWN_REGION = "*"
"""Region of reports whose region is not known."""

Leaf = tuple[str, str]
"""(region, problem): the finest series a minute hash counts."""

LeafCounts = dict[Leaf, tuple[int, int | None]]
"""{(region, problem): (reports, reporters or None when only raw reports were written)}."""


def leaf(region: str, problem: str) -> str:
    """Return the `<region>|<problem>` part of a field name."""
    return f"{region}{SEP}{problem}"


def field(kind: str, region: str, problem: str) -> str:
    """Return the field name of one kind of count (REPORTS or REPORTERS) of one leaf."""
    return f"{kind}{SEP}{region}{SEP}{problem}"


def reports_field(region: str, problem: str) -> str:
    """Return the field counting raw reports of one leaf."""
    return field(REPORTS, region, problem)


def reporters_field(region: str, problem: str) -> str:
    """Return the field counting deduplicated reporters of one leaf."""
    return field(REPORTERS, region, problem)


def parse(raw: Mapping[bytes, bytes]) -> LeafCounts:
    """Turn a `{svc}:m:<minute>` hash into {(region, problem): (reports, reporters|None)}."""
    reports: dict[Leaf, int] = {}
    reporters: dict[Leaf, int] = {}
    for name, value in raw.items():
        kind, _, rest = name.decode().partition(SEP)
        region, _, problem = rest.partition(SEP)
        if not problem or (region != UNKNOWN_REGION and not is_valid_region(region)):
            continue  # written by something else; never let one bad field stop detection
        target = reports if kind == REPORTS else reporters if kind == REPORTERS else None
        if target is not None:
            target[(region, problem)] = target.get((region, problem), 0) + int(value)
    out: LeafCounts = {}
    for key in reports.keys() | reporters.keys():
        counted = reporters.get(key)
        raw_reports = max(reports.get(key, 0), counted or 0)
        out[key] = (raw_reports, counted)
    return out
