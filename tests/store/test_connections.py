"""Redis URL forms: plain, cluster, Sentinel; and where RQ's queues may live."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from cli.redis_server import free_port
from store.config import ConfigError, load_settings, redis_kind
from store.connections import (
    CLUSTER_RETRY_ATTEMPTS,
    SENTINEL_RETRY_ATTEMPTS,
    SOCKET_TIMEOUT,
    MultiNodeUrl,
    NoRedisConfigured,
    parse_multi_node_url,
    queue_redis,
    redis_client,
)


@pytest.mark.parametrize(
    "url,kind",
    [
        ("redis://localhost:6379/0", "plain"),
        ("rediss://h:6380", "plain"),
        ("unix:///run/redis.sock", "plain"),
        ("redis+cluster://a:7000,b:7001", "cluster"),
        ("rediss+cluster://a:7000", "cluster"),
        ("redis+sentinel://s:26379/outage", "sentinel"),
    ],
)
def test_kind_follows_the_scheme(url: str, kind: str) -> None:
    assert redis_kind(url) == kind


@pytest.mark.parametrize("url", ["http://x", "localhost:6379", "redis+cloud://x"])
def test_unknown_schemes_are_configuration_errors(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings({"OUTAGE_DATA_DIR": str(tmp_path), "REDIS_URL": url})


@pytest.mark.parametrize(
    "url,expected",
    [
        (
            "redis+cluster://a:7000,b:7001,c",
            MultiNodeUrl("cluster", (("a", 7000), ("b", 7001), ("c", 6379)), None, None, False),
        ),
        ("rediss+cluster://:pw@a:7000", MultiNodeUrl("cluster", (("a", 7000),), None, "pw", True)),
        (
            "redis+sentinel://user:p%40ss@s1:26379,[::1]:26380/outage",
            MultiNodeUrl(
                "sentinel", (("s1", 26379), ("::1", 26380)), "user", "p@ss", False, "outage"
            ),
        ),
    ],
)
def test_multi_node_urls_are_parsed(url: str, expected: MultiNodeUrl) -> None:
    assert parse_multi_node_url(url) == expected


@pytest.mark.parametrize(
    "url,match",
    [
        ("redis+sentinel://s1:26379", "master name"),
        ("redis+cluster://", "host:port"),
        ("redis+cluster://a:port", "bad port"),
    ],
)
def test_bad_multi_node_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_multi_node_url(url)


def test_rq_never_goes_to_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RQ_REDIS_URL"):
        load_settings(
            {
                "OUTAGE_DATA_DIR": str(tmp_path),
                "REDIS_URL": "redis://a:1/0",
                "RQ_REDIS_URL": "redis+cluster://a:7000",
            }
        )
    s = load_settings({"OUTAGE_DATA_DIR": str(tmp_path), "REDIS_URL": "redis+cluster://a:7000"})
    assert s.redis_url == "redis+cluster://a:7000" and s.rq_redis_url is None
    with pytest.raises(NoRedisConfigured, match="RQ_REDIS_URL"):
        queue_redis(s)
    s = load_settings(
        {
            "OUTAGE_DATA_DIR": str(tmp_path),
            "REDIS_URL": "redis+cluster://a:7000",
            "RQ_REDIS_URL": "redis+sentinel://s:26379/q",
        }
    )
    assert s.rq_redis_url == "redis+sentinel://s:26379/q"


def test_a_sentinel_url_gives_a_primary_client_without_connecting() -> None:
    client = redis_client("redis+sentinel://127.0.0.1:1/outage")
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.service_name == "outage"
    client.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:{port}",
        "redis+sentinel://127.0.0.1:{port}/outage",
        "redis://127.0.0.1:{port}/0",
    ],
)
def test_an_unreachable_redis_is_a_redis_error(url: str) -> None:
    with pytest.raises(redis.RedisError):
        client = redis_client(url.format(port=free_port()))
        client.ping()


def test_data_clients_give_up_within_the_503_budget() -> None:
    """A dead or hung Redis answers 503 within 2 s because of these settings (asserted here,
    not timed in the ingest and API tests)."""
    plain = redis_client("redis://127.0.0.1:1/0")
    kw = plain.connection_pool.connection_kwargs
    assert kw["socket_timeout"] == kw["socket_connect_timeout"] == SOCKET_TIMEOUT <= 1.0
    assert not kw.get("retry_on_timeout")
    sentinel = redis_client("redis+sentinel://127.0.0.1:1/outage")
    assert sentinel.connection_pool.connection_kwargs["socket_timeout"] == SOCKET_TIMEOUT
    assert SENTINEL_RETRY_ATTEMPTS == 1 and CLUSTER_RETRY_ATTEMPTS <= 2
    plain.close()
    sentinel.close()


def test_no_url_is_a_clear_error() -> None:
    with pytest.raises(NoRedisConfigured, match="REDIS_URL"):
        redis_client(None)
    assert RedisCluster  # imported for the type check above
