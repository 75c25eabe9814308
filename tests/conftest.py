"""Shared fixtures: a private Redis per session, the app, its test client."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cli.redis_server import RedisServer
from store.config import Settings, load_settings
from tests.redis_helpers import start_test_redis

TEST_SECRET = "test-secret-" + "x" * 20
TEST_API_KEY = "partner:" + "k" * 32


@pytest.fixture(autouse=True)
def _close_app_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the Redis connections of every app a test builds (else they leak sockets)."""
    from web.extensions import Outage

    apps: list = []
    original = Outage.init_app

    def init_app(self: Outage, app) -> None:
        apps.append(app)
        original(self, app)

    monkeypatch.setattr(Outage, "init_app", init_app)
    yield
    for app in apps:
        app.extensions["outage"].close()
        limiter = app.extensions.get("outage_limiter")
        client = getattr(getattr(limiter, "_storage", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server started by the tests on a free port, stopped at the end."""
    server = start_test_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_conn(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the test Redis, flushed before each test."""
    conn = redis.Redis.from_url(redis_server.url)
    conn.flushall()
    yield conn
    conn.close()


@pytest.fixture
def settings(tmp_path: Path, redis_conn: redis.Redis, redis_url: str) -> Settings:
    """Settings for a test: private data dir, the test Redis, a known secret and API key."""
    base = load_settings(
        {
            "OUTAGE_DATA_DIR": str(tmp_path / "data"),
            "REDIS_URL": redis_url,
            "OUTAGE_SECRET_KEY": TEST_SECRET,
            "OUTAGE_API_KEYS": TEST_API_KEY,
        }
    )
    return dataclasses.replace(
        base,
        rate_limit="1000 per minute",
        api_rate_limit="100000 per minute",
        api_key_service_limit=100000,
    )


@pytest.fixture
def app(settings: Settings):
    from web import create_app

    app = create_app({"TESTING": True, "OUTAGE_SETTINGS": settings})
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
