"""Oracle CUSUM: knows each leaf's true mean and every outage's leaves and rate ratio.

Page's (1954) CUSUM of the negative-binomial log-likelihood ratio, summed over the outage's
affected leaves, from the true mean to ratio times the true mean; threshold log(ARL0) with
ARL0 = one false alarm per series-year (Lorden 1971: ARL0 >= exp(h)). One CUSUM per labelled
outage of the service (it knows which leaves and ratio, not when). Its delays sit at the
information floor the bench compares every detector with (scenarios_events.information_floor);
it is a yardstick, not a deployable detector.
"""

from __future__ import annotations

import numpy as np

from detector.scenarios_events import nb_log_ratio
from peers.common import Decision, Peer, counts_of

ARL0 = 525_600.0
"""In-control average run length, minutes (one false alarm per series-year)."""

HISTORY = 1440
"""Minutes before the scored window the oracle starts watching (it needs no history)."""


class OracleCusum(Peer):
    """A bank of NB CUSUMs, one per labelled outage, with the true baseline."""

    name = "oracle_cusum"
    threshold = float(np.log(ARL0))
    sweep = tuple(float(np.log(ARL0)) * f for f in (0.25, 0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.5))

    def __init__(self, scenario) -> None:
        """Keep the scenario whose true means and outage labels the oracle may read."""
        self.scenario = scenario

    def prepare(self, service, leaf_keys, start_minute, reports, reporters):
        """Return the per-minute LLR of every outage hypothesis of this service."""
        svc = next((s for s in self.scenario.services if s.name == service), None)
        if svc is None:
            raise ValueError(f"oracle knows no service {service!r}")
        x = counts_of(reports, reporters)
        first = max(0, self.scenario.eval_start - HISTORY)
        hyps = {}
        for o in self.scenario.outages:
            if o["service"] != service:
                continue
            rows = tuple(
                i
                for i, (r, p) in enumerate(svc.leaf_keys)
                if r in o["regions"] and p in o["problems"]
            )
            hyps.setdefault((rows, round(o["ratio"], 2)), None)
        n = x.shape[1]
        shape = np.broadcast_to(np.asarray(svc.nb_shape, dtype=np.float64), (len(svc.leaf_keys),))[
            :, None
        ]
        llr = []
        for rows, ratio in hyps:
            m0 = svc.baseline[list(rows), first:n]
            llr.append(
                nb_log_ratio(x[list(rows), first:], m0, ratio * m0, shape[list(rows)]).sum(axis=0)
            )
        expected = svc.baseline[:, :n].sum(axis=0)
        llr_rows = np.array(llr) if llr else np.zeros((0, n - first))
        return llr_rows, first, n, x.sum(axis=0), expected

    def decide(self, state, threshold):
        """Alarm while any CUSUM is at its cap h; the cap keeps the episode end near the
        outage's end instead of hours of decay after a strong one."""
        llr, first, n, observed, expected = state
        alarm = np.zeros(n, dtype=bool)
        onset = np.arange(n)
        h = float(threshold)
        for row in llr.tolist():
            s, last_zero = 0.0, first
            for j, z in enumerate(row):
                s += z
                if s <= 0.0:
                    s, last_zero = 0.0, first + j
                elif s >= h:
                    s = h
                    t = first + j
                    if not alarm[t]:
                        alarm[t] = True
                        onset[t] = last_zero + 1
        return Decision(alarm, onset, observed, expected)
