"""`outage web`, `outage worker`, `outage scheduler`: one role per process."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import redis

from store.config import load_settings
from store.connections import NoRedisConfigured, queue_redis

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


RQ_QUEUES = ("webhooks", "default", "detect")
"""Queues of the worker's forking RQ child: webhook deliveries, maintenance, and detection
jobs enqueued by hand or by a scheduler of an older release (run cold, under the same
per-service locks)."""


def _rq_child(name: str | None, burst: bool) -> None:
    """Run RQ's forking worker (the child of `outage worker`) until stopped."""
    from rq import Worker

    from cli.procs import child_preexec

    child_preexec()  # die with the detection process, even if it is SIGKILLed
    settings = load_settings()
    # Import the job code once here, so each forked job starts warm (about 1.4 s of imports).
    import workers.jobs  # noqa: F401

    worker = Worker(list(RQ_QUEUES), connection=queue_redis(settings), name=name)
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")


def worker_main(argv: list[str]) -> int:
    """Run the warm detection loop, with a forking RQ worker for webhooks beside it."""
    import multiprocessing

    parser = argparse.ArgumentParser(
        prog="outage worker",
        description="Run detection (a warm, non-forking loop over the shards this worker "
        "leases) and, in a child process, an RQ worker for webhook deliveries and maintenance.",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="run one detection cycle over the free shards, then the queues until empty",
    )
    parser.add_argument("--name", default=None, help="worker name (default: host and pid)")
    ns = parser.parse_args(argv)
    settings = load_settings()
    try:
        queue_redis(settings).ping()
    except NoRedisConfigured as exc:
        print(f"outage worker: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError:
        pass  # both sides retry until Redis answers
    # Fork before numpy and the detector are imported: the child forks again per job (a
    # webhook POST or maintenance), so a slow or hanging receiver, or a job that crashes,
    # never holds up or takes down detection.
    child = multiprocessing.get_context("fork").Process(
        target=_rq_child, args=(ns.name, ns.burst), name="rq-worker"
    )
    child.start()
    from workers.loop import DetectionLoop

    loop = DetectionLoop(settings, name=ns.name)

    def on_signal(signum, frame) -> None:
        loop.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        loop.run(burst=ns.burst)
    finally:
        if child.is_alive() and child.pid is not None and not ns.burst:
            os.kill(child.pid, signal.SIGTERM)  # RQ's warm shutdown: finish the job in hand
        child.join()
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
