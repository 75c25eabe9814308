"""The OpenAPI 3.1 document served at /api/v1/openapi.json, and summaries for the /api page.

Written by hand, next to the views: a test checks that every /api/v1 route of the app is
described here and that every $ref resolves.
"""

from __future__ import annotations

from typing import Any

from workers import webhooks

VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _nullable(kind: str | list[str], **extra: Any) -> dict[str, Any]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": [*kinds, "null"], **extra}


def _error(description: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{description}"}


NUMBER_OR_NULL = _nullable("number")
TIME = {"type": "string", "format": "date-time", "examples": ["2023-12-21T05:42:00Z"]}
TIME_OR_NULL = _nullable("string", format="date-time")

SHARE = {
    "type": "object",
    "properties": {
        "observed": {"type": "number", "description": "Counted reporters, last 15 minutes."},
        "expected": {"type": "number", "description": "Expected counted reporters."},
        "share": {"type": "number", "description": "Share of the service's reports now."},
        "normal_share": {"type": "number", "description": "Share it normally has."},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid", "not_found"]},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The parameter or field at fault."},
            }}},
    },
    "Level": {"type": "string", "enum": ["ok", "possible", "problems", "outage"],
              "description": "ok: nothing unusual; possible: a significant rise; problems "
                             "and outage: stronger and longer evidence."},
    "StatusSummary": {
        "type": "object",
        "properties": {
            "level": _ref("Level"),
            "baseline": {"type": "string", "enum": ["insufficient_history", "flat", "daily",
                                                    "weekly"],
                         "description": "How much history the expected values rest on."},
            "updated_at": {**TIME_OR_NULL, "description": "End of the last minute detected."},
            "observed": {**NUMBER_OR_NULL,
                         "description": "Counted reporters over the last window_minutes."},
            "expected": {**NUMBER_OR_NULL, "description": "Expected over the same minutes."},
            "ratio": NUMBER_OR_NULL,
            "p_value": {**NUMBER_OR_NULL, "description": "Smallest tail probability of the "
                        "service-wide series over 1, 5 and 15 minutes now."},
            "incident": {**_nullable("string"), "description": "Id of the open incident."},
            "affected_regions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Status": {
        "allOf": [_ref("StatusSummary"), {
            "type": "object",
            "properties": {
                "window_minutes": {"type": "integer"},
                "incident": {"oneOf": [_ref("IncidentCore"), {"type": "null"}]},
                "recent": {"type": "object", "properties": {
                    "start": TIME_OR_NULL,
                    "observed": {"type": "array", "items": NUMBER_OR_NULL},
                    "expected": {"type": "array", "items": NUMBER_OR_NULL}},
                    "description": "Per-minute observed and expected over the last hour."},
                "regions": {"type": "array", "items": {"allOf": [SHARE, {
                    "properties": {"region": {"type": "string"}}}]},
                    "description": "Countries by reports now, with share vs normal."},
                "top_problems": {"type": "array", "items": {"allOf": [SHARE, {
                    "properties": {"problem": {"type": "string"}}}]},
                    "description": "Problems by reports now, with share vs normal."},
            }}],
    },
    "Service": {
        "type": "object", "required": ["slug", "name", "problems"],
        "properties": {
            "slug": {"type": "string", "examples": ["x"]},
            "name": {"type": "string"},
            "category": _nullable("string"),
            "problems": {"type": "array", "items": {"type": "string"}},
            "problem_labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "IncidentCore": {
        "type": "object",
        "description": "The fields of `outage replay` output (DESIGN 3.2) plus the id.",
        "required": ["id", "service", "region", "problem", "started_at", "detected_at",
                     "ended_at", "severity"],
        "properties": {
            "id": {"type": "string", "description": "Deterministic: service and onset."},
            "service": {"type": "string"},
            "region": {"type": "string", "description": "Scope region, * for all."},
            "problem": {"type": "string", "description": "Scope problem, * for all."},
            "started_at": {**TIME, "description": "Estimated onset."},
            "detected_at": {**TIME, "description": "End of the last minute of data seen "
                            "when it was first raised."},
            "ended_at": {**TIME_OR_NULL, "description": "null while open."},
            "severity": {"type": "string", "enum": ["possible", "problems", "outage"]},
            "peak_per_min": {"type": "number"},
            "expected_per_min": {"type": "number"},
            "p_value": {"type": "number"},
            "regions": {"type": "array", "items": {"type": "string"},
                        "description": "Affected regions, most affected first."},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Incident": {
        "allOf": [_ref("IncidentCore"), {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["open", "closed"]},
                "evidence": {"type": "object", "description": "The test that fired, its "
                             "statistic and threshold, window observed/expected, reporter "
                             "and network diversity, region and problem shares."},
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "event": {"type": "string", "enum": list(webhooks.EVENTS)},
                    "at": TIME, "severity": {"type": "string"}}}},
                "updated_at": TIME,
            }}],
    },
    "Series": {
        "type": "object",
        "properties": {
            "service": {"type": "string"}, "region": {"type": "string"},
            "problem": {"type": "string"}, "step": {"type": "integer"},
            "hours": {"type": "integer"}, "start": TIME,
            "end": {**TIME, "description": "Exclusive end (whole buckets only)."},
            "timestamps": {"type": "array", "items": TIME,
                           "description": "Start of each bucket."},
            "reports": {"type": "array", "items": {"type": "number"},
                        "description": "Counted reporters (deduplicated) per bucket."},
            "raw_reports": {"type": "array", "items": {"type": "number"}},
            "expected": {"type": "array", "items": NUMBER_OR_NULL,
                         "description": "Baseline; null while there is not enough history."},
            "upper": {"type": "array", "items": NUMBER_OR_NULL,
                      "description": "Upper band: 99% negative-binomial quantile per minute, "
                      "widths added in quadrature over a bucket."},
        },
    },
    "RegionMap": {
        "type": "object",
        "properties": {
            "service": {"type": "string"}, "level": {"type": "string"},
            "window_minutes": {"type": "integer"}, "start": TIME, "end": TIME,
            "unlocated": {"type": "number", "description": "Reports in the window that "
                          "cannot be placed on this map (unknown region or no subdivision)."},
            "regions": {"type": "array", "items": {"type": "object", "properties": {
                "region": {"type": "string"}, "name": {"type": "string"},
                "observed": {"type": "number"}, "expected": NUMBER_OR_NULL,
                "ratio": NUMBER_OR_NULL}}},
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "delivery": {"type": "string", "description": "Deterministic delivery id."},
            "subscription": {"type": "string"}, "url": _nullable("string"),
            "service": {"type": "string"}, "incident": {"type": "string"},
            "event": {"type": "string", "enum": list(webhooks.EVENTS)},
            "attempt": {"type": "integer", "minimum": 1},
            "outcome": {"type": "string",
                        "enum": ["delivered", "failed", "gave_up", "skipped", "dropped"]},
            "status_code": _nullable("integer"), "error": _nullable("string"),
            "duration_ms": {"type": "number"}, "at": TIME,
        },
    },
    "ReportIn": {
        "type": "object", "required": ["service", "problem"],
        "properties": {
            "service": {"type": "string", "examples": ["x"]},
            "problem": {"type": "string", "examples": ["login"]},
            "region": {"type": "string", "description": "ISO 3166-1 alpha-2 or ISO 3166-2; "
                       "default from the client's IP country, else unknown.",
                       "examples": ["US-CA"]},
            "comment": {"type": "string", "maxLength": 280},
        },
        "additionalProperties": False,
    },
    "PartnerReportIn": {
        "allOf": [_ref("ReportIn"), {"type": "object", "properties": {
            "reporter": {"type": "string", "maxLength": 128,
                         "description": "The partner's opaque user id (deduplication)."},
            "at": {**TIME, "description": "When it was reported; within the last 10 minutes."},
        }}],
    },
    "ReportBatch": {
        "type": "object", "required": ["reports"],
        "properties": {"reports": {"type": "array", "minItems": 1, "maxItems": 1000,
                                   "items": _ref("PartnerReportIn")}},
    },
    "ReportsAccepted": {
        "type": "object", "required": ["accepted", "duplicates"],
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer", "description": "Repeats by the same reporter "
                           "within the deduplication window; not counted again."},
            "rejected": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "error": {"type": "object"}}},
                "description": "Batch items that were not taken (the others were)."},
        },
    },
    "WebhookEvent": {
        "type": "object", "required": ["event", "service", "minute", "incident"],
        "properties": {
            "event": {"type": "string", "enum": list(webhooks.EVENTS)},
            "service": {"type": "string"},
            "minute": {**TIME, "description": "The minute whose data caused the event."},
            "incident": _ref("Incident"),
        },
    },
}

