"""Rate limits on report submission: flask-limiter on Redis, failing open.

Anonymous reports are limited per client IP (`OUTAGE_RATE_LIMIT`), requests with a valid API
key per key (`OUTAGE_API_RATE_LIMIT`). Limiter keys hold a keyed hash of the IP, never the IP.
If the limiter's Redis cannot be reached the request passes and the failure is logged: losing
reports during an outage would be worse than briefly not limiting them.
"""

from __future__ import annotations

import hmac
import math
import time
from collections import Counter
from collections.abc import Iterable

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix

from store import keys
from store.config import ApiKey
from web.errors import error_response
from web.extensions import outage
from web.ingest import Hasher, Report

STORAGE_TIMEOUT = 0.3
"""Seconds the limiter waits for Redis; with the 1 s data timeout a dead Redis answers < 2 s."""

INVALID_KEY = ApiKey(id="", secret="")
"""Marker for a request whose Authorization header names no configured key."""


def api_key() -> ApiKey | None:
    """Return the request's API key (cached per request): None if absent, INVALID_KEY if wrong."""
    if "outage_api_key" not in g:
        g.outage_api_key = match_api_key(
            request.headers.get("Authorization"), outage().settings.api_keys
        )
    return g.outage_api_key


def match_api_key(header: str | None, configured: tuple[ApiKey, ...]) -> ApiKey | None:
    """Find the key of an `Authorization: Bearer <secret>` header, comparing in constant time."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return INVALID_KEY
    given = token.strip().encode()
    found = INVALID_KEY
    for key in configured:  # compare with every key, so timing does not reveal which matched
        if hmac.compare_digest(given, key.secret.encode()):
            found = key
    return found


def client_ip() -> str | None:
    """The client address (ProxyFix has applied X-Forwarded-For when proxies are trusted)."""
    return request.remote_addr


def key_quota(
    conn: redis.Redis, key_id: str, reports: Iterable[Report], cap: int
) -> dict[str, int]:
    """Count a key's reports per service in this minute; return how many more each may add.

    One round trip (a pipeline of INCRBY). Counted on arrival, so a request that then fails
    still used its share of the minute: a partner retrying within the minute may lose some.
    """
    wanted = Counter(r.service for r in reports)
    if not wanted:
        return {}
    minute = int(time.time() // 60)
    pipe = conn.pipeline(transaction=False)
    for service, n in wanted.items():
        quota = keys.key_quota(service, key_id, minute)
        pipe.incrby(quota, n)
        pipe.expire(quota, 120)
    totals = pipe.execute()[::2]
    return {
        service: max(0, min(n, cap - (int(total) - n)))
        for (service, n), total in zip(wanted.items(), totals, strict=True)
    }


def limit_key() -> str:
    """Whom a request counts against: its API key, else a keyed hash of its IP."""
    key = api_key()
    if key is not None and key is not INVALID_KEY:
        return f"key:{key.id}"
    hasher: Hasher = current_app.extensions["outage_hasher"]
    return f"ip:{hasher.client(client_ip())}"


def limit_value() -> str:
    """The limit that applies to this request."""
    settings = outage().settings
    key = api_key()
    if key is not None and key is not INVALID_KEY:
        return settings.api_rate_limit
    return settings.rate_limit


def init_app(app: Flask, bp: Blueprint) -> Limiter:
    """Trust proxies as configured and rate-limit every route of `bp`."""
    settings = app.extensions["outage"].settings
    if settings.trusted_proxies > 0:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.extensions.setdefault("outage_hasher", Hasher(settings.secret_key, settings.ipv4_prefix))
    options: dict = {}
    if settings.redis_url:
        options = {
            "socket_timeout": STORAGE_TIMEOUT,
            "socket_connect_timeout": STORAGE_TIMEOUT,
            "key_prefix": keys.RATE_LIMITS,
        }
    limiter = Limiter(
        key_func=limit_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options=options,
        strategy="fixed-window",
        swallow_errors=True,
        headers_enabled=False,
    )
    # One budget per client across the form and the API.
    limiter.shared_limit(limit_value, scope="reports", key_func=limit_key)(bp)
    app.extensions["outage_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    return limiter


def _too_many_requests(exc: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["outage_limiter"]
    window = int(exc.limit.limit.get_expiry())
    retry_after = window
    try:
        current = limiter.current_limit
        if current is not None:  # reset_at is rounded up to the next second
            retry_after = max(1, min(window, math.ceil(current.reset_at - time.time())))
    except Exception:  # storage trouble while computing the hint: the window will do
        current_app.logger.warning("could not read the rate-limit window for Retry-After")
    return error_response(
        429,
        f"too many reports: the limit is {exc.limit.limit}; retry in {retry_after} s",
        "rate_limited",
        headers={"Retry-After": str(retry_after)},
    )
