"""What the app shares between requests: settings, catalog and Redis clients."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from flask import Flask, current_app

from store.catalog import Catalog, load_catalog
from store.config import Settings
from store.connections import data_redis


@dataclass
class Outage:
    """The app's clients, kept in `app.extensions["outage"]`."""

    settings: Settings
    catalog: Catalog = field(init=False)
    _redis: redis.Redis | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.catalog = load_catalog(self.settings.catalog_path)

    def init_app(self, app: Flask) -> None:
        app.extensions["outage"] = self

    def close(self) -> None:
        """Close the Redis connections this app opened (tests create many apps)."""
        if self._redis is not None:
            self._redis.close()
            pool = getattr(self._redis, "connection_pool", None)  # a cluster client has none
            if pool is not None:
                pool.disconnect()
            self._redis = None

    @property
    def redis(self) -> redis.Redis:
        """The data Redis client; created lazily so the app starts while Redis is down."""
        if self._redis is None:
            self._redis = data_redis(self.settings)
        return self._redis


def outage() -> Outage:
    """Return the current app's Outage extension."""
    return current_app.extensions["outage"]
