"""Incidents, their lifecycle events, severities and evidence (frozen, JSON-ready)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from detector.clock import minute_to_iso


class Severity(enum.StrEnum):
    """How bad an incident is, from strength and duration of evidence."""

    POSSIBLE = "possible"
    PROBLEMS = "problems"
    OUTAGE = "outage"

    @property
    def rank(self) -> int:
        """Order of severities: possible < problems < outage."""
        return _RANK[self]


_RANK = {Severity.POSSIBLE: 1, Severity.PROBLEMS: 2, Severity.OUTAGE: 3}


class Level(enum.StrEnum):
    """A service's current level as shown to users."""

    OK = "ok"
    POSSIBLE = "possible"
    PROBLEMS = "problems"
    OUTAGE = "outage"


class EventKind(enum.StrEnum):
    """What happened to an incident in one minute."""

    OPEN = "open"
    ESCALATE = "escalate"
    CLOSE = "close"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Share:
    """Observed vs expected counted reporters of one child (region or problem)."""

    name: str
    observed: float
    expected: float
    share: float
    """observed / observed of the parent scope."""
    normal_share: float
    """expected / expected of the parent scope."""


@dataclass(frozen=True)
class Evidence:
    """Why an incident was raised: the test that fired and the data around it."""

    trigger: str
    """Test that first fired: "nb_window_<w>min" or "cusum_x<rho>"."""
    trigger_region: str
    trigger_problem: str
    statistic: float
    """p-value of a window test, or the CUSUM score."""
    threshold: float
    window_observed: float
    window_expected: float
    reporter_diversity: float | None
    """Counted reporters / raw reports in the trigger window; None if reporters unknown."""
    prefix_diversity: float | None
    """Network prefixes / reporters over 5 minutes for the service; None if unknown."""
    alarmed_series: int = 0
    region_shares: tuple[Share, ...] = field(default_factory=tuple)
    problem_shares: tuple[Share, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Incident:
    """One service outage: scope, times in epoch minutes, severity and attribution."""

    id: str
    service: str
    region: str
    problem: str
    started_at: int
    """Estimated onset, epoch minute."""
    detected_at: int
    """End of the last minute seen when first raised, epoch minute (exclusive)."""
    ended_at: int | None
    """End of the last elevated minute, epoch minute (exclusive); None while open."""
    severity: Severity
    peak_per_min: float
    expected_per_min: float
    """Expected counted reporters per minute at the peak minute."""
    p_value: float
    """Smallest window p-value of the scope series during the incident."""
    regions: tuple[str, ...]
    problems: tuple[str, ...]
    evidence_detail: Evidence

    @staticmethod
    def make_id(service: str, started_at: int) -> str:
        """Return the deterministic id of the incident of a service starting at a minute."""
        return f"{service}:{minute_to_iso(started_at)}"

    @property
    def is_open(self) -> bool:
        """Tell whether the incident has not ended."""
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        """Return exactly the DESIGN 3.2 JSONL fields."""
        return {
            "service": self.service,
            "region": self.region,
            "problem": self.problem,
            "started_at": minute_to_iso(self.started_at),
            "detected_at": minute_to_iso(self.detected_at),
            "ended_at": None if self.ended_at is None else minute_to_iso(self.ended_at),
            "severity": str(self.severity),
            "peak_per_min": float(self.peak_per_min),
            "expected_per_min": float(self.expected_per_min),
            "p_value": float(self.p_value),
            "regions": list(self.regions),
            "problems": list(self.problems),
        }

    def evidence(self) -> dict[str, Any]:
        """Return the evidence (tests, windows, diversity, shares) as a JSON-ready dict."""
        return asdict(self.evidence_detail)

    def to_state(self) -> dict[str, Any]:
        """Return a JSON-ready dict that from_state restores exactly."""
        state = asdict(self)
        state["severity"] = str(self.severity)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Incident:
        """Restore an incident saved by to_state."""
        ev = dict(state["evidence_detail"])
        ev["region_shares"] = tuple(Share(**s) for s in ev["region_shares"])
        ev["problem_shares"] = tuple(Share(**s) for s in ev["problem_shares"])
        fields = dict(state)
        fields["evidence_detail"] = Evidence(**ev)
        fields["severity"] = Severity(state["severity"])
        fields["regions"] = tuple(state["regions"])
        fields["problems"] = tuple(state["problems"])
        return cls(**fields)

    def evolve(self, **changes: Any) -> Incident:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class IncidentEvent:
    """A lifecycle event: the incident as it is right after the event."""

    kind: EventKind
    incident: Incident
