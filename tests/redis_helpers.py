"""A private redis-server for tests, chosen the same way `outage up` chooses one."""

from __future__ import annotations

from pathlib import Path

from cli.redis_server import RedisServer, start_redis


def start_test_redis(
    directory: Path, appendonly: bool = False, appendfsync: str = "everysec", port: int = 0
) -> RedisServer:
    """Start a redis-server on a free port in `directory` (never the user's Redis)."""
    return start_redis(directory, port=port, appendonly=appendonly, appendfsync=appendfsync)
