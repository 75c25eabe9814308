"""Real crowd-report phenomena for the synthetic scenarios (issue 12).

Sparse series carry rare bursts of a few reports that were never outages; dense series carry
self-exciting clusters with heavy-tailed sizes; real incidents rise within minutes and decay
over hours. Pure numpy; every function draws from the generator it is given.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from detector.scenarios_world import Label, ServiceSpec

MINUTES_PER_WEEK = 7 * 1440
"""Minutes in a week."""

BURST_KIND = "burst"
"""Nuisance kind of a labelled background burst (sparse or self-exciting)."""

SPARSE_SHARE = 0.25
"""Share of a scenario's services made sparse (rounded, none in a one-service scenario)."""

SPARSE_RATE_RANGE = (0.001, 0.05)
"""Log-uniform range of a sparse service's mean total rate, distinct reporters per minute."""

SPARSE_OUTAGES_PER_WEEK = 1.0
"""Mean number of outages per sparse service-week: rarer than on dense services, so that, as
on the real sparse series, their reports are mostly background and bursts (Downdetector
declared 0.3-0.45 incidents a week for AWS and Azure in shared/data/real/downdetector-cloud)."""

SPARSE_BURSTS_PER_WEEK = 1.5
"""Background bursts per sparse service-week (issue 12: nine in six weeks)."""

SPARSE_PEAK_EXCESS_RANGE = (0.25, 3.0)
"""Log-uniform range of a sparse service's outage peak excess, reporters per minute (issue 12
counts a real incident visible from 5 reports in 20 minutes)."""

CROWD_SHARE = 0.5
"""Share of a dense service's outages given the crowd shape (every sparse outage has it)."""

CROWD_MAX_MINUTES = 360
"""Longest crowd-shaped outage, minutes (DESIGN 6: outages last 5 minutes to 6 hours)."""


def sparse_bursts(
    rng: np.random.Generator,
    n_minutes: int,
    rate_per_min: float | np.ndarray,
    bursts_per_week: float,
    size_range: tuple[int, int] = (2, 6),
    spread_minutes: int = 20,
) -> tuple[np.ndarray, list[Label]]:
    """Return Poisson(rate_per_min) counts plus rare bursts, shape (n_minutes,) int64, and each
    burst as {"start", "end", "reports"} (minute indices, end exclusive).

    rate_per_min is reports per minute (scalar or shape (n_minutes,); 0 gives the bursts
    alone); a burst holds a uniform number of reports in size_range (inclusive), each at a
    uniform minute within spread_minutes of its first possible minute.
    """
    lo, hi = size_range
    if n_minutes < spread_minutes or spread_minutes < 1:
        raise ValueError(f"need 1 <= spread_minutes <= n_minutes, got {spread_minutes}")
    if not 1 <= lo <= hi or bursts_per_week < 0:
        raise ValueError(f"bad size_range {size_range} or bursts_per_week {bursts_per_week}")
    rate = np.broadcast_to(np.asarray(rate_per_min, dtype=np.float64), (n_minutes,))
    if (rate < 0).any():
        raise ValueError("rate_per_min must be non-negative")
    counts = rng.poisson(rate).astype(np.int64)
    n_bursts = int(rng.poisson(bursts_per_week * n_minutes / MINUTES_PER_WEEK))
    starts = rng.integers(0, n_minutes - spread_minutes + 1, size=n_bursts)
    sizes = rng.integers(lo, hi + 1, size=n_bursts)
    owner = np.repeat(np.arange(n_bursts), sizes)
    minutes = starts[owner] + rng.integers(0, spread_minutes, size=owner.size)
    counts += np.bincount(minutes, minlength=n_minutes)
    first = np.full(n_bursts, n_minutes)
    last = np.full(n_bursts, -1)
    np.minimum.at(first, owner, minutes)
    np.maximum.at(last, owner, minutes)
    bursts = [
        {"start": int(a), "end": int(b) + 1, "reports": int(k)}
        for a, b, k in zip(first, last, sizes, strict=True)
    ]
    return counts, sorted(bursts, key=lambda b: b["start"])


