from __future__ import annotations

import dataclasses

from web import create_app


def test_healthz(client) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_when_redis_is_up(client) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready"}


def test_readyz_is_503_when_redis_is_unreachable(settings) -> None:
    from cli.redis_server import free_port

    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app({"TESTING": True, "OUTAGE_SETTINGS": dead})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.get_json()["error"]["code"] == "unavailable"


def test_services_lists_the_catalog(client) -> None:
    body = client.get("/api/v1/services").get_json()
    slugs = [s["slug"] for s in body["services"]]
    assert len(slugs) >= 15 and "x" in slugs
    x = next(s for s in body["services"] if s["slug"] == "x")
    assert x["category"] == "social"
    assert {"app", "website", "login", "images", "links"} <= set(x["problems"])


def test_unknown_api_path_is_json_404(client) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_security_headers(client) -> None:
    resp = client.get("/healthz")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
