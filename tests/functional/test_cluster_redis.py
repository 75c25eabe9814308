"""The data Redis as a real Redis Cluster and as a real Sentinel-managed primary."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from store import keys, minute_hash
from store.config import Settings, load_settings
from store.connections import data_redis, queue_redis
from tests.conftest import TEST_API_KEY, TEST_SECRET
from tests.deploy.engines import (
    Cluster,
    SentinelSetup,
    have_redis_tools,
    start_cluster,
    start_sentinel,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_redis_tools(), reason="needs redis-server, redis-cli"),
]

SERVICES = [f"svc{i:02d}" for i in range(60)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    found = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield found
    found.stop()


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    found = start_sentinel(tmp_path_factory.mktemp("sentinel"))
    yield found
    found.stop()


@pytest.fixture
def cluster_conn(cluster: Cluster) -> Iterator[RedisCluster]:
    conn = data_redis(Settings(redis_url=cluster.url))
    conn.flushall()
    yield conn
    conn.close()


def cluster_settings(tmp_path: Path, cluster: Cluster, rq_url: str) -> Settings:
    base = load_settings(
        {
            "OUTAGE_DATA_DIR": str(tmp_path / "data"),
            "REDIS_URL": cluster.url,
            "RQ_REDIS_URL": rq_url,
            "OUTAGE_SECRET_KEY": TEST_SECRET,
            "OUTAGE_API_KEYS": TEST_API_KEY,
        }
    )
    return dataclasses.replace(
        base, rate_limit="1000 per minute", api_rate_limit="100000 per minute"
    )


def test_a_cluster_url_gives_a_cluster_client(cluster_conn: RedisCluster) -> None:
    assert isinstance(cluster_conn, RedisCluster)
    assert len(cluster_conn.get_primaries()) == 3


def test_services_spread_over_the_shards_and_each_stays_in_one_slot(
    cluster: Cluster, cluster_conn: RedisCluster
) -> None:
    pipe = cluster_conn.pipeline(transaction=False)
    for service in SERVICES:
        for minute in (100, 101):
            pipe.hincrby(
                keys.minute_counts(service, minute), minute_hash.reports_field("US", "app"), 1
            )
        pipe.pfadd(keys.prefixes(service, 100), "p1")
        pipe.xadd(keys.stream(service), {"problem": "app"}, maxlen=10)
    pipe.execute()
    per_node = cluster.keys_per_node()
    assert sum(per_node.values()) == len(SERVICES) * 4
    assert all(n >= len(SERVICES) * 4 // 6 for n in per_node.values()), per_node
    for service in SERVICES[:10]:
        slots = {
            cluster_conn.keyslot(k)
            for k in (
                keys.minute_counts(service, 100),
                keys.prefixes(service, 100),
                keys.stream(service),
                keys.detect_lock(service),
                keys.status(service),
            )
        }
        assert len(slots) == 1, service


def test_one_service_may_use_transactions_and_scripts(cluster_conn: RedisCluster) -> None:
    service = "svc07"
    lock = keys.detect_lock(service)
    cluster_conn.set(lock, "token")
    with cluster_conn.pipeline(transaction=True) as pipe:
        pipe.watch(lock)
        assert pipe.get(lock) == b"token"
        pipe.multi()
        pipe.set(keys.status(service), "{}")
        pipe.rpush(keys.outbox(service), "x")
        pipe.execute()
    cluster_conn.pfadd(keys.prefixes(service, 5), "a", "b")
    pipe = cluster_conn.pipeline(transaction=False)
    pipe.hgetall(keys.minute_counts(service, 5))
    pipe.pfcount(keys.prefixes(service, 5))  # one key: legal, though redis-py blocks it
    assert pipe.execute() == [{}, 2]
    with pytest.raises(RedisClusterException):
        cluster_conn.pipeline().pfcount(keys.prefixes("svc01", 5), keys.prefixes("svc02", 5))
    renew = "if redis.call('get', KEYS[1]) == ARGV[1] then return 1 else return 0 end"
    assert cluster_conn.eval(renew, 1, lock, "token") == 1
    with pytest.raises(RedisClusterException):  # why the hash tag matters
        with cluster_conn.pipeline(transaction=True) as pipe:
            pipe.set(keys.status("svc01"), "{}")
            pipe.set(keys.status("svc02"), "{}")
            pipe.execute()


def test_the_app_ingests_probes_and_reports_metrics_on_a_cluster(
    tmp_path: Path, cluster: Cluster, cluster_conn: RedisCluster, redis_url: str
) -> None:
    pytest.importorskip("web.reports")
    from web import create_app

    app = create_app(
        {"TESTING": True, "OUTAGE_SETTINGS": cluster_settings(tmp_path, cluster, redis_url)}
    )
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    slugs = [s.slug for s in app.extensions["outage"].catalog.services]
    batch = {
        "reports": [
            {
                "service": slug,
                "problem": app.extensions["outage"].catalog.get(slug).problem_slugs[0],
                "region": "US",
                "reporter": f"u{i}",
            }
            for i, slug in enumerate(slugs * 4)
        ]
    }
    resp = client.post(
        "/api/v1/reports",
        json=batch,
        headers={"Authorization": "Bearer " + TEST_API_KEY.split(":")[1]},
    )
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["accepted"] == len(batch["reports"])
    per_node = cluster.keys_per_node()
    assert all(n > 0 for n in per_node.values()), per_node
    text = client.get("/metrics").get_data(as_text=True)
    assert 'outage_metrics_redis_up{redis="data"} 1.0' in text
    assert 'outage_metrics_redis_up{redis="queues"} 1.0' in text
    assert 'outage_incidents_open{severity="outage"}' in text


def test_queues_refuse_a_cluster_with_a_clear_message(cluster: Cluster, tmp_path: Path) -> None:
    from store.connections import NoRedisConfigured

    settings = load_settings({"OUTAGE_DATA_DIR": str(tmp_path), "REDIS_URL": cluster.url})
    assert settings.rq_redis_url is None
    with pytest.raises(NoRedisConfigured, match="RQ_REDIS_URL"):
        queue_redis(settings)


def test_a_sentinel_url_follows_a_failover(sentinel: SentinelSetup, tmp_path: Path) -> None:
    settings = load_settings({"OUTAGE_DATA_DIR": str(tmp_path), "REDIS_URL": sentinel.url})
    conn = data_redis(settings)
    qconn = queue_redis(settings)
    try:
        conn.set("outage:test:before", "1")
        assert qconn.ping()
        old = sentinel.master_port()
        with redis.Redis(port=sentinel.sentinel, socket_timeout=2) as sent:
            sent.execute_command("SENTINEL", "FAILOVER", sentinel.master_name)
        deadline = time.monotonic() + 20
        while sentinel.master_port() == old and time.monotonic() < deadline:
            time.sleep(0.1)
        new = sentinel.master_port()
        assert new != old, "Sentinel did not fail over"
        with redis.Redis(port=old, socket_timeout=2) as demoted:
            while demoted.info("replication")["role"] != "slave" and time.monotonic() < deadline:
                time.sleep(0.1)
        written = None
        while time.monotonic() < deadline:
            try:  # connections to the demoted primary fail once; the client re-resolves
                conn.set("outage:test:after", "2")
                written = conn.get("outage:test:before")
                break
            except (redis.ConnectionError, redis.ReadOnlyError, redis.TimeoutError):
                time.sleep(0.1)
        assert written == b"1"
        with redis.Redis(port=new, socket_timeout=2) as primary:
            assert primary.get("outage:test:after") == b"2"
    finally:
        conn.close()
        qconn.close()
