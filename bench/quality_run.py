"""Run every detector over a scenario causally and score it (used by quality.py)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass

from matched import OURS_TARGETS
from peers import (
    DowndetectorStyle,
    EarsC2,
    EarsC3,
    Ewma3Sigma,
    OracleCusum,
    Peer,
    Shesd,
)
from quality_score import score

from detector.scenarios import Scenario

MEMORY_DAYS = {"ears_c2": 1, "ears_c3": 1, "ewma_3sigma": 3, "shesd": 5}
"""Days of history a bounded-memory peer needs before the scored window; the bench trims its
input there to save time (its scored decisions are the same as on the full history)."""

OURS_SWEEP = OURS_TARGETS
"""False alarms per series-year targets swept for ours (plot and matched table), when it takes
Params; the default target's point is the default run itself."""


@dataclass
class Result:
    """Metrics and sweep of one detector."""

    name: str
    metrics: dict | None
    cpu_seconds: float
    sweep: list[tuple[float, float, float]]
    """(threshold, recall, false alarms per service-week) per swept threshold."""
    note: str = ""


def load_ours() -> Callable | None:
    """Return detector.replay.replay_arrays, or None while it does not exist."""
    try:
        from detector import replay
    except ImportError:
        return None
    return getattr(replay, "replay_arrays", None)


def _ours_params(fn: Callable, target: float | None) -> dict:
    """Return keyword arguments setting ours' false-alarm target, if replay_arrays takes them."""
    if target is None or "params" not in inspect.signature(fn).parameters:
        return {}
    from detector.params import Params

    return {"params": Params(false_alarms_per_series_year=target)}


def _score(scenario: Scenario, incidents: list[dict]) -> dict:
    return score(
        incidents,
        scenario.outages,
        scenario.nuisances,
        start_minute=scenario.start_minute,
        eval_start=scenario.eval_start,
        n_minutes=scenario.n_minutes,
        n_services=len(scenario.services),
        n_series=scenario.meta["n_series"],
    )


def run_ours(fn: Callable, scenario: Scenario, target: float | None = None) -> list[dict]:
    """Run ours over every service through replay_arrays; return incident dicts."""
    kwargs = _ours_params(fn, target)
    out: list[dict] = []
    for svc in scenario.services:
        incidents = fn(
            svc.name, svc.leaf_keys, scenario.start_minute, svc.reports, svc.reporters, **kwargs
        )
        out.extend(i.to_dict() if hasattr(i, "to_dict") else dict(i) for i in incidents)
    return out


def evaluate_ours(scenario: Scenario, sweep: bool) -> Result:
    """Score ours, or return an empty result while detector/replay.py is missing."""
    fn = load_ours()
    if fn is None:
        return Result("ours", None, 0.0, [], "detector.replay.replay_arrays not available")
    t0 = time.process_time()
    incidents = run_ours(fn, scenario)
    cpu = time.process_time() - t0
    metrics = _score(scenario, incidents)
    points = []
    if sweep and _ours_params(fn, 1.0):
        from detector.params import Params

        default = Params().false_alarms_per_series_year
        for target in OURS_SWEEP:
            m = metrics if target == default else _score(scenario, run_ours(fn, scenario, target))
            points.append((target, m["recall"], m["false_alarms_per_service_week"]))
    return Result("ours", metrics, cpu, points)


def make_peers(scenario: Scenario) -> list[Peer]:
    """Return every peer in table order."""
    return [DowndetectorStyle(), Ewma3Sigma(), EarsC2(), EarsC3(), Shesd(), OracleCusum(scenario)]


def evaluate_peer(peer: Peer, scenario: Scenario, sweep: bool) -> Result:
    """Run a peer over every service, score it, and optionally sweep its threshold."""
    first = 0
    if peer.name in MEMORY_DAYS:
        first = max(0, scenario.eval_start - MEMORY_DAYS[peer.name] * 1440)
    t0 = time.process_time()
    states = []
    incidents: list[dict] = []
    for svc in scenario.services:
        start = scenario.start_minute + first
        state = peer.prepare(
            svc.name, svc.leaf_keys, start, svc.reports[:, first:], svc.reporters[:, first:]
        )
        states.append((svc.name, start, state))
        incidents.extend(peer.incidents(svc.name, start, state))
    cpu = time.process_time() - t0
    metrics = _score(scenario, incidents)
    points = []
    if sweep:
        for thr in peer.sweep:
            incs = [i for name, start, st in states for i in peer.incidents(name, start, st, thr)]
            m = _score(scenario, incs)
            points.append((thr, m["recall"], m["false_alarms_per_service_week"]))
    return Result(peer.name, metrics, cpu, points)


def evaluate_all(
    scenario: Scenario, sweep: bool = False, progress: Callable[[str], None] | None = None
) -> list[Result]:
    """Return results for ours and every peer, ours first."""
    results = []
    for name, job in [("ours", lambda: evaluate_ours(scenario, sweep))] + [
        (p.name, lambda p=p: evaluate_peer(p, scenario, sweep)) for p in make_peers(scenario)
    ]:
        if progress:
            progress(name)
        results.append(job())
    return results
