"""RQ job functions: primitive arguments in, Redis state updated, idempotent."""

from __future__ import annotations

import logging

log = logging.getLogger("outage.jobs")


def detect_shard(shard: int, shards: int, cycle: int) -> dict:
    """Run one detection cycle for the services of one shard."""
    return {"shard": shard, "cycle": cycle, "services": 0}
