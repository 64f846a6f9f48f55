"""The OpenAPI 3.1 description served at ``/openapi.json``.

Written by hand next to the views it describes; ``tests/api`` checks it against the
app's routes and fuzzes the app with schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from ..core.events import Status
from ..core.session import MAX_TEXT

NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_STRING = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before asking again", "schema": {"type": "string"}}
}
UNAUTHORIZED = {"401": {"$ref": "#/components/responses/Unauthorized"}}
BODY_ERRORS = {
    "400": _error("the body is not a JSON object or a field is invalid (`field` names it)"),
    "413": _error("the body is larger than 1 MiB"),
    "415": _error("the body is not JSON (Content-Type must be application/json)"),
}


STORAGE_UNAVAILABLE = {
    "503": {
        **_error("the message store cannot be read or written right now (`storage` says why); try again"),
        "headers": RETRY_AFTER,
    }
}


def _op(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**STORAGE_UNAVAILABLE, **responses, **UNAUTHORIZED}, **more}


def _body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(schema), "example": example}},
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "machine-readable code, e.g. invalid_request"},
            "message": {"type": "string", "description": "what went wrong, for a person"},
            "field": {"type": "string", "description": "the request field at fault (400, 409)"},
            "state": {"type": "string", "description": "the session state (409, 503)"},
            "reason": {"type": ["string", "null"]},
            "id": {"type": "string", "description": "the message an idempotency key belongs to (409)"},
            "storage": {
                "enum": ["locked", "full", "io", "damaged"],
                "description": "503/507 storage_unavailable, storage_full: what is wrong with the store",
            },
        },
    },
    "SessionStatus": {"type": "string", "enum": [s.value for s in Status]},
    "Account": {
        "type": "object",
        "required": ["jid", "phone", "push_name"],
        "properties": {
            "jid": {"type": "string", "example": "4915123456789@s.whatsapp.net"},
            "phone": {"type": "string", "example": "+4915123456789"},
            "push_name": {"type": "string"},
        },
    },
    "State": {
        "type": "object",
        "required": ["state", "since", "description"],
        "properties": {
            "state": _ref("SessionStatus"),
            "since": {"type": "number", "description": "unix time the state began"},
            "description": {"type": "string"},
            "qr_available": {"type": "boolean", "description": "waiting_for_scan: a QR code can be fetched"},
            "qr_expires_at": NULLABLE_NUMBER,
            "account": _ref("Account"),
            "attempt": {"type": "integer", "description": "reconnecting: attempt number"},
            "next_try_at": NULLABLE_NUMBER,
            "reason": {"type": "string"},
        },
    },
    "Status": {
        "allOf": [
            _ref("State"),
            {
                "type": "object",
                "required": ["outbox_depth", "webhook_backlog", "reconnects", "version", "uptime"],
                "properties": {
                    "outbox_depth": {"type": "integer", "minimum": 0},
                    "storage": _ref("Storage"),
                    "healthy": {"type": "boolean", "description": "false once a core thread has died"},
                    "webhook_backlog": {"type": "integer", "minimum": 0},
                    "reconnects": {"type": "integer", "minimum": 0},
                    "version": {"type": "string"},
                    "uptime": {"type": "number", "minimum": 0},
                },
            },
        ]
    },
    "Storage": {
        "type": "object",
        "required": ["available", "kind", "reason", "since", "failures"],
        "properties": {
            "available": {"type": "boolean", "description": "the last write to the store worked"},
            "kind": {"enum": ["locked", "full", "io", "damaged", None]},
            "reason": NULLABLE_STRING,
            "since": NULLABLE_NUMBER,
            "failures": {
                "type": "integer",
                "minimum": 0,
                "description": "failed store operations since start",
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "state"],
        "properties": {
            "status": {"enum": ["ok", "failed"]},
            "state": _ref("SessionStatus"),
            "reason": {"type": "string", "description": "failed: which core thread died and why"},
        },
    },
    "Ready": {
        "type": "object",
        "required": ["ready", "state", "description"],
        "properties": {
            "ready": {"type": "boolean"},
            "state": _ref("SessionStatus"),
            "description": {"type": "string"},
            "reason": {"type": "string", "description": "503: why not ready (storage_unavailable: …)"},
            "storage": {"enum": ["locked", "full", "io", "damaged"]},
        },
    },
    "SendRequest": {
        "type": "object",
        "required": ["to", "text"],
        "additionalProperties": False,
        "properties": {
            "to": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "international phone number (+49 151 2345 6789, 004915123456789, "
                "4915123456789), user JID (…@s.whatsapp.net) or group JID (…@g.us)",
            },
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TEXT,
                "pattern": "\\S",
                "description": "1 to 65,536 characters, not only white space",
            },
            "idempotency_key": {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": 255,
                "pattern": "^[\\x21-\\x7e]+$",
                "description": "same as the Idempotency-Key header (they must agree if both are given); "
                "null is the same as leaving it out",
            },
        },
    },
    "SendAccepted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"const": "queued"}},
    },
    "Message": {
        "type": "object",
        "required": ["id", "direction", "text", "status", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "direction": {"enum": ["out", "in"]},
            "to": {"type": "string", "description": "out: the recipient's JID"},
            "chat": {"type": "string", "description": "in: the chat's JID"},
            "sender": NULLABLE_STRING,
            "push_name": NULLABLE_STRING,
            "text": {"type": "string"},
            "status": {
                "enum": ["queued", "sending", "sent", "delivered", "read", "played", "failed", "received"]
            },
            "wa_id": {**NULLABLE_STRING, "description": "WhatsApp's message id (sent, received)"},
            "wa_timestamp": {**NULLABLE_NUMBER, "description": "WhatsApp's time (unix)"},
            "error": {**NULLABLE_STRING, "description": "failed: why"},
            "attempts": {"type": "integer"},
            "is_group": {"type": "boolean"},
            "possible_duplicate": {
                "type": "boolean",
                "description": "an earlier attempt may have reached WhatsApp too (a crash or a lost "
                "connection cut it short after the write): the recipient may have it twice",
            },
            "source": NULLABLE_STRING,
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
        },
    },
    "MessageList": {
        "type": "object",
        "required": ["messages", "next_cursor"],
        "properties": {
            "messages": {"type": "array", "items": _ref("Message")},
            "next_cursor": {**NULLABLE_STRING, "description": "pass as ?cursor= for the next page"},
        },
    },
    "PairCodeRequest": {
        "type": "object",
        "required": ["phone"],
        "additionalProperties": False,
        "properties": {"phone": {"type": "string", "minLength": 1, "maxLength": 100}},
    },
    "PairCode": {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string", "example": "ABCD-EFGH"}},
    },
    "QR": {
        "type": "object",
        "required": ["qr", "expires_at", "image"],
        "properties": {
            "qr": {"type": "string", "description": "the string encoded in the QR code"},
            "expires_at": NULLABLE_NUMBER,
            "image": {"type": "string", "description": "data:image/png;base64,…"},
        },
    },
    "LoggedOut": {
        "type": "object",
        "required": ["status", "state"],
        "properties": {"status": {"const": "logged_out"}, "state": _ref("SessionStatus")},
    },
}


def document(version: str) -> dict[str, Any]:
    qr_formats = {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"enum": ["png", "svg", "text", "json"], "default": "png"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wadesk",
            "version": version,
            "description": "WhatsApp gateway: pair once by QR code, then send and receive messages. "
            "Every endpoint except the probes /health and /ready needs the API token "
            "(Authorization: Bearer, or X-Api-Key). "
            "Errors are JSON objects with `error` and `message`.",
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "liveness: 200 while the process serves",
                    "security": [],
                    "responses": {
                        "200": _json(_ref("Health"), "the process serves"),
                        "503": _json(_ref("Health"), "a core thread died: restart the process"),
                    },
                }
            },
            "/ready": {
                "get": {
                    "summary": "readiness: 200 only when connected to WhatsApp",
                    "security": [],
                    "responses": {
                        "200": _json(_ref("Ready"), "connected"),
                        "503": _json(_ref("Ready"), "not connected (the state says why)"),
                    },
                }
            },
            "/status": {"get": _op("session state and counters", {"200": _json(_ref("Status"), "status")})},
            "/qr": {
                "get": _op(
                    "the current pairing QR code",
                    {
                        "200": {
                            "description": "the QR code (Cache-Control: no-store)",
                            "content": {
                                "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
                                "image/svg+xml": {"schema": {"type": "string"}},
                                "text/plain": {"schema": {"type": "string"}},
                                "application/json": {"schema": _ref("QR")},
                            },
                        },
                        "400": _error("unknown format"),
                        "409": _error("already paired (the state is included)"),
                        "503": {
                            **_error("no QR code yet: starting, requesting one, or offline"),
                            "headers": RETRY_AFTER,
                        },
                    },
                    parameters=[qr_formats],
                )
            },
            "/pair-code": {
                "post": _op(
                    "pair without a camera: a code to type on the phone",
                    {
                        "200": _json(_ref("PairCode"), "type this code on the phone"),
                        **BODY_ERRORS,
                        "409": _error("already paired"),
                        "503": {
                            **_error("not waiting for a scan, or WhatsApp gave no code"),
                            "headers": RETRY_AFTER,
                        },
                    },
                    requestBody=_body("PairCodeRequest", {"phone": "+49 151 23456789"}),
                )
            },
            "/send": {
                "post": _op(
                    "queue a text message (durably stored before the answer)",
                    {
                        "202": _json(
                            _ref("SendAccepted"),
                            "queued; GET /messages/{id} for the outcome. A repeated idempotency key "
                            "returns the first answer with Idempotent-Replayed: true",
                            headers={
                                "Location": {"schema": {"type": "string"}},
                                "Idempotent-Replayed": {"schema": {"const": "true"}},
                            },
                        ),
                        **BODY_ERRORS,
                        "409": _error("the idempotency key was used for a different message"),
                        "503": {
                            **_error(
                                "storage_unavailable: the store cannot be written now; nothing was queued"
                            ),
                            "headers": RETRY_AFTER,
                        },
                        "507": {
                            **_error("storage_full: the disk is full; nothing was queued"),
                            "headers": RETRY_AFTER,
                        },
                    },
                    parameters=[
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 255,
                                "pattern": "^[\\x21-\\x7e]+$",
                            },
                            "description": "the same key within 24 h returns the first answer and sends "
                            "nothing again",
                        }
                    ],
                    requestBody=_body("SendRequest", {"to": "+49 151 23456789", "text": "hello"}),
                )
            },
            "/messages": {
                "get": _op(
                    "messages sent and received, newest first",
                    {"200": _json(_ref("MessageList"), "one page"), "400": _error("bad query parameter")},
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                            "description": "next_cursor of the previous page",
                        },
                        {
                            "name": "direction",
                            "in": "query",
                            "required": False,
                            "schema": {"enum": ["in", "out"]},
                        },
                    ],
                )
            },
            "/messages/{id}": {
                "get": _op(
                    "one message: queued, sent (WhatsApp id and time) or failed (reason)",
                    {"200": _json(_ref("Message"), "the message"), "404": _error("no such message")},
                    parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/logout": {
                "post": _op(
                    "unlink this device; a new QR code follows",
                    {
                        "200": _json(_ref("LoggedOut"), "logged out"),
                        "409": _error("not connected"),
                        "503": {**_error("WhatsApp did not confirm the logout"), "headers": RETRY_AFTER},
                    },
                )
            },
            "/events": {
                "get": _op(
                    "Server-Sent Events: session.status (first the current state), qr, message, "
                    "message.status; `data` is the same envelope a webhook gets",
                    {
                        "200": {
                            "description": "an event stream (heartbeat comments every 15 s)",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": _error("unknown event name"),
                        "503": {**_error("too many streams open, or shutting down"), "headers": RETRY_AFTER},
                    },
                    parameters=[
                        {
                            "name": "events",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "comma-separated subset of session.status, qr, message, "
                            "message.status",
                        }
                    ],
                )
            },
            "/metrics": {
                "get": _op(
                    "Prometheus metrics",
                    {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                )
            },
            "/openapi.json": {
                "get": _op(
                    "this document",
                    {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                )
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
            "responses": {"Unauthorized": _error("no token, or a wrong one")},
        },
    }
