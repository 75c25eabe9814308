"""Helpers shared by the worker and functional tests: in-process workers, a receiver."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from rq import SimpleWorker

from store.keys import QUEUES


class BurstWorker(SimpleWorker):
    """An in-process worker without the pubsub command listener (whose thread takes a
    second to stop); tests never send it commands."""

    def subscribe(self) -> None:
        pass


def run_worker(conn: redis.Redis) -> None:
    """Run every queued job in this process until the queues are empty."""
    BurstWorker(list(QUEUES), connection=conn).work(burst=True, logging_level="ERROR")


class Receiver:
    """A local webhook receiver: records requests, answers with a configurable status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "path": self.path}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
