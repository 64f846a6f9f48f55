"""The bodies declared once in wadesk.api.models: what the views answer has only fields the
declared model has (at every depth, with the declared types), requests are refused with the
declared limits and a problem a person understands, and the OpenAPI document that the
schemathesis test fuzzes against carries the same limits and names every operation."""

from __future__ import annotations

import json
import re
import time
import types
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from flask.testing import FlaskClient
from headless_harness import AUTH, TOKEN, FakeWorld, make_session, start_session, wait_until

from wadesk.api import models
from wadesk.api.app import create_app
from wadesk.api.openapi import document
from wadesk.core import driver as drv
from wadesk.core.events import Account, SessionState, Status
from wadesk.core.session import MAX_TEXT, Session, StorageError
from wadesk.core.store import MEDIA_PENDING, NewMedia, StorageHealth, Store

JSON = "application/json"
PEER = "+1 555 000 2222"
PEER_JID = "15550002222@s.whatsapp.net"
SPEC = document("test")
OPERATION_IDS = {
    ("GET", "/health"): "get_health",
    ("GET", "/ready"): "get_ready",
    ("GET", "/status"): "get_status",
    ("GET", "/qr"): "get_qr",
    ("GET", "/qr/png"): "get_qr_png",
    ("GET", "/qr/svg"): "get_qr_svg",
    ("GET", "/qr/text"): "get_qr_text",
    ("GET", "/qr/json"): "get_qr_json",
    ("POST", "/pair-code"): "request_pair_code",
    ("POST", "/send"): "send_message",
    ("GET", "/messages"): "list_messages",
    ("GET", "/messages/{id}"): "get_message",
    ("GET", "/media/{id}"): "get_media",
    ("GET", "/groups"): "list_groups",
    ("GET", "/groups/{jid}"): "get_group",
    ("POST", "/groups"): "create_group",
    ("POST", "/groups/{jid}/participants"): "change_group_participants",
    ("POST", "/groups/{jid}/leave"): "leave_group",
    ("GET", "/groups/{jid}/invite-link"): "get_group_invite_link",
    ("POST", "/groups/{jid}/invite-link/revoke"): "revoke_group_invite_link",
    ("GET", "/chats"): "list_chats",
    ("POST", "/chats/{jid}/read"): "mark_chat_read",
    ("GET", "/events/history"): "list_events",
    ("POST", "/events/ticket"): "create_event_ticket",
    ("GET", "/contacts/check"): "check_numbers",
    ("GET", "/contacts"): "list_contacts",
    ("POST", "/logout"): "logout",
    ("GET", "/events"): "stream_events",
    ("GET", "/metrics"): "get_metrics",
    ("GET", "/openapi.json"): "get_openapi",
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in SPEC["paths"].items() for m, op in ops.items()]


# ---- checking a body against its model --------------------------------------------------


def _inner(hint: Any) -> Any:
    """The struct or list type inside Annotated[...] and ``| None`` / ``| UnsetType``."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a not in (types.NoneType, msgspec.UnsetType)]
        return _inner(rest[0]) if len(rest) == 1 else None
    return hint


def undeclared(value: Any, hint: Any, where: str = "$") -> list[str]:
    """The paths of the keys in ``value`` that its model does not declare."""
    hint = _inner(hint)
    out: list[str] = []
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct) and isinstance(value, dict):
        fields = {f.encode_name: f for f in msgspec.structs.fields(hint)}
        for key, item in value.items():
            if key not in fields:
                out.append(f"{where}.{key}")
            else:
                out += undeclared(item, fields[key].type, f"{where}.{key}")
    elif typing.get_origin(hint) is list and isinstance(value, list):
        for i, item in enumerate(value):
            out += undeclared(item, typing.get_args(hint)[0], f"{where}[{i}]")
    return out


def documented_model(method: str, path: str, status: int) -> type[msgspec.Struct]:
    """The model the document names for this answer (401: the shared Unauthorized response)."""
    answer = SPEC["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    ref = answer["content"][JSON]["schema"]["$ref"]
    model: type[msgspec.Struct] = getattr(models, ref.rsplit("/", 1)[1])
    return model


class Answers:
    """Checks every JSON answer against the model its operation documents, and keeps the
    keys seen, so a test can tell that the interesting fields were really there."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.seen: set[str] = set()

    def __call__(self, method: str, url: str, status: int, route: str | None = None, **kw: Any) -> Any:
        response = self.client.open(url, method=method, headers={**AUTH, **kw.pop("headers", {})}, **kw)
        response.close()
        assert response.status_code == status, (url, response.get_data(as_text=True))
        assert response.mimetype == JSON
        body = response.get_json()
        model = documented_model(method, route or url.split("?")[0], status)
        msgspec.convert(body, model)  # the declared types and required fields
        assert undeclared(body, model) == [], (url, model.__name__, body)
        self.seen |= _keys(body)
        return body


