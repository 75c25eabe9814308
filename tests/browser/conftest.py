"""A real server on a seeded Redis, and one headless Debian chromium for the whole session.

The server is `outage web` (gunicorn, the deployed code path) on a Redis of its own, so no
other test's FLUSHALL can pull the data from under a page. Tests are skipped when
/usr/bin/chromium is missing, except under CI=true, where that is a failure.

Set OUTAGE_SCREENSHOTS=<folder> to save desktop and 390 px screenshots of every page there
(docs/screenshots holds the committed ones).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from cli.redis_server import free_port
from store.catalog import load_catalog
from store.config import load_settings
from tests.browser.seed import seed
from tests.redis_helpers import start_test_redis

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install chromium, or `make browser`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; browser tests may not be skipped under CI=true")
        pytest.skip(message)
    return CHROMIUM


@dataclass
class Stack:
    """The running server: its base URL and a client on its Redis."""

    url: str
    redis: redis.Redis


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("browser")
    server = start_test_redis(folder)
    env = {
        "OUTAGE_DATA_DIR": str(folder / "data"),
        "REDIS_URL": server.url,
        "OUTAGE_SECRET_KEY": "browser-" + "s" * 24,
        "OUTAGE_WEB_WORKERS": "1",
        "OUTAGE_RATE_LIMIT": "100 per minute",
    }
    settings = load_settings(env)
    conn = redis.Redis.from_url(server.url)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "web", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        seed(conn, settings, load_catalog(settings.catalog_path))
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url + "/readyz", web)
        yield Stack(url=url, redis=conn)
    finally:
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
        web.stderr.close()
        conn.close()
        server.stop()


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"outage web exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("outage web did not become ready")


@pytest.fixture(scope="session")
def browser(chromium: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did that it should not: console errors, uncaught errors, foreign requests,
    dialogs (an alert() means a comment's script ran)."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("request", self._request)

        def dialog(d) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def _request(self, req) -> None:
        self.requests.append(req.url)
        parts = urlsplit(req.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.hostname not in LOCAL_HOSTS:
            self.foreign.append(req.url)

    def assert_clean(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.foreign, f"requests left the host: {self.foreign}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"


@pytest.fixture(scope="session")
def contexts(browser) -> Iterator[dict]:
    """One desktop and one phone context for the session, so plotly.js is fetched and
    compiled once per context rather than once per page."""
    made = {
        name: browser.new_context(viewport=size, locale="en-US", timezone_id="Europe/Paris")
        for name, size in (("desktop", DESKTOP), ("phone", PHONE))
    }
    yield made
    for ctx in made.values():
        ctx.close()


@pytest.fixture(scope="session")
def loaded(contexts, stack: Stack):
    """Pages opened once per session and only read by tests: (path, context) -> (page, watch).

    Tests that type, click or hover use `open_page` instead."""
    cache: dict[tuple[str, str], tuple] = {}

    def _get(path: str, device: str = "desktop"):
        if (path, device) not in cache:
            cache[(path, device)] = _load(contexts[device], stack.url + path)
        return cache[(path, device)]

    return _get


@pytest.fixture
def open_page(contexts, stack: Stack):
    """Open a path in a new page of the shared context, closed after the test."""
    opened = []

    def _open(path: str, device: str = "desktop"):
        page, watch = _load(contexts[device], stack.url + path)
        opened.append(page)
        return page, watch

    yield _open
    for page in opened:
        page.close()


def _load(context, url: str):
    page = context.new_page()
    watch = Watch()
    watch.attach(page)
    page.goto(url)
    wait_ready(page)
    return page, watch


def wait_ready(page, timeout: float = 20_000) -> None:
    page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=timeout)


def poll(page, expression: str, timeout: float = 30.0, every: float = 0.5):
    """Evaluate `expression` until it is truthy (no wait_for_function: the CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(every * 1000)
    raise AssertionError(f"still false after {timeout}s: {expression} -> {value!r}")


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot when OUTAGE_SCREENSHOTS names a folder."""
    folder = os.environ.get("OUTAGE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
