"""Seeded, labelled synthetic report scenarios (DESIGN 6; the command: cli/simulate.py).

Pure numpy and stdlib. Counts are negative-binomial distinct reporters around seasonal means,
with raw reports on top, background bursts and some sparse services (scenarios_bursts); labels
give every outage (service, regions, problems, span, shape, true rates) and every nuisance
(kind, services, regions, span).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from detector.scenarios_bursts import make_sparse, service_bursts
from detector.scenarios_events import (
    apply_count_artifacts,
    apply_outages,
    apply_rate_nuisances,
    dst_shifts,
    place_nuisances,
    place_outages,
)
from detector.scenarios_world import (
    MINUTES_PER_DAY,
    SERVICE_NAMES,
    Label,
    ServiceSpec,
    draw_service,
    nb_shapes,
    seasonal_means,
)

START_MINUTE = 28_401_120
"""Epoch minute of every scenario's first minute: Monday 2024-01-01T00:00:00Z."""

ARL0_MINUTES = 525_600.0
"""In-control run length for the CUSUM floor: one false alarm per series-year, minutes."""


@dataclass(frozen=True)
class ServiceCounts:
    """One service's leaf series: counts, true means without outages, leaf keys."""

    name: str
    leaf_keys: list[tuple[str, str]]
    reports: np.ndarray
    """Raw reports per leaf and minute, shape (n_leaf, n_minutes), int64."""
    reporters: np.ndarray
    """Distinct reporters per leaf and minute, shape (n_leaf, n_minutes), int64."""
    baseline: np.ndarray
    """True mean distinct reporters without outages (nuisance rate effects included),
    per minute, shape (n_leaf, n_minutes)."""
    nb_shape: np.ndarray
    """Negative-binomial shape r per leaf, shape (n_leaf,): variance = m + m**2 / r."""


@dataclass(frozen=True)
class Scenario:
    """A whole labelled scenario; minute indices count from start_minute."""

    seed: int
    days: int
    eval_start: int
    """First scored minute index: earlier minutes are history (warm-up)."""
    services: list[ServiceCounts]
    outages: list[Label]
    nuisances: list[Label]
    start_minute: int = START_MINUTE
    meta: Label = field(default_factory=dict)

    @property
    def n_minutes(self) -> int:
        """Return the number of minutes covered."""
        return self.days * MINUTES_PER_DAY


def cusum_floor(base_per_min: float, outage_per_min: float, arl0: float = ARL0_MINUTES) -> float:
    """Return CUSUM's expected delay for Poisson rates l -> m per minute, in minutes.

    log(ARL0) / KL(m || l) with KL = m log(m/l) - (m - l), and never under one minute: a
    detector sees data a minute at a time.
    """
    lo, hi = float(base_per_min), float(outage_per_min)
    if lo <= 0 or hi <= lo:
        return float("inf")
    kl = hi * np.log(hi / lo) - (hi - lo)
    return float(max(1.0, np.log(arl0) / kl))


