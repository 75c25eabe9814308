"""Labelled outages and nuisances for the synthetic scenarios (DESIGN 6)."""

from __future__ import annotations

import numpy as np

from detector.scenarios_bursts import SPARSE_OUTAGES_PER_WEEK, crowd_profile, outage_shape
from detector.scenarios_world import MINUTES_PER_DAY, Label, ServiceSpec

NUISANCE_KINDS: tuple[str, ...] = (
    "spam",
    "evening_peak",
    "trend",
    "holiday",
    "gap",
    "dst",
    "news",
)
"""Every nuisance kind place_nuisances places, in placement order (background bursts, drawn
per service, are scenarios_bursts.BURST_KIND)."""

OUTAGES_PER_SERVICE_WEEK = 4.0
"""Mean number of outages per service and week (sparse services: SPARSE_OUTAGES_PER_WEEK)."""

MARGIN = 120
"""Minutes kept clear between an outage and a short nuisance or another outage."""


def _country(region: str) -> str:
    return region.split("-")[0]


def _free(spans: list[tuple[int, int]], start: int, end: int, margin: int) -> bool:
    return all(end + margin <= s or start >= e + margin for s, e in spans)


def _pick_span(
    rng: np.random.Generator, lo: int, hi: int, length: int, taken: list[tuple[int, int]]
) -> tuple[int, int]:
    """Pick [start, start + length) inside [lo, hi) clear of taken spans; raise if impossible."""
    for _ in range(200):
        start = int(rng.integers(lo, max(lo + 1, hi - length)))
        if _free(taken, start, start + length, MARGIN):
            return start, start + length
    raise ValueError("scenario too short to place every event; use more days")


