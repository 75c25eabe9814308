"""The real multi-node deployment: a 3-primary Redis Cluster for data, a plain Redis for RQ,
two web processes, two workers and one scheduler, all local processes.

Reports for many services go in through both web processes (the HTTP API, partner batches),
their keys spread over the three shards, a spike raises an incident, and after one worker
is killed with SIGKILL the other one still raises the next incident.

Spikes are posted with `at` in the minutes just completed, then a quiet history is loaded
in front of them with `outage load`, which resets that service's detector: detection then
replays history and spike at once instead of waiting for the next minute to end.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis

from cli.procs import child_preexec
from cli.redis_server import free_port
from store import keys
from tests.conftest import TEST_SECRET
from tests.deploy.engines import Cluster, have_redis_tools, start_cluster
from tests.redis_helpers import start_test_redis

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(150),
    pytest.mark.skipif(not have_redis_tools(), reason="needs redis-server, redis-cli"),
]

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "partner:" + "c" * 32
SERVICES = [f"svc{i:02d}" for i in range(40)]
PROBLEMS = ("app", "website", "login")
REGIONS = ("US", "US-CA", "GB", "DE", "FR")
HISTORY_HOURS = 8
"""Quiet history loaded before a spike (detection needs 6 hours before it tests)."""

SPIKE_MINUTES = 3
SPIKE_PER_MINUTE = 60
"""Distinct partner reporters per spike minute (a quiet minute has about one)."""


def needs_live_pipeline() -> None:
    for module in ("web.reports", "web.detection_api", "workers.detection", "cli.load"):
        pytest.importorskip(module, reason=f"{module} has not landed yet")


def write_catalog(path: Path) -> Path:
    lines = ["[categories.social]", 'name = "Social apps"', "problems = ["]
    lines += [f'  {{ slug = "{p}", label = "{p.title()}" }},' for p in PROBLEMS]
    lines += ["]", ""]
    for slug in SERVICES:
        lines += [
            "[[services]]",
            f'slug = "{slug}"',
            f'name = "Service {slug}"',
            'category = "social"',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


class Stack:
    """The processes of one deployment, started and stopped by the test."""

    def __init__(self, tmp: Path, cluster: Cluster, rq_url: str):
        self.tmp = tmp
        self.cluster = cluster
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OUTAGE_", "REDIS_URL", "RQ_REDIS_URL", "PROMETHEUS"))
        }
        self.env.update(
            {
                "REDIS_URL": cluster.url,
                "RQ_REDIS_URL": rq_url,
                "OUTAGE_DATA_DIR": str(tmp / "data"),
                "OUTAGE_SECRET_KEY": TEST_SECRET,
                "OUTAGE_API_KEYS": API_KEY,
                "OUTAGE_CATALOG": str(write_catalog(tmp / "cat.toml")),
                "OUTAGE_DETECT_INTERVAL": "2",
                "OUTAGE_DETECT_GRACE": "1",
                "OUTAGE_SHARDS": "4",
                "OUTAGE_API_RATE_LIMIT": "100000 per minute",
                # One partner key carries the spikes: the guard that keeps one key from
                # opening an incident alone has its own test (test_partner_keys.py).
                "OUTAGE_DETECTOR_PARAMS": json.dumps({"min_prefix_diversity": 0.0}),
                "OUTAGE_WEB_WORKERS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: list[int] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=child_preexec,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_all(self) -> None:
        for i in range(2):
            port = free_port()
            self.ports.append(port)
            self.start(f"web{i}", "web", "--port", str(port))
        for i in range(2):
            self.start(f"worker{i}", "worker", "--name", f"test-worker-{i}")
        self.start("scheduler", "scheduler")
        for port in self.ports:
            self.wait_ready(port)

    def wait_ready(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.get(port, "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"web on {port} not ready:\n{self.logs()}")

    def check_alive(self) -> None:
        dead = {
            n: p.returncode
            for n, p in self.procs.items()
            if p.poll() is not None and not n.endswith("-killed")
        }
        assert not dead, f"processes exited: {dead}\n{self.logs()}"

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.tmp.glob("*.log"))
        )

    def get(self, port: int, path: str) -> tuple[int, dict | str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                body = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read().decode(), exc.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def post(self, port: int, reports: list[dict]) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/reports",
            method="POST",
            data=json.dumps({"reports": reports}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer " + API_KEY.split(":", 1)[1],
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 202
            return json.loads(resp.read())

    def load(self, csv_path: Path) -> None:
        res = subprocess.run(
            [sys.executable, "-m", "cli.main", "load", str(csv_path), "--quiet"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.procs[f"{name}-killed"] = proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    needs_live_pipeline()
    cluster = start_cluster(tmp_path / "cluster")
    queues = start_test_redis(tmp_path / "rq")
    found = Stack(tmp_path, cluster, queues.url)
    try:
        found.start_all()
        yield found
    finally:
        found.stop()
        queues.stop()
        cluster.stop()


def iso(minute: int, second: int = 30) -> str:
    return datetime.fromtimestamp(minute * 60 + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spike(service: str, first: int, batch: int) -> list[dict]:
    """Distinct partner reporters in the minutes first .. first + SPIKE_MINUTES - 1."""
    return [
        {
            "service": service,
            "problem": "app",
            "region": REGIONS[i % len(REGIONS)],
            "reporter": f"{service}-b{batch}-m{m}-u{i}",
            "at": iso(first + m),
        }
        for m in range(SPIKE_MINUTES)
        for i in range(SPIKE_PER_MINUTE)
    ]


def history_csv(path: Path, service: str, end: int, seed: int) -> Path:
    """Write HISTORY_HOURS of quiet counts ending at minute `end` (inclusive)."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["minute", "service", "region", "problem", "reports", "reporters"])
        for minute in range(end - HISTORY_HOURS * 60 + 1, end + 1):
            for region in REGIONS[:3]:
                n = int(rng.poisson(0.4))
                if n:
                    out.writerow([iso(minute, 0), service, region, "app", n, n])
    return path


