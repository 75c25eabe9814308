"""The web server as deployed (`outage web`) under slow clients and malformed HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli.redis_server import free_port
from tests.cli.test_web_process import start_web

pytestmark = pytest.mark.slow


@pytest.fixture
def web(
    tmp_path: Path, redis_url: str, redis_conn
) -> Iterator[tuple[int, Callable[[], list[str]]]]:
    """`outage web` with the shipped gunicorn settings; yields its port and a function that
    stops it and returns its output."""
    port = free_port()
    proc = start_web(tmp_path, redis_url, port)
    log: list[str] = []

    def finish() -> list[str]:
        """Stop the server (once) and return its output lines."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            log.extend(out.splitlines())
        return log

    try:
        yield port, finish
    finally:
        finish()


def timed(request: urllib.request.Request) -> tuple[int, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - start


def report_request(port: int) -> urllib.request.Request:
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/reports",
        data=json.dumps({"service": "x", "problem": "app"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )


def test_100_slow_clients_do_not_starve_the_server(web) -> None:
    port, _ = web
    stop = threading.Event()
    socks: list[socket.socket] = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)

    def dribble() -> None:  # one header line per second on every connection
        n = 0
        while not stop.wait(1.0):
            n += 1
            for s in socks:
                try:
                    s.sendall(f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    pass

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        time.sleep(2.5)
        health = timed(urllib.request.Request(f"http://127.0.0.1:{port}/healthz"))
        report = timed(report_request(port))
        time.sleep(1.0)
        again = timed(urllib.request.Request(f"http://127.0.0.1:{port}/healthz"))
    finally:
        stop.set()
        thread.join()
        for s in socks:
            s.close()
    assert health[0] == 200 and health[1] < 1.0, health
    assert report[0] == 202 and report[1] < 1.0, report
    assert again[0] == 200 and again[1] < 1.0, again


def raw(port: int, data: bytes, read_timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes and parse the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return status, headers, body


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


def chunked_post(path: str, chunks: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunks


@pytest.mark.parametrize("path", ["/api/v1/reports", "/s/x"])
def test_malformed_chunked_body_is_a_400_not_a_500(web, path: str) -> None:
    port, _ = web
    ctype = "application/json" if path.startswith("/api") else "application/x-www-form-urlencoded"
    status, headers, body = raw(port, chunked_post(path, b"zz\r\n{}\r\n0\r\n\r\n", ctype))
    assert status == 400, body
    if path.startswith("/api"):
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "bad_request"
    assert b"Traceback" not in body


def test_chunked_body_over_the_limit_is_413(web) -> None:
    port, _ = web
    report = json.dumps({"service": "x", "problem": "app"}).encode()
    # A valid report followed by 3 MB of JSON whitespace: cut at 1 MiB it would still parse.
    payload = report + b" " * (3 * 1024 * 1024)
    chunks = b"".join(
        f"{len(payload[i : i + 65536]):x}\r\n".encode() + payload[i : i + 65536] + b"\r\n"
        for i in range(0, len(payload), 65536)
    )
    status, headers, body = raw(port, chunked_post("/api/v1/reports", chunks + b"0\r\n\r\n"))
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "request_bytes,status,code",
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "bad_request"),
    ],
)
def test_server_layer_errors_are_json_and_log_no_client_ip(
    web, request_bytes: bytes, status: int, code: str
) -> None:
    port, finish = web
    got, headers, body = raw(port, request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code
    invalid = [line for line in finish() if "Invalid request" in line]
    assert invalid and not any("127.0.0.1" in line for line in invalid), invalid