def _keys(value: Any, where: str = "") -> set[str]:
    if isinstance(value, dict):
        out = set()
        for key, item in value.items():
            out |= {f"{where}{key}"} | _keys(item, f"{where}{key}.")
        return out
    if isinstance(value, list):
        return set().union(*(_keys(item, where) for item in value)) if value else set()
    return set()


def test_a_body_with_a_field_its_model_lacks_is_caught() -> None:
    body = {"state": "connected", "since": 1.0, "paired": True, "description": "x", "mood": "good"}
    assert undeclared(body, models.State) == ["$.mood"]
    page = {"messages": [{"id": "m", "color": "red"}], "next_cursor": None}
    assert undeclared(page, models.MessageList) == ["$.messages[0].color"]
    status = {"storage": {"available": True, "temperature": 3}}
    assert undeclared(status, models.Status) == ["$.storage.temperature"]


# ---- every answer has the declared shape ------------------------------------------------


def test_answers_when_connected_have_the_declared_fields(
    client: FlaskClient, session: Session, world: FakeWorld
) -> None:
    answer = Answers(client)
    answer("GET", "/status", 200)
    answer("GET", "/ready", 200)
    answer("GET", "/health", 200)
    sent = answer("POST", "/send", 202, json={"to": PEER, "text": "hello"}, headers={"Idempotency-Key": "k"})
    wait_until(lambda: getattr(session.message(sent["id"]), "status", None) == "sent", 10, "the send")
    answer("GET", f"/messages/{sent['id']}", 200, "/messages/{id}")
    world.driver.emit(
        drv.Incoming,
        wa_id="IN1",
        chat=PEER_JID,
        sender=PEER_JID,
        push_name="Peer",
        text="hi back",
        timestamp=time.time(),
        is_group=False,
    )
    wait_until(lambda: session.messages(direction="in"), 10, "the incoming message")
    page = answer("GET", "/messages?limit=1", 200)
    assert page["next_cursor"] is not None
    answer("GET", "/messages", 200)
    conflict = answer(
        "POST", "/send", 409, json={"to": PEER, "text": "other"}, headers={"Idempotency-Key": "k"}
    )
    assert conflict["id"] == sent["id"]
    answer("POST", "/send", 400, json={"to": PEER})
    answer("GET", "/messages?limit=0", 400)
    answer("GET", "/messages/msg_nope", 404, "/messages/{id}")
    answer("GET", "/qr", 409)
    answer("POST", "/pair-code", 409, json={"phone": "+15550001111"})
    answer("GET", "/status", 401, headers={"Authorization": "Bearer wrong-wrong-wrong"})
    answer("POST", "/logout", 200)
    expected = {"paired", "account.jid", "account.phone", "account.push_name", "storage.available"}
    expected |= {"storage.kind", "storage.failures", "healthy", "webhook_backlog", "possible_duplicate"}
    expected |= {"messages.to", "messages.chat", "messages.sender", "messages.push_name", "wa_id"}
    expected |= {"field", "state", "id", "next_cursor", "is_group", "attempts"}
    assert expected <= answer.seen, expected - answer.seen


