"""Redis locks held by a token: the per-service detection lock, so two jobs never run one
service at the same time, and the primitives the scheduler's lock uses too."""

from __future__ import annotations

import threading
import uuid

import redis

from store import keys
from workers import defaults

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


def take(conn: redis.Redis, key: str, token: str | bytes, ttl: int) -> bool:
    """Take a free lock for `ttl` seconds; False if anyone holds it."""
    return bool(conn.set(key, token, nx=True, ex=ttl))


def renew(conn: redis.Redis, key: str, token: str | bytes, ttl: int) -> bool:
    """Give a lock we hold another `ttl` seconds; False if it is not (or no longer) ours."""
    return bool(conn.eval(_RENEW, 1, key, token, ttl))


def release(conn: redis.Redis, key: str, token: str | bytes) -> bool:
    """Drop a lock if it is still ours; False if it was not."""
    return bool(conn.eval(_RELEASE, 1, key, token))


class LockLost(RuntimeError):
    """Another job took the service's lock (ours expired); our results are discarded."""


class ServiceLock:
    """The per-service detection lock: SET NX with a token, kept alive by a heartbeat thread
    while the job runs, released by its owner. A killed worker's lock expires within
    `ttl` seconds, so the next cycle takes over quickly."""

    def __init__(self, conn: redis.Redis, service: str, ttl: int = defaults.DETECT_LOCK_TTL):
        self.conn, self.key, self.ttl = conn, keys.detect_lock(service), ttl
        self.token = uuid.uuid4().hex.encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock and start renewing it; False if another job holds it."""
        if not take(self.conn, self.key, self.token, self.ttl):
            return False
        self._thread = threading.Thread(target=self._beat, name=f"lock {self.key}", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not renew(self.conn, self.key, self.token, self.ttl):
                    return  # lost: save() notices through WATCH and writes nothing
            except redis.RedisError:
                continue

    def release(self) -> None:
        """Stop renewing and drop the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        release(self.conn, self.key, self.token)
