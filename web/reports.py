"""Report submission: `POST /api/v1/reports` (single or batch) and the form on `/s/<slug>`.

Views are thin: read the request, call web.ingest, answer. Every route here is rate-limited
(web.limits); a report is acknowledged (202, or the thank-you page) only after its Redis write
succeeded, and a Redis failure becomes a 503 with Retry-After (web.errors).
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template_string,
    request,
    url_for,
)

from detector.regions import GLOBAL
from store import metrics
from web import limits
from web.errors import ApiError, error_response
from web.extensions import outage
from web.forms import report_form_for
from web.geo import country_from_ip
from web.ingest import Hasher, Invalid, Outcome, Report, Sender, Validator, parse_json
from web.report_store import ReportStore

bp = Blueprint("reports", __name__)

ceiling_bp = Blueprint("reports_ceiling", __name__)
"""The benchmark's bare endpoint; registered only when OUTAGE_BENCH_CEILING=1."""

_FIX_PAGE = """{% extends "base.html" %}
{% block title %}Report a problem with {{ service.name }}{% endblock %}
{% block main %}{% include "report_form.html" %}
<p><a href="/s/{{ service.slug }}">Back to {{ service.name }}</a></p>{% endblock %}"""


def init_app(app: Flask) -> None:
    """Create the store and hasher, rate-limit this blueprint, map Invalid to errors."""
    settings = app.extensions["outage"].settings
    hasher = Hasher(settings.secret_key, settings.ipv4_prefix)
    app.extensions["outage_store"] = ReportStore(settings)
    app.extensions["outage_hasher"] = hasher
    app.extensions["outage_validator"] = Validator(app.extensions["outage"].catalog, hasher)
    limits.init_app(app, bp)
    app.register_error_handler(Invalid, _invalid)
    if settings.bench_ceiling:
        app.register_blueprint(ceiling_bp)


def _invalid(exc: Invalid) -> Response:
    return error_response(exc.status, exc.message, exc.code, exc.field)


def _store() -> ReportStore:
    return current_app.extensions["outage_store"]


def _hasher() -> Hasher:
    return current_app.extensions["outage_hasher"]


def _validator() -> Validator:
    return current_app.extensions["outage_validator"]


def _result(outcome: Outcome, **extra: Any) -> tuple[dict, int, dict[str, str]]:
    metrics.count_reports(outcome.accepted, outcome.duplicates, extra.get("rejected", ()))
    body = {"accepted": outcome.accepted, "duplicates": outcome.duplicates, **extra}
    headers = {"Cache-Control": "no-store"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers


def _idempotency_token(key_id: str) -> str:
    """Return the keyed hash of the request's Idempotency-Key header ('' when absent)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return ""
    if not (1 <= len(raw) <= 255 and raw.isascii() and raw.isprintable()):
        raise ApiError(
            400,
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            field="Idempotency-Key",
        )
    return _hasher().partner(key_id, "idempotency\0" + raw)


@bp.post("/api/v1/reports")
def submit_api():
    """Take one report, or a batch of up to 1000 with an API key; answer 202 with counts."""
    if request.mimetype != "application/json":
        raise ApiError(415, "send reports as JSON with Content-Type: application/json")
    key = limits.api_key()
    if key is limits.INVALID_KEY:
        raise ApiError(
            401,
            "the API key is not valid",
            field="Authorization",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    body = parse_json(request.get_data(cache=False))
    batch = isinstance(body, dict) and "reports" in body
    if batch and key is None:
        raise ApiError(
            401,
            "a batch needs an API key: Authorization: Bearer <key>",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ip = limits.client_ip()
    default = GLOBAL
    if key is None and isinstance(body, dict) and body.get("region") in (None, ""):
        default = country_from_ip(ip) or GLOBAL
    sender = Sender(
        ip=ip,
        key_id=key.id if key else None,
        default_region=default,
        source=f"key:{key.id}" if key else "api",
    )
    token = _idempotency_token(key.id) if key else ""
    if batch and isinstance(body, dict):
        good, positions, rejected = _validator().batch(body, sender)
        if key:
            good = _within_key_limit(key.id, good, positions, rejected)
        return _result(_store().write(outage().redis, good, token), rejected=rejected)
    report = _validator().single(body, sender)
    if key and not _within_key_limit(key.id, [report], [0], []):
        raise ApiError(
            429,
            f"this API key sent more than {outage().settings.api_key_service_limit} "
            f"reports for {report.service} this minute",
            "key_limit",
            headers={"Retry-After": str(60 - int(time.time()) % 60)},
        )
    return _result(_store().write(outage().redis, [report], token))


def _within_key_limit(
    key_id: str, good: list[Report], positions: list[int], rejected: list[dict[str, object]]
) -> list[Report]:
    """Keep a key's reports within its per-service, per-minute cap; reject the rest by index."""
    cap = outage().settings.api_key_service_limit
    allowed = limits.key_quota(outage().redis, key_id, good, cap)
    kept = []
    for report, index in zip(good, positions, strict=True):
        if allowed.get(report.service, 0) > 0:
            allowed[report.service] -= 1
            kept.append(report)
        else:
            message = f"over this key's limit of {cap} reports per service and minute"
            rejected.append({"index": index, "error": {"code": "key_limit", "message": message}})
    if len(kept) < len(good):
        rejected.sort(key=lambda r: int(str(r["index"])))
    return kept


@bp.post("/s/<slug>")
def submit_form(slug: str):
    """Take the service page's form; redirect to the thank-you page (303)."""
    service = outage().catalog.get(slug)
    if service is None:
        abort(404, f"There is no service called {slug!r}.")
    form = report_form_for(service)
    if not form.validate():
        if form.csrf_failed:
            raise ApiError(
                400,
                "The form has expired or did not come from this site: reload "
                "the page and send it again.",
            )
        return render_template_string(_FIX_PAGE, form=form, service=service), 422
    sender = Sender(ip=limits.client_ip(), source="form")
    item = {
        "service": slug,
        "problem": form.problem.data,
        "region": form.region,
        "comment": form.comment.data or None,
    }
    report = _validator().single(item, sender)
    outcome = _store().write(outage().redis, [report])
    metrics.count_reports(outcome.accepted, outcome.duplicates)
    # Redirect after POST: a refresh of the thank-you page does not send the report again.
    where = url_for(
        "pages.thanks",
        slug=slug,
        counted=1 if outcome.accepted else 0,
        problem=report.problem,
        region="" if report.region == GLOBAL else report.region,
    )
    return redirect(where, 303)


@ceiling_bp.post("/api/v1/_ceiling/reports")
def ceiling():
    """The same storage write without validation, limits or GeoIP: the benchmark's ceiling."""
    body = json.loads(request.get_data(cache=False))
    items = body["reports"] if "reports" in body else [body]
    hasher, ip, now = _hasher(), limits.client_ip(), time.time()
    anon = (hasher.anonymous(ip), hasher.network(ip))
    reports = []
    for item in items:
        ident = hasher.partner("ceiling", item["reporter"]) if "reporter" in item else None
        reports.append(
            Report(
                service=item["service"],
                problem=item["problem"],
                region=item.get("region") or GLOBAL,
                at=now,
                reporter=ident or anon[0],
                network=ident or anon[1],
                comment=item.get("comment") or "",
                source="ceiling",
            )
        )
    return _result(_store().write(outage().redis, reports))
