"""The OpenAPI 3.1 document served at /api/v1/openapi.json, and summaries for the /api page.

Written by hand, next to the views: a test checks that every /api/v1 route of the app is
described here and that every $ref resolves.
"""

from __future__ import annotations

from typing import Any

from store import webhooks
from web.openapi_schemas import (
    ERRORS,
    GET_HEADERS,
    SCHEMAS,
    error_ref,
    json_content,
    ref,
)

VERSION = "1.0.0"


def _param(
    name: str, where: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": description,
    }


SLUG = _param(
    "slug",
    "path",
    {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
    "Service slug, e.g. `x`.",
)
ETAG = _param(
    "If-None-Match",
    "header",
    {"type": "string"},
    "An ETag from an earlier answer: 304 if nothing changed.",
)


def _get(
    summary: str,
    description: str,
    schema: dict[str, Any],
    *params: dict[str, Any],
    tag: str = "detection",
    errors: tuple[str, ...] = ("Invalid",),
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {**json_content(schema, "OK"), "headers": GET_HEADERS},
        "304": error_ref("NotModified"),
    }
    for name in errors:
        responses["404" if name == "NotFound" else "422"] = error_ref(name)
    responses["503"] = error_ref("Unavailable")
    return {
        "get": {
            "summary": summary,
            "description": description,
            "tags": [tag],
            "parameters": [*params, ETAG],
            "responses": responses,
        }
    }


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the HTTP API."""
    hours = _param(
        "hours",
        "query",
        {"type": "integer", "minimum": 1, "maximum": 168, "default": 24},
        "Window length, hours (capped by OUTAGE_RETENTION_DAYS).",
    )
    region = _param(
        "region",
        "query",
        {"type": "string", "examples": ["US", "US-CA"]},
        "ISO 3166 code; a country includes its subdivisions. Empty or * = all.",
    )
    problem = _param(
        "problem",
        "query",
        {"type": "string"},
        "A problem slug of the service. Empty or * = all problems.",
    )
    step = _param(
        "step",
        "query",
        {"type": "integer", "enum": [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]},
        "Bucket width, minutes; default 1 up to 24 hours, else 15.",
    )
    paths: dict[str, Any] = {
        "/api/v1/reports": {
            "post": {
                "summary": "Submit a report, or a batch of reports",
                "description": "A single report from anyone (rate-limited per client IP), or "
                '`{"reports": [...]}` up to 1000 items with an API key. The '
                "answer comes only after the reports are stored. One counted "
                "report per reporter and service per deduplication window.",
                "tags": ["reports"],
                "parameters": [
                    _param(
                        "Authorization",
                        "header",
                        {"type": "string"},
                        "`Bearer <API key>`; required for batches.",
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [ref("ReportIn"), ref("ReportBatch")]}
                        }
                    },
                },
                "responses": {
                    "202": json_content(
                        ref("ReportsAccepted"), "Stored (or recognised as a repeat)."
                    ),
                    "400": json_content(ref("Error"), "Malformed JSON."),
                    "401": json_content(ref("Error"), "Batch without a valid API key."),
                    "404": error_ref("NotFound"),
                    "413": json_content(ref("Error"), "Body over 1 MB or more than 1000 items."),
                    "415": json_content(ref("Error"), "Not application/json."),
                    "422": error_ref("Invalid"),
                    "429": {
                        **json_content(ref("Error"), "Rate limit reached."),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    },
                    "503": error_ref("Unavailable"),
                },
            }
        },
        "/api/v1/services": _get(
            "List services with their current level",
            "Every catalog service (then services known only from loaded data) with the "
            "short status: level, observed vs expected over 15 minutes, p-value, open "
            "incident id and affected regions.",
            {
                "type": "object",
                "properties": {
                    "services": {
                        "type": "array",
                        "items": {
                            "allOf": [
                                ref("Service"),
                                {"type": "object", "properties": {"status": ref("StatusSummary")}},
                            ]
                        },
                    }
                },
            },
            errors=(),
        ),
        "/api/v1/services/{slug}": _get(
            "One service's current status",
            "Level, observed vs expected, p-value, the open incident, affected regions, "
            "countries and top problems with their shares vs normal, and the last hour "
            "minute by minute.",
            {
                "allOf": [
                    ref("Service"),
                    {"type": "object", "properties": {"status": ref("Status")}},
                ]
            },
            SLUG,
            errors=("NotFound",),
        ),
        "/api/v1/services/{slug}/series": _get(
            "Reports, baseline and upper band for charts",
            "Counted reporters per bucket for a scope (service-wide, a country with its "
            "subdivisions, a subdivision; all problems or one), the expected baseline and "
            "its upper band from the live detector. The current, incomplete bucket is "
            "left out.",
            ref("Series"),
            SLUG,
            hours,
            region,
            problem,
            step,
            errors=("NotFound", "Invalid"),
        ),
        "/api/v1/services/{slug}/map": _get(
            "Observed vs expected per region",
            "Counted reporters in the last 15 complete "
            "minutes, expected and their ratio, per country (`level=country`) or per "
            "subdivision of one country (`level=US`, any ISO alpha-2 code).",
            ref("RegionMap"),
            SLUG,
            _param(
                "level",
                "query",
                {"type": "string", "default": "country", "examples": ["country", "US"]},
                "`country`, or a country code for its subdivisions.",
            ),
            errors=("NotFound", "Invalid"),
        ),
        "/api/v1/incidents": _get(
            "Incidents, newest first",
            "Incidents as in `outage replay` output plus id, status, evidence and their "
            "lifecycle events.",
            {
                "type": "object",
                "properties": {
                    "incidents": {"type": "array", "items": ref("Incident")},
                    "count": {"type": "integer"},
                },
            },
            _param(
                "active",
                "query",
                {"type": "string", "enum": ["1", "0", "true", "false"]},
                "1: open incidents only; 0: closed only; absent: both.",
            ),
            _param("service", "query", {"type": "string"}, "Only this service."),
            _param(
                "since",
                "query",
                {"type": "string"},
                "ISO 8601 time or unix seconds: incidents open then or ending after.",
            ),
            _param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "Most incidents returned.",
            ),
            errors=("NotFound", "Invalid"),
        ),
        "/api/v1/webhooks/deliveries": _get(
            "Recent webhook delivery attempts",
            "One entry per attempt, newest first, and the configured subscriptions (URLs "
            "without credentials or query strings).",
            {
                "type": "object",
                "properties": {
                    "subscriptions": {"type": "array", "items": {"type": "object"}},
                    "deliveries": {"type": "array", "items": ref("Delivery")},
                    "count": {"type": "integer"},
                },
            },
            _param("service", "query", {"type": "string"}, "Only this service."),
            _param("incident", "query", {"type": "string"}, "Only this incident id."),
            _param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                "Most attempts returned.",
            ),
            tag="webhooks",
        ),
        "/api/v1/openapi.json": _get(
            "This document",
            "The OpenAPI 3.1 description.",
            {"type": "object"},
            tag="meta",
            errors=(),
        ),
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "tags": ["meta"],
                "description": "The web process answers.",
                "responses": {"200": json_content({"type": "object"}, "Alive.")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness",
                "tags": ["meta"],
                "description": "Redis is reachable, so reports can be taken.",
                "responses": {
                    "200": json_content({"type": "object"}, "Ready."),
                    "503": error_ref("Unavailable"),
                },
            }
        },
    }
    hook_headers: dict[str, dict[str, Any]] = {
        "X-Outage-Timestamp": {
            "schema": {"type": "string"},
            "description": "Unix seconds when the POST was signed.",
        },
        "X-Outage-Signature": {
            "schema": {"type": "string"},
            "description": "`sha256=` + hex HMAC-SHA256(secret, timestamp + '.' + "
            "raw body). Reject if it does not match or the timestamp is "
            f"more than {webhooks.SIGNATURE_TOLERANCE} s off.",
        },
        "X-Outage-Delivery": {
            "schema": {"type": "string"},
            "description": "Id of this delivery, the same on every retry: deduplicate on it.",
        },
        "X-Outage-Event": {
            "schema": {"type": "string", "enum": list(webhooks.EVENTS)},
            "description": "The event, as in the body.",
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outage detector API",
            "version": VERSION,
            "description": "Crowd reports in; live outage levels, incidents, chart "
            "series and region maps out. Every GET sends an ETag and "
            "answers If-None-Match with 304. Errors are "
            '`{"error": {"code", "message", "field"?}}`.',
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "reports"},
            {"name": "detection"},
            {"name": "webhooks"},
            {"name": "meta"},
        ],
        "paths": paths,
        "webhooks": {
            "incident": {
                "post": {
                    "summary": "Incident opened, escalated, closed or reopened",
                    "description": "POSTed to each configured subscription (OUTAGE_WEBHOOKS) "
                    "whose `services` list is empty or names the service. Retried "
                    "after 10 s, 30 s, 1 min, 5 min and 15 min until a 2xx.",
                    "parameters": [
                        _param(n, "header", h["schema"], h["description"], True)
                        for n, h in hook_headers.items()
                    ],
                    "requestBody": {
                        "content": {"application/json": {"schema": ref("WebhookEvent")}}
                    },
                    "responses": {"200": {"description": "Any 2xx acknowledges the delivery."}},
                }
            }
        },
        "components": {"schemas": SCHEMAS, "responses": ERRORS},
    }


def endpoint_summaries() -> list[dict[str, str]]:
    """Return method, path, summary and description of every operation, for the /api page."""
    out = []
    for path, item in document()["paths"].items():
        for method, op in item.items():
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op.get("description", ""),
                }
            )
    return out
