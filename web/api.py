"""The JSON API's catalog endpoints (detection state is added by the detection API)."""

from __future__ import annotations

from flask import Blueprint

from web.errors import ApiError
from web.extensions import outage

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/services")
def services():
    """List every service in the catalog."""
    return {"services": [s.to_dict() for s in outage().catalog.services]}


@bp.get("/services/<slug>")
def service(slug: str):
    """Describe one service."""
    svc = outage().catalog.get(slug)
    if svc is None:
        raise ApiError(404, f"unknown service {slug!r}", field="service")
    return svc.to_dict()
