"""The JSON API's service endpoints: the catalog with each service's current level."""

from __future__ import annotations

from flask import Blueprint

from store import keys
from store.connections import texts
from web import queries
from web.detection_api import cache_for, known_service
from web.extensions import outage

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/services")
@cache_for(5)
def services():
    """List every service (catalog order, then services known only from data) with its
    current level."""
    ext = outage()
    slugs = ext.catalog.slugs()
    extra = sorted(set(texts(ext.redis.smembers(keys.ACTIVE_SERVICES))) - set(slugs))
    found = queries.statuses(ext.redis, slugs + extra)
    out = []
    for slug in slugs + extra:
        svc = ext.catalog.get(slug)
        base = (
            svc.to_dict()
            if svc
            else {
                "slug": slug,
                "name": slug,
                "category": None,
                "problems": [],
                "problem_labels": {},
            }
        )
        out.append({**base, "status": queries.summary(found[slug])})
    return {"services": out}


@bp.get("/services/<slug>")
@cache_for(5)
def service(slug: str):
    """Describe one service: catalog entry plus observed vs expected, p-value, the open
    incident, affected regions and top problems with their shares vs normal."""
    svc = known_service(slug)
    status = queries.statuses(outage().redis, [slug])[slug] or queries.empty_status()
    status.pop("service", None)
    return {**svc, "status": status}