def place_nuisances(
    rng: np.random.Generator, specs: list[ServiceSpec], n_minutes: int, eval_start: int
) -> list[Label]:
    """Place every nuisance kind inside the evaluation window; spans are minute indices."""
    per_kind = max(1, round((n_minutes - eval_start) / (7 * MINUTES_PER_DAY)))
    names = [s.name for s in specs]
    taken: list[tuple[int, int]] = []
    out: list[Label] = []
    lo, hi = eval_start, n_minutes - 6 * 60
    eval_days = (n_minutes - eval_start) // MINUTES_PER_DAY
    for kind in NUISANCE_KINDS:
        for _ in range(per_kind if kind not in ("trend", "dst") else 1):
            svc = specs[int(rng.integers(len(specs)))]
            if kind == "spam":
                s, e = _pick_span(rng, lo, hi, int(rng.integers(10, 61)), taken)
                leaf = int(rng.integers(len(svc.leaf_keys)))
                region, problem = svc.leaf_keys[leaf]
                out.append(
                    {
                        "kind": kind,
                        "services": [svc.name],
                        "regions": [region],
                        "problems": [problem],
                        "start": s,
                        "end": e,
                        "reports_per_min": float(rng.uniform(8.0, 40.0)),
                    }
                )
            elif kind == "evening_peak":
                ri = int(rng.integers(len(svc.regions)))
                country = _country(svc.regions[ri])
                length = int(rng.integers(150, 241))
                day = int(rng.integers(eval_start // MINUTES_PER_DAY, n_minutes // MINUTES_PER_DAY))
                peak_utc = day * MINUTES_PER_DAY + int((svc.harmonics[1] - svc.tz_hours[ri]) * 60)
                s = min(max(lo, peak_utc - length // 2), hi - length)
                if not _free(taken, s, s + length, MARGIN):
                    s, _ = _pick_span(rng, lo, hi, length, taken)
                regions = [r for r in svc.regions if _country(r) == country]
                out.append(
                    {
                        "kind": kind,
                        "services": [svc.name],
                        "regions": regions,
                        "start": s,
                        "end": s + length,
                        "factor": float(rng.uniform(1.6, 2.5)),
                    }
                )
            elif kind == "trend":
                s = max(0, eval_start - 3 * MINUTES_PER_DAY)
                out.append(
                    {
                        "kind": kind,
                        "services": [svc.name],
                        "regions": list(svc.regions),
                        "start": s,
                        "end": n_minutes,
                        "factor": 1.3,
                    }
                )
                continue
            elif kind == "holiday":
                ri = int(rng.integers(len(svc.regions)))
                country = _country(svc.regions[ri])
                first_day = eval_start // MINUTES_PER_DAY + 1
                day = int(rng.integers(first_day, n_minutes // MINUTES_PER_DAY))
                s = day * MINUTES_PER_DAY - int(svc.tz_hours[ri] * 60)
                factor = float(rng.choice([rng.uniform(0.55, 0.8), rng.uniform(1.25, 1.6)]))
                affected = [x.name for x in specs if any(_country(r) == country for r in x.regions)]
                regions = sorted({r for x in specs for r in x.regions if _country(r) == country})
                out.append(
                    {
                        "kind": kind,
                        "services": affected,
                        "regions": regions,
                        "start": s,
                        "end": s + MINUTES_PER_DAY,
                        "factor": factor,
                    }
                )
            elif kind == "gap":
                length = int(rng.integers(10, 46))
                s, e = _pick_span(rng, lo, hi, length + 1, taken)
                out.append(
                    {"kind": kind, "services": names, "regions": ["*"], "start": s, "end": e}
                )
            elif kind == "dst":
                zones = sorted({z for x in specs for z in x.dst_zones if z})
                if not zones:
                    continue
                zone = zones[int(rng.integers(len(zones)))]
                day = eval_start // MINUTES_PER_DAY + int(rng.integers(0, max(1, eval_days - 2)))
                s = day * MINUTES_PER_DAY + (600 if zone == "US" else 60)
                affected = [x.name for x in specs if zone in x.dst_zones]
                regions = sorted(
                    {
                        r
                        for x in specs
                        for r, z in zip(x.regions, x.dst_zones, strict=True)
                        if z == zone
                    }
                )
                out.append(
                    {
                        "kind": kind,
                        "services": affected,
                        "regions": regions,
                        "zone": zone,
                        "start": s,
                        "end": min(n_minutes, s + MINUTES_PER_DAY),
                    }
                )
                continue
            elif kind == "news":
                country = _country(svc.regions[int(rng.integers(len(svc.regions)))])
                s, e = _pick_span(rng, lo, hi, int(rng.integers(30, 121)), taken)
                regions = sorted({r for x in specs for r in x.regions if _country(r) == country})
                affected = [x.name for x in specs if any(_country(r) == country for r in x.regions)]
                out.append(
                    {
                        "kind": kind,
                        "services": affected,
                        "regions": regions,
                        "start": s,
                        "end": e,
                        "factor": float(rng.uniform(1.3, 2.0)),
                    }
                )
            taken.append((out[-1]["start"], out[-1]["end"]))
    return out


def dst_shifts(nuisances: list[Label], n_minutes: int) -> dict[str, np.ndarray]:
    """Return extra local-clock offset (minutes) per minute for each DST zone that shifts."""
    shifts: dict[str, np.ndarray] = {}
    for n in nuisances:
        if n["kind"] == "dst":
            arr = np.zeros(n_minutes)
            arr[n["start"] :] = 60.0
            shifts[n["zone"]] = arr
    return shifts


def _bump(length: int) -> np.ndarray:
    """Return a smooth 0 -> 1 -> 0 profile of the given length (a raised sine)."""
    return np.sin(np.pi * (np.arange(length) + 0.5) / length)


def apply_rate_nuisances(spec: ServiceSpec, mean: np.ndarray, nuisances: list[Label]) -> None:
    """Multiply the nuisance rate effects into mean in place, shape (n_leaf, n_minutes)."""
    keys = spec.leaf_keys
    n_minutes = mean.shape[1]
    for n in nuisances:
        if spec.name not in n["services"] or n["kind"] not in (
            "evening_peak",
            "trend",
            "holiday",
            "news",
        ):
            continue
        rows = [i for i, (r, _) in enumerate(keys) if r in n["regions"]]
        s, e = n["start"], min(n["end"], n_minutes)
        if n["kind"] == "trend":
            factor = 1.0 + (n["factor"] - 1.0) * np.arange(e - s) / max(1, e - s - 1)
        elif n["kind"] == "holiday":
            factor = np.full(e - s, n["factor"])
        else:
            factor = 1.0 + (n["factor"] - 1.0) * _bump(n["end"] - n["start"])[: e - s]
        mean[rows, s:e] *= factor


def outage_profile(duration: int, ramp: int, decay: int) -> np.ndarray:
    """Return the ramp/plateau/decay profile in [0, 1] of an outage, shape (duration,)."""
    t = np.arange(duration, dtype=np.float64)
    plateau_end = duration - decay
    up = np.minimum(1.0, (t + 1) / ramp)
    down = np.clip((duration - t) / max(1, decay), 0.0, 1.0)
    return np.where(t < plateau_end, up, np.minimum(up, down))


def profile_of(outage: Label) -> np.ndarray:
    """Return an outage's profile in [0, 1], shape (duration_min,), by its labelled shape."""
    if outage.get("shape") == "crowd":
        return crowd_profile(
            outage["duration_min"],
            outage["ramp_min"],
            outage["hold_min"],
            outage["tau_fast_min"],
            outage["tail_share"],
            outage["tau_slow_min"],
        )
    return outage_profile(outage["duration_min"], outage["ramp_min"], outage["decay_min"])


def place_outages(
    rng: np.random.Generator,
    spec: ServiceSpec,
    n_minutes: int,
    nuisances: list[Label],
    shape_rng: np.random.Generator | None = None,
) -> list[Label]:
    """Draw one service's outages over the whole span, clear of its short nuisances; with
    shape_rng, some take the crowd shape (scenarios_bursts.outage_shape)."""
    taken = [
        (n["start"], n["end"])
        for n in nuisances
        if spec.name in n["services"] and n["kind"] not in ("trend", "dst")
    ]
    per_week = SPARSE_OUTAGES_PER_WEEK if spec.sparse else OUTAGES_PER_SERVICE_WEEK
    count = int(rng.poisson(per_week * n_minutes / (7 * MINUTES_PER_DAY)))
    out = []
    for _ in range(count):
        duration = int(np.exp(rng.uniform(np.log(5), np.log(360))))
        ratio = float(np.exp(rng.uniform(np.log(1.5), np.log(30.0))))
        ramp = max(1, int(duration * rng.uniform(0.05, 0.3)))
        decay = max(1, int(duration * rng.uniform(0.1, 0.4)))
        shape = {} if shape_rng is None else outage_shape(shape_rng, spec, ratio)
        duration = shape.get("duration_min", duration)
        mode = rng.choice(["one", "some", "all"])
        n_reg = len(spec.regions)
        k = 1 if mode == "one" else n_reg if mode == "all" else int(rng.integers(1, n_reg + 1))
        regions = [spec.regions[i] for i in sorted(rng.choice(n_reg, size=k, replace=False))]
        problems = sorted(
            rng.choice(
                spec.problems,
                size=int(rng.integers(1, 3)) if len(spec.problems) > 1 else 1,
                replace=False,
            ).tolist()
        )
        stagger = min(15, duration // 3)
        offsets = [0] + [int(rng.integers(0, stagger + 1)) for _ in regions[1:]]
        length = duration + max(offsets)
        try:
            start, end = _pick_span(rng, MINUTES_PER_DAY, n_minutes - length, length, taken)
        except ValueError:
            continue
        taken.append((start, end))
        out.append(
            {
                "service": spec.name,
                "shape": "plateau",
                "regions": regions,
                "problems": problems,
                "start": start,
                "end": end,
                "duration_min": duration,
                "ratio": ratio,
                "ramp_min": ramp,
                "decay_min": decay,
                "onsets": {r: start + o for r, o in zip(regions, offsets, strict=True)},
                **shape,
            }
        )
    return sorted(out, key=lambda o: o["start"])


def nb_log_ratio(x: np.ndarray, m0: np.ndarray, m1: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Return log P(x | NB(m1, r)) / P(x | NB(m0, r)) per cell, nats (fixed shape r, variance
    m + m**2 / r); with x = m1 it is the Kullback-Leibler divergence KL(NB(m1) || NB(m0))."""
    m0 = np.maximum(m0, 1e-9)
    m1 = np.maximum(m1, 1e-9)
    return x * np.log(m1 * (r + m0) / (m0 * (r + m1))) + r * np.log((r + m0) / (r + m1))


def information_floor(kl_per_minute: np.ndarray, arl0: float) -> float:
    """Return the minutes from onset until the expected log-likelihood ratio, summed minute by
    minute, reaches log(arl0): the delay of a CUSUM that knows the true rates before and after
    the change (Lorden 1971: no detector with that false-alarm rate is faster, to first
    order); inf when the outage ends first."""
    reached = np.nonzero(np.cumsum(kl_per_minute) >= np.log(arl0))[0]
    return float(reached[0] + 1) if reached.size else float("inf")


def apply_outages(
    spec: ServiceSpec, mean0: np.ndarray, shape: np.ndarray, outages: list[Label], arl0: float
) -> np.ndarray:
    """Return mean rates with outages added and fill each outage's true rates (per minute)
    and its information floor (minutes; NB shape per leaf in `shape`, ramp and stagger
    included); an outage labelled with a peak excess gets the ratio that gives it."""
    mean = mean0.copy()
    keys = spec.leaf_keys
    for o in outages:
        profile = profile_of(o)
        rows = [i for i, (r, p) in enumerate(keys) if r in o["regions"] and p in o["problems"]]
        if "peak_excess_per_min" in o:
            base = mean0[rows, o["start"] : o["end"]].sum(axis=0).mean()
            o["ratio"] = 1.0 + o["peak_excess_per_min"] / max(base, 1e-9)
        kl = np.zeros(o["end"] - o["start"])
        for i in rows:
            s = o["onsets"][keys[i][0]]
            e = s + o["duration_min"]
            mean[i, s:e] += (o["ratio"] - 1.0) * profile * mean0[i, s:e]
            kl[s - o["start"] : e - o["start"]] += nb_log_ratio(
                mean[i, s:e], mean0[i, s:e], mean[i, s:e], shape[i]
            )
        base = mean0[rows, o["start"] : o["end"]].sum(axis=0)
        total = mean[rows, o["start"] : o["end"]].sum(axis=0)
        core = (total - base) >= 0.5 * (total - base).max()
        o["base_per_min"] = float(base[core].mean())
        o["outage_per_min"] = float(total[core].mean())
        o["info_floor_min"] = information_floor(kl, arl0)
    return mean


def apply_count_artifacts(
    rng: np.random.Generator,
    spec: ServiceSpec,
    reports: np.ndarray,
    reporters: np.ndarray,
    nuisances: list[Label],
) -> None:
    """Apply spam bursts and ingestion gaps with backlog flush to the counts in place."""
    keys = spec.leaf_keys
    for n in nuisances:
        if spec.name not in n["services"]:
            continue
        s, e = n["start"], n["end"]
        if n["kind"] == "spam":
            i = keys.index((n["regions"][0], n["problems"][0]))
            reports[i, s:e] += 1 + rng.poisson(n["reports_per_min"], e - s)
            reporters[i, s:e] += 1
        elif n["kind"] == "gap":
            flush = e - 1
            for arr in (reports, reporters):
                arr[:, flush] += arr[:, s:flush].sum(axis=1)
                arr[:, s:flush] = 0