def _cluster_events(
    rng: np.random.Generator, times: np.ndarray, branching: float, kernel_minutes: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return every event time (minutes, float) of the clusters started at `times` and its
    cluster index: each event has Poisson(branching) children after Exp(kernel) delays."""
    all_t, all_c = [times], [np.arange(times.size)]
    t, c = times, all_c[0]
    while t.size:
        n_children = rng.poisson(branching, size=t.size)
        c = np.repeat(c, n_children)
        t = np.repeat(t, n_children) + rng.exponential(kernel_minutes, size=c.size)
        all_t.append(t)
        all_c.append(c)
    return np.concatenate(all_t), np.concatenate(all_c)


def hawkes_bursts(
    rng: np.random.Generator,
    n_minutes: int,
    base_rate_per_min: float | np.ndarray,
    clusters_per_day: float = 4.0,
    branching: float = 0.6,
    kernel_minutes: float = 3.0,
    size_alpha: float = 1.5,
    max_size: float = 40.0,
    label_ratio: float = 2.0,
    background: bool = True,
) -> tuple[np.ndarray, list[Label]]:
    """Return counts with self-exciting bursts, shape (n_minutes,) int64, and the labelled
    clusters as {"start", "end", "reports", "peak_ratio"} (minute indices, end exclusive).

    base_rate_per_min is the seasonal mean, reports per minute (scalar or shape
    (n_minutes,)); background adds Poisson counts around it. Clusters start at
    clusters_per_day on average, more often where the mean is high; each event has
    Poisson(branching) child events after Exp(kernel_minutes) delays and brings
    Poisson(size x local mean) reports, each Exp(kernel_minutes) after it, with size Pareto
    (minimum 1, tail index size_alpha, capped at max_size) in minutes of local mean. A cluster
    is labelled when its busiest 5 minutes reach label_ratio x the local mean (with at least
    3 excess reports); peak_ratio is (mean + excess) / mean over those 5 minutes.
    """
    if not 0 <= branching < 1 or kernel_minutes <= 0 or size_alpha <= 0 or clusters_per_day < 0:
        raise ValueError("need 0 <= branching < 1, kernel_minutes > 0, size_alpha > 0")
    base = np.broadcast_to(np.asarray(base_rate_per_min, dtype=np.float64), (n_minutes,))
    if (base < 0).any() or n_minutes < 1:
        raise ValueError("base_rate_per_min must be non-negative and n_minutes positive")
    counts = rng.poisson(base).astype(np.int64) if background else np.zeros(n_minutes, np.int64)
    total = float(base.sum())
    n_clusters = int(rng.poisson(clusters_per_day * n_minutes / 1440.0)) if total > 0 else 0
    starts = rng.choice(n_minutes, size=n_clusters, p=base / total) if n_clusters else np.zeros(0)
    starts = starts + rng.random(n_clusters)
    times, cluster = _cluster_events(rng, starts, branching, kernel_minutes)
    keep = times < n_minutes
    times, cluster = times[keep], cluster[keep]
    size = np.minimum(1.0 + rng.pareto(size_alpha, size=times.size), max_size)
    n_reports = rng.poisson(size * base[times.astype(np.int64)])
    owner = np.repeat(cluster, n_reports)
    at = np.repeat(times, n_reports) + rng.exponential(kernel_minutes, size=owner.size)
    keep = at < n_minutes
    owner, minutes = owner[keep], at[keep].astype(np.int64)
    counts += np.bincount(minutes, minlength=n_minutes)
    return counts, _label_clusters(minutes, owner, n_clusters, base, label_ratio)


def _window_sums(x: np.ndarray, width: int = 5) -> np.ndarray:
    """Return the sums of every `width` consecutive values of x, shape (len(x) - width + 1,)."""
    c = np.concatenate(([0.0], np.cumsum(x, dtype=np.float64)))
    return c[width:] - c[:-width]


def _label_clusters(
    minutes: np.ndarray, owner: np.ndarray, n_clusters: int, base: np.ndarray, label_ratio: float
) -> list[Label]:
    """Return the clusters whose busiest 5 minutes reach label_ratio x the local mean."""
    order = np.lexsort((minutes, owner))
    minutes, owner = minutes[order], owner[order]
    bounds = np.searchsorted(owner, np.arange(n_clusters + 1))
    out = []
    for c in range(n_clusters):
        m = minutes[bounds[c] : bounds[c + 1]]
        if m.size < 3:
            continue
        s, e = int(m[0]), int(m[-1]) + 1
        width = max(5, e - s)
        local = base[np.minimum(np.arange(s, s + width), base.size - 1)]
        excess = _window_sums(np.bincount(m - s, minlength=width))
        expected = np.maximum(_window_sums(local), 1e-9)
        j = int(np.argmax(excess / expected))
        ratio = (expected[j] + excess[j]) / expected[j]
        if ratio >= label_ratio and excess[j] >= 3:
            out.append({"start": s, "end": e, "reports": int(m.size), "peak_ratio": float(ratio)})
    return out


def crowd_profile(
    duration: int, rise: int, hold: int, tau_fast: float, tail_share: float, tau_slow: float
) -> np.ndarray:
    """Return a crowd-reported incident's profile in [0, 1], shape (duration,): an S-shaped
    rise over `rise` minutes, `hold` minutes at the peak, then a two-timescale exponential
    decay (time constants in minutes, `tail_share` of the peak on the slow one)."""
    t = np.arange(duration, dtype=np.float64)
    up = np.sin(0.5 * np.pi * np.minimum(1.0, (t + 1) / max(1, rise))) ** 2
    u = np.maximum(0.0, t - rise - hold)
    down = (1 - tail_share) * np.exp(-u / tau_fast) + tail_share * np.exp(-u / tau_slow)
    return np.minimum(up, down)


def draw_crowd_shape(rng: np.random.Generator, ratio: float) -> Label:
    """Draw a crowd-shaped outage and return its label fields (durations in minutes).

    Shaped after Downdetector's declared cloud incidents (median: 30 minutes from a tenth of
    the peak to the peak, two thirds of it left 15 minutes later, a tenth after an hour); it
    ends when the excess falls under 5% of the peak or under half the baseline (ratio = peak /
    baseline), at most CROWD_MAX_MINUTES.
    """
    rise = int(rng.integers(10, 41))
    hold = int(rng.integers(0, 16))
    tau_fast = float(np.exp(rng.uniform(np.log(15.0), np.log(45.0))))
    tail_share = float(rng.uniform(0.05, 0.2))
    tau_slow = float(np.exp(rng.uniform(np.log(60.0), np.log(150.0))))
    end_level = max(0.05, min(0.5, 0.5 / max(ratio - 1.0, 1e-9)))
    profile = crowd_profile(CROWD_MAX_MINUTES, rise, hold, tau_fast, tail_share, tau_slow)
    below = np.nonzero(profile[rise + hold :] < end_level)[0]
    duration = rise + hold + int(below[0]) if below.size else CROWD_MAX_MINUTES
    return {
        "shape": "crowd",
        "duration_min": duration,
        "ramp_min": rise,
        "decay_min": duration - rise - hold,
        "hold_min": hold,
        "tau_fast_min": tau_fast,
        "tail_share": tail_share,
        "tau_slow_min": tau_slow,
    }


def split_by_share(rng: np.random.Generator, counts: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Split counts (n_minutes,) multinomially over share (k,); return shape (k, n_minutes)."""
    p = np.asarray(share, dtype=np.float64) / float(np.sum(share))
    out = np.zeros((p.size, counts.size), dtype=np.int64)
    left = counts.astype(np.int64)
    for j in range(p.size - 1):
        out[j] = rng.binomial(left, min(1.0, p[j] / max(p[j:].sum(), 1e-12)))
        left = left - out[j]
    out[-1] = left
    return out


