"""Fixtures for the worker tests: job environment, in-process RQ workers, receivers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from store.config import Settings
from tests.workers.helpers import Receiver
from web import queries
from workers import state


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Every test starts with no detector kept in memory."""
    state.CACHE.entries.clear()
    queries.BAND_CACHE.entries.clear()
    yield
    state.CACHE.entries.clear()
    queries.BAND_CACHE.entries.clear()


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Callable[..., Settings]:
    """Return a function that points jobs (which read the environment) at the test Redis."""

    def apply(webhooks: list[dict] | None = None, **extra: str) -> Settings:
        env = {
            **settings.as_env(),
            "OUTAGE_DETECT_GRACE": "0",
            "OUTAGE_WEBHOOK_TIMEOUT": "2",
            "OUTAGE_WEBHOOKS": json.dumps(webhooks or []),
            **extra,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from store.config import load_settings

        return load_settings()

    return apply


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()
