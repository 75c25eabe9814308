"""Services, regions and seasonal means for the synthetic scenarios (DESIGN 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

Label: TypeAlias = dict[str, Any]
"""A JSON-ready label record: an outage, a nuisance, or a scenario's metadata."""

MINUTES_PER_DAY = 1440
"""Minutes in a day."""

# code, UTC offset in hours, DST zone ("US", "EU" or "" for none)
REGION_POOL: tuple[tuple[str, float, str], ...] = (
    ("US-CA", -8.0, "US"),
    ("US-TX", -6.0, "US"),
    ("US-NY", -5.0, "US"),
    ("CA-ON", -5.0, "US"),
    ("MX", -6.0, ""),
    ("BR", -3.0, ""),
    ("GB", 0.0, "EU"),
    ("FR", 1.0, "EU"),
    ("DE", 1.0, "EU"),
    ("IN", 5.5, ""),
    ("JP", 9.0, ""),
    ("AU-NSW", 10.0, ""),
)
"""Regions a service may have: ISO code, UTC offset (hours), DST zone."""

PROBLEM_POOL: tuple[str, ...] = (
    "app",
    "website",
    "login",
    "images",
    "links",
    "server-connection",
)
"""Problem slugs a service may have."""

SERVICE_NAMES: tuple[str, ...] = (
    "chirp",
    "photogram",
    "mailbox",
    "streamflix",
    "bankly",
    "gamehub",
    "cloudbox",
    "rideshare",
    "chatwave",
    "shopnow",
    "tubecast",
    "paystack",
)
"""Slugs given to the synthetic services, in order."""

LEAF_RATE_RANGE = (0.01, 50.0)
"""Smallest and largest mean leaf rate, distinct reporters per minute."""


@dataclass(frozen=True)
class ServiceSpec:
    """Static description of one synthetic service."""

    name: str
    regions: tuple[str, ...]
    tz_hours: tuple[float, ...]
    dst_zones: tuple[str, ...]
    problems: tuple[str, ...]
    leaf_rates: np.ndarray
    """Mean rate per leaf (distinct reporters per minute), shape (n_regions, n_problems)."""
    peak_trough: float
    harmonics: tuple[float, float, float, float]
    """Daily harmonic weights and phases: (a1, phi1_hours, a2, phi2_hours)."""
    weekend: float
    drift: tuple[tuple[float, float, float], ...]
    """Slow drift terms (amplitude, period in days, phase in radians)."""
    dispersion: float
    """Variance / mean of a leaf's counts at its average rate (DESIGN 4: 2 to 5)."""
    dup_rate: float
    """Extra raw reports per distinct reporter (reports = reporters + Poisson(dup * reporters))."""
    sparse: bool = False
    """Whether the service is sparse (issue 12: a total of 0.001-0.05 reporters per minute)."""

    @property
    def leaf_keys(self) -> list[tuple[str, str]]:
        """Return the (region, problem) key of every leaf, region-major."""
        return [(r, p) for r in self.regions for p in self.problems]


