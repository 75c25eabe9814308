"""Real Redis topologies for tests: a Redis Cluster and a Sentinel-managed primary.

Local redis-server processes on free ports in a temporary directory; each dies with the
test process (PR_SET_PDEATHSIG) and is stopped by the fixture that started it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from cli.procs import child_preexec
from cli.redis_server import free_port, port_in_use


class EngineError(RuntimeError):
    """A test topology could not be started."""


def have_redis_tools() -> bool:
    """Tell whether redis-server and redis-cli are both on PATH."""
    return bool(shutil.which("redis-server") and shutil.which("redis-cli"))


def cluster_port() -> int:
    """Return a free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port < 55000 and not port_in_use("127.0.0.1", port + 10000):
            return port
    raise EngineError("no free port pair for a cluster node")


@dataclass
class Servers:
    """redis-server processes started by a test, stopped together."""

    processes: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, args: list[str], directory: Path) -> subprocess.Popen:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=child_preexec,
                cwd=directory,
            )
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ping(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait until the server on `port` answers PING."""
    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EngineError(f"redis-server on port {port} exited with {proc.returncode}")
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                time.sleep(0.05)
    finally:
        client.close()
    raise EngineError(f"redis-server on port {port} did not answer")


def plain_args(port: int, directory: Path) -> list[str]:
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        str(directory / "redis.log"),
    ]


@dataclass
class Cluster:
    """A running Redis Cluster of primaries (no replicas)."""

    servers: Servers
    ports: list[int]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node(self, port: int) -> redis.Redis:
        """Return a plain client on one node (close it, or use it in a `with`)."""
        return redis.Redis(port=port, socket_timeout=2)

    def keys_per_node(self) -> dict[int, int]:
        """Return DBSIZE of every primary."""
        out = {}
        for port in self.ports:
            with self.node(port) as client:
                out[port] = client.dbsize()
        return out

    def stop(self) -> None:
        self.servers.stop()


def start_cluster(directory: Path, primaries: int = 3, timeout: float = 20.0) -> Cluster:
    """Start `primaries` cluster-enabled redis-servers and join them with redis-cli."""
    servers = Servers()
    ports = [cluster_port() for _ in range(primaries)]
    try:
        for port in ports:
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            proc = servers.spawn(
                plain_args(port, node_dir)
                + [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "2000",
                ],
                node_dir,
            )
            wait_ping(port, proc)
        res = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if res.returncode != 0:
            raise EngineError(f"redis-cli --cluster create failed:\n{res.stdout}{res.stderr}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for port in ports:
                with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as node:
                    states.append(node.execute_command("CLUSTER INFO").get("cluster_state") == "ok")
            if all(states):
                return Cluster(servers=servers, ports=ports)
            time.sleep(0.1)
        raise EngineError("the cluster did not reach cluster_state:ok")
    except BaseException:
        servers.stop()
        raise


@dataclass
class SentinelSetup:
    """A primary, one replica and one Sentinel watching them as `outage`."""

    servers: Servers
    primary: int
    replica: int
    sentinel: int
    master_name: str = "outage"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel}/{self.master_name}"

    def master_port(self) -> int:
        with redis.Redis(port=self.sentinel, socket_timeout=2) as client:
            _, port = client.sentinel_get_master_addr_by_name(self.master_name)
        return int(port)

    def stop(self) -> None:
        self.servers.stop()


def start_sentinel(directory: Path, timeout: float = 20.0) -> SentinelSetup:
    """Start a primary, a replica of it and a Sentinel; wait until the replica is in sync."""
    servers = Servers()
    primary, replica, sentinel = free_port(), free_port(), free_port()
    try:
        proc = servers.spawn(plain_args(primary, directory / "primary"), directory / "primary")
        wait_ping(primary, proc)
        proc = servers.spawn(
            plain_args(replica, directory / "replica") + ["--replicaof", "127.0.0.1", str(primary)],
            directory / "replica",
        )
        wait_ping(replica, proc)
        sdir = directory / "sentinel"
        sdir.mkdir(parents=True, exist_ok=True)
        conf = sdir / "sentinel.conf"
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {sdir}\n"
            f"sentinel monitor outage 127.0.0.1 {primary} 1\n"
            "sentinel down-after-milliseconds outage 1000\n"
            "sentinel failover-timeout outage 3000\n"
        )
        proc = servers.spawn(
            ["redis-server", str(conf), "--sentinel", "--logfile", str(sdir / "sentinel.log")], sdir
        )
        wait_ping(sentinel, proc)
        deadline = time.monotonic() + timeout
        with (
            redis.Redis(port=replica, socket_timeout=1) as client,
            redis.Redis(port=sentinel, socket_timeout=1) as sent,
        ):
            while time.monotonic() < deadline:
                linked = client.info("replication").get("master_link_status") == "up"
                if linked and sent.sentinel_slaves("outage"):
                    return SentinelSetup(servers, primary, replica, sentinel)
                time.sleep(0.1)
        raise EngineError("the replica or the Sentinel did not come up")
    except BaseException:
        servers.stop()
        raise


def wait_port_closed(port: int, timeout: float = 5.0) -> None:
    """Wait until nothing accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
