"""Prometheus metrics, all named `outage_*`: what is counted where, and what is read at scrape.

Two kinds, because RQ runs every job in a short-lived forked work horse:
- Process metrics (the prometheus_client objects below) are counted in the web processes
  that see the event: reports, ingest latency, HTTP requests. Under gunicorn they live in
  multiprocess mode (PROMETHEUS_MULTIPROC_DIR, prepared by cli.gunicorn_conf). Every
  one has labels, so merely importing this module creates no multiprocess file.
- Fleet metrics live in Redis: the workers add to two small hashes (`observe_cycle`,
  `webhook`) and `/metrics` reads them, the open incidents and the RQ queues at scrape time
  (`FleetCollector`). They are the same on every web replica: aggregate them with max(),
  not sum(). A forked job's in-process counters would die with it, and a multiprocess file
  per forked job would grow without bound.

Helpers never raise: a metric must not fail a report or a detection job.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from store import keys

log = logging.getLogger("outage.metrics")

DETECT_KEY = "outage:metrics:detect"
"""Hash of detection job totals: jobs, seconds, services, series, last (unix s) and the
non-cumulative histogram buckets `le:<bound>`. Single-key commands only."""

WEBHOOKS_KEY = "outage:metrics:webhooks"
"""Hash of webhook delivery attempts by outcome. Single-key commands only."""

CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Upper bounds (seconds) of the detection job duration histogram."""

INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the ingest request latency histogram."""

SEVERITIES = ("possible", "problems", "outage")
"""Incident severities, always exported (as 0 when none is open) so alerts have a series."""

MAX_OPEN_READ = 2000
"""Most open incidents whose documents one scrape reads."""

_LABEL = re.compile(r"[a-z0-9_]{1,40}")

REPORTS = Counter(
    "outage_reports",
    "Reports taken by ingestion, by outcome "
    "(accepted = counted, duplicate = same reporter within the dedup window).",
    ["outcome"],
)
REJECTED = Counter(
    "outage_reports_rejected",
    "Reports refused, by reason (the error code); a request refused as a whole counts once.",
    ["reason"],
)
INGEST_SECONDS = Histogram(
    "outage_ingest_duration_seconds",
    "Wall time of one report request (single, batch or form), from the first hook to the answer.",
    ["source"],
    buckets=INGEST_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "outage_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "outage_http_request_duration_seconds",
    "Wall time of HTTP requests, by route pattern.",
    ["route"],
)


def label(value: object, default: str = "other") -> str:
    """Return a safe, bounded label value: lower-case [a-z0-9_], else `default`."""
    text = str(value).strip().lower().replace("-", "_")
    return text if _LABEL.fullmatch(text) else default


def count_reports(accepted: int, duplicates: int, rejected: Iterable[str | Mapping] = ()) -> None:
    """Count one request's reports; `rejected` holds error codes or batch `rejected` items."""
    try:
        if accepted:
            REPORTS.labels("accepted").inc(accepted)
        if duplicates:
            REPORTS.labels("duplicate").inc(duplicates)
        for item in rejected:
            if isinstance(item, Mapping):
                item = (item.get("error") or {}).get("code", "invalid")
            REJECTED.labels(label(item, "invalid")).inc()
    except Exception:  # a metric must never fail a report
        log.debug("count_reports failed", exc_info=True)


def observe_request(
    route: str, method: str, status: int, seconds: float, ingest_source: str | None = None
) -> None:
    """Record one answered HTTP request (called by web.metrics for every request)."""
    try:
        HTTP_REQUESTS.labels(route, method, str(status)).inc()
        HTTP_SECONDS.labels(route).observe(seconds)
        if ingest_source:
            INGEST_SECONDS.labels(ingest_source).observe(seconds)
    except Exception:
        log.debug("observe_request failed", exc_info=True)


def observe_cycle(conn: redis.Redis, seconds: float, services: int, series: int) -> None:
    """Add one detection shard job (its wall time, services and series evaluated) to Redis."""
    bound = next((b for b in CYCLE_BUCKETS if seconds <= b), "inf")
    try:
        pipe = conn.pipeline(transaction=False)
        pipe.hincrby(DETECT_KEY, "jobs", 1)
        pipe.hincrbyfloat(DETECT_KEY, "seconds", float(seconds))
        pipe.hincrby(DETECT_KEY, "services", int(services))
        pipe.hincrby(DETECT_KEY, "series", int(series))
        pipe.hincrby(DETECT_KEY, f"le:{bound}", 1)
        pipe.hset(DETECT_KEY, "last", f"{time.time():.3f}")
        pipe.execute()
    except Exception:  # Redis trouble shows up in the job itself; never fail it here
        log.debug("observe_cycle failed", exc_info=True)


