"""The gunicorn worker class of the web role: gevent, JSON errors, no client IPs in its log.

Why gevent: a thread-per-connection worker (gthread) is held by a client that sends one
header line per second, so a handful of slow clients starve every thread. A gevent worker
parks each connection in a greenlet that costs almost nothing while it waits.

gunicorn answers some requests itself, before the app sees them (a bad request line, too
long a URI, too many or too large headers, a bad chunk). Its page is HTML; ours is the API's
JSON error format, so clients parse one shape.
"""

from __future__ import annotations

import json
import logging
import re

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}

_IP = re.compile(r"\bip=\S+")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Answer a request gunicorn rejected with `{"error": {"code", "message"}}`."""
    # The message is fixed per status: gunicorn's own text can echo the client's bytes.
    body = json.dumps(
        {"error": {"code": CODES.get(status_int, "error"), "message": reason.lower()}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nCache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class NoClientIp(logging.Filter):
    """Drop client addresses from gunicorn's error log ("Invalid request from ip=...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "ip=" in message:
            record.msg, record.args = _IP.sub("ip=[filtered]", message), None
        return True


class WebWorker(GeventWorker):
    """gunicorn's gevent worker, answering its own errors in JSON."""

    def init_process(self) -> None:
        util.write_error = write_json_error
        logging.getLogger("gunicorn.error").addFilter(NoClientIp())
        super().init_process()
