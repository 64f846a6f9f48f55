"""``wadesk --headless`` end to end: the real process, real HTTP on loopback, the real neonize
client inside it, and the fake WhatsApp server (``fake_wa``) on the other side."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import signal
import threading
import time
from collections.abc import Callable

import pytest
import requests
from fakewa.harness import FakeWhatsApp
from headless_harness import (
    ACCOUNT_PHONE,
    PEER_PHONE,
    SECRET,
    TOKEN,
    Headless,
    Receiver,
    decode_qr_png,
    fetch_qr_png,
    free_port,
    pair,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from wadesk.api.webhooks import verify

pytestmark = pytest.mark.e2e

PEER = "+1 555 000 2222"
PEER_JID = f"{PEER_PHONE}@s.whatsapp.net"


def metric(gw: Headless, name: str, **labels: str) -> float:
    """A sample from /metrics (0 when absent: a labelled counter appears at its first increment)."""
    for family in text_string_to_metric_families(gw.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_qr_from_the_api_pairs_the_phone(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    png = fetch_qr_png(gw)
    code = decode_qr_png(png)
    assert fake_wa.is_own_qr(code)
    # the other formats carry the same code
    assert gw.get("/qr?format=text").text == code
    as_json = gw.get("/qr?format=json").json()
    assert as_json["qr"] == code and as_json["expires_at"] > 0
    assert as_json["image"].startswith("data:image/png;base64,")
    svg = gw.get("/qr?format=svg")
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and "<svg" in svg.text
    assert gw.status()["state"] == "waiting_for_scan"
    assert gw.get("/ready").status_code == 503
    # pairing without a camera asks WhatsApp for a code
    response = gw.post("/pair-code", json={"phone": f"+{ACCOUNT_PHONE}"})
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", response.json()["code"])
    fake_wa.wait_for(lambda kind, _data: kind == "pair-code-requested", what="the pairing code request")

    fake_wa.scan(code)
    status = gw.wait_state("connected")
    assert status["account"]["phone"] == f"+{ACCOUNT_PHONE}"
    assert status["account"]["jid"].startswith(ACCOUNT_PHONE)
    assert gw.get("/ready").json() == {
        "ready": True,
        "state": "connected",
        "description": status["description"],
    }
    paired = gw.get("/qr")
    assert paired.status_code == 409 and paired.json()["state"] == "connected"

    # the log carried the code as text art and as text, and never the token
    records = gw.log_records()
    qr_lines = [r["message"] for r in records if r.get("logger") == "wadesk.qr"]
    assert any(r.get("qr") == code for r in records if r.get("logger") == "wadesk.qr")
    assert f"QR code text: {code}" in qr_lines
    art = [line for line in qr_lines if line and set(line) <= set("\u2588\u2580\u2584 ")]
    assert len(art) >= 15, "the QR code was not printed as text art"
    assert TOKEN not in gw.logs()
    assert gw.stop() == 0


def test_send_reaches_the_peer_and_reports_sent(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    pair(gw, fake_wa)
    text = "hello from the API \u2713 \U0001f680\nsecond line"
    message_id = gw.send(PEER, text)
    _, received = fake_wa.wait_text_from_client(PEER_PHONE, timeout=20)
    assert received == text
    sent = wait_until(lambda: (m := gw.message(message_id))["status"] == "sent" and m, 20, "status sent")
    assert sent["to"] == PEER_JID and sent["text"] == text
    assert sent["wa_id"] and sent["wa_timestamp"] > 0 and sent["error"] is None
    newest = gw.get("/messages?limit=1").json()
    assert [m["id"] for m in newest["messages"]] == [message_id]
    # WhatsApp's read receipt moves it on
    fake_wa.send_receipt(sent["wa_id"], PEER_PHONE, type="read")
    wait_until(lambda: gw.message(message_id)["status"] == "read", 20, "status read")
    assert metric(gw, "wadesk_messages_total", status="sent") == 1
    assert gw.stop() == 0


def test_refused_new_chat_fails_with_the_reason(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    pair(gw, fake_wa)
    fake_wa.set_message_error(PEER_PHONE, "463")
    blocked = gw.send(PEER, "blocked by the reach-out timelock")
    failed = wait_until(lambda: (m := gw.message(blocked))["status"] == "failed" and m, 20, "status failed")
    assert "463" in failed["error"] and failed["attempts"] == 1
    fake_wa.set_message_error(PEER_PHONE, None)
    allowed = gw.send(PEER, "allowed again")
    wait_until(lambda: gw.message(allowed)["status"] == "sent", 20, "the next message sent")
    # the refused message reached the server once (no retry loop), then the next one went out
    assert fake_wa.texts_received(PEER_PHONE) == ["blocked by the reach-out timelock", "allowed again"]
    assert gw.stop() == 0


def test_incoming_message_reaches_the_webhook_signed(
    fake_wa: FakeWhatsApp,
    receiver: Receiver,
    hooked_gateway: Callable[..., Headless],
) -> None:
    gw = hooked_gateway()
    fake_wa.peer(PEER_PHONE).send_text("ping from the peer")
    deliveries = receiver.wait_for(
        lambda ds: any(d.json["event"] == "message.received" for d in ds), 30, "the incoming message"
    )
    hook = next(d for d in deliveries if d.json["event"] == "message.received")
    body = hook.json
    assert set(body) == {"event", "id", "timestamp", "payload"}
    assert body["payload"]["text"] == "ping from the peer"
    assert body["payload"]["sender"] == PEER_JID and body["payload"]["is_group"] is False
    # Standard Webhooks: v1, base64 HMAC-SHA256 over "<id>.<timestamp>.<raw body>", keyed by the
    # bytes behind whsec_; the reference library verifies it
    assert hook.headers["webhook-id"] == body["id"]
    timestamp = hook.headers["webhook-timestamp"]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{body['id']}.{timestamp}.".encode() + hook.body, hashlib.sha256).digest()
    assert hook.headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert Webhook(SECRET).verify(hook.body, hook.headers) == body
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(hook.body.replace(b"ping", b"pong"), hook.headers)
    assert verify(SECRET, hook.body, hook.headers)
    assert not verify(SECRET, hook.body.replace(b"ping", b"pong"), hook.headers)
    assert "X-Wadesk-Signature" not in hook.headers
    assert hook.headers["Content-Type"] == "application/json"
    # every state change was delivered too, in order, before the message
    events = [d.json["event"] for d in deliveries]
    states = [d.json["payload"]["state"] for d in deliveries if d.json["event"] == "session.status"]
    assert states[-1] == "connected" and "waiting_for_scan" in states
    assert events.index("message.received") > max(i for i, e in enumerate(events) if e == "session.status")
    assert "qr" in events
    assert gw.stop() == 0


def test_webhook_receiver_down_then_up_gets_every_event_in_order(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    receiver = Receiver()  # its port is known, nothing listens yet
    gw = headless(
        gateway_env(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, WEBHOOK_EVENTS="message.received")
    ).start()
    try:
        pair(gw, fake_wa)
        texts = [f"while the receiver is down {i}" for i in range(5)]
        for text in texts:
            fake_wa.peer(PEER_PHONE).send_text(text)
        wait_until(lambda: gw.status()["webhook_backlog"] == 5, 20, "5 events in the webhook backlog")
        wait_until(
            lambda: metric(gw, "wadesk_webhook_failures_total", receiver=receiver.url, outcome="retry") >= 1,
            20,
            "a failed delivery attempt",
        )
        receiver.start()
        deliveries = receiver.wait_for(lambda ds: len(ds) >= 5, 60, "5 deliveries")
        assert [d.json["payload"]["text"] for d in deliveries] == texts
        assert len({d.json["id"] for d in deliveries}) == 5
        for d in deliveries:  # delivered late, after retries: signed at the attempt, verifiable now
            Webhook(SECRET).verify(d.body, d.headers)
            assert d.headers["webhook-id"] == d.json["id"]
        wait_until(lambda: gw.status()["webhook_backlog"] == 0, 20, "an empty webhook backlog")
        assert gw.stop() == 0
    finally:
        receiver.stop()


def test_webhook_events_survive_a_restart(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    receiver = Receiver()
    env = gateway_env(WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, WEBHOOK_EVENTS="message.received")
    first = headless(env).start()
    try:
        pair(first, fake_wa)
        texts = [f"queued across a restart {i}" for i in range(3)]
        for text in texts:
            fake_wa.peer(PEER_PHONE).send_text(text)
        wait_until(lambda: first.status()["webhook_backlog"] == 3, 20, "3 events in the webhook backlog")
        assert first.stop() == 0
        receiver.start()
        second = headless(env).start()
        deliveries = receiver.wait_for(lambda ds: len(ds) >= 3, 60, "3 deliveries after the restart")
        assert [d.json["payload"]["text"] for d in deliveries] == texts
        assert second.stop() == 0
    finally:
        receiver.stop()


def test_fifty_messages_queued_offline_survive_kill_9_and_go_out_exactly_once(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    online = gateway_env()
    first = headless(online).start()
    pair(first, fake_wa)
    assert first.stop() == 0

    # WhatsApp unreachable: the proxy port has nobody listening
    offline = headless(gateway_env(WADESK_PROXY=f"http://127.0.0.1:{free_port()}")).start()
    offline.wait_state("reconnecting")
    texts = [f"offline message {i:02d}" for i in range(50)]
    ids = [offline.send(PEER, text) for text in texts]
    assert len(set(ids)) == 50
    assert offline.status()["outbox_depth"] == 50
    offline.kill()  # kill -9: no shutdown code runs

    again = headless(online).start()
    again.wait_state("connected")  # the pairing survived: no QR
    wait_until(lambda: len(fake_wa.texts_received(PEER_PHONE)) >= 50, 90, "50 texts at the peer")
    wait_until(lambda: again.status()["outbox_depth"] == 0, 30, "an empty outbox")
    assert all(again.message(i)["status"] == "sent" for i in ids)
    assert fake_wa.texts_received(PEER_PHONE) == texts  # each exactly once, in order
    assert again.stop() == 0


def test_same_idempotency_key_sends_one_message(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    pair(gw, fake_wa)
    body = {"to": PEER, "text": "only once, please"}
    first = gw.post("/send", json=body, headers={"Idempotency-Key": "order-1234"})
    again = gw.post("/send", json=body, headers={"Idempotency-Key": "order-1234"})
    in_body = gw.post("/send", json={**body, "idempotency_key": "order-1234"})
    assert first.status_code == again.status_code == in_body.status_code == 202
    assert first.json() == again.json() == in_body.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = gw.post(
        "/send", json={**body, "text": "something else"}, headers={"Idempotency-Key": "order-1234"}
    )
    assert conflict.status_code == 409
    assert (
        conflict.json()["error"] == "idempotency_conflict" and conflict.json()["field"] == "idempotency_key"
    )
    marker = gw.send(PEER, "sent after the retries")
    wait_until(lambda: gw.message(marker)["status"] == "sent", 30, "the marker sent")
    assert fake_wa.texts_received(PEER_PHONE) == ["only once, please", "sent after the retries"]
    assert gw.stop() == 0


def test_sigterm_finishes_requests_in_flight_and_loses_nothing(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    env = gateway_env()
    gw = headless(env).start()
    pair(gw, fake_wa)
    stream_ended = threading.Event()
    accepted: list[tuple[str, str]] = []

    def watch_events() -> None:
        with gw.get("/events", stream=True, timeout=30) as response:
            for _ in response.iter_lines():
                pass
        stream_ended.set()

    def send_until_refused() -> None:
        for i in range(100_000):
            text = f"burst {i:04d}"
            try:
                response = gw.post("/send", json={"to": PEER, "text": text}, timeout=10)
            except requests.RequestException:
                return
            if response.status_code != 202:
                return
            accepted.append((response.json()["id"], text))

    watcher = threading.Thread(target=watch_events, daemon=True)
    watcher.start()
    sender = threading.Thread(target=send_until_refused, daemon=True)
    sender.start()
    wait_until(
        lambda: len(fake_wa.texts_received(PEER_PHONE)) >= 10 and len(accepted) >= 20, 30, "sends going on"
    )
    started = time.monotonic()
    gw.signal(signal.SIGTERM)
    assert gw.proc is not None and gw.proc.wait(10) == 0
    assert time.monotonic() - started < 10
    sender.join(15)
    assert stream_ended.wait(5), "the /events stream did not end at shutdown"
    logs = gw.logs()
    assert "shutting down (SIGTERM)" in logs and '"stopped after' in logs

    again = headless(env).start()
    again.wait_state("connected")
    wait_until(lambda: again.status()["outbox_depth"] == 0, 60, "an empty outbox")
    stored = []
    cursor = ""
    while True:
        page = again.get(f"/messages?direction=out&limit=200{cursor}").json()
        stored += page["messages"]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    stored.reverse()  # oldest first
    assert {i for i, _ in accepted} <= {m["id"] for m in stored}, "a message answered with 202 was lost"
    assert all(m["status"] == "sent" for m in stored)
    # every stored message reached the peer exactly once, in order
    assert fake_wa.texts_received(PEER_PHONE) == [m["text"] for m in stored]
    assert again.stop() == 0


def test_every_protected_endpoint_refuses_a_missing_or_wrong_token(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    pair(gw, fake_wa)
    spec = gw.get("/openapi.json").json()
    operations = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]
    assert len(operations) == 30
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"X-Api-Key": TOKEN[:-1]},
        {"X-Api-Key": ""},
    ]
    for method, path in operations:
        url = path.replace("{id}", "msg_unknown").replace("{jid}", "120363000000000001@g.us")
        body = {"json": {"to": PEER, "text": "must not be sent"}} if method == "POST" else {}
        if path in ("/health", "/ready"):  # the probes need no token
            assert gw.request(method, url, token="").status_code == 200
            continue
        for headers in wrong:
            response = gw.request(method, url, token="", headers=headers, **body)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert response.headers["Content-Type"] == "application/json"
            assert response.json()["error"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if method == "GET":  # the right token, both ways, gets past the check
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-Api-Key": TOKEN}):
                with gw.request(method, url, token="", headers=headers, stream=True) as response:
                    assert response.status_code != 401, (method, path)
    # an unknown route does not tell a stranger whether it exists
    assert gw.get("/admin", token="").status_code == 401
    assert gw.get("/admin").status_code == 404
    assert gw.get("/messages?limit=200").json()["messages"] == []
    assert fake_wa.texts_received(PEER_PHONE) == []
    assert gw.stop() == 0


def test_bad_input_gets_4xx_json_and_queues_nothing(
    fake_wa: FakeWhatsApp, headless: Callable[..., Headless], gateway_env: Callable[..., dict[str, str]]
) -> None:
    gw = headless(gateway_env()).start()
    pair(gw, fake_wa)
    json_type = {"Content-Type": "application/json"}
    good = {"to": PEER, "text": "fine"}
    partial = b'{"to": "+1 555 000 2222", "text": '
    huge = "x" * (1024 * 1024)
    chunks = iter([b'{"to": "+15550002222", "text": "', huge.encode(), b'"}'])
    idem = {"Idempotency-Key": "has spaces"}
    cases: list[tuple[str, dict[str, object], int, str | None]] = [
        ("malformed JSON", {"data": partial, "headers": json_type}, 400, "body"),
        ("a JSON array", {"json": [good]}, 400, "body"),
        ("a JSON string", {"json": "hello"}, 400, "body"),
        ("an empty body", {"data": b"", "headers": json_type}, 400, "body"),
        ("to is a number", {"json": {"to": 15550002222, "text": "x"}}, 400, "to"),
        ("text is a number", {"json": {"to": PEER, "text": 5}}, 400, "text"),
        ("text is null", {"json": {"to": PEER, "text": None}}, 400, "text"),
        ("text is a list", {"json": {"to": PEER, "text": ["a"]}}, 400, "text"),
        ("no to", {"json": {"text": "x"}}, 400, "to"),
        ("no text", {"json": {"to": PEER}}, 400, "text"),
        ("empty text", {"json": {"to": PEER, "text": ""}}, 400, "text"),
        ("blank text", {"json": {"to": PEER, "text": " \n\t "}}, 400, "text"),
        ("text too long", {"json": {"to": PEER, "text": "x" * 65_537}}, 400, "text"),
        ("not a number", {"json": {"to": "hello", "text": "x"}}, 400, "to"),
        ("a national number", {"json": {"to": "0151 2345678", "text": "x"}}, 400, "to"),
        ("a malformed LID", {"json": {"to": "12x@lid", "text": "x"}}, 400, "to"),
        ("an unknown field", {"json": {**good, "priority": "high"}}, 400, "priority"),
        ("a bad idempotency key", {"json": good, "headers": idem}, 400, "Idempotency-Key"),
        (
            "keys that disagree",
            {"json": {**good, "idempotency_key": "a"}, "headers": {"Idempotency-Key": "b"}},
            400,
            "idempotency_key",
        ),
        ("text/plain", {"data": b"to=x&text=x", "headers": {"Content-Type": "text/plain"}}, 415, None),
        ("a form", {"data": {"to": PEER, "text": "x"}}, 415, None),
        ("no content type", {"data": b'{"to": "+15550002222", "text": "x"}'}, 415, None),
        ("a body over 1 MiB", {"json": {"to": PEER, "text": huge}}, 413, None),
        ("a chunked body over 1 MiB", {"data": chunks, "headers": json_type}, 413, None),
    ]
    for what, kwargs, status, field in cases:
        response = gw.post("/send", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, (what, response.status_code, response.text[:300])
        assert response.headers["Content-Type"] == "application/json", what
        body = response.json()
        assert body["error"] and body["message"], what
        assert "Traceback" not in response.text, what
        if field is not None:
            assert body["field"] == field, (what, body)
    # a body of exactly 1 MiB is read (and refused for its text, not its size)
    head, tail = b'{"to": "+15550002222", "text": "', b'"}'
    exact = head + b"x" * (1024 * 1024 - len(head) - len(tail)) + tail
    response = gw.post("/send", data=exact, headers=json_type)
    assert response.status_code == 400 and response.json()["field"] == "text"
    # the gateway still serves, and nothing was queued or sent
    assert gw.get("/messages").json()["messages"] == []
    assert gw.status()["outbox_depth"] == 0
    assert metric(gw, "wadesk_messages_total", status="queued") == 0
    ok = gw.send(PEER, "the first real message")
    wait_until(lambda: gw.message(ok)["status"] == "sent", 20, "the real message sent")
    assert fake_wa.texts_received(PEER_PHONE) == ["the first real message"]
    assert gw.stop() == 0
