"""Defaults of the detection workers, webhooks and scheduler (not user configuration).

User-facing settings live in store.config; these are engineering constants.
"""

from __future__ import annotations

DETECT_LOCK_TTL = 6
"""Seconds a per-service detection lock lives without renewal (a heartbeat renews it)."""

CATCHUP_CHUNK_MINUTES = 240
"""Minutes read in one pipelined round trip and saved together while catching up."""

CATCHUP_BUDGET_SECONDS = 60.0
"""Seconds one shard job may spend catching up before it saves and leaves the rest to the
next cycle (a freshly loaded two-week history takes a few cycles)."""

CHECKPOINT_MINUTES = 5
"""Most minutes between two saves of a detector's parts when the worker process keeps
detectors in memory (status and incidents are written every minute regardless)."""

DETECT_JOB_TIMEOUT = 600
"""RQ timeout of one detection shard job, seconds."""

DETECT_RESULT_TTL = 300
"""Seconds a finished detection job's result is kept."""

MAINTENANCE_TIMEOUT = 600
"""RQ timeout of the hourly maintenance job, seconds."""

WEBHOOK_RETRY_INTERVALS = (10, 30, 60, 300, 900)
"""Seconds between attempts of a failing webhook delivery (RQ Retry)."""

WEBHOOK_JOB_TTL_SECONDS = 7 * 86400
"""How long a delivery job (and its deterministic id) is remembered after it finishes, so
the same event is never enqueued twice."""

WEBHOOK_MAX_RESPONSE_BYTES = 64 * 1024
"""Most bytes of a receiver's answer that are read (the body is ignored anyway)."""

DELIVERIES_KEPT = 1000
"""Delivery attempts kept for GET /api/v1/webhooks/deliveries."""

WEBHOOK_USER_AGENT = "outage-detector-webhooks/1"
"""User-Agent of webhook POSTs."""

LEASE_CYCLES = 1.5
"""Lifetime of a shard lease in detection cycles. Renewed every cycle, so one late renewal
is tolerated; a killed owner's lease lapses within 1.5 cycles of its last renewal and the
next cycle of another worker takes the shard (within two cycles of the kill)."""

MIN_LEASE_SECONDS = 2.0
"""Shortest shard lease, seconds, however short the cycle."""

TICK_WAIT_SECONDS = 1.0
"""Longest a detection worker blocks waiting for the scheduler's next cycle before it looks
at its stop flag again."""

CYCLE_LOG_KEPT = 1000
"""Cycle records the detection workers keep in Redis (newest first)."""

DETECT_STALL_SECONDS = 120.0
"""A detection loop that made no progress for this long stops renewing its shard leases
(another worker takes them); progress is noted between services and catch-up chunks."""
