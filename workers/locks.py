"""Redis locks held by a token: the per-service detection lock, so two jobs never run one
service at the same time, the shard leases, so each shard has one detection worker that keeps
its detectors warm, and the primitives the scheduler's lock uses too."""

from __future__ import annotations

import threading
import time
import uuid
import zlib

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


def lease_ttl(interval: float) -> float:
    """Return the lifetime of a shard lease, seconds: renewed at every cycle (and during a
    long one), it outlives one missed renewal, and a killed owner's shards are free again
    before the second cycle after its last renewal."""
    return max(defaults.MIN_LEASE_SECONDS, defaults.LEASE_CYCLES * interval)


class ShardLeases:
    """The detection shards this worker owns: one Redis key per shard holding the owner's id
    with a TTL (SET NX PX to take, compare-and-expire to renew, compare-and-delete to give
    back), and a sorted set of live workers from which each takes a fair share."""

    _RENEW = _RENEW.replace("'expire'", "'pexpire'")

    def __init__(self, conn: redis.Redis, worker: str, shards: int, ttl: float):
        self.conn, self.worker, self.shards = conn, worker, shards
        self.ttl_ms = max(1, int(ttl * 1000))
        self.owned: set[int] = set()
        self.renewed_at = 0.0
        self._start = zlib.crc32(worker.encode()) % shards
        self._mutex = threading.Lock()  # the loop and its heartbeat thread both renew

    def fair_share(self, now: float) -> int:
        """Register this worker as alive and return how many shards it should own."""
        pipe = self.conn.pipeline(transaction=False)
        pipe.zadd(keys.DETECT_WORKERS, {self.worker: now + self.ttl_ms / 1000})
        pipe.zremrangebyscore(keys.DETECT_WORKERS, "-inf", now)
        pipe.zcard(keys.DETECT_WORKERS)
        live = max(1, int(pipe.execute()[-1]))
        return -(-self.shards // live)

    def renew(self, now: float | None = None) -> set[int]:
        """Extend every lease still ours and our place among the live workers; forget and
        return the leases we lost."""
        now = time.time() if now is None else now
        with self._mutex:
            owned = sorted(self.owned)
            # One EVAL per shard: a cluster pipeline cannot carry scripts, and a worker owns few.
            lost = {s for s in owned if not self._renew_one(s)}
            self.conn.zadd(keys.DETECT_WORKERS, {self.worker: now + self.ttl_ms / 1000})
            self.owned -= lost
            self.renewed_at = now
        return lost

    def _renew_one(self, shard: int) -> bool:
        return bool(
            self.conn.eval(self._RENEW, 1, keys.detect_lease(shard), self.worker, self.ttl_ms)
        )

    def acquire(self, want: int) -> set[int]:
        """Take free shards until we own `want`; return the new ones."""
        taken: set[int] = set()
        with self._mutex:
            self._take(want, taken)
        return taken

    def _take(self, want: int, taken: set[int]) -> None:
        for i in range(self.shards):
            if len(self.owned) >= want:
                break
            shard = (self._start + i) % self.shards
            if shard in self.owned:
                continue
            if self.conn.set(keys.detect_lease(shard), self.worker, nx=True, px=self.ttl_ms):
                self.owned.add(shard)
                taken.add(shard)

    def extras(self, want: int) -> list[int]:
        """Return the shards owned beyond `want` (to hand over once checkpointed)."""
        return sorted(self.owned, key=lambda s: (s - self._start) % self.shards)[want:]

    def release(self, shards: set[int] | list[int] | None = None) -> None:
        """Give leases back (all by default) so another worker takes them at its next cycle."""
        with self._mutex:
            shards = set(self.owned if shards is None else shards) & self.owned
            self.owned -= shards
            for shard in sorted(shards):
                release(self.conn, keys.detect_lease(shard), self.worker)

    def leave(self) -> None:
        """Release every lease and deregister (a clean stop)."""
        self.release()
        self.conn.zrem(keys.DETECT_WORKERS, self.worker)
