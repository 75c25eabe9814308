"""The web app: report form, pages with live charts and maps, and the JSON API."""

from __future__ import annotations

from typing import Any

from flask import Flask

from web.extensions import Outage


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Assemble the Flask app: settings, clients, blueprints, error handlers, headers."""
    from workers.config import load_settings

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

    from web import errors, health, security

    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(health.bp)
    for name in ("metrics", "api", "reports", "detection_api", "pages"):
        module = _optional_blueprint(name)
        if module is not None:
            if hasattr(module, "init_app"):
                module.init_app(app)
            app.register_blueprint(module.bp)
    return app


def _optional_blueprint(name: str):
    """Import web.<name> if it exists, so blueprints land one at a time."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(f"web.{name}") is None:
        return None
    return importlib.import_module(f"web.{name}")