def default_eval_days(days: int) -> int:
    """Return the number of scored days at the end of a scenario of `days` days."""
    return max(1, min(14, (2 * days) // 5))


def _add_bursts(
    rng: np.random.Generator,
    spec: ServiceSpec,
    mean: np.ndarray,
    reports: np.ndarray,
    reporters: np.ndarray,
) -> list[Label]:
    """Add a service's background bursts (distinct reporters, with duplicates) to its counts
    in place; return their nuisance labels."""
    burst, found = service_bursts(rng, spec, mean)
    reporters += burst
    reports += burst + rng.poisson(spec.dup_rate * burst)
    return found


def generate(
    seed: int,
    days: int = 35,
    n_services: int = 8,
    eval_days: int | None = None,
    *,
    phenomena: bool = True,
) -> Scenario:
    """Generate a labelled scenario of `days` days with `n_services` services.

    phenomena adds issue 12's real phenomena (sparse services, background bursts, crowd-shaped
    outages) from streams of their own; False gives the earlier recipe, draw for draw.
    """
    if days < 3:
        raise ValueError(f"days must be at least 3, got {days}")
    if not 1 <= n_services <= len(SERVICE_NAMES):
        raise ValueError(f"n_services must be in 1..{len(SERVICE_NAMES)}, got {n_services}")
    eval_days = default_eval_days(days) if eval_days is None else eval_days
    if not 1 <= eval_days < days:
        raise ValueError(f"eval_days must be in 1..{days - 1}, got {eval_days}")
    rng = np.random.default_rng(seed)
    # streams of their own, so that the earlier recipe's draws are unchanged and the shapes do
    # not depend on the bursts
    shape_rng, burst_rng = rng.spawn(2) if phenomena else (None, None)
    n_minutes = days * MINUTES_PER_DAY
    eval_start = (days - eval_days) * MINUTES_PER_DAY
    specs = [draw_service(rng, SERVICE_NAMES[i]) for i in range(n_services)]
    if shape_rng is not None:
        specs = make_sparse(shape_rng, specs)
    nuisances = place_nuisances(rng, specs, n_minutes, eval_start)
    shifts = dst_shifts(nuisances, n_minutes)
    services: list[ServiceCounts] = []
    outages: list[Label] = []
    bursts: list[Label] = []
    for spec in specs:
        mean0 = seasonal_means(spec, n_minutes, shifts)
        apply_rate_nuisances(spec, mean0, nuisances)
        svc_outages = place_outages(rng, spec, n_minutes, nuisances, shape_rng=shape_rng)
        shape = nb_shapes(spec, mean0)[:, None]
        mean = apply_outages(spec, mean0, shape[:, 0], svc_outages, ARL0_MINUTES)
        lam = mean * rng.gamma(shape, 1.0 / shape, size=mean.shape)
        reporters = rng.poisson(lam).astype(np.int64)
        reports = reporters + rng.poisson(spec.dup_rate * reporters)
        if burst_rng is not None:
            bursts.extend(_add_bursts(burst_rng, spec, mean0, reports, reporters))
        apply_count_artifacts(rng, spec, reports, reporters, nuisances)
        services.append(
            ServiceCounts(spec.name, spec.leaf_keys, reports, reporters, mean0, shape[:, 0])
        )
        outages.extend(svc_outages)
    outages.sort(key=lambda o: (o["start"], o["service"]))
    for i, o in enumerate(outages):
        o["id"] = i
        o["cusum_floor_min"] = cusum_floor(o["base_per_min"], o["outage_per_min"])
    meta = {
        "n_series": sum(len(s.leaf_keys) for s in services),
        "eval_days": eval_days,
        "warmup_days": days - eval_days,
        "sparse_services": [s.name for s in specs if s.sparse],
    }
    nuisances += sorted(bursts, key=lambda n: (n["start"], n["services"]))
    return Scenario(seed, days, eval_start, services, outages, nuisances, meta=meta)


def iso_minute(epoch_minute: int) -> str:
    """Return the ISO 8601 UTC string (with Z) of an epoch minute."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=int(epoch_minute))
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_minute(text: str) -> int:
    """Return the epoch minute of an ISO 8601 UTC string such as 2024-01-01T05:42:00Z."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) // 60


def labels(scenario: Scenario) -> Label:
    """Return the JSON-ready labels: outages and nuisances with ISO spans."""
    base = scenario.start_minute

    def span(d: Label) -> Label:
        return {"start": iso_minute(base + d["start"]), "end": iso_minute(base + d["end"])}

    outages = []
    for o in scenario.outages:
        item = {k: v for k, v in o.items() if k not in ("start", "end", "onsets")}
        item.update(span(o))
        item["onsets"] = {r: iso_minute(base + m) for r, m in o["onsets"].items()}
        outages.append(item)
    nuisances = [
        {**{k: v for k, v in n.items() if k not in ("start", "end")}, **span(n)}
        for n in scenario.nuisances
    ]
    return {
        "seed": scenario.seed,
        "days": scenario.days,
        "start": iso_minute(base),
        "eval_start": iso_minute(base + scenario.eval_start),
        "end": iso_minute(base + scenario.n_minutes),
        "services": {
            s.name: {
                "leaf_keys": [list(k) for k in s.leaf_keys],
                "mean_per_min": float(s.baseline.mean(axis=1).sum()),
            }
            for s in scenario.services
        },
        "outages": outages,
        "nuisances": nuisances,
        **scenario.meta,
    }


def write_counts_csv(scenario: Scenario, path: Path) -> int:
    """Write the replay CSV (DESIGN 3.2), zero rows omitted, minute-major; return rows written."""
    base = scenario.start_minute
    rows = 0
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["minute", "service", "region", "problem", "reports", "reporters"])
        stamps = [iso_minute(base + m) for m in range(scenario.n_minutes)]
        for svc in scenario.services:
            leaf_idx, minutes = np.nonzero(svc.reports)
            order = np.lexsort((leaf_idx, minutes))
            for li, m in zip(leaf_idx[order], minutes[order], strict=True):
                region, problem = svc.leaf_keys[li]
                out.writerow(
                    [
                        stamps[m],
                        svc.name,
                        region,
                        problem,
                        int(svc.reports[li, m]),
                        int(svc.reporters[li, m]),
                    ]
                )
                rows += 1
    return rows