def webhook(conn: redis.Redis, outcome: str) -> None:
    """Count one webhook delivery attempt by outcome (e.g. delivered, failed, gave_up)."""
    try:
        conn.hincrby(WEBHOOKS_KEY, label(outcome), 1)
    except Exception:
        log.debug("webhook metric failed", exc_info=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def detection_metrics(raw: Mapping) -> list[Metric]:
    """Turn the DETECT_KEY hash into metric families."""
    data = {_text(k): _text(v) for k, v in raw.items()}
    buckets, running = [], 0.0
    for bound in CYCLE_BUCKETS:
        running += float(data.get(f"le:{bound}", 0))
        buckets.append((str(bound), running))
    buckets.append(("+Inf", running + float(data.get("le:inf", 0))))
    hist = HistogramMetricFamily(
        "outage_detection_cycle_seconds",
        "Wall time of one "
        "detection shard job (a cycle runs one job per shard), "
        "across all workers.",
        buckets=buckets,
        sum_value=float(data.get("seconds", 0)),
    )
    services = CounterMetricFamily(
        "outage_detection_services",
        "Services advanced by detection jobs, across all workers.",
        value=float(data.get("services", 0)),
    )
    series = CounterMetricFamily(
        "outage_detection_series_evaluated",
        "Series evaluated by detection jobs, across all workers.",
        value=float(data.get("series", 0)),
    )
    last = GaugeMetricFamily(
        "outage_detection_last_job_timestamp_seconds",
        "Unix time when "
        "the last detection job finished (0: never); alert when it "
        "lags by several cycles.",
        value=float(data.get("last", 0)),
    )
    return [hist, services, series, last]


def webhook_metrics(raw: Mapping) -> list[Metric]:
    """Turn the WEBHOOKS_KEY hash into a counter family by outcome."""
    family = CounterMetricFamily(
        "outage_webhook_deliveries",
        "Webhook delivery attempts by outcome, across all workers.",
        labels=["outcome"],
    )
    for outcome, value in sorted((_text(k), float(v)) for k, v in raw.items()):
        family.add_metric([outcome], value)
    return [family]


def open_incident_metrics(conn: redis.Redis) -> list[Metric]:
    """Count open incidents by severity from the open set and the incident documents."""
    import json

    from store.incidents import split_member

    members = list(conn.smembers(keys.OPEN_INCIDENTS))[:MAX_OPEN_READ]
    counts = dict.fromkeys(SEVERITIES, 0)
    if members:
        pipe = conn.pipeline(transaction=False)
        for m in members:
            pipe.get(keys.incident(*split_member(m)))
        for raw in pipe.execute():
            if not raw:
                continue
            doc = json.loads(raw)
            if doc.get("status", "open") == "open":
                sev = label(doc.get("severity", "possible"))
                counts[sev] = counts.get(sev, 0) + 1
    family = GaugeMetricFamily(
        "outage_incidents_open", "Open incidents by severity.", labels=["severity"]
    )
    for sev, n in counts.items():
        family.add_metric([sev], n)
    return [family]


def queue_metrics(qconn: redis.Redis, queues: Iterable[str]) -> list[Metric]:
    """Read the RQ queue depths, failed-job counts and live workers."""
    from rq import Queue, Worker
    from rq.registry import FailedJobRegistry

    depth = GaugeMetricFamily(
        "outage_rq_queue_depth", "Jobs waiting in an RQ queue.", labels=["queue"]
    )
    failed = GaugeMetricFamily(
        "outage_rq_failed_jobs", "Jobs in an RQ queue's failed-job registry.", labels=["queue"]
    )
    for name in queues:
        queue = Queue(name, connection=qconn)
        depth.add_metric([name], queue.count)
        failed.add_metric([name], FailedJobRegistry(queue=queue).get_job_count(cleanup=False))
    workers = GaugeMetricFamily(
        "outage_rq_workers",
        "RQ workers registered (alive within their heartbeat).",
        value=Worker.count(connection=qconn),
    )
    return [depth, failed, workers]


class FleetCollector:
    """A prometheus_client collector reading fleet metrics from Redis at scrape time."""

    def __init__(
        self, conn: redis.Redis | None, qconn: redis.Redis | None, queues: Iterable[str] = ()
    ):
        self.conn = conn
        self.qconn = qconn
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "outage_metrics_redis_up",
            "1 when this scrape could read the fleet metrics from that Redis.",
            labels=["redis"],
        )
        for name, conn, read in (
            ("data", self.conn, self._data),
            ("queues", self.qconn, self._queues),
        ):
            if conn is None:
                continue
            try:
                families = read(conn)
            except (redis.RedisError, OSError, ValueError) as exc:
                log.warning("metrics: cannot read the %s Redis: %s", name, exc)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def _data(self, conn: redis.Redis) -> list[Metric]:
        return (
            detection_metrics(conn.hgetall(DETECT_KEY))
            + webhook_metrics(conn.hgetall(WEBHOOKS_KEY))
            + open_incident_metrics(conn)
        )

    def _queues(self, qconn: redis.Redis) -> list[Metric]:
        return queue_metrics(qconn, self.queues)
