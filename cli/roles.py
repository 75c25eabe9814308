"""`outage web`, `outage worker`, `outage scheduler`: one role per process."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from store.config import load_settings
from store.connections import NoRedisConfigured, queue_redis
from store.keys import QUEUES

log = logging.getLogger("outage")


def web_main(argv: list[str]) -> int:
    """Replace this process with gunicorn serving web:create_app()."""
    parser = argparse.ArgumentParser(
        prog="outage web",
        description="Serve the pages and the API with gunicorn (settings: cli/gunicorn_conf.py).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn worker processes (default OUTAGE_WEB_WORKERS or 2)",
    )
    ns = parser.parse_args(argv)
    settings = load_settings()
    workers = ns.workers or settings.web_workers
    # Everything else (threads, timeouts, logs, metrics) is in cli/gunicorn_conf.py.
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:cli.gunicorn_conf",
        "--bind",
        f"{ns.host}:{ns.port}",
        "--workers",
        str(workers),
    ]
    sys.stdout.flush()
    os.execv(sys.executable, args)
    return 0  # not reached


def worker_main(argv: list[str]) -> int:
    """Run one RQ worker on the detection and webhook queues until stopped."""
    from rq import Worker

    parser = argparse.ArgumentParser(
        prog="outage worker",
        description="Run an RQ worker for detection jobs and webhook deliveries.",
    )
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name (default: host and pid)")
    ns = parser.parse_args(argv)
    settings = load_settings()
    try:
        conn = queue_redis(settings)
    except NoRedisConfigured as exc:
        print(f"outage worker: {exc}", file=sys.stderr)
        return 2
    # Import the job code (numpy, scipy, the detector) once in the parent, so each forked
    # job starts warm instead of paying about 1.4 s of imports.
    import workers.jobs  # noqa: F401

    worker = Worker(list(QUEUES), connection=conn, name=ns.name)
    worker.work(burst=ns.burst, with_scheduler=True, logging_level="WARNING")
    return 0


def scheduler_main(argv: list[str]) -> int:
    """Run the scheduler loop that enqueues detection every cycle."""
    from workers.scheduler import run_scheduler

    parser = argparse.ArgumentParser(
        prog="outage scheduler",
        description="Enqueue one "
        "detection job per service shard every cycle, plus hourly "
        "maintenance. Only one scheduler is active at a time.",
    )
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    ns = parser.parse_args(argv)
    settings = load_settings()
    # SIGTERM unwinds like Ctrl-C, so the scheduler lock is released on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return run_scheduler(settings, once=ns.once)
    except NoRedisConfigured as exc:
        print(f"outage scheduler: {exc}", file=sys.stderr)
        return 2