def test_a_message_with_media_has_the_declared_fields(client: FlaskClient, session: Session) -> None:
    photo = NewMedia(
        kind="image",
        mimetype="image/jpeg",
        size=2048,
        sha256="ab" * 32,
        caption="a photo",
        width=640,
        height=480,
        state=MEDIA_PENDING,
    )
    record = session.store.record_incoming(
        wa_id="IN-MEDIA",
        chat=PEER_JID,
        sender=PEER_JID,
        push_name="Peer",
        text="",
        timestamp=time.time(),
        is_group=False,
        media=photo,
    )
    assert record is not None
    answer = Answers(client)
    one = answer("GET", f"/messages/{record.id}", 200, "/messages/{id}")
    assert one["media"]["kind"] == "image" and one["media"]["state"] == "pending"
    answer("GET", "/messages?direction=in", 200)
    assert {"media.url", "media.sha256", "media.width", "media.caption"} <= answer.seen


def test_answers_while_waiting_for_a_scan_have_the_declared_fields(
    session: Session, world: FakeWorld
) -> None:
    world.mode = "qr"
    start_session(session, Status.WAITING_FOR_SCAN)
    answer = Answers(create_app(session, token=TOKEN).test_client())
    answer("GET", "/status", 200)
    answer("GET", "/ready", 503)
    answer("GET", "/qr?format=json", 200)
    answer("GET", "/qr?format=gif", 400)
    answer("POST", "/pair-code", 200, json={"phone": "+1 555 000 1111"})
    answer("POST", "/logout", 409)
    assert {"qr_available", "qr_expires_at", "qr_expired", "qr", "expires_at", "image", "code"} <= answer.seen


def test_answers_before_the_start_have_the_declared_fields(tmp_path: Path) -> None:
    answer = Answers(create_app(make_session(tmp_path, FakeWorld()), token=TOKEN).test_client())
    assert answer("GET", "/qr", 503)["state"] == "starting"
    answer("GET", "/ready", 503)