ERRORS = {
    "NotFound": _json(_ref("Error"), "Unknown service or path."),
    "Invalid": _json(_ref("Error"), "A parameter is invalid; `field` names it."),
    "Unavailable": {**_json(_ref("Error"), "Redis is unreachable; retry after the delay."),
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    "NotModified": {"description": "The ETag in If-None-Match still matches."},
}

GET_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "Hash of the body."},
    "Cache-Control": {"schema": {"type": "string"}, "examples": {"five": {
        "value": "public, max-age=5"}}},
}


def _param(name: str, where: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": description}


SLUG = _param("slug", "path", {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
              "Service slug, e.g. `x`.")
ETAG = _param("If-None-Match", "header", {"type": "string"},
              "An ETag from an earlier answer: 304 if nothing changed.")


def _get(summary: str, description: str, schema: dict[str, Any], *params: dict[str, Any],
         tag: str = "detection", errors: tuple[str, ...] = ("Invalid",)) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {**_json(schema, "OK"), "headers": GET_HEADERS},
                                 "304": _error("NotModified")}
    for name in errors:
        responses["404" if name == "NotFound" else "422"] = _error(name)
    responses["503"] = _error("Unavailable")
    return {"get": {"summary": summary, "description": description, "tags": [tag],
                    "parameters": [*params, ETAG], "responses": responses}}


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the HTTP API."""
    hours = _param("hours", "query", {"type": "integer", "minimum": 1, "maximum": 168,
                                      "default": 24},
                   "Window length, hours (capped by OUTAGE_RETENTION_DAYS).")
    region = _param("region", "query", {"type": "string", "examples": ["US", "US-CA"]},
                    "ISO 3166 code; a country includes its subdivisions. Empty or * = all.")
    problem = _param("problem", "query", {"type": "string"},
                     "A problem slug of the service. Empty or * = all problems.")
    step = _param("step", "query", {"type": "integer", "enum": [1, 2, 3, 4, 5, 6, 10, 12, 15,
                                                               20, 30, 60]},
                  "Bucket width, minutes; default 1 up to 24 hours, else 15.")
    paths: dict[str, Any] = {
        "/api/v1/reports": {"post": {
            "summary": "Submit a report, or a batch of reports",
            "description": "A single report from anyone (rate-limited per client IP), or "
                           "`{\"reports\": [...]}` up to 1000 items with an API key. The "
                           "answer comes only after the reports are stored. One counted "
                           "report per reporter and service per deduplication window.",
            "tags": ["reports"],
            "parameters": [_param("Authorization", "header", {"type": "string"},
                                  "`Bearer <API key>`; required for batches.")],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"oneOf": [_ref("ReportIn"), _ref("ReportBatch")]}}}},
            "responses": {
                "202": _json(_ref("ReportsAccepted"), "Stored (or recognised as a repeat)."),
                "400": _json(_ref("Error"), "Malformed JSON."),
                "401": _json(_ref("Error"), "Batch without a valid API key."),
                "404": _error("NotFound"),
                "413": _json(_ref("Error"), "Body over 1 MB or more than 1000 items."),
                "415": _json(_ref("Error"), "Not application/json."),
                "422": _error("Invalid"),
                "429": {**_json(_ref("Error"), "Rate limit reached."),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                "503": _error("Unavailable"),
            }}},
        "/api/v1/services": _get(
            "List services with their current level",
            "Every catalog service (then services known only from loaded data) with the "
            "short status: level, observed vs expected over 15 minutes, p-value, open "
            "incident id and affected regions.",
            {"type": "object", "properties": {"services": {"type": "array", "items": {
                "allOf": [_ref("Service"), {"type": "object", "properties": {
                    "status": _ref("StatusSummary")}}]}}}}, errors=()),
        "/api/v1/services/{slug}": _get(
            "One service's current status",
            "Level, observed vs expected, p-value, the open incident, affected regions, "
            "countries and top problems with their shares vs normal, and the last hour "
            "minute by minute.",
            {"allOf": [_ref("Service"), {"type": "object", "properties": {
                "status": _ref("Status")}}]}, SLUG, errors=("NotFound",)),
        "/api/v1/services/{slug}/series": _get(
            "Reports, baseline and upper band for charts",
            "Counted reporters per bucket for a scope (service-wide, a country with its "
            "subdivisions, a subdivision; all problems or one), the expected baseline and "
            "its upper band from the live detector. The current, incomplete bucket is "
            "left out.", _ref("Series"), SLUG, hours, region, problem, step,
            errors=("NotFound", "Invalid")),
        "/api/v1/services/{slug}/map": _get(
            "Observed vs expected per region", "Counted reporters in the last 15 complete "
            "minutes, expected and their ratio, per country (`level=country`) or per "
            "subdivision of one country (`level=US`, any ISO alpha-2 code).",
            _ref("RegionMap"), SLUG,
            _param("level", "query", {"type": "string", "default": "country",
                                      "examples": ["country", "US"]},
                   "`country`, or a country code for its subdivisions."),
            errors=("NotFound", "Invalid")),
        "/api/v1/incidents": _get(
            "Incidents, newest first",
            "Incidents as in `outage replay` output plus id, status, evidence and their "
            "lifecycle events.",
            {"type": "object", "properties": {
                "incidents": {"type": "array", "items": _ref("Incident")},
                "count": {"type": "integer"}}},
            _param("active", "query", {"type": "string", "enum": ["1", "0", "true", "false"]},
                   "1: open incidents only; 0: closed only; absent: both."),
            _param("service", "query", {"type": "string"}, "Only this service."),
            _param("since", "query", {"type": "string"},
                   "ISO 8601 time or unix seconds: incidents open then or ending after."),
            _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000,
                                      "default": 100}, "Most incidents returned."),
            errors=("NotFound", "Invalid")),
        "/api/v1/webhooks/deliveries": _get(
            "Recent webhook delivery attempts",
            "One entry per attempt, newest first, and the configured subscriptions (URLs "
            "without credentials or query strings).",
            {"type": "object", "properties": {
                "subscriptions": {"type": "array", "items": {"type": "object"}},
                "deliveries": {"type": "array", "items": _ref("Delivery")},
                "count": {"type": "integer"}}},
            _param("service", "query", {"type": "string"}, "Only this service."),
            _param("incident", "query", {"type": "string"}, "Only this incident id."),
            _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000},
                   "Most attempts returned."), tag="webhooks"),
        "/api/v1/openapi.json": _get("This document", "The OpenAPI 3.1 description.",
                                     {"type": "object"}, tag="meta", errors=()),
        "/healthz": {"get": {"summary": "Liveness", "tags": ["meta"],
                             "description": "The web process answers.", "responses": {
                                 "200": _json({"type": "object"}, "Alive.")}}},
        "/readyz": {"get": {"summary": "Readiness", "tags": ["meta"],
                            "description": "Redis is reachable, so reports can be taken.",
                            "responses": {"200": _json({"type": "object"}, "Ready."),
                                          "503": _error("Unavailable")}}},
    }
    hook_headers = {
        "X-Outage-Timestamp": {"schema": {"type": "string"},
                               "description": "Unix seconds when the POST was signed."},
        "X-Outage-Signature": {"schema": {"type": "string"}, "description":
                               "`sha256=` + hex HMAC-SHA256(secret, timestamp + '.' + "
                               "raw body). Reject if it does not match or the timestamp is "
                               f"more than {webhooks.SIGNATURE_TOLERANCE} s off."},
        "X-Outage-Delivery": {"schema": {"type": "string"}, "description": "Id of this "
                              "delivery, the same on every retry: deduplicate on it."},
        "X-Outage-Event": {"schema": {"type": "string", "enum": list(webhooks.EVENTS)},
                           "description": "The event, as in the body."},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Outage detector API", "version": VERSION,
                 "description": "Crowd reports in; live outage levels, incidents, chart "
                                "series and region maps out. Every GET sends an ETag and "
                                "answers If-None-Match with 304. Errors are "
                                "`{\"error\": {\"code\", \"message\", \"field\"?}}`."},
        "servers": [{"url": "/"}],
        "tags": [{"name": "reports"}, {"name": "detection"}, {"name": "webhooks"},
                 {"name": "meta"}],
        "paths": paths,
        "webhooks": {"incident": {"post": {
            "summary": "Incident opened, escalated, closed or reopened",
            "description": "POSTed to each configured subscription (OUTAGE_WEBHOOKS) "
                           "whose `services` list is empty or names the service. Retried "
                           "after 10 s, 30 s, 1 min, 5 min and 15 min until a 2xx.",
            "parameters": [_param(n, "header", h["schema"], h["description"], True)
                           for n, h in hook_headers.items()],
            "requestBody": {"content": {"application/json": {"schema": _ref("WebhookEvent")}}},
            "responses": {"200": {"description": "Any 2xx acknowledges the delivery."}}}}},
        "components": {"schemas": SCHEMAS, "responses": ERRORS},
    }


def endpoint_summaries() -> list[dict[str, str]]:
    """Return method, path, summary and description of every operation, for the /api page."""
    out = []
    for path, item in document()["paths"].items():
        for method, op in item.items():
            out.append({"method": method.upper(), "path": path, "summary": op["summary"],
                        "description": op.get("description", "")})
    return out
