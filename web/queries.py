"""The read side of detection, for the API: statuses, chart series and region maps.

Counts come from the minute hashes ingestion writes; expected values and bands from the
service's persisted detector (`ServiceDetector.expected_band`), loaded once per baseline
change and kept in the process.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import redis

from detector.clock import minute_to_iso
from store import keys, minute_hash
from store.detectors import DetectorCache, load_detector

BAND_CACHE = DetectorCache(limit=64)
"""Detectors a web process keeps for expected bands (the charts and maps), renewed when
their baseline changes."""


MAP_WINDOW = 15
"""Minutes of observed reports summed per region on the maps."""


def statuses(conn: redis.Redis, services: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Return each service's stored status document (None before its first detection)."""
    services = list(services)
    pipe = conn.pipeline(transaction=False)
    for service in services:
        pipe.get(keys.status(service))
    return {
        s: (json.loads(raw) if raw else None)
        for s, raw in zip(services, pipe.execute(), strict=True)
    }


def summary(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the short status shown in the service list."""
    if status is None:
        return {
            "level": "ok",
            "baseline": "insufficient_history",
            "updated_at": None,
            "observed": None,
            "expected": None,
            "ratio": None,
            "p_value": None,
            "incident": None,
            "affected_regions": [],
        }
    incident = status.get("incident")
    return {
        "level": status["level"],
        "baseline": status["baseline"],
        "updated_at": status["updated_at"],
        "observed": status["observed"],
        "expected": status["expected"],
        "ratio": status["ratio"],
        "p_value": status["p_value"],
        "incident": incident["id"] if incident else None,
        "affected_regions": status["affected_regions"],
    }


def empty_status() -> dict[str, Any]:
    """Return the full status of a service that has no detection state yet."""
    return {
        **summary(None),
        "window_minutes": 0,
        "recent": {"start": None, "observed": [], "expected": []},
        "regions": [],
        "top_problems": [],
    }


def region_matches(leaf_region: str, scope: str | None) -> bool:
    """Tell whether a leaf's region lies inside a scope (None or "*" = everywhere)."""
    if scope is None or scope == "*":
        return True
    if len(scope) == 2:
        return leaf_region == scope or leaf_region.startswith(scope + "-")
    return leaf_region == scope


def read_leaves(
    conn: redis.Redis, service: str, start: int, end: int
) -> list[dict[tuple[str, str], tuple[int, int | None]]]:
    """Return the leaf counts of minutes start..end inclusive, one dict per minute."""
    out: list[dict[tuple[str, str], tuple[int, int | None]]] = []
    for chunk in range(start, end + 1, 2000):
        pipe = conn.pipeline(transaction=False)
        last = min(end, chunk + 1999)
        for minute in range(chunk, last + 1):
            pipe.hgetall(keys.minute_counts(service, minute))
        out.extend(minute_hash.parse(raw) for raw in pipe.execute())
    return out


def scope_counts(
    leaves: list[Mapping[tuple[str, str], tuple[int, int | None]]],
    region: str | None,
    problem: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum leaves inside a scope per minute: (counted reporters, raw reports). The plain
    Python twin of SUM_SCRIPT (tests check one against the other)."""
    counted = np.zeros(len(leaves))
    raw = np.zeros(len(leaves))
    for i, minute in enumerate(leaves):
        for (leaf_region, leaf_problem), (reports, reporters) in minute.items():
            if problem is not None and leaf_problem != problem:
                continue
            if not region_matches(leaf_region, region):
                continue
            raw[i] += reports
            counted[i] += reports if reporters is None else reporters
    return counted, raw


SUM_SCRIPT = """
local region, problem = ARGV[1], ARGV[2]
local country = #region == 2
local out = {}
for _, key in ipairs(KEYS) do
  local h = redis.call('HGETALL', key)
  local raw, counted = {}, {}
  for j = 1, #h, 2 do
    local kind, reg, prob = string.match(h[j], '^(%a)|([^|]*)|(.+)$')
    if kind and (problem == '' or prob == problem) and (region == '' or reg == region
        or (country and string.sub(reg, 1, 3) == region .. '-')) then
      local leaf = reg .. '|' .. prob
      if kind == 'r' then raw[leaf] = (raw[leaf] or 0) + tonumber(h[j + 1])
      elseif kind == 'u' then counted[leaf] = (counted[leaf] or 0) + tonumber(h[j + 1]) end
    end
  end
  local r, c = 0, 0
  for leaf, v in pairs(raw) do
    local u = counted[leaf] or v
    c = c + u
    r = r + math.max(v, u)
  end
  for leaf, v in pairs(counted) do
    if raw[leaf] == nil then c = c + v; r = r + v end
  end
  out[#out + 1] = c
  out[#out + 1] = r
end
return out
"""
"""Sum one scope's counted and raw reports per minute inside Redis (KEYS: minute hashes;
ARGV: region or '', problem or ''), so a week of minutes is one small reply per day."""

SUM_CHUNK = 1440
"""Minutes summed per script call (keeps each call to a few milliseconds of Redis time)."""


def scope_series(
    conn: redis.Redis, service: str, region: str | None, problem: str | None, start: int, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (counted reporters, raw reports) per minute of a scope, minutes start..end."""
    script = conn.register_script(SUM_SCRIPT)
    values: list[int] = []
    for chunk in range(start, end + 1, SUM_CHUNK):
        names = [
            keys.minute_counts(service, m)
            for m in range(chunk, min(end, chunk + SUM_CHUNK - 1) + 1)
        ]
        values.extend(script(keys=names, args=[region or "", problem or ""]))
    flat = np.asarray(values, dtype=float).reshape(-1, 2)
    return flat[:, 0], flat[:, 1]


def band(
    detector: Any, key: tuple[str, str], minutes: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (expected, upper) per minute for a series, or None if it has no baseline."""
    if detector is None:
        return None
    try:
        expected, upper = detector.expected_band(key, minutes)
    except KeyError:
        return None
    expected, upper = np.asarray(expected, float), np.asarray(upper, float)
    if not expected.any():
        return None
    return expected, upper


def _bucket(values: np.ndarray, step: int) -> np.ndarray:
    return values.reshape(-1, step).sum(axis=1)


def _rounded(values: Iterable[float]) -> list[float | None]:
    return [round(float(v), 3) if math.isfinite(v) else None for v in values]


STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
"""Allowed chart steps, minutes (divisors of an hour, so buckets align to the clock)."""


def series_window(hours: int, step: int, end: int) -> tuple[int, int]:
    """Return (first, last) minute of a chart of `hours` ending at minute `end`: exactly
    hours * 60 / step whole buckets aligned to the clock (the running bucket is left out)."""
    last = end - (end + 1) % step
    return last + 1 - hours * 60, last


@dataclass(frozen=True)
class SeriesData:
    """A chart series per `step`-minute bucket: counted and raw reports, expected and upper
    (None without a baseline), bucket starts as epoch minutes."""

    start: int
    step: int
    counted: np.ndarray
    raw: np.ndarray
    expected: np.ndarray | None
    upper: np.ndarray | None

    @property
    def minutes(self) -> np.ndarray:
        """Epoch minute at which each bucket starts."""
        return self.start + self.step * np.arange(len(self.counted), dtype=np.int64)


def series_data(
    conn: redis.Redis,
    service: str,
    region: str | None,
    problem: str | None,
    start: int,
    end: int,
    step: int,
    params: Any = None,
) -> SeriesData:
    """Read a chart series: per `step` minutes from `start` (aligned) to `end` inclusive.

    The upper band of a bucket adds the per-minute band widths in quadrature (minutes
    treated as independent), which is exact for step 1.
    """
    counted, raw = scope_series(conn, service, region, problem, start, end)
    minutes = np.arange(start, end + 1, dtype=np.int64)
    detector, _ = load_detector(conn, service, BAND_CACHE, for_bands=True, params=params)
    got = band(detector, (region or "*", problem or "*"), minutes)
    expected = upper = None
    if got is not None:
        exp_minute, up_minute = got
        width = np.maximum(up_minute - exp_minute, 0.0)
        expected = _bucket(exp_minute, step)
        upper = expected + np.sqrt(_bucket(width * width, step))
    return SeriesData(start, step, _bucket(counted, step), _bucket(raw, step), expected, upper)


def current_counted(
    conn: redis.Redis, service: str, region: str | None, problem: str | None, start: int, now: int
) -> float:
    """Return the counted reports of minutes start..now, the last one still running (the
    chart's partial bucket, so a reporter sees their own report at once)."""
    counted, _ = scope_series(conn, service, region, problem, start, now)
    return float(counted.sum())


def series(
    conn: redis.Redis,
    service: str,
    region: str | None,
    problem: str | None,
    start: int,
    end: int,
    step: int,
    params: Any = None,
) -> dict[str, Any]:
    """Return the series endpoint's JSON: `series_data` with ISO 8601 timestamps."""
    data = series_data(conn, service, region, problem, start, end, step, params)
    n = len(data.counted)
    return {
        "service": service,
        "region": region or "*",
        "problem": problem or "*",
        "step": step,
        "start": minute_to_iso(start),
        "end": minute_to_iso(end + 1),
        "timestamps": [minute_to_iso(int(m)) for m in data.minutes],
        "reports": _rounded(data.counted),
        "raw_reports": _rounded(data.raw),
        "expected": [None] * n if data.expected is None else _rounded(data.expected),
        "upper": [None] * n if data.upper is None else _rounded(data.upper),
    }


@lru_cache(maxsize=8192)
def region_name(code: str) -> str:
    """Return the English name of an ISO 3166 country or subdivision code."""
    import pycountry

    found = (
        pycountry.countries.get(alpha_2=code)
        if len(code) == 2
        else pycountry.subdivisions.get(code=code)
    )
    return getattr(found, "name", code) if found is not None else code


def map_region(leaf_region: str, level: str) -> str | None:
    """Return the region a leaf counts toward on a map level ("country" or a country code)."""
    if leaf_region == "*":
        return None
    if level == "country":
        return leaf_region[:2]
    return leaf_region if leaf_region.startswith(level + "-") else None


def region_map(
    conn: redis.Redis, service: str, level: str, end: int, params: Any = None
) -> dict[str, Any]:
    """Return observed (last 15 minutes up to `end`), expected and ratio per region of a level:
    countries (`level="country"`) or the subdivisions of one country (`level="US"`)."""
    start = end - MAP_WINDOW + 1
    observed: dict[str, float] = {}
    unlocated = 0.0
    for minute in read_leaves(conn, service, start, end):
        for (leaf_region, _), (reports, reporters) in minute.items():
            counted = reports if reporters is None else reporters
            target = map_region(leaf_region, level)
            if target is None:
                if level == "country" or leaf_region[:2] == level:
                    unlocated += counted
                continue
            observed[target] = observed.get(target, 0.0) + counted
    detector, _ = load_detector(conn, service, BAND_CACHE, for_bands=True, params=params)
    known: set[str] = set()
    if detector is not None:
        for region, problem in detector.series_keys():
            if problem == "*" and region != "*" and map_region(region, level) == region:
                known.add(region)
    minutes = np.arange(start, end + 1, dtype=np.int64)
    rows = []
    for region in sorted(known | observed.keys()):
        got = band(detector, (region, "*"), minutes)
        expected = float(got[0].sum()) if got is not None else None
        obs = observed.get(region, 0.0)
        rows.append(
            {
                "region": region,
                "name": region_name(region),
                "observed": obs,
                "expected": None if expected is None else round(expected, 3),
                "ratio": round(obs / expected, 3) if expected else None,
            }
        )
    return {
        "service": service,
        "level": level,
        "window_minutes": MAP_WINDOW,
        "start": minute_to_iso(start),
        "end": minute_to_iso(end + 1),
        "unlocated": unlocated,
        "regions": rows,
    }
