"""The gateway's OpenAPI 3.0 document, written by hand so it says what the gateway really accepts
(any provider payload, unvalidated, as Keep does). Served at /openapi.json and kept in
docs/ingest-openapi.json:

    python -m farm.ingest.openapi docs/ingest-openapi.json

(tests/test_ingest_openapi.py checks that the file is current).
"""

from __future__ import annotations

import sys

import orjson

from farm.wire import PROVIDERS


def _error(description: str, headers: tuple[str, ...] = ()) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")

_ERRORS = {
    "400": _error("The body is not JSON (or a form), is not an object or a list of objects, is "
                  "nested too deep or holds too many items, or the provider type is unknown."),
    "401": _error("No API key, or one that no tenant owns."),
    "413": _error("The body is larger than [ingest] max_body."),
    "429": _error("Rate limit of the tenant and provider exceeded, or the farm is behind "
                  "(queue backlog above [ingest] high_water).", ("Retry-After", *RATE_HEADERS)),
    "503": _error("The alerts could not be stored (Redis unreachable) or the gateway is "
                  "overloaded; nothing was kept.", ("Retry-After",)),
}

_QUERY = [
    {"name": "provider_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Keep's provider id; carried in the batch envelope."},
    {"name": "fingerprint", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Overrides the fingerprint of the alerts (Keep semantics); carried in the "
                    "batch envelope."},
]

_ACCEPTED = {
    "description": "Stored in Redis: the events are in the named batch.",
    "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_HEADERS},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
}


def document() -> dict:
    """The OpenAPI document (a fresh dict each call)."""
    events_body = {"oneOf": [{"$ref": "#/components/schemas/Event"},
                             {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}]}
    form = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "farm ingest gateway",
            "version": "1",
            "description": "Keep-compatible webhooks in, 202 out. A request is answered 202 "
                           "only after its events are in Redis, as part of the named batch. "
                           "Every error has a JSON body with one `detail` line.",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"Basic": []}, {"Bearer": []}],
        "paths": {
            "/alerts/event": {"post": {
                "operationId": "postGenericEvent",
                "summary": "Keep's generic AlertDto, or a list of them (one event per item).",
                "parameters": _QUERY,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": events_body}}},
                "responses": {"202": _ACCEPTED, **_ERRORS},
            }},
            "/alerts/event/{provider_type}": {"post": {
                "operationId": "postProviderEvent",
                "summary": "A provider's webhook payload, exactly as the provider sends it.",
                "parameters": [
                    {"name": "provider_type", "in": "path", "required": True,
                     "schema": {"type": "string", "enum": list(PROVIDERS)},
                     "description": "prometheus is Alertmanager's webhook (v4)."},
                    *_QUERY,
                ],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": events_body},
                    "application/x-www-form-urlencoded": {"schema": form},
                    "multipart/form-data": {"schema": form},
                }},
                "responses": {"202": _ACCEPTED, **_ERRORS},
            }},
            "/healthz": {"get": {
                "operationId": "healthz",
                "summary": "Whether this gateway can reach Redis, and its backpressure state.",
                "security": [],
                "responses": {
                    "200": {"description": "Healthy.", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "Redis cannot be reached.", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                },
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document.", "content": {
                    "application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
                "Basic": {"type": "http", "scheme": "basic",
                          "description": "Any user name (Alertmanager uses api_key); the "
                                         "password is the key."},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "headers": {
                "Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}},
                "RateLimit-Limit": {"description": "Requests the bucket holds (burst).",
                                    "schema": {"type": "integer"}},
                "RateLimit-Remaining": {"description": "Requests left in the bucket.",
                                        "schema": {"type": "integer"}},
                "RateLimit-Reset": {"description": "Seconds until the bucket is full again.",
                                    "schema": {"type": "integer"}},
                "RateLimit-Policy": {"description": "Burst and window, e.g. 2000;w=1.",
                                     "schema": {"type": "string"}},
            },
            "schemas": {
                "Event": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "One provider event as the provider sends it: an "
                                   "Alertmanager or Grafana webhook, a Datadog or Zabbix "
                                   "notification, or a Keep AlertDto. Not validated here; "
                                   "workers normalize it and dead-letter what they cannot read.",
                    "example": {"name": "Payments DB connection pool exhausted",
                                "status": "firing", "severity": "critical",
                                "service": "payments", "labels": {"cluster": "eu-1"}},
                },
                "Accepted": {
                    "type": "object",
                    "required": ["batch", "events", "task_name"],
                    "properties": {
                        "batch": {"type": "string", "nullable": True,
                                  "description": "Id of the wire batch holding the events "
                                                 "(null for an empty list)."},
                        "events": {"type": "integer", "minimum": 0},
                        "task_name": {"type": "string", "nullable": True,
                                      "description": "The batch id again, where Keep "
                                                     "returns its task name."},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["detail"],
                    "properties": {"detail": {"type": "string"}},
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "backpressure"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unhealthy"]},
                        "backpressure": {"type": "boolean"},
                        "backlog": {"type": "object", "nullable": True},
                        "inflight": {
                            "type": "object",
                            "description": "What this process holds now: requests, and bytes "
                                           "of their bodies ([ingest] max_inflight, "
                                           "max_inflight_bytes).",
                            "properties": {"requests": {"type": "integer"},
                                           "bytes": {"type": "integer"}}},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    }


def render() -> bytes:
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m farm.ingest.openapi OUTPUT.json")
    with open(sys.argv[1], "wb") as fh:
        fh.write(render())
