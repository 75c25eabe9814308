"""Redis clients, always built here and passed explicitly (no module-level client)."""

from __future__ import annotations

import redis

from workers.config import Settings

SOCKET_TIMEOUT = 1.0
"""Seconds before a Redis call gives up, so a dead Redis becomes a 503 within 2 s."""


class NoRedisConfigured(RuntimeError):
    """No REDIS_URL and no running `outage up` in the data directory."""


def redis_client(url: str | None, timeout: float = SOCKET_TIMEOUT,
                 decode_responses: bool = False) -> redis.Redis:
    """Return a client for the data Redis with short timeouts and a health check."""
    if not url:
        raise NoRedisConfigured(
            "no Redis configured: set REDIS_URL, or start `outage up` with the same "
            "OUTAGE_DATA_DIR so this command can find its Redis"
        )
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout,
        health_check_interval=30, decode_responses=decode_responses,
        retry_on_timeout=False,
    )


def data_redis(settings: Settings, timeout: float = SOCKET_TIMEOUT) -> redis.Redis:
    """Return the client for counters, detection state and incidents."""
    return redis_client(settings.redis_url, timeout)


def queue_redis(settings: Settings) -> redis.Redis:
    """Return the client for RQ queues (RQ_REDIS_URL, else REDIS_URL)."""
    # RQ blocks on BLPOP for longer than our short data timeout, so no socket timeout here.
    url = settings.rq_redis_url or settings.redis_url
    if not url:
        raise NoRedisConfigured("no Redis configured for queues: set RQ_REDIS_URL or REDIS_URL")
    return redis.Redis.from_url(url, socket_connect_timeout=SOCKET_TIMEOUT,
                                health_check_interval=30)
