"""Redis clients, always built here and passed explicitly (no module-level client).

The data Redis may be one server (`redis://`), a Redis Cluster (`redis+cluster://h:p,h:p`)
or a Sentinel-managed primary (`redis+sentinel://h:p,h:p/<master name>`); the URL forms
are the ones flask-limiter's storage understands too, so one REDIS_URL serves both. RQ
queues use their own plain (or Sentinel) Redis: a queue's keys must live on one server.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from store.config import ConfigError, Settings, redis_kind

SOCKET_TIMEOUT = 1.0
"""Seconds before a Redis call gives up, so a dead Redis becomes a 503 within 2 s."""

CLUSTER_RETRY_ATTEMPTS = 2
"""Times a cluster command is retried after a MOVED/ASK or a node failure (topology
refresh in between); more would push a dead cluster's 503 past the 2 s budget."""

SENTINEL_RETRY_ATTEMPTS = 1
"""Times a command on a Sentinel-managed primary is retried (after re-resolving it)."""

DEFAULT_PORTS = {"cluster": 6379, "sentinel": 26379}
"""Port assumed for a node written without one."""


class DataCluster(RedisCluster):
    """A RedisCluster whose pipelines also take single-key PFCOUNT.

    redis-py blocks PFCOUNT in cluster pipelines because several keys could span slots; one
    key is always legal, and detection reads one HyperLogLog per service-minute that way.
    """

    def pipeline(self, transaction=None, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        pipe.pfcount = functools.partial(_pipelined_pfcount, pipe)
        return pipe


def _pipelined_pfcount(pipe, *names):
    if len(names) != 1:
        raise RedisClusterException("a cluster pipeline takes PFCOUNT of one key only")
    return pipe.execute_command("PFCOUNT", names[0])


DataRedis: TypeAlias = redis.Redis
"""What `data_redis` returns, for type checking: a `redis.Redis`, or a `DataCluster` that
speaks the same commands for single-slot work (every key of a service shares a hash tag)."""


def text(value: bytes | str) -> str:
    """Return one Redis reply item as str (our clients answer bytes; redis-py's types say
    `bytes | str` because they cannot know `decode_responses`)."""
    return value.decode() if isinstance(value, bytes) else value


def texts(reply: Iterable[Any]) -> list[str]:
    """Return the items of a multi-item Redis reply (members, ids) as str."""
    return [text(item) for item in reply]


class NoRedisConfigured(RuntimeError):
    """No REDIS_URL and no running `outage up` in the data directory."""


@dataclass(frozen=True)
class MultiNodeUrl:
    """A parsed `redis+cluster://` or `redis+sentinel://` URL."""

    kind: str
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool
    master: str | None = None


def parse_multi_node_url(url: str) -> MultiNodeUrl:
    """Split a cluster or Sentinel URL into its nodes, credentials and master name."""
    kind = redis_kind(url)
    if kind == "plain":
        raise ConfigError(f"not a cluster or Sentinel URL: {url.partition('://')[0]}://...")
    scheme, _, rest = url.partition("://")
    auth, _, hosts_and_path = rest.rpartition("@")
    hosts, _, path = hosts_and_path.partition("/")
    nodes = []
    for item in filter(None, (h.strip() for h in hosts.split(","))):
        if item.startswith("["):  # [IPv6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        try:
            nodes.append((host, int(port) if port else DEFAULT_PORTS[kind]))
        except ValueError:
            raise ConfigError(f"REDIS_URL: bad port in {item!r}") from None
    if not nodes:
        raise ConfigError(f"REDIS_URL: a {kind} URL needs at least one host:port")
    username, _, password = auth.partition(":") if auth else ("", "", "")
    master = path.split("?")[0].strip("/") or None
    if kind == "sentinel" and not master:
        raise ConfigError(
            "REDIS_URL: a Sentinel URL ends with /<master name>, "
            "e.g. redis+sentinel://s1:26379,s2:26379/outage"
        )
    return MultiNodeUrl(
        kind=kind,
        nodes=tuple(nodes),
        username=urllib.parse.unquote(username) or None,
        password=urllib.parse.unquote(password) or None,
        tls=scheme.lower().startswith("rediss"),
        master=master,
    )


def redis_client(
    url: str | None, timeout: float | None = SOCKET_TIMEOUT, decode_responses: bool = False
) -> DataRedis:
    """Return a client for `url` (plain, cluster or Sentinel) with short timeouts."""
    if not url:
        raise NoRedisConfigured(
            "no Redis configured: set REDIS_URL, or start `outage up` with the same "
            "OUTAGE_DATA_DIR so this command can find its Redis"
        )
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout or SOCKET_TIMEOUT,
        "health_check_interval": 30,
        "decode_responses": decode_responses,
    }
    kind = redis_kind(url)
    if kind == "plain":
        return redis.Redis.from_url(url, retry_on_timeout=False, **common)
    parsed = parse_multi_node_url(url)
    auth: dict[str, Any] = {"username": parsed.username, "password": parsed.password}
    if kind == "cluster":
        try:  # RedisCluster reads the slot map now, so an unreachable cluster fails here
            cluster = DataCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in parsed.nodes],
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), CLUSTER_RETRY_ATTEMPTS),
                ssl=parsed.tls,
                **auth,
                **common,
            )
            return cast(DataRedis, cluster)
        except RedisClusterException as exc:  # not a RedisError: callers map those to 503
            raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
    # One quick retry: enough to re-resolve the primary after a failover, and a dead
    # Sentinel set still answers 503 within the 2 s budget (the default retries take 4 s).
    sentinel = Sentinel(
        list(parsed.nodes),
        ssl=parsed.tls,
        sentinel_kwargs={
            "socket_timeout": timeout or SOCKET_TIMEOUT,
            "socket_connect_timeout": timeout or SOCKET_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),
            **auth,
        },
        **auth,
    )
    return sentinel.master_for(
        parsed.master,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), SENTINEL_RETRY_ATTEMPTS),
        **common,
    )


def data_redis(settings: Settings, timeout: float = SOCKET_TIMEOUT) -> DataRedis:
    """Return the client for counters, detection state and incidents."""
    return redis_client(settings.redis_url, timeout)


def queue_redis(settings: Settings) -> redis.Redis:
    """Return the client for RQ queues (RQ_REDIS_URL, else REDIS_URL)."""
    url = settings.rq_redis_url
    if not url:
        if settings.redis_url and redis_kind(settings.redis_url) == "cluster":
            raise NoRedisConfigured(
                "REDIS_URL is a Redis Cluster and RQ cannot use one: set "
                "RQ_REDIS_URL to a plain or Sentinel-managed Redis"
            )
        raise NoRedisConfigured("no Redis configured for queues: set RQ_REDIS_URL or REDIS_URL")
    # RQ blocks on BLPOP for longer than our short data timeout, so no socket timeout here.
    client = redis_client(url, timeout=None)
    if isinstance(client, RedisCluster):  # config refuses this; keep the promise anyway
        raise NoRedisConfigured("RQ_REDIS_URL cannot be a Redis Cluster")
    return client
