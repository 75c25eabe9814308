"""`outage web` as deployed: gunicorn with our config, metrics merged over its workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.procs import child_preexec
from cli.redis_server import free_port
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def start_web(tmp_path: Path, redis_url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "OUTAGE_DATA_DIR": str(tmp_path / "data"),
        "OUTAGE_SECRET_KEY": TEST_SECRET,
        "OUTAGE_RATE_LIMIT": "10000 per minute",
        "OUTAGE_LOG_JSON": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("OUTAGE_METRICS_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "web", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=child_preexec,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    return proc
            except OSError:  # refused, reset or timed out while the workers boot
                time.sleep(0.2)
        raise AssertionError("outage web did not become ready")
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def post(port: int, body: dict) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/reports",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def report_requests(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "outage_http_requests":
            total += sum(
                s.value for s in family.samples if s.labels.get("route") == "/api/v1/reports"
            )
    return total


def test_web_merges_metrics_over_its_workers_and_starts_clean(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    proc = start_web(tmp_path, redis_url, port)
    try:
        for i in range(24):  # a new connection each time, so both workers answer some
            post(port, {"service": "x", "problem": "app", "comment": f"n{i}"})
        assert report_requests(port) == 24
        metrics_dir = tmp_path / "data" / "metrics" / f"web-127_0_0_1_{port}"
        assert list(metrics_dir.glob("counter_*.db"))
    finally:
        out = stop(proc)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [d for d in lines if d["logger"] == "gunicorn.access"]
    assert len(access) >= 24 and all("127.0.0.1" not in json.dumps(d) for d in access)
    proc = start_web(tmp_path, redis_url, port)
    try:
        assert report_requests(port) == 0, "a restarted master must not count old requests"
    finally:
        stop(proc)