def test_answers_while_reconnecting_have_the_declared_fields(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = SessionState(
        Status.RECONNECTING,
        attempt=3,
        next_try_at=time.time() + 5,
        reason="Connection to WhatsApp lost",
        paired=True,
        account=Account(jid=PEER_JID, phone="+15550002222"),
    )
    monkeypatch.setattr(Session, "state", property(lambda self: state))
    answer = Answers(client)
    assert answer("GET", "/status", 200)["attempt"] == 3
    answer("GET", "/ready", 503)
    answer("GET", "/qr", 409)
    answer("POST", "/logout", 409)
    assert {"attempt", "next_try_at", "reason"} <= answer.seen


def test_answers_while_the_store_is_unavailable_have_the_declared_fields(
    client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = Answers(client)
    for kind, status in (("full", 507), ("locked", 503)):
        monkeypatch.setattr(session, "send", lambda *a, kind=kind, **kw: _raise(StorageError(kind, "no")))
        assert answer("POST", "/send", status, json={"to": PEER, "text": "x"})["storage"] == kind
    health = StorageHealth(available=False, kind="locked", reason="database is locked", since=1.0, failures=2)
    monkeypatch.setattr(Store, "health", property(lambda self: health))
    assert answer("GET", "/ready", 503)["storage"] == "locked"
    assert answer("GET", "/status", 200)["storage"]["reason"] == "database is locked"


def test_answers_after_a_core_thread_died_have_the_declared_fields(
    client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(session.dead_threads, "sender", "RuntimeError: boom")
    answer = Answers(client)
    assert answer("GET", "/health", 503)["status"] == "failed"
    answer("GET", "/ready", 503)
    assert answer("GET", "/status", 200)["healthy"] is False


def _raise(exc: Exception) -> Any:
    raise exc


# ---- requests: declared limits, problems worded for people -------------------------------


@pytest.mark.parametrize(
    ("path", "data", "headers", "message"),
    [
        ("/send", b'{"to": ', {}, "body: is not valid JSON (line 1, column 8)"),
        ("/send", b"", {}, "body: is empty; send a JSON object"),
        ("/send", b'["to"]', {}, "body: must be a JSON object"),
        ("/send", b"[" * 100_000 + b"]" * 100_000, {}, "body: is nested too deeply"),
        ("/send", b'{"text": "x"}', {}, "to: is required"),
        ("/send", b'{"to": "+15550002222", "text": null}', {}, "text: is required"),
        ("/send", b'{"to": 15550002222, "text": "x"}', {}, "to: must be a string"),
        ("/send", b'{"to": "+15550002222", "text": ["x"]}', {}, "text: must be a string"),
        (
            "/send",
            b'{"to": "+15550002222", "text": "x", "priority": 1}',
            {},
            "priority: unknown field; expected to, text, idempotency_key, mentions, mention_all",
        ),
        (
            "/send",
            b'{"to": "+15550002222", "text": "' + b"x" * (MAX_TEXT + 1) + b'"}',
            {},
            f"text: is {MAX_TEXT + 1} characters long; the limit is {MAX_TEXT}",
        ),
        ("/send", b'{"to": "+15550002222", "text": ""}', {}, "text: is empty"),
        ("/send", b'{"to": "+15550002222", "text": " \\n "}', {}, "text: is only white space"),
        ("/send", b'{"to": "+15550002222", "text": "bad \\ud800"}', {}, "text: is not valid Unicode text"),
        (
            "/send",
            b'{"to": "", "text": "x"}',
            {},
            "to: is empty: give a phone number with its country code, e.g. +49 151 23456789",
        ),
        (
            "/send",
            b'{"to": "+15550002222", "text": "x", "idempotency_key": ""}',
            {},
            "idempotency_key: must be 1 to 255 printable ASCII characters",
        ),
        (
            "/send",
            b'{"to": "+15550002222", "text": "x", "idempotency_key": 7}',
            {},
            "idempotency_key: must be a string",
        ),
        (
            "/send",
            b'{"to": "+15550002222", "text": "x"}',
            {"Idempotency-Key": "two words"},
            "Idempotency-Key: must be 1 to 255 printable ASCII characters",
        ),
        (
            "/send",
            b'{"to": "+15550002222", "text": "x", "idempotency_key": "a"}',
            {"Idempotency-Key": "b"},
            "idempotency_key: differs from the Idempotency-Key header",
        ),
        ("/pair-code", b'{"phone": 5}', {}, "phone: must be a string"),
        ("/pair-code", b"{}", {}, "phone: is required"),
        ("/pair-code", b'{"phone": "+1", "to": "x"}', {}, "to: unknown field; expected phone"),
    ],
)
def test_a_refused_body_names_the_field_and_the_problem(
    client: FlaskClient, session: Session, path: str, data: bytes, headers: dict[str, str], message: str
) -> None:
    response = client.post(path, data=data, headers={**AUTH, "Content-Type": JSON, **headers})
    assert response.status_code == 400, response.get_data(as_text=True)
    field = message.split(":", 1)[0]
    assert response.get_json() == {"error": "invalid_request", "field": field, "message": message}
    assert session.outbox_depth() == 0


def test_the_first_problem_in_field_order_is_named(client: FlaskClient) -> None:
    # "to" is declared first: it is named, whatever the order in the body
    for data in (b'{"text": 5, "to": 1}', b'{"to": 1}', b'{"text": "x", "to": null}'):
        response = client.post("/send", data=data, headers={**AUTH, "Content-Type": JSON})
        assert response.get_json()["field"] == "to", data
    # an unknown field is named before a wrong one
    response = client.post("/send", data=b'{"to": 1, "extra": 1}', headers={**AUTH, "Content-Type": JSON})
    assert response.get_json()["field"] == "extra"


def test_bodies_that_read_alike_are_taken_alike(client: FlaskClient, session: Session) -> None:
    bodies = [
        '{"to": "+15550002222", "text": "utf-16"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"to": "+15550002222", "text": "byte order mark"}',
        b'{"to": "+15550002222", "text": "null key", "idempotency_key": null}',
        b' \n{"to": "+15550002222", "text": "first", "text": "last"}\n',
    ]
    for data in bodies:
        response = client.post("/send", data=data, headers={**AUTH, "Content-Type": JSON})
        assert response.status_code == 202, (data, response.get_data(as_text=True))
    texts = [m.text for m in session.messages(direction="out")]
    assert sorted(texts) == ["byte order mark", "last", "null key", "utf-16"]


def test_the_documented_limits_are_the_enforced_ones(client: FlaskClient) -> None:
    def send(body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        response = client.post("/send", json=body, headers={**AUTH, **(headers or {})})
        response.close()
        return response

    send_request = SPEC["components"]["schemas"]["SendRequest"]["properties"]
    longest = send_request["text"]["maxLength"]
    assert longest == MAX_TEXT
    assert send({"to": PEER, "text": "x" * longest}).status_code == 202
    assert send({"to": PEER, "text": "x" * (longest + 1)}).get_json()["field"] == "text"
    longest_to = send_request["to"]["maxLength"]
    padded = PEER + " " * (longest_to - len(PEER))
    assert send({"to": padded, "text": "padded"}).status_code == 202
    assert send({"to": padded + " ", "text": "x"}).get_json()["field"] == "to"

    (header,) = [p for p in SPEC["paths"]["/send"]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
    body_key = send_request["idempotency_key"]["anyOf"][0]
    assert header["schema"] == {k: v for k, v in body_key.items() if k != "description"}
    key_length = header["schema"]["maxLength"]
    pattern = re.compile(header["schema"]["pattern"])
    assert pattern.search("~" * key_length) and not pattern.search("a b")
    assert send({"to": PEER, "text": "k"}, {"Idempotency-Key": "~" * key_length}).status_code == 202
    too_long = send({"to": PEER, "text": "k"}, {"Idempotency-Key": "~" * (key_length + 1)})
    assert too_long.get_json()["field"] == "Idempotency-Key"
    assert send({"to": PEER, "text": "k", "idempotency_key": "b" * key_length}).status_code == 202
    too_long = send({"to": PEER, "text": "k", "idempotency_key": "b" * (key_length + 1)})
    assert too_long.get_json()["field"] == "idempotency_key"

    params = {p["name"]: p["schema"] for p in SPEC["paths"]["/messages"]["get"]["parameters"]}
    most = params["limit"]["maximum"]
    page = client.get(f"/messages?limit={most}", headers=AUTH).get_json()
    assert len(page["messages"]) == 4 and page["next_cursor"] is None  # the four accepted above
    assert client.get(f"/messages?limit={most + 1}", headers=AUTH).get_json()["field"] == "limit"
    fewest = params["limit"]["minimum"]
    assert len(client.get(f"/messages?limit={fewest}", headers=AUTH).get_json()["messages"]) == fewest
    assert client.get(f"/messages?limit={fewest - 1}", headers=AUTH).get_json()["field"] == "limit"
    assert params["limit"]["default"] == models.DEFAULT_PAGE
    digits = int(re.search(r"\{1,(\d+)\}", params["cursor"]["pattern"]).group(1))  # type: ignore[union-attr]
    assert client.get("/messages?cursor=" + "9" * digits, headers=AUTH).status_code == 200
    assert client.get("/messages?cursor=" + "9" * (digits + 1), headers=AUTH).get_json()["field"] == "cursor"
    for direction in params["direction"]["enum"]:
        assert client.get(f"/messages?direction={direction}", headers=AUTH).status_code == 200


def test_the_documented_qr_formats_are_the_served_ones(session: Session, world: FakeWorld) -> None:
    world.mode = "qr"
    start_session(session, Status.WAITING_FOR_SCAN)
    client = create_app(session, token=TOKEN).test_client()
    (param,) = SPEC["paths"]["/qr"]["get"]["parameters"]
    formats = param["schema"]["enum"]
    served = SPEC["paths"]["/qr"]["get"]["responses"]["200"]["content"]
    for fmt in formats:
        response = client.get(f"/qr?format={fmt}", headers=AUTH)
        assert response.status_code == 200 and response.mimetype in served, fmt
    assert client.get("/qr", headers=AUTH).mimetype == f"image/{param['schema']['default']}"
    refused = client.get("/qr?format=bmp", headers=AUTH).get_json()
    assert refused["message"] == "format: must be one of " + ", ".join(models.QR_FORMATS)
    assert sorted(models.QR_FORMATS) == sorted(formats)


def test_the_documented_event_names_are_the_streamed_ones(client: FlaskClient) -> None:
    param = SPEC["paths"]["/events"]["get"]["parameters"][0]
    names = param["description"].split("subset of ", 1)[1].split(", ")
    assert names == list(models.EVENT_NAMES)
    for name in names:
        response = client.get(f"/events?events={name}", headers=AUTH, buffered=False)
        assert response.status_code == 200, name
        response.close()
    refused = client.get("/events?events=message.received,nope", headers=AUTH).get_json()
    assert refused["field"] == "events"


def test_the_decoder_gives_the_declared_struct() -> None:
    body = models.SEND.decode(b'{"to": "+15550002222", "text": "hi", "idempotency_key": "k"}')
    assert body == models.SendRequest(to="+15550002222", text="hi", idempotency_key="k")
    assert models.SEND.decode(b'{"text": "hi", "to": "x"}').idempotency_key is None
    with pytest.raises(models.FieldError) as refused:
        models.SEND.decode(b'{"to": "x", "text": "hi", "idempotency_key": "a b"}')
    assert (refused.value.field, refused.value.problem) == (
        "idempotency_key",
        "must be 1 to 255 printable ASCII characters",
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"to": 1, "text": "x"}', "to"),
        (b'{"to": "x"}', "text"),
        (b'{"to": "x", "text": "x", "extra": 1}', "extra"),
        (b"[]", "body"),
    ],
)
def test_msgspec_errors_are_mapped_to_the_top_level_field(raw: bytes, field: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.json.decode(raw, type=models.SendRequest)
    assert models._field_of(str(refused.value)) == field


# ---- the document ------------------------------------------------------------------------


def test_every_operation_has_a_unique_operation_id_and_a_declared_tag() -> None:
    ops = operations()
    hooks = [("POST", name, item["post"]) for name, item in SPEC["webhooks"].items()]
    ids = [op["operationId"] for _, _, op in ops + hooks]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", i) for i in ids), ids
    assert {(method, path): op["operationId"] for method, path, op in ops} == OPERATION_IDS
    declared = [t["name"] for t in SPEC["tags"]]
    assert len(declared) == len(set(declared))
    used = set()
    for method, path, op in ops + hooks:
        assert op["tags"] and set(op["tags"]) <= set(declared), (method, path, op.get("tags"))
        used |= set(op["tags"])
    assert used == set(declared)  # no tag without an operation


def test_every_schema_reference_resolves_and_every_schema_is_used() -> None:
    refs = set(re.findall(r'"\$ref": "#/components/(schemas|responses)/([^"]+)"', json.dumps(SPEC)))
    for kind, name in refs:
        assert name in SPEC["components"][kind], name
    assert {name for kind, name in refs if kind == "schemas"} == set(SPEC["components"]["schemas"])
    assert {m.__name__ for m in models.MODELS} <= set(SPEC["components"]["schemas"])
