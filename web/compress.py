"""Gzip text answers (HTML, CSS, JavaScript, JSON, SVG) for clients that accept it.

Static files are compressed once per version (ETag) and kept, so the 1.4 MB plotly.js
bundle costs one compression per process, not one per visitor. deploy/nginx.conf gzips
too; the app does it itself so `outage up` and any other front end get the same bytes.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

TYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "image/svg+xml",
        "text/plain",
    }
)
"""Media types worth compressing (images and fonts are compressed already)."""

MIN_BYTES = 512
"""Smaller answers are sent as they are: gzip would save a few bytes at best."""

LEVEL = 6
"""gzip level: most of level 9's saving at a fraction of its time."""

STATIC_CACHE = 32
"""Compressed static files a process keeps (by path and ETag)."""


def init_app(app: Flask) -> None:
    """Compress every eligible response of the app."""
    cache: dict[tuple[str, str], bytes] = {}

    @app.after_request
    def _gzip(resp: Response) -> Response:
        resp.vary.add("Accept-Encoding")
        if (
            resp.status_code != 200
            or resp.mimetype not in TYPES
            or "gzip" not in request.accept_encodings
            or "Content-Encoding" in resp.headers
            or (resp.is_streamed and not resp.direct_passthrough)  # e.g. server-sent events
        ):
            return resp
        etag = resp.get_etag()[0] if resp.direct_passthrough else None
        key = (request.path, etag or "")
        body = cache.get(key) if etag else None
        source = resp.response  # a static file's handle: closed below, read or not
        close = getattr(source, "close", None)
        if body is None:
            resp.direct_passthrough = False
            data = resp.get_data()
            if len(data) < MIN_BYTES:
                if close is not None:
                    close()
                return resp  # already read into the response: sent plain
            body = gzip.compress(data, LEVEL, mtime=0)
            if etag:
                if len(cache) >= STATIC_CACHE:
                    cache.pop(next(iter(cache)))
                cache[key] = body
        if close is not None:
            close()
        resp.direct_passthrough = False
        resp.set_data(body)
        resp.headers["Content-Encoding"] = "gzip"
        return resp