def open_incident(stack: Stack, port: int, service: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        status, body = stack.get(port, f"/api/v1/incidents?active=1&service={service}")
        assert status == 200, body
        if body["incidents"]:
            return body["incidents"][0]
        time.sleep(0.5)
    raise AssertionError(f"no incident for {service} within {timeout}s\n{stack.logs()}")


def raise_outage(stack: Stack, service: str, seed: int) -> None:
    """Post a spike in the minutes just completed, then load quiet history before it."""
    now_minute = int(time.time() // 60)
    if time.time() % 60 > 55:  # keep the spike and the load in the same minute
        time.sleep(61 - time.time() % 60)
        now_minute = int(time.time() // 60)
    first = now_minute - SPIKE_MINUTES
    reports = spike(service, first, seed)
    half = len(reports) // 2
    answers = [
        stack.post(stack.ports[0], reports[:half]),
        stack.post(stack.ports[1], reports[half:]),
    ]
    assert sum(a["accepted"] for a in answers) == len(reports), answers
    stack.load(history_csv(stack.tmp / f"{service}.csv", service, first - 1, seed))


def test_cluster_deployment_spreads_detects_and_survives_a_worker(stack: Stack) -> None:
    # Background traffic for every service, alternating between the two web processes.
    now_minute = int(time.time() // 60)
    for n, chunk in enumerate(range(0, len(SERVICES), 10)):
        reports = [
            {
                "service": s,
                "problem": PROBLEMS[i % 3],
                "region": REGIONS[i % 5],
                "reporter": f"bg-{s}-{i}",
                "at": iso(now_minute, 0),
            }
            for s in SERVICES[chunk : chunk + 10]
            for i in range(3)
        ]
        assert stack.post(stack.ports[n % 2], reports)["accepted"] == len(reports)

    # Every service's keys share one slot, and the services spread over all three shards.
    per_node = stack.cluster.keys_per_node()
    assert all(n >= 10 for n in per_node.values()), per_node
    conn = redis.RedisCluster(host="127.0.0.1", port=stack.cluster.ports[0])
    try:
        nodes = {conn.get_node_from_key(keys.minute_counts(s, now_minute)).port for s in SERVICES}
        assert nodes == set(stack.cluster.ports)
        for service in SERVICES[:5]:
            slot = conn.keyslot(keys.minute_counts(service, now_minute))
            node = conn.get_node_from_key(keys.minute_counts(service, now_minute))
            counted = conn.execute_command("CLUSTER COUNTKEYSINSLOT", slot, target_nodes=node)
            assert counted >= 3, (service, counted)  # counts, prefixes, stream, ...
    finally:
        conn.close()

    # A spike raises an incident, visible through either web process.
    raise_outage(stack, "svc00", seed=1)
    incident = open_incident(stack, stack.ports[1], "svc00", timeout=30)
    assert incident["service"] == "svc00" and incident["status"] == "open"

    # Without one worker, the other still runs every detection job.
    stack.kill("worker0")
    raise_outage(stack, "svc01", seed=2)
    incident = open_incident(stack, stack.ports[0], "svc01", timeout=30)
    assert incident["service"] == "svc01"

    status, text = stack.get(stack.ports[0], "/metrics")
    assert status == 200
    assert 'outage_metrics_redis_up{redis="data"} 1.0' in text
    opened = [line for line in text.splitlines() if line.startswith("outage_incidents_open{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in opened) >= 2
