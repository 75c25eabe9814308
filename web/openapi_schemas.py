"""Component schemas, shared responses and helpers of the OpenAPI document (web/openapi.py).

Written by hand, next to the views; web/openapi.py assembles the paths around them.
"""

from __future__ import annotations

from typing import Any

from store import webhooks


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def nullable(kind: str | list[str], **extra: Any) -> dict[str, Any]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": [*kinds, "null"], **extra}


def error_ref(description: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{description}"}


NUMBER_OR_NULL = nullable("number")
TIME = {"type": "string", "format": "date-time", "examples": ["2023-12-21T05:42:00Z"]}
TIME_OR_NULL = nullable("string", format="date-time")

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
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid", "not_found"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The parameter or field at fault."},
                },
            }
        },
    },
    "Level": {
        "type": "string",
        "enum": ["ok", "possible", "problems", "outage"],
        "description": "ok: nothing unusual; possible: a significant rise; problems "
        "and outage: stronger and longer evidence.",
    },
    "StatusSummary": {
        "type": "object",
        "properties": {
            "level": ref("Level"),
            "baseline": {
                "type": "string",
                "enum": ["insufficient_history", "flat", "daily", "weekly"],
                "description": "How much history the expected values rest on.",
            },
            "updated_at": {**TIME_OR_NULL, "description": "End of the last minute detected."},
            "observed": {
                **NUMBER_OR_NULL,
                "description": "Counted reporters over the last window_minutes.",
            },
            "expected": {**NUMBER_OR_NULL, "description": "Expected over the same minutes."},
            "ratio": NUMBER_OR_NULL,
            "p_value": {
                **NUMBER_OR_NULL,
                "description": "Smallest tail probability of the "
                "service-wide series over 1, 5 and 15 minutes now.",
            },
            "incident": {**nullable("string"), "description": "Id of the open incident."},
            "affected_regions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Status": {
        "allOf": [
            ref("StatusSummary"),
            {
                "type": "object",
                "properties": {
                    "window_minutes": {"type": "integer"},
                    "incident": {"oneOf": [ref("IncidentCore"), {"type": "null"}]},
                    "recent": {
                        "type": "object",
                        "properties": {
                            "start": TIME_OR_NULL,
                            "observed": {"type": "array", "items": NUMBER_OR_NULL},
                            "expected": {"type": "array", "items": NUMBER_OR_NULL},
                        },
                        "description": "Per-minute observed and expected over the last hour.",
                    },
                    "regions": {
                        "type": "array",
                        "items": {"allOf": [SHARE, {"properties": {"region": {"type": "string"}}}]},
                        "description": "Countries by reports now, with share vs normal.",
                    },
                    "top_problems": {
                        "type": "array",
                        "items": {
                            "allOf": [SHARE, {"properties": {"problem": {"type": "string"}}}]
                        },
                        "description": "Problems by reports now, with share vs normal.",
                    },
                },
            },
        ],
    },
    "Service": {
        "type": "object",
        "required": ["slug", "name", "problems"],
        "properties": {
            "slug": {"type": "string", "examples": ["x"]},
            "name": {"type": "string"},
            "category": nullable("string"),
            "problems": {"type": "array", "items": {"type": "string"}},
            "problem_labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "IncidentCore": {
        "type": "object",
        "description": "The fields of `outage replay` output (DESIGN 3.2) plus the id.",
        "required": [
            "id",
            "service",
            "region",
            "problem",
            "started_at",
            "detected_at",
            "ended_at",
            "severity",
        ],
        "properties": {
            "id": {"type": "string", "description": "Deterministic: service and onset."},
            "service": {"type": "string"},
            "region": {"type": "string", "description": "Scope region, * for all."},
            "problem": {"type": "string", "description": "Scope problem, * for all."},
            "started_at": {**TIME, "description": "Estimated onset."},
            "detected_at": {
                **TIME,
                "description": "End of the last minute of data seen when it was first raised.",
            },
            "ended_at": {**TIME_OR_NULL, "description": "null while open."},
            "severity": {"type": "string", "enum": ["possible", "problems", "outage"]},
            "peak_per_min": {"type": "number"},
            "expected_per_min": {"type": "number"},
            "p_value": {"type": "number"},
            "regions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Affected regions, most affected first.",
            },
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Incident": {
        "allOf": [
            ref("IncidentCore"),
            {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["open", "closed"]},
                    "evidence": {
                        "type": "object",
                        "description": "The test that fired, its "
                        "statistic and threshold, window observed/expected, reporter "
                        "and network diversity, region and problem shares.",
                    },
                    "events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "event": {"type": "string", "enum": list(webhooks.EVENTS)},
                                "at": TIME,
                                "severity": {"type": "string"},
                            },
                        },
                    },
                    "updated_at": TIME,
                },
            },
        ],
    },
    "Series": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "region": {"type": "string"},
            "problem": {"type": "string"},
            "step": {"type": "integer"},
            "hours": {"type": "integer"},
            "start": TIME,
            "end": {**TIME, "description": "Exclusive end (whole buckets only)."},
            "timestamps": {"type": "array", "items": TIME, "description": "Start of each bucket."},
            "reports": {
                "type": "array",
                "items": {"type": "number"},
                "description": "Counted reporters (deduplicated) per bucket.",
            },
            "raw_reports": {"type": "array", "items": {"type": "number"}},
            "expected": {
                "type": "array",
                "items": NUMBER_OR_NULL,
                "description": "Baseline; null while there is not enough history.",
            },
            "upper": {
                "type": "array",
                "items": NUMBER_OR_NULL,
                "description": "Upper band: 99% negative-binomial quantile per minute, "
                "widths added in quadrature over a bucket.",
            },
        },
    },
    "RegionMap": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "level": {"type": "string"},
            "window_minutes": {"type": "integer"},
            "start": TIME,
            "end": TIME,
            "unlocated": {
                "type": "number",
                "description": "Reports in the window that "
                "cannot be placed on this map (unknown region or no subdivision).",
            },
            "regions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "region": {"type": "string"},
                        "name": {"type": "string"},
                        "observed": {"type": "number"},
                        "expected": NUMBER_OR_NULL,
                        "ratio": NUMBER_OR_NULL,
                    },
                },
            },
        },
    },
    "Delivery": {
        "type": "object",
        "properties": {
            "delivery": {"type": "string", "description": "Deterministic delivery id."},
            "subscription": {"type": "string"},
            "url": nullable("string"),
            "service": {"type": "string"},
            "incident": {"type": "string"},
            "event": {"type": "string", "enum": list(webhooks.EVENTS)},
            "attempt": {"type": "integer", "minimum": 1},
            "outcome": {
                "type": "string",
                "enum": ["delivered", "failed", "gave_up", "skipped", "dropped"],
            },
            "status_code": nullable("integer"),
            "error": nullable("string"),
            "duration_ms": {"type": "number"},
            "at": TIME,
        },
    },
    "ReportIn": {
        "type": "object",
        "required": ["service", "problem"],
        "properties": {
            "service": {"type": "string", "examples": ["x"]},
            "problem": {"type": "string", "examples": ["login"]},
            "region": {
                "type": "string",
                "description": "ISO 3166-1 alpha-2 or ISO 3166-2; "
                "default from the client's IP country, else unknown.",
                "examples": ["US-CA"],
            },
            "comment": {"type": "string", "maxLength": 280},
        },
        "additionalProperties": False,
    },
    "PartnerReportIn": {
        "allOf": [
            ref("ReportIn"),
            {
                "type": "object",
                "properties": {
                    "reporter": {
                        "type": "string",
                        "maxLength": 128,
                        "description": "The partner's opaque user id (deduplication).",
                    },
                    "at": {
                        **TIME,
                        "description": "When it was reported; within the last 10 minutes.",
                    },
                },
            },
        ],
    },
    "ReportBatch": {
        "type": "object",
        "required": ["reports"],
        "properties": {
            "reports": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": ref("PartnerReportIn"),
            }
        },
    },
    "ReportsAccepted": {
        "type": "object",
        "required": ["accepted", "duplicates"],
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {
                "type": "integer",
                "description": "Repeats by the same reporter "
                "within the deduplication window; not counted again.",
            },
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"index": {"type": "integer"}, "error": {"type": "object"}},
                },
                "description": "Batch items that were not taken (the others were).",
            },
        },
    },
    "WebhookEvent": {
        "type": "object",
        "required": ["event", "service", "minute", "incident"],
        "properties": {
            "event": {"type": "string", "enum": list(webhooks.EVENTS)},
            "service": {"type": "string"},
            "minute": {**TIME, "description": "The minute whose data caused the event."},
            "incident": ref("Incident"),
        },
    },
}

ERRORS = {
    "NotFound": json_content(ref("Error"), "Unknown service or path."),
    "Invalid": json_content(ref("Error"), "A parameter is invalid; `field` names it."),
    "Unavailable": {
        **json_content(ref("Error"), "Redis is unreachable; retry after the delay."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "NotModified": {"description": "The ETag in If-None-Match still matches."},
}

GET_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "Hash of the body."},
    "Cache-Control": {
        "schema": {"type": "string"},
        "examples": {"five": {"value": "public, max-age=5"}},
    },
}
