"""Error responses: JSON `{"error": {...}}` for the API, plain pages elsewhere, never a trace."""

from __future__ import annotations

import io
import logging

import redis
from flask import Flask, Response, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

from store.connections import NoRedisConfigured

log = logging.getLogger("outage.web")

RETRY_AFTER_UNAVAILABLE = 5
"""Seconds a client is told to wait when Redis is unreachable."""

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ status }} {{ title }}</title><link rel="stylesheet" href="/static/site.css"></head>
<body><main class="error-page"><h1>{{ title }}</h1><p>{{ message }}</p>
<p><a href="/">Back to all services</a></p></main></body></html>"""


class ApiError(Exception):
    """An error a view raises to answer with a 4xx and a JSON body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz"):
        return True
    return request.accept_mimetypes.best == "application/json"


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build the error response in the form the client asked for."""
    if wants_json():
        body = {"code": code or CODES.get(status, "error"), "message": message}
        if field:
            body["field"] = field
        resp = jsonify({"error": body})
    else:
        title = code.replace("_", " ").capitalize() if code else CODES.get(status, "Error")
        resp = Response(
            render_template_string(_PAGE, status=status, title=title, message=message),
            mimetype="text/html",
        )
    resp.status_code = status
    resp.headers.update(headers or {})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def buffer_chunked_body() -> None:
    """Read a chunked request body up front, so a bad or oversized one is a 400 or a 413.

    With a Content-Length, werkzeug refuses a body over MAX_CONTENT_LENGTH before reading
    it. A chunked body has no length: werkzeug reads up to the limit and silently drops the
    rest, and an error of the server's chunk parser (a chunk size of `zz`) escapes as a 500.
    Buffering it here (at most the limit plus one byte) makes both ordinary client errors.
    """
    environ = request.environ
    if (
        environ.get("CONTENT_LENGTH")
        or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return
    limit = request.max_content_length
    stream, parts, size = environ["wsgi.input"], [], 0
    try:
        while limit is None or size <= limit:
            part = stream.read(65536 if limit is None else min(65536, limit + 1 - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except Exception:  # the server's parser or socket: the client sent a broken body
        raise ApiError(400, "the chunked request body is malformed") from None
    if limit is not None and size > limit:
        raise ApiError(413, "request body too large (limit 1 MB)", "too_large")
    body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)


def init_app(app: Flask) -> None:
    app.before_request(buffer_chunked_body)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.code, exc.field, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = dict(exc.get_headers() or [])
        headers.pop("Content-Type", None)
        message = exc.description or exc.name
        if exc.code == 413:
            message = "request body too large (limit 1 MB)"
        return error_response(exc.code or 500, message, headers=headers)

    @app.errorhandler(redis.RedisError)
    @app.errorhandler(redis.exceptions.RedisClusterException)
    @app.errorhandler(NoRedisConfigured)
    def _unavailable(exc: Exception):
        log.warning("Redis unavailable: %s", exc)
        return error_response(
            503,
            "storage is temporarily unavailable; retry shortly",
            "unavailable",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; it has been logged", "internal_error")