def draw_service(rng: np.random.Generator, name: str) -> ServiceSpec:
    """Draw one service: its regions, problems, rates and seasonality."""
    n_regions = int(rng.integers(2, 5))
    n_problems = int(rng.integers(2, 4))
    idx = np.sort(rng.choice(len(REGION_POOL), size=n_regions, replace=False))
    pool = [REGION_POOL[i] for i in idx]
    problems = tuple(sorted(rng.choice(PROBLEM_POOL, size=n_problems, replace=False).tolist()))
    total = float(np.exp(rng.uniform(np.log(0.3), np.log(80.0))))
    region_share = rng.dirichlet(np.full(n_regions, 1.5))
    problem_share = rng.dirichlet(np.full(n_problems, 2.0))
    leaf = total * np.outer(region_share, problem_share)
    leaf = np.clip(leaf, *LEAF_RATE_RANGE)
    harmonics = (
        1.0,
        float(rng.uniform(17.0, 22.0)),
        float(rng.uniform(0.2, 0.7)),
        float(rng.uniform(0.0, 12.0)),
    )
    drift = tuple(
        (
            float(rng.uniform(0.02, 0.06)),
            float(rng.uniform(6.0, 30.0)),
            float(rng.uniform(0.0, 2 * np.pi)),
        )
        for _ in range(2)
    )
    return ServiceSpec(
        name=name,
        regions=tuple(r[0] for r in pool),
        tz_hours=tuple(r[1] for r in pool),
        dst_zones=tuple(r[2] for r in pool),
        problems=problems,
        leaf_rates=leaf,
        peak_trough=float(rng.uniform(2.5, 9.0)),
        harmonics=harmonics,
        weekend=float(rng.uniform(0.75, 1.35)),
        drift=drift,
        dispersion=float(rng.uniform(2.0, 5.0)),
        dup_rate=float(rng.uniform(0.05, 0.3)),
    )


def nb_shapes(spec: ServiceSpec, mean: np.ndarray) -> np.ndarray:
    """Return each leaf's negative-binomial shape r, shape (n_leaf,).

    r = average rate / (dispersion - 1), so variance / mean is the spec's dispersion at the
    leaf's average rate (variance = m + m**2 / r); clipped to [0.5, 1000] so that leaves of a
    few reports a day stay near Poisson.
    """
    return np.clip(mean.mean(axis=1) / (spec.dispersion - 1.0), 0.5, 1000.0)


def daily_shape(spec: ServiceSpec, local_hour: np.ndarray) -> np.ndarray:
    """Return the mean-one daily profile at local hours with the spec's peak/trough ratio."""
    a1, p1, a2, p2 = spec.harmonics
    grid = np.arange(0.0, 24.0, 1.0 / 60.0)

    def raw(h: np.ndarray) -> np.ndarray:
        return a1 * np.cos(2 * np.pi * (h - p1) / 24.0) + a2 * np.cos(4 * np.pi * (h - p2) / 24.0)

    g = raw(grid)
    k = np.log(spec.peak_trough) / (g.max() - g.min())
    norm = np.exp(k * g).mean()
    return np.exp(k * raw(local_hour)) / norm


def region_clock(
    spec: ServiceSpec, region_index: int, n_minutes: int, dst_shift: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return local hour of day and local weekday (0 = Monday) per minute, shape (n_minutes,).

    Minute 0 is a Monday 00:00 UTC; dst_shift holds extra offset minutes per minute or None.
    """
    local = np.arange(n_minutes, dtype=np.float64) + spec.tz_hours[region_index] * 60.0
    if dst_shift is not None:
        local = local + dst_shift
    hour = (local % MINUTES_PER_DAY) / 60.0
    weekday = np.floor(local / MINUTES_PER_DAY).astype(np.int64) % 7
    return hour, weekday


def seasonal_means(
    spec: ServiceSpec, n_minutes: int, dst_shift: dict[str, np.ndarray]
) -> np.ndarray:
    """Return seasonal mean rates per leaf before nuisances, shape (n_leaf, n_minutes).

    dst_shift maps a DST zone to its extra offset in minutes per minute.
    """
    t_days = np.arange(n_minutes, dtype=np.float64) / MINUTES_PER_DAY
    drift = np.ones(n_minutes)
    for amp, period, phase in spec.drift:
        drift *= np.exp(amp * np.sin(2 * np.pi * t_days / period + phase))
    rows = []
    for ri in range(len(spec.regions)):
        hour, weekday = region_clock(spec, ri, n_minutes, dst_shift.get(spec.dst_zones[ri]))
        season = daily_shape(spec, hour) * np.where(weekday >= 5, spec.weekend, 1.0) * drift
        for pi in range(len(spec.problems)):
            rows.append(spec.leaf_rates[ri, pi] * season)
    return np.vstack(rows)
