"""The web app: report form, pages with live charts and maps, and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Flask

from web.extensions import Outage


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Assemble the Flask app: settings, clients, blueprints, error handlers, headers."""
    from store.config import load_settings

    app = Flask(__name__)
    test_config = dict(test_config or {})
    settings = test_config.pop("OUTAGE_SETTINGS", None) or load_settings()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
    )
    app.config.from_prefixed_env("FLASK")
    app.config.update(test_config)
    Outage(settings).init_app(app)

    from web import api, compress, detection_api, errors, health, metrics, pages, reports, security

    # First registered, so it runs last among the after_request hooks (Flask runs them in
    # reverse) and compresses the final body of every answer.
    compress.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    for module in (health, metrics, api, reports, detection_api, pages):
        if hasattr(module, "init_app"):
            module.init_app(app)
        app.register_blueprint(module.bp)
    return app
