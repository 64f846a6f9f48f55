"""Webhook deliveries verified with the Standard Webhooks reference library (``standardwebhooks``),
as a receiver verifies them: a gateway on the fake driver posts to a local receiver."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from headless_harness import AUTH, PEER_PHONE, TOKEN, FakeWorld, Receiver, free_port, make_session, wait_until
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from wadesk.api import webhooks as wh
from wadesk.api.auth import resolve_webhook_secret
from wadesk.config import Config, ConfigError
from wadesk.core import driver as drv
from wadesk.core.datadir import WEBHOOK_SECRET_FILE, DataDir

OLD = "whsec_" + base64.b64encode(b"the-old-key-of-the-receivers-32b").decode()
NEW = "whsec_" + base64.b64encode(b"the-new-key-of-the-receivers-32b").decode()
OTHER = "whsec_" + base64.b64encode(b"a-key-nobody-configured-at-all-x").decode()
PEER_JID = f"{PEER_PHONE}@s.whatsapp.net"


def library_accepts(secret: str | bytes, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature entry
        return False
    return True


# ---- the helper and the library agree -----------------------------------------------------


def test_verify_agrees_with_the_library() -> None:
    body = json.dumps({"event": "qr", "id": "evt_1", "payload": {"qr": "é"}}, ensure_ascii=False).encode()
    now = int(time.time())
    good = wh.signed_headers(OLD, "evt_1", now, body)
    sig = good["webhook-signature"]
    other = wh.sign(OTHER, "evt_1", now, body)
    cases = {
        "as sent": (body, good),
        "upper-case names": (body, {k.upper(): v for k, v in good.items()}),
        "tampered body": (body.replace(b"qr", b"QR"), good),
        "another id": (body, {**good, "webhook-id": "evt_2"}),
        "another timestamp": (body, {**good, "webhook-timestamp": str(now + 1)}),
        "4 minutes old": (body, wh.signed_headers(OLD, "evt_1", now - 240, body)),
        "6 minutes old": (body, wh.signed_headers(OLD, "evt_1", now - 360, body)),
        "6 minutes ahead": (body, wh.signed_headers(OLD, "evt_1", now + 360, body)),
        "not a number": (body, {**good, "webhook-timestamp": "soon"}),
        "another key only": (body, {**good, "webhook-signature": other}),
        "another key first": (body, {**good, "webhook-signature": f"{other} {sig}"}),
        "another version": (body, {**good, "webhook-signature": sig.replace("v1,", "v1a,")}),
        "no signature": (body, {k: v for k, v in good.items() if k != "webhook-signature"}),
        "no id": (body, {k: v for k, v in good.items() if k != "webhook-id"}),
    }
    for name, (data, headers) in cases.items():
        for secret in (OLD, OLD.removeprefix("whsec_"), base64.b64decode(OLD.removeprefix("whsec_"))):
            assert wh.verify(secret, data, headers) == library_accepts(secret, data, headers), name
    assert wh.verify(OLD, body, good) and not wh.verify(OTHER, body, good)


@pytest.mark.parametrize(
    "key",
    [b"k" * 24, b"\xfb\xff\xbf" * 11, bytes(range(64)), b"x" * 32, b"y" * 25, b"z" * 26],
)
def test_every_accepted_spelling_of_a_secret_is_the_key_the_library_reads(key: bytes) -> None:
    encoded = base64.b64encode(key).decode()
    for spelling in (f"whsec_{encoded}", encoded, f"whsec_{encoded.rstrip('=')}", encoded.rstrip("=")):
        assert wh.keys_of(spelling) == (key,)
        headers = wh.signed_headers(spelling, "evt_1", int(time.time()), b"{}")
        assert library_accepts(spelling, b"{}", headers), spelling
        assert library_accepts(key, b"{}", headers), spelling


# ---- real deliveries ----------------------------------------------------------------------


class RunningGateway:
    def __init__(self, tmp_path: Path, receiver: Receiver, secret: str | None) -> None:
        from wadesk.api.server import Gateway

        self.world = FakeWorld("connected")
        self.data = DataDir(tmp_path / "data").prepare()
        self.config = Config(
            data_dir=self.data.path, port=free_port(), webhook_urls=(receiver.url,), webhook_secret=secret
        )
        self.secret = resolve_webhook_secret(self.config, self.data)  # as wadesk --headless does
        self.session = make_session(self.data.path, self.world)
        self.gateway = Gateway(
            self.config, self.data, token=TOKEN, webhook_secret=self.secret.value, session=self.session
        )
        self.gateway.bind()
        self.thread = threading.Thread(target=self.gateway.serve, name="gateway-under-test", daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.gateway.addresses[0][1]}"
        wait_until(lambda: self.session.state.status.value == "connected", 10, "connected")

    def send(self, text: str) -> str:
        answer = requests.post(
            self.base + "/send", json={"to": f"+{PEER_PHONE}", "text": text}, headers=AUTH, timeout=10
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def receive(self, text: str) -> None:
        self.world.driver.emit(
            drv.Incoming,
            wa_id=f"IN-{text}",
            chat=PEER_JID,
            sender=PEER_JID,
            push_name="Peer",
            text=text,
            timestamp=time.time(),
            is_group=False,
        )

    def stop(self) -> None:
        self.gateway.request_stop("test over")
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def gateway(tmp_path: Path, receiver: Receiver) -> Iterator[Callable[[str | None], RunningGateway]]:
    made: list[RunningGateway] = []

    def start(secret: str | None) -> RunningGateway:
        receiver.start()
        made.append(RunningGateway(tmp_path, receiver, secret))
        return made[-1]

    yield start
    for g in made:
        g.stop()


def deliveries_of(receiver: Receiver, *events: str) -> list[object]:
    return receiver.wait_for(
        lambda ds: all(any(d.json["event"] == e for d in ds) for e in events), 20, " and ".join(events)
    )


def test_real_deliveries_verify_with_the_library(
    gateway: Callable[[str | None], RunningGateway], receiver: Receiver
) -> None:
    g = gateway(OLD)
    message_id = g.send("hello")
    g.receive("hi back")
    deliveries_of(receiver, "session.status", "message.status", "message.received")
    hook = Webhook(OLD)
    seen = receiver.accepted()
    assert len(seen) >= 3
    for d in seen:
        assert hook.verify(d.body, d.headers) == d.json  # the library returns the parsed body
        assert d.headers["webhook-id"] == d.json["id"]
        assert d.headers["X-Wadesk-Event"] == d.json["event"]
        assert d.headers["webhook-signature"].startswith("v1,") and " " not in d.headers["webhook-signature"]
        assert abs(int(d.headers["webhook-timestamp"]) - time.time()) < 60
        ours = {name for name in d.headers if name.lower().startswith("x-wadesk-")}
        assert ours == {"X-Wadesk-Event"}  # no X-Wadesk-Signature, -Timestamp, -Event-Id
        assert wh.verify(OLD, d.body, d.headers)
        with pytest.raises(WebhookVerificationError):
            hook.verify(d.body.replace(b'"id"', b'"Id"'), d.headers)  # tampered body
        with pytest.raises(WebhookVerificationError):
            hook.verify(d.body, {**d.headers, "webhook-id": "evt_other"})
        with pytest.raises(WebhookVerificationError):
            Webhook(OTHER).verify(d.body, d.headers)
    sent = [d.json for d in seen if d.json["event"] == "message.status"]
    assert any(p["payload"].get("id") == message_id for p in sent)


def test_during_a_change_of_secret_each_delivery_verifies_with_either(
    gateway: Callable[[str | None], RunningGateway], receiver: Receiver
) -> None:
    g = gateway(f"{NEW} {OLD}")
    g.receive("rotating")
    deliveries_of(receiver, "session.status", "message.received")
    for d in receiver.accepted():
        signatures = d.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        for secret in (NEW, OLD):
            assert Webhook(secret).verify(d.body, d.headers) == d.json  # each one alone
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(d.body + b" ", d.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(OTHER).verify(d.body, d.headers)


def test_a_retried_delivery_keeps_its_id_and_is_signed_anew(
    gateway: Callable[[str | None], RunningGateway], receiver: Receiver
) -> None:
    receiver.statuses = [503]  # the first attempt fails
    gateway(OLD)
    receiver.wait_for(lambda ds: len(ds) >= 1, 20, "the retried delivery")
    with receiver.cond:
        first, second = receiver.deliveries[0], receiver.deliveries[1]
    assert first.status == 503 and second.status == 200
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == second.json["id"]
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])
    for d in (first, second):
        Webhook(OLD).verify(d.body, d.headers)


def test_a_generated_secret_is_kept_in_the_whsec_form_and_verifies(
    gateway: Callable[[str | None], RunningGateway], receiver: Receiver
) -> None:
    g = gateway(None)
    path = g.data.file(WEBHOOK_SECRET_FILE)
    kept = path.read_text().strip()
    assert g.secret.created and g.secret.path == path and g.secret.value == kept
    assert kept.startswith("whsec_") and len(base64.b64decode(kept.removeprefix("whsec_"))) == 32
    assert path.stat().st_mode & 0o077 == 0
    deliveries_of(receiver, "session.status")
    for d in receiver.accepted():
        Webhook(kept).verify(d.body, d.headers)


def test_a_plain_secret_kept_by_an_older_version_is_replaced(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").prepare()
    data.file(WEBHOOK_SECRET_FILE).write_text("an-old-token_urlsafe-secret-0123456789abcdefg\n")
    secret = resolve_webhook_secret(Config(data_dir=data.path), data)
    assert secret.created and secret.value.startswith("whsec_")
    assert data.file(WEBHOOK_SECRET_FILE).read_text().strip() == secret.value
    again = resolve_webhook_secret(Config(data_dir=data.path), data)
    assert (again.value, again.created) == (secret.value, False)


def test_a_kept_whsec_secret_that_is_not_valid_is_a_config_error(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data").prepare()
    data.file(WEBHOOK_SECRET_FILE).write_text("whsec_c2hvcnQ=\n")  # 5 bytes: edited by hand
    with pytest.raises(ConfigError) as info:
        resolve_webhook_secret(Config(data_dir=data.path), data)
    assert str(info.value).startswith("invalid WEBHOOK_SECRET: the secret kept in ")
    assert "not 5" in str(info.value) and "c2hvcnQ" not in str(info.value)
    assert data.file(WEBHOOK_SECRET_FILE).read_text() == "whsec_c2hvcnQ=\n"  # left as it is
