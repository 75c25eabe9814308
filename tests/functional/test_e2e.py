"""End to end, no mocks: `outage up`, `outage load` two weeks of history, a spike posted
through the batch API with partner reporter ids, the incident visible within two cycles of
the minute whose data suffices, a signed webhook, and the close after the spike stops."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cli.redis_server import free_port
from detector.clock import iso_to_minute, minute_to_iso
from tests.workers.helpers import Receiver
from workers import webhooks

pytestmark = pytest.mark.slow

INTERVAL = 5
"""Seconds between detection cycles in this test."""

GRACE = 1
"""Seconds detection waits after a minute ends."""

KEY = "partner:" + "p" * 32
SECRET = "hook-secret"

# One window and no CUSUM, so that the incident closes one quiet minute after the spike
# instead of the default 15+ (this test checks the pipeline, not the statistics); gap
# detection off, because the loaded history ends when the test starts and live traffic
# until the spike is nil; the prefix-diversity guard off, because one partner key carries
# the spike (that one key cannot open an incident alone is tested in test_partner_keys.py).
PARAMS = {
    "windows": [1],
    "cusum_ratios": [],
    "close_quiet_minutes": 1,
    "gap_min_expected": 1e12,
    "min_prefix_diversity": 0.0,
}


def write_history(path: Path, end: int, days: int = 14, seed: int = 42) -> int:
    """Write a seeded counts CSV for x ending at minute `end`; return its row count."""
    rng = np.random.default_rng(seed)
    start = end - days * 1440 + 1
    minutes = np.arange(start, end + 1)
    shape = 1.0 + 0.5 * np.cos(2 * np.pi * ((minutes / 60.0) % 24 - 20) / 24)
    leaves = {
        ("US-CA", "app"): 0.6,
        ("US-TX", "login"): 0.3,
        ("GB", "app"): 0.4,
        ("DE", "website"): 0.2,
    }
    rows = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["minute", "service", "region", "problem", "reports", "reporters"])
        for (region, problem), rate in leaves.items():
            counts = rng.poisson(rate * shape)
            for minute, count in zip(minutes.tolist(), counts.tolist(), strict=True):
                if count:
                    out.writerow([minute_to_iso(minute), "x", region, problem, count, count])
                    rows += 1
    return rows


def get(base: str, path: str) -> dict:
    try:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError as exc:
        raise OSError(f"GET {path} at {time.strftime('%H:%M:%S')}: {exc}") from exc


def post_batch(base: str, reports: list[dict]) -> dict:
    req = urllib.request.Request(
        base + "/api/v1/reports",
        method="POST",
        data=json.dumps({"reports": reports}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + KEY.split(":")[1],
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202
        return json.loads(resp.read())


def queues(data_dir: Path) -> dict:
    """Describe the RQ queues and failed jobs of the stack (for failure messages)."""
    import redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    conn = redis.Redis.from_url((data_dir / "redis.url").read_text().strip())
    out = {}
    for name in ("detect", "webhooks", "default"):
        queue = Queue(name, connection=conn)
        failed = FailedJobRegistry(name, connection=conn)
        out[name] = {
            "queued": queue.get_job_ids(),
            "scheduled": ScheduledJobRegistry(name, connection=conn).get_job_ids(),
            "failed": {j: (queue.fetch_job(j).exc_info or "")[-300:] for j in failed.get_job_ids()},
        }
    out["outbox"] = conn.lrange("{svc:x}:outbox", 0, -1)
    return out


def wait_for(what, timeout: float, step: float = 0.25):
    deadline = time.time() + timeout
    while True:
        try:
            found = what()
        except OSError:
            found = None
        if found:
            return found
        if time.time() > deadline:
            return None
        time.sleep(step)


def test_spike_to_incident_to_webhook_to_close(tmp_path: Path) -> None:
    receiver = Receiver()
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OUTAGE_", "REDIS_URL", "RQ_REDIS_URL"))
    }
    env.update(
        {
            "OUTAGE_DATA_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
            "OUTAGE_DETECT_INTERVAL": str(INTERVAL),
            "OUTAGE_DETECT_GRACE": str(GRACE),
            "OUTAGE_SHARDS": "1",
            "OUTAGE_API_KEYS": KEY,
            "OUTAGE_DETECTOR_PARAMS": json.dumps(PARAMS),
            "OUTAGE_WEBHOOKS": json.dumps(
                [{"url": receiver.url, "secret": SECRET, "services": ["x"]}]
            ),
        }
    )
    # The stack's output goes to a file: an unread pipe fills up (access log lines) and then
    # blocks every process that logs.
    log_path = tmp_path / "up.log"
    log_file = log_path.open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: get(base, "/readyz"), 60), "the stack did not start"
        csv_path = tmp_path / "counts.csv"
        end = int(time.time() // 60) - 1
        assert write_history(csv_path, end) > 10000
        load = subprocess.run(
            [sys.executable, "-m", "cli.main", "load", str(csv_path), "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert load.returncode == 0, load.stderr

        def caught_up():
            status = get(base, "/api/v1/services/x")["status"]
            done = status["updated_at"] and iso_to_minute(status["updated_at"]) >= end
            return status if done and status["baseline"] != "insufficient_history" else None

        status = wait_for(caught_up, 90)
        assert status, "detection did not catch up with the loaded history"
        assert get(base, "/api/v1/incidents?active=1&service=x")["count"] == 0

        # The spike: 60 partner users in one minute (with a few seconds of it left at least).
        if time.time() % 60 > 52:
            time.sleep(61 - time.time() % 60)
        posted_at = time.time()
        spike_minute = int(posted_at // 60)
        reports = [
            {"service": "x", "problem": "app", "region": "US-CA", "reporter": f"user-{i}"}
            for i in range(60)
        ]
        assert post_batch(base, reports) == {"accepted": 60, "duplicates": 0, "rejected": []}
        assert post_batch(base, reports[:5])["duplicates"] == 5

        # Visible within two cycles after the minute with the evidence has ended.
        deadline = (spike_minute + 1) * 60 + GRACE + 2 * INTERVAL
        found = wait_for(
            lambda: get(base, "/api/v1/incidents?active=1&service=x")["incidents"],
            deadline - time.time() + 5,
            step=0.1,
        )
        seen_at = time.time()
        assert found, (
            "no incident for the spike",
            get(base, "/api/v1/services/x")["status"],
            get(base, "/api/v1/incidents?service=x"),
        )
        assert seen_at <= deadline, f"incident visible {seen_at - deadline:.1f} s too late"
        incident = found[0]
        assert incident["detected_at"] == minute_to_iso(spike_minute + 1)
        assert "US" in incident["regions"] and incident["problems"][0] == "app"
        assert incident["evidence"]["trigger"]
        level = get(base, "/api/v1/services/x")["status"]["level"]
        assert level in ("possible", "problems", "outage")
        print(
            f"\nreport -> visible incident: {seen_at - posted_at:.1f} s "
            f"({seen_at - (spike_minute + 1) * 60:.1f} s after the minute ended)"
        )

        # The signed webhook.
        assert wait_for(lambda: receiver.requests, 10), (
            "no webhook arrived",
            queues(tmp_path / "var"),
        )
        first = receiver.requests[0]
        headers = {k.lower(): v for k, v in first["headers"].items()}
        assert webhooks.verify(
            SECRET, headers["x-outage-timestamp"], first["body"], headers["x-outage-signature"]
        )
        body = json.loads(first["body"])
        assert body["event"] == "open" and body["incident"]["id"] == incident["id"]

        # Reports stop: the incident closes, and the close is delivered too.
        def closed():
            docs = get(base, "/api/v1/incidents?service=x")["incidents"]
            return [d for d in docs if d["id"] == incident["id"] and d["ended_at"]]

        # One quiet minute closes it (PARAMS); detection sees that minute two cycles later.
        # The margin is for a loaded machine: closing has no latency promise to keep.
        assert wait_for(
            closed, (spike_minute + 2) * 60 + GRACE + 2 * INTERVAL + 20 - time.time()
        ), ("the incident did not close", get(base, "/api/v1/incidents?service=x"))
        # 25 s: time for one retry (after 10 s) should the first attempt fail on a busy box.
        assert wait_for(
            lambda: any(json.loads(r["body"])["event"] == "close" for r in receiver.requests), 25
        ), (get(base, "/api/v1/webhooks/deliveries"), queues(tmp_path / "var"))
        deliveries_seen = {
            (
                {k.lower(): v for k, v in r["headers"].items()}["x-outage-delivery"],
                json.loads(r["body"])["event"],
            )
            for r in receiver.requests
        }
        events = [event for _, event in deliveries_seen]
        assert events.count("open") == 1 and events.count("close") == 1
        deliveries = get(base, "/api/v1/webhooks/deliveries?service=x")["deliveries"]
        latest = {}
        for attempt in reversed(deliveries):  # oldest first, so the newest attempt wins
            latest[attempt["delivery"]] = attempt["outcome"]
        assert len(latest) == 2 and set(latest.values()) == {"delivered"}
    finally:
        receiver.close()
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        log_file.close()
        output = log_path.read_text(errors="replace")
        # Shown by pytest when the test failed: the stack's own log (requests: the last ones).
        lines = output.splitlines()
        print(
            "\n".join([line for line in lines[:-40] if "GET /api" not in line] + lines[-40:])[
                -8000:
            ]
        )
