"""The OpenAPI 3.1 description served at ``/openapi.json``.

The paths are written here next to the views they describe; the bodies' schemas
(``components.schemas``) and the parameters' schemas are generated from :mod:`.models`, the
same types the views decode and check with. ``tests/api`` checks the document against the
app's routes and fuzzes the app with schemathesis against it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..core.recipients import GROUP_USER_PATTERN
from . import models
from .models import DEFAULT_PAGE, DEFAULT_QR_FORMAT, EVENT_NAMES, MAX_BODY

REF_TEMPLATE = "#/components/schemas/{name}"
TAGS = [
    {"name": "session", "description": "pairing, the session state, logging out"},
    {"name": "messages", "description": "sending and reading messages"},
    {"name": "groups", "description": "the groups the account is in"},
    {"name": "contacts", "description": "who is on WhatsApp, and the people wadesk has met"},
    {"name": "events", "description": "live events"},
    {"name": "operations", "description": "probes, metrics and this document"},
    {"name": "webhooks", "description": "what wadesk POSTs to each WEBHOOK_URL, signed (Standard Webhooks)"},
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def _schema(hint: Any, **more: Any) -> dict[str, Any]:
    """The JSON Schema of a field type of :mod:`.models` (a parameter's)."""
    return {**msgspec.json.schema(hint, ref_template=REF_TEMPLATE), **more}


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
    "413": _error(f"the body is larger than {MAX_BODY // (1024 * 1024)} MiB"),
    "415": _error("the body is not JSON (Content-Type must be application/json)"),
}


STORAGE_UNAVAILABLE = {
    "503": {
        **_error("the message store cannot be read or written right now (`storage` says why); try again"),
        "headers": RETRY_AFTER,
    }
}


GROUP_JID = {
    "name": "jid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^({GROUP_USER_PATTERN})@g\\.us$"},
}


GROUP_REFUSALS = {
    "400": _error("not a group ID, or a bad person (field names it)"),
    "403": _error("not_admin: only the group's admins may do that"),
    "404": _error("group_not_found: no such group, or this account is not in it"),
}


def _own_401(responses: dict[str, Any]) -> dict[str, Any]:
    return {"401": responses["401"]} if "401" in responses else {}


def _op(operation_id: str, tag: str, summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    """An operation that needs the token."""
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "responses": {**STORAGE_UNAVAILABLE, **responses, **UNAUTHORIZED, **_own_401(responses)},
        **more,
    }


def _probe(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    """An operation open to everyone."""
    return {
        "operationId": operation_id,
        "tags": ["operations"],
        "summary": summary,
        "security": [],
        "responses": responses,
    }


def _query(name: str, hint: Any, description: str | None = None, **more: Any) -> dict[str, Any]:
    schema = _schema(hint, **more)
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    description = description or schema.pop("description", None)
    if description:
        out["description"] = description
    return out


def _body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(schema), "example": example}},
    }


_, SCHEMAS = msgspec.json.schema_components(models.MODELS, ref_template=REF_TEMPLATE)
# a form part, not a base64 string in JSON
SCHEMAS["SendMediaForm"]["properties"]["file"] = {
    "type": "string",
    "format": "binary",
    "description": "the file (a form part with a file name)",
}


WEBHOOK_HEADERS = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "the event's id (the body's `id`), the same in every retry: ignore one seen before",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "unix seconds of this attempt; refuse one far from your clock (replays)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.'
        '<raw body>">`, keyed by the bytes of the whsec_ secret (WEBHOOK_SECRET); two, space '
        "separated, while WEBHOOK_SECRET holds two secrets. Any Standard Webhooks verifier checks it",
        "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)?$"},
    },
    {
        "name": "X-Wadesk-Event",
        "in": "header",
        "required": True,
        "description": "the body's `event`",
        "schema": {"type": "string"},
    },
]

WEBHOOK_SUMMARIES = {
    "message.received": "a message came in (text or media)",
    "message.status": "a message sent through wadesk was queued, sent, delivered, read, played or failed",
    "session.status": "the session's state changed (connected, reconnecting, logged out, …)",
    "qr": "a new pairing QR code (while waiting for a scan)",
    "group.participants": "people joined, left, were promoted or demoted in a group",
}


def _schema_name(model: type) -> str:
    return model.__name__


def webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: the POST wadesk sends to each WEBHOOK_URL, one per event."""
    out = {}
    for name in EVENT_NAMES:
        out[name] = {
            "post": {
                "operationId": "webhook_" + name.replace(".", "_"),
                "tags": ["webhooks"],
                "summary": WEBHOOK_SUMMARIES[name],
                "description": f"Sent to every WEBHOOK_URL when WEBHOOK_EVENTS includes {name}; "
                "signed as Standard Webhooks says. At least once, in order per receiver: network "
                "errors, 5xx and 429 are retried with backoff (Retry-After honoured) for up to "
                "24 hours; any other status is final.",
                "security": [],
                "parameters": WEBHOOK_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(_schema_name(models.EVENTS[name]))}},
                },
                "responses": {
                    "2XX": {"description": "received; answer within 10 s"},
                    "429": {
                        "description": "retried later (after Retry-After seconds if given)",
                        "headers": RETRY_AFTER,
                    },
                    "5XX": {"description": "retried later, with backoff"},
                    "default": {"description": "any other status: the event is dropped for this receiver"},
                },
            }
        }
    return out


def _sse_event(name: str, data: dict[str, Any], description: str, with_id: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "event": {"const": name},
        "data": {
            "type": "string",
            "description": "one line of JSON",
            "contentMediaType": "application/json",
            "contentSchema": data,
        },
        "retry": {"type": "integer", "description": "milliseconds to wait before reconnecting (first event)"},
    }
    if with_id:
        properties["id"] = {"type": "string", "description": "the event's id: send it back as Last-Event-ID"}
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": ["event", "data", *(["id"] if with_id else [])],
    }


SSE_EVENTS: dict[str, Any] = {
    **{
        f"ServerSent{_schema_name(model)}": _sse_event(
            name,
            _ref(_schema_name(model)),
            f"{name}: {WEBHOOK_SUMMARIES[name]}; data is the envelope a webhook gets"
            + ("; the first one (the current state) comes without an id" if name == "session.status" else ""),
            with_id=name != "session.status",
        )
        for name, model in models.EVENTS.items()
    },
    "ServerSentReplayGap": _sse_event(
        "replay.gap",
        _ref("StreamNote"),
        "first, when Last-Event-ID (or after) is no longer in the event log: the events from the "
        "oldest one kept follow",
        with_id=False,
    ),
    "ServerSentError": _sse_event(
        "error", _ref("StreamNote"), "the client read too slowly and events were dropped; reconnect", False
    ),
}
SSE_EVENTS["ServerSentSessionStatusEvent"]["properties"]["id"] = {
    "type": "string",
    "description": "replayed and live events have one; the first (the current state) has none",
}
SSE_SCHEMA = {
    "description": "One event of GET /events (text/event-stream: `event:`, `id:`, `data:` lines)",
    "oneOf": [_ref(n) for n in SSE_EVENTS],
    "discriminator": {"propertyName": "event"},
}
SSE_EXAMPLE = (
    "retry: 3000\nevent: session.status\n"
    'data: {"event":"session.status","id":"evt_019a0c1f2e3d4b5c6d7e8f90","timestamp":1767225600.0,'
    '"payload":{"state":"connected","since":1767225590.0,"paired":true,"previous":null}}\n\n'
    ": keep-alive\n\n"
    "id: evt_019a0c1f3a4b5c6d7e8f9012\nevent: message.received\n"
    'data: {"event":"message.received","id":"evt_019a0c1f3a4b5c6d7e8f9012",…}\n\n'
)

PNG = {"type": "string", "format": "binary", "contentMediaType": "image/png"}
QR_MEDIA = {
    "png": ("image/png", PNG, "a PNG image of the code"),
    "svg": ("image/svg+xml", {"type": "string", "contentMediaType": "image/svg+xml"}, "an SVG image"),
    "text": (
        "text/plain",
        {"type": "string", "description": "the string encoded in the QR code"},
        "the string",
    ),
    "json": ("application/json", _ref("QR"), "the string, its expiry and a PNG data: URL"),
}
assert set(QR_MEDIA) == set(models.QR_FORMATS)
QR_REFUSALS = {
    "409": _error("already paired (the state is included)"),
    "503": {**_error("no QR code yet: starting, requesting one, or offline"), "headers": RETRY_AFTER},
}
PROMETHEUS = "text/plain; version=0.0.4"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def document(version: str) -> dict[str, Any]:
    events = ", ".join(EVENT_NAMES)
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
        "tags": TAGS,
        "paths": {
            "/health": {
                "get": _probe(
                    "get_health",
                    "liveness: 200 while the process serves",
                    {
                        "200": _json(_ref("Health"), "the process serves"),
                        "503": _json(_ref("Health"), "a core thread died: restart the process"),
                    },
                )
            },
            "/ready": {
                "get": _probe(
                    "get_ready",
                    "readiness: 200 only when connected to WhatsApp",
                    {
                        "200": _json(_ref("Ready"), "connected"),
                        "503": _json(_ref("Ready"), "not connected (the state says why)"),
                    },
                )
            },
            "/status": {
                "get": _op(
                    "get_status",
                    "session",
                    "session state and counters",
                    {"200": _json(_ref("Status"), "status")},
                )
            },
            "/qr": {
                "get": _op(
                    "get_qr",
                    "session",
                    "the current pairing QR code",
                    {
                        "200": {
                            "description": "the QR code (Cache-Control: no-store), in the media type "
                            "that `format` names: "
                            + "; ".join(f"{f}: {t}" for f, (t, _, _) in QR_MEDIA.items()),
                            "content": {t: {"schema": schema} for t, schema, _ in QR_MEDIA.values()},
                        },
                        "400": _error("unknown format"),
                        **QR_REFUSALS,
                    },
                    description="Generated clients: the operations get_qr_png, get_qr_svg, "
                    "get_qr_text and get_qr_json (/qr/png, …) answer in one media type each.",
                    parameters=[
                        _query(
                            "format",
                            models.QRFormat,
                            "the answer's media type: "
                            + "; ".join(f"{f}: {t} ({what})" for f, (t, _, what) in QR_MEDIA.items()),
                            default=DEFAULT_QR_FORMAT,
                        )
                    ],
                )
            },
            **{
                f"/qr/{fmt}": {
                    "get": _op(
                        f"get_qr_{fmt}",
                        "session",
                        f"the current pairing QR code as {media} ({what})",
                        {
                            "200": {
                                "description": f"{what} (Cache-Control: no-store)",
                                "content": {media: {"schema": schema}},
                            },
                            **QR_REFUSALS,
                        },
                    )
                }
                for fmt, (media, schema, what) in QR_MEDIA.items()
            },
            "/pair-code": {
                "post": _op(
                    "request_pair_code",
                    "session",
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
                    "send_message",
                    "messages",
                    "queue a text or media message (durably stored before the answer)",
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
                        "413": _error(
                            "the body is larger than 1 MiB (text), 16 MiB (JSON with media) or the file "
                            "larger than WADESK_MAX_MEDIA_MB (`field`: file)"
                        ),
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
                            "schema": _schema(models.IdempotencyKey),
                            "description": "the same key within 24 h returns the first answer and sends "
                            "nothing again",
                        }
                    ],
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [_ref("SendRequest"), _ref("SendMediaRequest")]},
                                "example": {"to": "+49 151 23456789", "text": "hello"},
                            },
                            "multipart/form-data": {
                                "schema": _ref("SendMediaForm"),
                                "encoding": {"file": {"contentType": "*/*"}},
                            },
                        },
                    },
                )
            },
            "/messages": {
                "get": _op(
                    "list_messages",
                    "messages",
                    "messages sent and received, newest first; in one chat (chat), or holding "
                    "every word of q (full-text search)",
                    {"200": _json(_ref("MessageList"), "one page"), "400": _error("bad query parameter")},
                    parameters=[
                        _query("limit", models.PageLimit, default=DEFAULT_PAGE),
                        _query("cursor", models.Cursor),
                        _query("direction", models.Direction, "only received (in) or sent (out) messages"),
                        _query(
                            "chat",
                            str,
                            "only this chat: a phone number, user JID, LID or group JID",
                            minLength=1,
                            maxLength=models.MAX_RECIPIENT,
                        ),
                        _query(
                            "q",
                            str,
                            "words to find in the text or caption (each word also matches the "
                            "start of a longer one)",
                            minLength=1,
                            maxLength=models.MAX_SEARCH,
                        ),
                    ],
                )
            },
            "/chats": {
                "get": _op(
                    "list_chats",
                    "messages",
                    "chats (people and groups), newest activity first, with unread counts and the "
                    "last message",
                    {"200": _json(_ref("ChatList"), "one page"), "400": _error("bad query parameter")},
                    parameters=[
                        _query("limit", models.PageLimit, default=DEFAULT_PAGE),
                        _query("cursor", models.Cursor),
                        _query(
                            "q",
                            str,
                            "only chats whose name, number or JID contains this",
                            maxLength=models.MAX_SEARCH,
                        ),
                    ],
                )
            },
            "/chats/{jid}/read": {
                "post": _op(
                    "mark_chat_read",
                    "messages",
                    "clear a chat's unread count; receipts=true also tells WhatsApp (read ticks)",
                    {
                        "200": _json(_ref("ChatRead"), "how many messages were unread"),
                        "400": _error("not a chat JID"),
                        "404": _error("no such chat"),
                    },
                    parameters=[
                        {"name": "jid", "in": "path", "required": True, "schema": {"type": "string"}},
                        _query("receipts", bool, "tell WhatsApp too", default=False),
                    ],
                )
            },
            "/messages/{id}": {
                "get": _op(
                    "get_message",
                    "messages",
                    "one message: queued, sent (WhatsApp id and time) or failed (reason)",
                    {"200": _json(_ref("Message"), "the message"), "404": _error("no such message")},
                    parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/groups": {
                "get": _op(
                    "list_groups",
                    "groups",
                    "the groups this account is in",
                    {"200": _json(_ref("GroupList"), "the groups")},
                ),
                "post": _op(
                    "create_group",
                    "groups",
                    "create a group with this account as admin; WhatsApp says, person by person, "
                    "whom it added (results)",
                    {
                        "201": _json(_ref("GroupCreated"), "the new group and one result per person"),
                        **BODY_ERRORS,
                        "400": _error("a bad name or person (field names it)"),
                        "403": _error("not_admin: WhatsApp refused (e.g. too many groups created)"),
                    },
                    requestBody=_body(
                        "CreateGroupRequest", {"name": "Team", "participants": ["+4915123456789"]}
                    ),
                ),
            },
            "/groups/{jid}": {
                "get": _op(
                    "get_group",
                    "groups",
                    "one group with its participants (phone where known, LID, admin)",
                    {
                        "200": _json(_ref("Group"), "the group"),
                        "400": _error("not a group ID"),
                        "404": _error("no such group, or this account is not in it"),
                    },
                    parameters=[GROUP_JID],
                )
            },
            "/groups/{jid}/participants": {
                "post": _op(
                    "change_group_participants",
                    "groups",
                    "add, remove, promote or demote people (this account must be admin)",
                    {
                        "200": _json(_ref("ParticipantResults"), "at least one change was made"),
                        **BODY_ERRORS,
                        **GROUP_REFUSALS,
                        "409": _json(
                            _ref("ParticipantsRefused"),
                            "no change: the group is full (group_full) or they are in it already "
                            "(already_participant)",
                        ),
                        "422": _json(
                            _ref("ParticipantsRefused"),
                            "no change: every person was refused (error: not_on_whatsapp, privacy, "
                            "not_participant, or participants_refused for mixed reasons)",
                        ),
                    },
                    parameters=[GROUP_JID],
                    requestBody=_body(
                        "ParticipantsRequest", {"action": "add", "participants": ["+4915123456789"]}
                    ),
                )
            },
            "/groups/{jid}/leave": {
                "post": _op(
                    "leave_group",
                    "groups",
                    "this account leaves the group",
                    {"200": _json(_ref("LeftGroup"), "left"), **GROUP_REFUSALS},
                    parameters=[GROUP_JID],
                )
            },
            "/groups/{jid}/invite-link": {
                "get": _op(
                    "get_group_invite_link",
                    "groups",
                    "the group's invite link (this account must be admin)",
                    {"200": _json(_ref("InviteLink"), "the link"), **GROUP_REFUSALS},
                    parameters=[GROUP_JID],
                )
            },
            "/groups/{jid}/invite-link/revoke": {
                "post": _op(
                    "revoke_group_invite_link",
                    "groups",
                    "revoke the invite link: the old one stops working; returns the new one",
                    {"200": _json(_ref("InviteLink"), "the new link"), **GROUP_REFUSALS},
                    parameters=[GROUP_JID],
                )
            },
            "/contacts/check": {
                "get": _op(
                    "check_numbers",
                    "contacts",
                    "whether phone numbers have a WhatsApp account (asks WhatsApp)",
                    {
                        "200": _json(_ref("NumberChecks"), "one result per number"),
                        "400": _error("a bad number"),
                    },
                    parameters=[
                        {
                            "name": "phone",
                            "in": "query",
                            "required": True,
                            "schema": {
                                "type": "array",
                                "items": {"type": "string"},
                                "maxItems": models.MAX_CHECK,
                            },
                            "style": "form",
                            "explode": True,
                        }
                    ],
                )
            },
            "/contacts": {
                "get": _op(
                    "list_contacts",
                    "contacts",
                    "the people wadesk exchanged messages with, most recent first (phone, JID, LID)",
                    {"200": _json(_ref("ContactList"), "one page"), "400": _error("bad query parameter")},
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": _schema(models.PageLimit),
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": _schema(models.Cursor),
                        },
                    ],
                )
            },
            "/media/{id}": {
                "get": _op(
                    "get_media",
                    "messages",
                    "a stored media file, sent or received (Range requests, its type and file name)",
                    {
                        "200": {
                            "description": "the file",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "206": {
                            "description": "the requested range of the file",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "404": _error("no such media"),
                        "410": _error("the file is not available (unavailable, skipped or deleted)"),
                        "503": {**_error("not downloaded yet; try again"), "headers": RETRY_AFTER},
                    },
                    parameters=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                )
            },
            "/logout": {
                "post": _op(
                    "logout",
                    "session",
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
                    "stream_events",
                    "events",
                    f"Server-Sent Events: {events}. With Last-Event-ID (or after), the logged events "
                    "since that one come first (a replay.gap event first when it is no longer "
                    "logged); then session.status with the current state (without an id); `data` "
                    "is the same envelope a webhook gets",
                    {
                        "200": {
                            "description": "an event stream (heartbeat comments every 15 s); each "
                            "event is one of components.schemas.ServerSentEvent, its data the envelope "
                            "a webhook gets (components.schemas.*Event)",
                            "content": {
                                "text/event-stream": {
                                    "schema": {
                                        "type": "string",
                                        "contentMediaType": "text/event-stream",
                                        "description": "Server-Sent Events, each a ServerSentEvent",
                                    },
                                    "x-itemSchema": _ref("ServerSentEvent"),
                                    "example": SSE_EXAMPLE,
                                }
                            },
                        },
                        "400": _error("unknown event name, or a bad event id"),
                        "401": _error(
                            "no token, or a wrong one; or a ticket that is expired, used or unknown "
                            "(invalid_ticket)"
                        ),
                        "503": {**_error("too many streams open, or shutting down"), "headers": RETRY_AFTER},
                    },
                    security=[{"bearer": []}, {"apiKey": []}, {"ticket": []}],
                    parameters=[
                        _query("events", str, f"comma-separated subset of {events}"),
                        _query(
                            "after",
                            str,
                            "replay the events logged after this event id",
                            maxLength=64,
                            pattern="^[!-~]+$",
                        ),
                        {
                            "name": "Last-Event-ID",
                            "in": "header",
                            "required": False,
                            "description": "as after; browsers send it when they reconnect",
                            "schema": {"type": "string", "maxLength": 64},
                        },
                    ],
                )
            },
            "/events/ticket": {
                "post": _op(
                    "create_event_ticket",
                    "events",
                    "a single-use ticket for GET /events?ticket=…, valid 60 s: a browser's EventSource "
                    "cannot send the token in a header",
                    {"201": _json(_ref("EventTicket"), "the ticket (Cache-Control: no-store)")},
                )
            },
            "/events/history": {
                "get": _op(
                    "list_events",
                    "events",
                    "the logged events after an event id (from the oldest kept without it), oldest "
                    "first: for pollers",
                    {
                        "200": _json(_ref("EventPage"), "one page; ask again with after=next_after"),
                        "400": _error("unknown event name, or a bad event id"),
                        "404": _error("the event log is off (event_log_off)"),
                    },
                    parameters=[
                        _query("after", str, "the last event id seen", maxLength=64, pattern="^[!-~]+$"),
                        _query(
                            "limit",
                            int,
                            "events in the page",
                            minimum=1,
                            maximum=models.MAX_EVENT_PAGE,
                            default=DEFAULT_PAGE,
                        ),
                        _query("events", str, f"comma-separated subset of {events}"),
                    ],
                )
            },
            "/metrics": {
                "get": _op(
                    "get_metrics",
                    "operations",
                    "Prometheus metrics",
                    {
                        "200": {
                            "description": "the Prometheus text format (0.0.4); OpenMetrics 1.0 when "
                            "the Accept header asks for application/openmetrics-text",
                            "headers": {"Vary": {"schema": {"const": "Accept"}}},
                            "content": {
                                PROMETHEUS: {"schema": {"type": "string"}},
                                OPENMETRICS: {"schema": {"type": "string"}},
                            },
                        }
                    },
                )
            },
            "/openapi.json": {
                "get": _op(
                    "get_openapi",
                    "operations",
                    "this document",
                    {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                )
            },
        },
        "webhooks": webhooks(),
        "components": {
            "schemas": {**SCHEMAS, **SSE_EVENTS, "ServerSentEvent": SSE_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "ticket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "GET /events only: a single-use ticket from POST /events/ticket, valid "
                    "60 s, for browsers (EventSource cannot send a header)",
                },
            },
            "responses": {"Unauthorized": _error("no token, or a wrong one")},
        },
    }
