"""`outage up`: Redis, web, worker and scheduler on one machine, supervised."""

from __future__ import annotations

import argparse
import fcntl
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cli.procs import child_preexec
from cli.redis_server import RedisServer, RedisStartError, port_in_use, start_redis
from store.config import Settings, child_environment, explicit_redis_urls, load_settings

RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0)
"""Seconds to wait before restarting a crashed child, growing with repeated crashes."""


@dataclass
class Child:
    """One supervised role process."""

    name: str
    args: list[str]
    process: subprocess.Popen | None = None
    crashes: int = 0
    next_start: float = 0.0
    started: float = field(default=0.0)


class Supervisor:
    """Start children, restart the ones that crash, stop them all on a signal."""

    def __init__(self, settings: Settings, env: dict[str, str]):
        self.settings = settings
        self.env = env
        self.children: list[Child] = []
        self.redis: RedisServer | None = None
        self.stopping = False

    def add(self, name: str, args: list[str]) -> None:
        self.children.append(Child(name=name, args=args))

    def spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.args, env=self.env, preexec_fn=child_preexec, stdin=subprocess.DEVNULL
        )
        child.started = time.monotonic()

    def tick(self) -> None:
        """Restart Redis or any child that has exited, with backoff."""
        now = time.monotonic()
        if self.redis is not None and not self.redis.alive():
            print("outage up: Redis exited; restarting it", file=sys.stderr)
            self.redis = start_redis(
                self.redis.directory,
                self.redis.port,
                self.settings.appendfsync,
                binary=self.redis.binary,
            )
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is None:
                if now - child.started > 60:
                    child.crashes = 0
                continue
            if proc is not None:
                delay = RESTART_BACKOFF[min(child.crashes, len(RESTART_BACKOFF) - 1)]
                print(
                    f"outage up: {child.name} exited with {proc.returncode}; restarting in "
                    f"{delay:.0f}s",
                    file=sys.stderr,
                )
                child.crashes += 1
                child.process = None
                child.next_start = now + delay
            if now >= child.next_start:
                self.spawn(child)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every child (SIGTERM, then SIGKILL after `timeout`), then Redis."""
        self.stopping = True
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for proc in running:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.redis is not None:
            self.redis.stop()


def _lock_data_dir(data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(data_dir / "up.lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="outage up",
        description="Run the whole product on this machine: a private Redis (unless REDIS_URL "
        "is set) with AOF in the data directory, the web server, one worker and "
        "the scheduler. Ctrl-C stops everything.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="web address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="web port (default %(default)s)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also feed synthetic reports with an outage every few minutes",
    )
    ns = parser.parse_args(argv)
    env_redis, env_rq_redis = explicit_redis_urls()
    settings = load_settings()
    data_dir = settings.data_dir
    lock = _lock_data_dir(data_dir)
    if lock is None:
        print(
            f"outage up: another `outage up` is already running with data directory {data_dir}",
            file=sys.stderr,
        )
        return 2
    if port_in_use(ns.host, ns.port):
        print(
            f"outage up: port {ns.port} on {ns.host} is already in use; choose another with --port",
            file=sys.stderr,
        )
        return 2
    url_file = data_dir / "redis.url"
    sup = Supervisor(settings, env={})
    stop_requested = []

    def on_signal(signum, _frame):
        stop_requested.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if env_redis:
            redis_url = env_redis
        else:
            try:
                sup.redis = start_redis(
                    data_dir / "redis", settings.redis_port, settings.appendfsync
                )
            except RedisStartError as exc:
                print(f"outage up: {exc}", file=sys.stderr)
                return 2
            redis_url = sup.redis.url
            url_file.write_text(redis_url + "\n")
        settings = replace(settings, redis_url=redis_url, rq_redis_url=env_rq_redis or redis_url)
        sup.settings = settings
        sup.env = child_environment({**settings.as_env(), "PYTHONUNBUFFERED": "1"})
        me = [sys.executable, "-m", "cli.main"]
        sup.add("web", me + ["web", "--host", ns.host, "--port", str(ns.port)])
        sup.add("worker", me + ["worker"])
        sup.add("scheduler", me + ["scheduler"])
        if ns.demo:
            sup.add("demo", me + ["demo"])
        sup.tick()
        shown = "localhost" if ns.host in ("0.0.0.0", "::") else ns.host
        print(
            f"\n  Outage detector is up: http://{shown}:{ns.port}/\n"
            f"    live map      http://{shown}:{ns.port}/map\n"
            f"    detection API http://{shown}:{ns.port}/api/v1/services "
            f"(docs: http://{shown}:{ns.port}/api)\n"
            f"    Redis         {redis_url}{' (private, AOF on)' if sup.redis else ''}\n"
            f"    data          {data_dir}\n"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stop_requested:
            time.sleep(0.2)
            if not stop_requested:
                sup.tick()
        print("\noutage up: stopping...", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sup.stop()
        if sup.redis is not None:
            url_file.unlink(missing_ok=True)
        lock.close()
        print("outage up: stopped.", file=sys.stderr, flush=True)