def service_bursts(
    rng: np.random.Generator, spec: ServiceSpec, mean: np.ndarray
) -> tuple[np.ndarray, list[Label]]:
    """Return a service's background burst reporters per leaf, shape (n_leaf, n_minutes), and
    their nuisance labels: sparse bursts on a sparse service, self-exciting clusters on a
    dense one, drawn per region around its mean (mean: shape (n_leaf, n_minutes)) and split
    over its problems by their shares."""
    n_problems = len(spec.problems)
    region_mean = mean.reshape(len(spec.regions), n_problems, -1).sum(axis=1)
    region_share = spec.leaf_rates.sum(axis=1) / spec.leaf_rates.sum()
    out = np.zeros_like(mean, dtype=np.int64)
    labels: list[Label] = []
    for ri, region in enumerate(spec.regions):
        if spec.sparse:
            bpw = SPARSE_BURSTS_PER_WEEK * region_share[ri]
            counts, found = sparse_bursts(rng, mean.shape[1], 0.0, bpw)
        else:
            counts, found = hawkes_bursts(rng, mean.shape[1], region_mean[ri], background=False)
        rows = slice(ri * n_problems, (ri + 1) * n_problems)
        out[rows] = split_by_share(rng, counts, spec.leaf_rates[ri])
        labels.extend(
            {"kind": BURST_KIND, "services": [spec.name], "regions": [region], **b} for b in found
        )
    return out, labels


def make_sparse(rng: np.random.Generator, specs: list[ServiceSpec]) -> list[ServiceSpec]:
    """Return specs with SPARSE_SHARE of them (drawn) scaled down to a sparse total rate."""
    n_sparse = int(SPARSE_SHARE * len(specs) + 0.5)
    chosen = set(rng.choice(len(specs), size=n_sparse, replace=False).tolist())
    out = []
    for i, spec in enumerate(specs):
        if i in chosen:
            total = float(np.exp(rng.uniform(*np.log(SPARSE_RATE_RANGE))))
            leaf = spec.leaf_rates * (total / spec.leaf_rates.sum())
            spec = replace(spec, leaf_rates=leaf, sparse=True)
        out.append(spec)
    return out


def outage_shape(rng: np.random.Generator, spec: ServiceSpec, ratio: float) -> Label:
    """Return label fields overriding a drawn outage's shape: the crowd shape for every sparse
    outage and CROWD_SHARE of dense ones, and a sparse outage's peak excess (reporters per
    minute over its leaves; its ratio follows from the baseline where it lands)."""
    if not spec.sparse:
        return draw_crowd_shape(rng, ratio) if rng.random() < CROWD_SHARE else {}
    excess = float(np.exp(rng.uniform(*np.log(SPARSE_PEAK_EXCESS_RANGE))))
    return {**draw_crowd_shape(rng, np.inf), "peak_excess_per_min": excess}
