"""`GET /metrics` in the Prometheus text format, and the hooks that time every request.

Under gunicorn the process metrics of all worker processes are merged from the multiprocess
directory (PROMETHEUS_MULTIPROC_DIR, prepared by cli.gunicorn_conf); elsewhere (tests,
`flask run`) they come from this process. Fleet metrics are read from Redis on each scrape
(store.metrics.FleetCollector).
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from store import metrics
from store.connections import NoRedisConfigured, redis_client
from store.keys import QUEUES
from web.errors import error_response
from web.extensions import outage

bp = Blueprint("metrics", __name__)

INGEST_ROUTES = {"/api/v1/reports": "api", "/s/<slug>": "form"}
"""POST routes whose latency is the ingest latency, and their `source` label."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods kept as label values; anything else is `other` (clients choose methods)."""

QUEUE_TIMEOUT = 1.0
"""Seconds a scrape waits for the RQ Redis before reporting it as down."""


def init_app(app: Flask) -> None:
    """Time every request; create_app registers this module first so the timer starts first."""
    app.before_request(_start_timer)
    app.after_request(_record)


def _start_timer() -> None:
    g.outage_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.pop("outage_started", None)
    if started is None:
        return response
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in METHODS else "other"
    source = INGEST_ROUTES.get(rule) if method == "POST" else None
    metrics.observe_request(
        rule, method, response.status_code, time.perf_counter() - started, source
    )
    if source and response.status_code >= 400:
        metrics.count_reports(0, 0, [_refusal_reason(response)])
    return response


def _refusal_reason(response: Response) -> str:
    """Return the error code of a refused report request (its JSON error, else the status)."""
    if response.is_json:
        body = response.get_json(silent=True) or {}
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        if code:
            return str(code)
    return f"http_{response.status_code}"


class _ThisProcess:
    """The default registry, wrapped so a per-scrape registry can include it."""

    def collect(self):
        return REGISTRY.collect()


def _queue_client():
    """The RQ Redis client used by scrapes (short timeout), created once per app."""
    holder = current_app.extensions.setdefault("outage_metrics", {})
    if "qconn" not in holder:
        url = outage().settings.rq_redis_url
        holder["qconn"] = redis_client(url, timeout=QUEUE_TIMEOUT) if url else None
    return holder["qconn"]


def _data_client():
    try:
        return outage().redis
    except NoRedisConfigured:
        return None


def render() -> bytes:
    """Return the exposition text of this process (or gunicorn fleet) plus Redis metrics."""
    registry = CollectorRegistry(auto_describe=False)
    metrics_dir = outage().settings.metrics_dir
    if metrics_dir is not None and metrics_dir.is_dir():  # gunicorn: merge all workers
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    else:
        registry.register(_ThisProcess())
    registry.register(metrics.FleetCollector(_data_client(), _queue_client(), QUEUES))
    return generate_latest(registry)


@bp.get("/metrics")
def scrape():
    """Serve the metrics; with OUTAGE_METRICS_TOKEN set, only to that bearer token."""
    token = outage().settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return error_response(
                401,
                "GET /metrics needs Authorization: Bearer <token>",
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(
        render(),
        mimetype=None,
        content_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
