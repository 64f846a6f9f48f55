"""The Flask app in process: a real Session on a fake driver (no neonize), the test client."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from headless_harness import AUTH, TOKEN, FakeWorld, make_session, start_session, wait_until
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from wadesk.api.app import MAX_BODY, create_app
from wadesk.api.openapi import document
from wadesk.core import driver as drv
from wadesk.core import session as session_mod
from wadesk.core.events import Status
from wadesk.core.session import Session

JSON = "application/json"
PEER = "+1 555 000 2222"


def post(client: FlaskClient, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    response = client.post(path, json=body, headers={**AUTH, **(headers or {})})
    response.close()  # ends the request: its access-log line and metrics happen now
    return response


def assert_json_error(response: Any, status: int, error: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == JSON
    body = response.get_json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    assert "Traceback" not in response.get_data(as_text=True)
    if error is not None:
        assert body["error"] == error
    if field is not None:
        assert body["field"] == field
    return body  # type: ignore[no-any-return]


def routes(app: Flask) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<message_id>", "{id}").replace("<media_id>", "{id}")
        path = path.replace("<group_jid>", "{jid}").replace("<chat_jid>", "{jid}")
        out |= {(m, path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return out


# ---- auth -----------------------------------------------------------------------------------


def test_only_the_probes_are_open(app: Flask, client: FlaskClient) -> None:
    assert client.get("/health").status_code == 200
    # /ready reveals only the state, so Kubernetes and compose health checks need no token
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["state"] == "connected"
    protected = [(m, p) for m, p in routes(app) if p not in ("/health", "/ready")]
    assert len(protected) == 28
    for method, path in protected:
        url = path.replace("{id}", "msg_x").replace("{jid}", "120363000000000001@g.us")
        for headers in ({}, {"Authorization": "Bearer nope-nope-nope-nope"}, {"X-Api-Key": "nope"}):
            response = client.open(url, method=method, headers=headers)
            body = assert_json_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="wadesk"'
            assert "token" in body["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"bearer   {TOKEN} "},
        {"X-Api-Key": TOKEN},
        {"Authorization": "Basic xyz", "X-Api-Key": TOKEN},
    ],
)
def test_token_is_accepted_either_way(client: FlaskClient, headers: dict[str, str]) -> None:
    assert client.get("/status", headers=headers).status_code == 200


def test_unknown_route_needs_the_token_before_it_is_a_404(client: FlaskClient) -> None:
    assert_json_error(client.get("/nope"), 401)
    assert_json_error(client.get("/nope", headers=AUTH), 404, "not_found")


# ---- errors ---------------------------------------------------------------------------------


def test_wrong_method_is_a_json_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/send", headers=AUTH)
    assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_json_error(client.post("/health"), 405)


def test_unexpected_exception_is_a_json_500_without_traceback(
    app: Flask, client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(message_id: str) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(session.store, "get", broken)
    with caplog.at_level(logging.ERROR, logger="wadesk.api"):
        response = client.get("/messages/msg_x", headers=AUTH)
    body = assert_json_error(response, 500, "internal_error")
    assert "fire" not in json.dumps(body)
    assert any("database on fire" in (r.exc_text or "") or r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "field"),
    [
        (b'{"to": ', JSON, 400, "body"),
        (b"[1, 2]", JSON, 400, "body"),
        (b"[" * 100_000 + b"]" * 100_000, JSON, 400, "body"),
        (b'{"to": ' + b"[" * 50_000, JSON, 400, "body"),
        (b"", JSON, 400, "body"),
        (b'{"to": "+15550002222", "text": "x"}', "text/plain", 415, None),
        (b'{"to": "+15550002222", "text": "x"}', None, 415, None),
        (b"x" * (MAX_BODY + 1), JSON, 413, None),
        (b'{"to": "+15550002222", "text": "x"}', "application/vnd.api+json", 202, None),
    ],
)
def test_body_errors(
    client: FlaskClient,
    session: Session,
    data: bytes,
    content_type: str | None,
    status: int,
    field: str | None,
) -> None:
    headers = dict(AUTH)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/send", data=data, headers=headers)
    if status == 202:
        assert response.status_code == 202
        return
    assert_json_error(response, status, field=field)
    assert session.store.outbox_depth() == 0


# ---- /send ----------------------------------------------------------------------------------


def test_send_is_durable_before_the_202(client: FlaskClient, session: Session, world: FakeWorld) -> None:
    response = post(client, "/send", {"to": PEER, "text": "hello"})
    assert response.status_code == 202
    body = response.get_json()
    assert body == {"id": body["id"], "status": "queued"}
    assert response.headers["Location"] == f"/messages/{body['id']}"
    record = session.store.get(body["id"])  # committed already
    assert record is not None and record.text == "hello" and record.source == "api"
    wait_until(lambda: world.sent == [("15550002222@s.whatsapp.net", "hello")], 10, "the fake send")
    sent = client.get(f"/messages/{body['id']}", headers=AUTH).get_json()
    assert sent["status"] == "sent" and sent["wa_id"].startswith("3EB0") and sent["to"].startswith("1555")


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"to": 1, "text": "x"}, {}, "to"),
        ({"to": "nobody", "text": "x"}, {}, "to"),
        ({"to": PEER, "text": ""}, {}, "text"),
        ({"to": PEER, "text": "   "}, {}, "text"),
        ({"to": PEER, "text": "x" * 65_537}, {}, "text"),
        ({"to": PEER, "text": "bad \ud800"}, {}, "text"),
        ({"to": PEER}, {}, "text"),
        ({"text": "x"}, {}, "to"),
        ({"to": PEER, "text": "x", "extra": 1}, {}, "extra"),
        ({"to": PEER, "text": "x", "idempotency_key": 5}, {}, "idempotency_key"),
        ({"to": PEER, "text": "x", "idempotency_key": ""}, {}, "idempotency_key"),
        ({"to": PEER, "text": "x", "idempotency_key": "k" * 256}, {}, "idempotency_key"),
        ({"to": PEER, "text": "x"}, {"Idempotency-Key": "white space"}, "Idempotency-Key"),
        ({"to": PEER, "text": "x", "idempotency_key": "a"}, {"Idempotency-Key": "b"}, "idempotency_key"),
    ],
)
def test_send_names_the_bad_field(
    client: FlaskClient, session: Session, body: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    assert_json_error(post(client, "/send", body, headers), 400, "invalid_request", field)
    assert session.store.outbox_depth() == 0


def test_idempotency_key_replays_the_first_answer(client: FlaskClient, world: FakeWorld) -> None:
    body = {"to": PEER, "text": "once"}
    first = post(client, "/send", body, {"Idempotency-Key": "k-1"})
    second = post(client, "/send", body, {"Idempotency-Key": "k-1"})
    third = post(client, "/send", {**body, "idempotency_key": "k-1"})
    assert first.get_json() == second.get_json() == third.get_json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == third.headers["Idempotent-Replayed"] == "true"
    conflict = post(client, "/send", {**body, "text": "other"}, {"Idempotency-Key": "k-1"})
    error = assert_json_error(conflict, 409, "idempotency_conflict", "idempotency_key")
    assert error["id"] == first.get_json()["id"]
    wait_until(lambda: world.sent, 10, "the send")
    assert world.sent == [("15550002222@s.whatsapp.net", "once")]


# ---- reading --------------------------------------------------------------------------------


def test_messages_are_paginated_newest_first(client: FlaskClient) -> None:
    ids = [post(client, "/send", {"to": PEER, "text": f"m{i}"}).get_json()["id"] for i in range(5)]
    seen: list[str] = []
    url = "/messages?limit=2"
    pages = 0
    while True:
        page = client.get(url, headers=AUTH).get_json()
        seen += [m["id"] for m in page["messages"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        url = f"/messages?limit=2&cursor={page['next_cursor']}"
    assert seen == ids[::-1] and pages == 3
    assert client.get("/messages?direction=in", headers=AUTH).get_json()["messages"] == []
    assert len(client.get("/messages?limit=0002", headers=AUTH).get_json()["messages"]) == 2
    many = "9" * 5000  # longer than Python's limit for int() of a string
    bad_args = ("limit=0", "limit=201", "limit=x", "limit=\u0665", f"limit={many}", f"limit=0{many}")
    bad_args += ("cursor=abc", "cursor=-1", "cursor=\u0665", f"cursor={many}", "direction=up")
    for bad in bad_args:
        field = bad.split("=")[0]
        assert_json_error(client.get(f"/messages?{bad}", headers=AUTH), 400, field=field)
    assert_json_error(client.get("/messages/msg_nope", headers=AUTH), 404, "not_found")


def test_status_and_ready_when_connected(client: FlaskClient) -> None:
    status = client.get("/status", headers=AUTH).get_json()
    assert status["state"] == "connected"
    assert status["account"] == {
        "jid": "15550001111@s.whatsapp.net",
        "phone": "+15550001111",
        "push_name": "Fake",
        "lid": None,
    }
    assert {"since", "outbox_depth", "webhook_backlog", "version", "uptime", "reconnects"} <= set(status)
    ready = client.get("/ready", headers=AUTH)
    assert ready.status_code == 200 and ready.get_json()["ready"] is True
    assert client.get("/health").get_json() == {"status": "ok", "state": "connected"}


def test_before_start_qr_is_503_and_ready_is_503(tmp_path: Path) -> None:
    session = make_session(tmp_path, FakeWorld())
    client = create_app(session, token=TOKEN).test_client()
    response = client.get("/qr", headers=AUTH)
    body = assert_json_error(response, 503, "starting")
    assert body["state"] == "starting" and response.headers["Retry-After"] == "1"
    assert client.get("/ready", headers=AUTH).status_code == 503


@pytest.fixture
def waiting(session: Session, world: FakeWorld) -> FlaskClient:
    world.mode = "qr"
    start_session(session, Status.WAITING_FOR_SCAN)
    return create_app(session, token=TOKEN).test_client()


def test_qr_in_every_format(waiting: FlaskClient, session: Session) -> None:
    code = session.state.qr
    assert code
    png = waiting.get("/qr", headers=AUTH)
    assert png.mimetype == "image/png" and png.headers["Cache-Control"] == "no-store"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in decoded] == [code]
    svg = waiting.get("/qr?format=svg", headers=AUTH)
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    assert waiting.get("/qr?format=text", headers=AUTH).get_data(as_text=True) == code
    as_json = waiting.get("/qr?format=json", headers=AUTH).get_json()
    assert as_json["qr"] == code and as_json["expires_at"] == session.state.qr_expires_at
    assert as_json["image"].startswith("data:image/png;base64,")
    assert_json_error(waiting.get("/qr?format=gif", headers=AUTH), 400, field="format")
    assert waiting.get("/ready", headers=AUTH).status_code == 503


def test_qr_after_the_codes_expired_asks_for_new_ones_once(
    waiting: FlaskClient, session: Session, world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_mod, "QR_ROUNDS", 1)
    world.mode = "slow"  # the next client takes a while to bring its first code
    world.driver.post(drv.PairingEnded(world.driver.id, status="timeout"))
    wait_until(lambda: session.state.qr_expired, 10, "the codes expired")
    drivers = len(world.drivers)
    for _ in range(5):  # a dashboard polling faster than Retry-After
        body = assert_json_error(waiting.get("/qr", headers=AUTH), 503, "qr_pending")
        assert body["state"] == "waiting_for_scan"
    wait_until(lambda: len(world.drivers) > drivers, 10, "a new client for new codes")
    assert session.state.reason is None  # not expired any more: a code is on its way
    assert len(world.drivers) == drivers + 1
    world.driver.post(drv.QRCode(world.driver.id, world.next_qr()))
    wait_until(lambda: waiting.get("/qr?format=text", headers=AUTH).status_code == 200, 10, "the new code")


def test_qr_when_paired_is_409(client: FlaskClient) -> None:
    body = assert_json_error(client.get("/qr", headers=AUTH), 409, "already_paired")
    assert body["state"] == "connected"


def test_pair_code(waiting: FlaskClient, world: FakeWorld) -> None:
    response = post(waiting, "/pair-code", {"phone": "+1 555 000 1111"})
    assert response.status_code == 200 and response.get_json() == {"code": "ABCD-EFGH"}
    assert world.pair_requests == ["15550001111"]
    assert_json_error(post(waiting, "/pair-code", {"phone": "abc"}), 400, field="phone")
    assert_json_error(post(waiting, "/pair-code", {"phone": "120363025246125486@g.us"}), 400, field="phone")
    assert_json_error(post(waiting, "/pair-code", {}), 400, field="phone")


def test_pair_code_when_paired_is_409(client: FlaskClient) -> None:
    assert_json_error(post(client, "/pair-code", {"phone": "+15550001111"}), 409, "already_paired")


def test_logout_when_not_connected_is_409(waiting: FlaskClient) -> None:
    assert_json_error(waiting.post("/logout", headers=AUTH), 409, "not_connected")


def test_logout(client: FlaskClient, session: Session, world: FakeWorld) -> None:
    world.mode = "qr"
    response = client.post("/logout", headers=AUTH)
    assert response.status_code == 200 and response.get_json()["status"] == "logged_out"
    assert world.logouts == 1
    wait_until(lambda: session.state.status is Status.WAITING_FOR_SCAN, 10, "a new QR code")


# ---- /events, /metrics, /openapi.json, the access log --------------------------------------


def read_events(response: Any, count: int) -> list[str]:
    """The first ``count`` SSE blocks (events and comments) of a streamed response."""
    blocks: list[str] = []
    buffer = ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            blocks.append(block)
            if len(blocks) >= count:
                return blocks
    return blocks


def test_event_stream(app: Flask, client: FlaskClient) -> None:
    response = client.get("/events", headers=AUTH, buffered=False)
    assert response.mimetype == "text/event-stream" and response.headers["Cache-Control"] == "no-store"
    threading.Thread(
        target=lambda: post(app.test_client(), "/send", {"to": PEER, "text": "hi"}), daemon=True
    ).start()
    blocks = read_events(response, 8)
    # the reconnection hint is inside the first event: a block of its own would be an empty
    # default event to some clients
    first = dict(line.split(": ", 1) for line in blocks[0].splitlines())
    assert first["retry"] == "3000" and first["event"] == "session.status"
    envelope = json.loads(first["data"])
    assert envelope["payload"]["state"] == "connected"
    assert "id" not in first  # the current state is not a logged event: the client keeps its last id
    events = [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks if not b.startswith(":")]
    assert all(e["event"] != "message" for e in events)
    statuses = [json.loads(e["data"])["payload"]["status"] for e in events if e["event"] == "message.status"]
    assert statuses[:2] == ["queued", "sent"]
    response.close()


def test_event_stream_heartbeat_filter_and_shutdown(app: Flask, client: FlaskClient) -> None:
    broker = app.extensions["wadesk"].broker
    response = client.get("/events?events=qr", headers=AUTH, buffered=False)
    assert read_events(response, 3) == [
        ": connected",
        ": keep-alive",
        ": keep-alive",
    ]  # no state: filtered out; the retry hint waits for the first event
    done = threading.Event()

    def drain() -> None:
        for _ in response.response:
            pass
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    broker.close()
    assert done.wait(5)
    assert_json_error(client.get("/events", headers=AUTH), 503)
    assert_json_error(client.get("/events?events=nope", headers=AUTH), 400, field="events")


def test_event_stream_limit(session: Session) -> None:
    start_session(session)
    app = create_app(session, token=TOKEN, max_streams=1, sse_heartbeat=0.1)
    first = app.test_client().get("/events", headers=AUTH, buffered=False)
    assert_json_error(app.test_client().get("/events", headers=AUTH), 503)
    first.close()
    again = app.test_client().get("/events", headers=AUTH, buffered=False)
    assert again.status_code == 200
    again.close()


def test_a_stream_closed_before_its_first_event_frees_its_slot(session: Session) -> None:
    # HEAD /events (or a client gone before the body starts) never runs the stream's body
    start_session(session)
    app = create_app(session, token=TOKEN, max_streams=1, sse_heartbeat=0.1)
    broker = app.extensions["wadesk"].broker
    for _ in range(3):
        head = app.test_client().head("/events", headers=AUTH)
        assert head.status_code == 200 and head.mimetype == "text/event-stream"
        head.close()
        unread = app.test_client().get("/events", headers=AUTH, buffered=False)
        assert unread.status_code == 200
        unread.close()
        assert len(broker) == 0
    again = app.test_client().get("/events", headers=AUTH, buffered=False)
    assert again.status_code == 200
    again.close()


def metrics_of(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_have_their_own_registry_per_app(app: Flask, client: FlaskClient, session: Session) -> None:
    post(client, "/send", {"to": PEER, "text": "counted"})
    client.get("/nope", headers=AUTH).close()
    other = create_app(session, token=TOKEN).test_client()
    m = metrics_of(client)
    assert m[("wadesk_session_state", (("state", "connected"),))] == 1
    assert m[("wadesk_session_state", (("state", "waiting_for_scan"),))] == 0
    assert m[("wadesk_messages_total", (("status", "queued"),))] >= 1
    key = ("wadesk_http_requests_total", (("method", "POST"), ("route", "/send"), ("status", "202")))
    assert m[key] == 1
    assert (
        m[("wadesk_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    )
    assert ("wadesk_outbox_depth", ()) in m and ("wadesk_reconnects_total", ()) in m
    assert ("process_resident_memory_bytes", ()) in m
    fresh = metrics_of(other)
    assert key not in fresh  # the other app counted nothing yet


def test_unknown_methods_share_one_metrics_label(client: FlaskClient) -> None:
    for i in range(5):
        refused = client.open("/health", method=f"X{i}")
        refused.close()
        assert_json_error(refused, 405)
        client.open("/status", method=f"Y{i}").close()  # 401: no token
    m = metrics_of(client)
    methods = {dict(labels)["method"] for name, labels in m if name == "wadesk_http_requests_total"}
    assert methods == {"other"}
    counted = sum(v for (name, labels), v in m.items() if name == "wadesk_http_requests_total")
    assert counted == 10


def test_openapi_describes_exactly_the_routes(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json", headers=AUTH).get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == routes(app)
    assert spec == json.loads(json.dumps(document(spec["info"]["version"])))
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_one_access_log_line_per_request(client: FlaskClient, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="wadesk.http"):
        for path, headers in (("/health", {}), ("/messages/msg_abc", AUTH), ("/status", {})):
            client.get(path, headers=headers).close()
    lines = [r for r in caplog.records if r.name == "wadesk.http"]
    assert [(r.method, r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/health", 200),
        ("GET", "/messages/<message_id>", 404),
        ("GET", "/status", 401),
    ]
    assert all(r.levelno == logging.INFO and r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    assert lines[1].getMessage().startswith("GET /messages/msg_abc 404 ")


def test_access_log_escapes_control_characters_in_the_path(client: FlaskClient, caplog: Any) -> None:
    forged = "/x%0A2026-01-01 00:00:00 ERROR   wadesk.api: forged%0D%C2%85line"
    with caplog.at_level(logging.INFO, logger="wadesk.http"):
        client.get(forged).close()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "wadesk.http"]
    assert line.startswith("GET /x\\n2026-01-01 00:00:00 ERROR   wadesk.api: forged\\r\\xc2\\x85line 401 ")
    assert line.isprintable()
