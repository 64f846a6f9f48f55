"""Webhook signing, retry classification, backoff, and the durable per-receiver queue."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from headless_harness import Receiver, free_port, wait_until

from wadesk.api import webhooks as wh
from wadesk.api.feed import Envelope
from wadesk.api.metrics import Metrics
from wadesk.config import ConfigError, load
from wadesk.core.events import IncomingMessage, MessageQueued, MessageSent, SessionState, StateChanged, Status
from wadesk.core.store import Store, WebhookQueue

KEY = b"a-webhook-key-for-unit-tests-32b"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
URL = "http://receiver.test/hook"
URL2 = "http://other.test/hook"


def incoming(text: str) -> Envelope:
    return Envelope.of(
        IncomingMessage(
            id="msg_1",
            wa_id="W1",
            chat="15550002222@s.whatsapp.net",
            sender="15550002222@s.whatsapp.net",
            push_name="Peer",
            text=text,
            timestamp=1.0,
            is_group=False,
        )
    )


# ---- signing --------------------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_over_id_dot_timestamp_dot_body() -> None:
    body = b'{"event":"message.received","id":"evt_1"}'
    mac = base64.b64encode(hmac.new(KEY, b"evt_1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert wh.sign(SECRET, "evt_1", 1700000000, body) == f"v1,{mac}"
    assert wh.signed_headers(SECRET, "evt_1", 1700000000, body) == {
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": f"v1,{mac}",
    }


def test_the_published_example_signature() -> None:
    # the example in the Standard Webhooks libraries' tests
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", b'{"test": 2432232314}'
    signature = wh.sign(secret, msg_id, 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    # the same key without the prefix, or as raw bytes
    assert wh.sign(secret.removeprefix("whsec_"), msg_id, 1614265330, body) == signature
    assert wh.sign(base64.b64decode(secret.removeprefix("whsec_")), msg_id, 1614265330, body) == signature


def hook_headers(msg_id: str, timestamp: object, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_verify() -> None:
    body = b'{"a":1}'
    now = 1_700_000_000
    good = wh.signed_headers(SECRET, "evt_1", now, body)
    sig = good["webhook-signature"]
    assert wh.verify(SECRET, body, good, now=now)
    assert wh.verify(SECRET, body.decode(), good, now=now)
    assert wh.verify(SECRET, body, {k.upper(): v for k, v in good.items()}, now=now)  # any case
    assert wh.verify(SECRET, body, good, now=now + 300)
    assert wh.verify(SECRET, body, good, now=now - 300)  # a receiver's clock a little behind
    assert not wh.verify(SECRET, body, good, now=now + 301)  # replayed later
    assert not wh.verify(SECRET, body, good, now=now - 301)  # from the future
    assert not wh.verify(SECRET, body + b" ", good, now=now)  # body changed
    assert not wh.verify(SECRET, body, hook_headers("evt_1", now + 1, sig), now=now)  # timestamp changed
    assert not wh.verify(SECRET, body, hook_headers("evt_2", now, sig), now=now)  # id changed
    other = "whsec_" + base64.b64encode(b"another-key-of-enough-bytes-0123").decode()
    assert not wh.verify(other, body, good, now=now)
    for timestamp in ("soon", "nan", "inf", ""):
        assert not wh.verify(SECRET, body, hook_headers("evt_1", timestamp, sig), now=now)
    for wrong in ("v1,AAAA", "v1,not base64!", sig.replace("v1,", "v2,"), sig.removeprefix("v1,"), ""):
        assert not wh.verify(SECRET, body, hook_headers("evt_1", now, wrong), now=now)
    for missing in good:
        assert not wh.verify(SECRET, body, {k: v for k, v in good.items() if k != missing}, now=now)
    # a list of signatures passes when one of them is ours, whatever else is in it
    assert wh.verify(SECRET, body, hook_headers("evt_1", now, f"v1a,xyz v1,AAAA {sig}"), now=now)


def test_rotation_signs_with_both_secrets_and_either_verifies() -> None:
    new = "whsec_" + base64.b64encode(b"the-new-key-0123456789abcdefghij").decode()
    body = b'{"a":1}'
    now = 1_700_000_000
    both = wh.signed_headers(f"{new} {SECRET}", "evt_1", now, body)
    first, second = both["webhook-signature"].split(" ")
    assert first == wh.sign(new, "evt_1", now, body)
    assert second == wh.sign(SECRET, "evt_1", now, body)
    for secret in (new, SECRET, f"{SECRET} {new}"):
        assert wh.verify(secret, body, both, now=now)
    assert not wh.verify(SECRET, body, wh.signed_headers(new, "evt_1", now, body), now=now)
    # the same secret twice signs once
    assert wh.sign(f"{SECRET} {SECRET}", "evt_1", now, body) == wh.sign(SECRET, "evt_1", now, body)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("   ", "is empty"),
        ("whsec_", "has no key"),
        ("whsec_===", "has no key"),
        ("whsec_not*base64*at*all*0123456789abcd", "must be whsec_ followed by the key in base64"),
        ("whsec_" + "A" * 33, "must be whsec_ followed by the key in base64"),  # 33 characters: no bytes
        ("whsec_" + b64(b"x" * 32) + "==", "must be whsec_"),  # too much padding
        ("whsec_" + base64.urlsafe_b64encode(b"\xff" * 32).decode(), "must be whsec_"),  # URL-safe alphabet
        ("a-plain-passphrase-that-is-not-base64", "must be whsec_"),
        ("whsec_" + b64(b"x" * 16), "key of 24 to 64 bytes, not 16"),
        ("whsec_" + b64(b"x" * 65), "key of 24 to 64 bytes, not 65"),
        (f"{SECRET} {SECRET} {SECRET}", "holds 3 secrets; at most 2"),
        (f"{SECRET} whsec_!!", "its second secret must be whsec_"),
        (f"whsec_{'A' * 8} {SECRET}", "its first secret must hold a key of 24 to 64 bytes, not 6"),
    ],
)
def test_a_bad_webhook_secret_is_refused_at_start_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({}, {"WEBHOOK_SECRET": value}, headless=True)
    message = str(info.value)
    assert message.startswith("invalid WEBHOOK_SECRET: ") and problem in message
    assert "\n" not in message
    for part in value.split():
        assert len(part) < 12 or part.removeprefix("whsec_") not in message  # never echoed


def test_good_webhook_secrets_are_accepted() -> None:
    key24, key64 = b64(b"k" * 24), b64(b"k" * 64)
    assert load({}, {"WEBHOOK_SECRET": f" {SECRET} "}).webhook_secret == SECRET
    assert load({}, {"WEBHOOK_SECRET": f"whsec_{key24}"}).webhook_secret == f"whsec_{key24}"
    assert load({}, {"WEBHOOK_SECRET": f"whsec_{key64}"}).webhook_secret == f"whsec_{key64}"
    assert load({}, {"WEBHOOK_SECRET": key24}).webhook_secret == key24  # base64 without the prefix
    assert wh.keys_of(key24) == (b"k" * 24,)
    assert wh.keys_of("whsec_" + b64(b"k" * 32).rstrip("=")) == (b"k" * 32,)  # padding left out
    rotation = load({}, {"WEBHOOK_SECRET": f"whsec_{key24}\t {SECRET}"}).webhook_secret
    assert rotation == f"whsec_{key24} {SECRET}"
    assert wh.keys_of(rotation) == (b"k" * 24, KEY)
    assert SECRET not in repr(load({}, {"WEBHOOK_SECRET": SECRET}))


def test_the_dispatcher_refuses_a_bad_secret(store: Store) -> None:
    with pytest.raises(ValueError, match="must be whsec_"):
        wh.WebhookDispatcher(WebhookQueue(store), (URL,), "not-a-whsec-secret", sender=ScriptedSender())


# ---- classification and backoff ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, wh.Outcome.RETRY),
        (200, wh.Outcome.DELIVERED),
        (201, wh.Outcome.DELIVERED),
        (204, wh.Outcome.DELIVERED),
        (299, wh.Outcome.DELIVERED),
        (429, wh.Outcome.RETRY),
        (500, wh.Outcome.RETRY),
        (502, wh.Outcome.RETRY),
        (503, wh.Outcome.RETRY),
        (599, wh.Outcome.RETRY),
        (301, wh.Outcome.DROP),
        (307, wh.Outcome.DROP),
        (400, wh.Outcome.DROP),
        (401, wh.Outcome.DROP),
        (403, wh.Outcome.DROP),
        (404, wh.Outcome.DROP),
        (408, wh.Outcome.DROP),
        (410, wh.Outcome.DROP),
        (422, wh.Outcome.DROP),
    ],
)
def test_classify(status: int | None, outcome: wh.Outcome) -> None:
    assert wh.classify(status) is outcome


def test_retry_delay_doubles_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        delay = wh.retry_delay(attempt, rng=rng)
        nominal = min(wh.BACKOFF_CAP, 2 ** (attempt - 1))
        assert 0.8 * nominal <= delay <= min(wh.BACKOFF_CAP, 1.2 * nominal)
    delays = {round(wh.retry_delay(3, rng=rng), 6) for _ in range(20)}
    assert len(delays) > 10  # jittered


def test_retry_after_is_honoured_up_to_an_hour() -> None:
    assert wh.retry_delay(1, retry_after=30, rng=random.Random(1)) == 30
    assert wh.retry_delay(1, retry_after=10**6) == wh.RETRY_AFTER_CAP
    assert wh.retry_delay(20, retry_after=1, rng=random.Random(1)) >= 0.8 * wh.BACKOFF_CAP


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert wh.parse_retry_after("120") == 120
    assert wh.parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90, abs=1)
    assert wh.parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0
    assert wh.parse_retry_after("soon") is None
    assert wh.parse_retry_after(None) is None
    assert wh.parse_retry_after("\u00b2") is None  # a digit to str.isdigit, not to float()
    assert wh.parse_retry_after("\u0661\u0662") is None  # Arabic-Indic digits


def test_display_url_hides_credentials_and_query() -> None:
    assert (
        wh.display_url("https://user:pw@example.com:8443/hook?token=abc") == "https://example.com:8443/hook"
    )
    assert wh.display_url("http://[::1]:9000") == "http://[::1]:9000/"


@pytest.mark.parametrize(
    "url", ["http://example.com/a b", "http://example.com/a\x01b", "http://example.com/caf\u00e9?x=\u00e9"]
)
def test_a_webhook_url_no_request_can_carry_is_refused_at_start(url: str) -> None:
    # http.client cannot send these; each attempt would fail until the event is 24 h old
    with pytest.raises(ConfigError, match="WEBHOOK_URL"):
        load({}, {"WEBHOOK_URL": url}, headless=True)
    assert load({}, {"WEBHOOK_URL": "http://b\u00fccher.example/caf%C3%A9"}, headless=True).webhook_urls


# ---- the dispatcher with a scripted receiver ---------------------------------------------------


class ScriptedSender:
    """Answers each URL's attempts from a script of statuses (None: network error), then 200."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[int | None]] = {}
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> wh.Attempt:
        gate = self.gates.get(url)
        if gate is not None:
            gate.wait(30)
        with self.lock:
            self.calls.append((url, body, headers))
            script = self.scripts.get(url, [])
            status = script.pop(0) if script else 200
        if status is None:
            return wh.Attempt(None, "connection refused")
        return wh.Attempt(status, None if status < 300 else f"HTTP {status}")

    def delivered(self, url: str) -> list[str]:
        with self.lock:
            return [str(json.loads(b)["payload"].get("text")) for u, b, _ in self.calls if u == url]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "wadesk.db")


def dispatcher(
    store: Store, sender: ScriptedSender, urls: tuple[str, ...] = (URL,), **kw: object
) -> wh.WebhookDispatcher:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    return wh.WebhookDispatcher(WebhookQueue(store), urls, SECRET, sender=sender, **kw)  # type: ignore[arg-type]


def backlog_empty(d: wh.WebhookDispatcher) -> Callable[[], bool]:
    return lambda: d.total_backlog() == 0


def test_delivers_in_order_with_signed_headers(store: Store) -> None:
    sender = ScriptedSender()
    d = dispatcher(store, sender)
    d.start()
    envelopes = [incoming(f"m{i}") for i in range(5)]
    for e in envelopes:
        d.handle(e)
    wait_until(backlog_empty(d), 10, "an empty backlog")
    d.stop()
    assert [b for _, b, _ in sender.calls] == [e.body for e in envelopes]
    for (_, body, headers), e in zip(sender.calls, envelopes, strict=True):
        assert headers["X-Wadesk-Event"] == "message.received" and headers["webhook-id"] == e.id
        assert headers["Content-Type"] == "application/json"
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert "X-Wadesk-Signature" not in headers and "X-Wadesk-Timestamp" not in headers
        assert wh.verify(SECRET, body, headers)


def test_network_errors_5xx_and_429_are_retried_and_order_is_kept(store: Store) -> None:
    sender = ScriptedSender()
    sender.scripts[URL] = [None, 500, 429, 503]
    metrics = Metrics()
    d = dispatcher(store, sender, metrics=metrics)
    d.start()
    d.handle(incoming("first"))
    d.handle(incoming("second"))
    wait_until(backlog_empty(d), 10, "an empty backlog")
    d.stop()
    assert sender.delivered(URL) == ["first"] * 5 + ["second"]
    assert metrics.webhook_failures.labels(URL, "retry")._value.get() == 4
    assert metrics.webhook_deliveries.labels(URL)._value.get() == 2
    row = store.query("SELECT count(*) FROM webhook_queue")[0][0]
    assert row == 0


@pytest.mark.parametrize("status", [400, 404, 410, 301])
def test_other_statuses_drop_the_event_without_retry(store: Store, status: int) -> None:
    sender = ScriptedSender()
    sender.scripts[URL] = [status]
    metrics = Metrics()
    d = dispatcher(store, sender, metrics=metrics)
    d.start()
    d.handle(incoming("refused"))
    d.handle(incoming("next"))
    wait_until(backlog_empty(d), 10, "an empty backlog")
    d.stop()
    assert sender.delivered(URL) == ["refused", "next"]
    assert metrics.webhook_failures.labels(URL, "dropped")._value.get() == 1


def test_gives_up_after_the_maximum_age(store: Store) -> None:
    sender = ScriptedSender()
    sender.scripts[URL] = [None] * 10_000
    d = dispatcher(store, sender, max_age=0.3)
    d.start()
    d.handle(incoming("never delivered"))
    wait_until(backlog_empty(d), 10, "the event given up")
    d.stop()
    assert 1 < len(sender.calls) < 100  # retried with backoff, not in a tight loop


def test_queued_events_survive_a_restart(tmp_path: Path) -> None:
    first_store = Store(tmp_path / "wadesk.db")
    sender = ScriptedSender()
    gone = threading.Event()
    sender.gates[URL] = gone  # the receiver never answers before the "crash"
    first = dispatcher(first_store, sender)
    for i in range(3):
        first.handle(incoming(f"kept {i}"))  # queued, not started: as if the process died here
    first_store.close()

    second_store = Store(tmp_path / "wadesk.db")
    later = ScriptedSender()
    second = dispatcher(second_store, later)
    assert second.backlog() == {URL: 3}
    second.start()
    wait_until(backlog_empty(second), 10, "an empty backlog")
    second.stop()
    assert later.delivered(URL) == ["kept 0", "kept 1", "kept 2"]


def test_a_stuck_receiver_blocks_neither_intake_nor_the_others(store: Store) -> None:
    sender = ScriptedSender()
    stuck = threading.Event()
    sender.gates[URL] = stuck
    d = dispatcher(store, sender, urls=(URL, URL2))
    d.start()
    started = time.monotonic()
    for i in range(20):
        d.handle(incoming(f"e{i}"))
    assert time.monotonic() - started < 20  # blocked on the stuck receiver, it would take 30 s each
    wait_until(lambda: len(sender.delivered(URL2)) == 20, 10, "the healthy receiver served")
    assert sender.delivered(URL) == []
    stuck.set()
    wait_until(backlog_empty(d), 10, "an empty backlog")
    d.stop()
    assert sender.delivered(URL) == [f"e{i}" for i in range(20)]


def test_event_filter_and_queued_status_are_not_forwarded(store: Store) -> None:
    d = dispatcher(store, ScriptedSender(), events=frozenset({"message.received", "message.status"}))
    d.handle(Envelope.of(StateChanged(state=SessionState(Status.CONNECTED))))
    d.handle(Envelope.of(MessageQueued(id="msg_1", to="x", text="y")))
    assert d.backlog() == {URL: 0}
    d.handle(incoming("wanted"))
    d.handle(Envelope.of(MessageSent(id="msg_1", to="x", wa_id="W", sent_at=1.0)))
    assert d.backlog() == {URL: 2}


def test_stop_returns_promptly_while_waiting_for_a_retry(store: Store) -> None:
    sender = ScriptedSender()
    sender.scripts[URL] = [None] * 100
    d = dispatcher(store, sender, backoff_base=60, backoff_cap=60)
    d.start()
    d.handle(incoming("x"))
    wait_until(lambda: len(sender.calls) == 1, 10, "the first attempt")
    assert d.stop(2)  # the thread ended although its next attempt is a minute away
    assert d.backlog() == {URL: 1}  # still queued for the next start


# ---- one real HTTP attempt -------------------------------------------------------------------


def test_post_over_http(receiver: Receiver) -> None:
    receiver.start()
    body = b'{"event":"message"}'
    url = receiver.url.replace("http://", "http://user:p%40ss@") + "?k=1"
    attempt = wh.post(url, body, {"Content-Type": "application/json", "X-Test": "1"}, 5)
    assert attempt == wh.Attempt(200, None, None)
    delivery = receiver.accepted()[0]
    assert delivery.body == body and delivery.path == "/hook?k=1" and delivery.headers["X-Test"] == "1"
    assert delivery.headers["Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    receiver.statuses = [503]
    failed = wh.post(receiver.url, body, {}, 5)
    assert failed.status == 503 and failed.error and wh.classify(failed.status) is wh.Outcome.RETRY


def test_post_network_errors() -> None:
    refused = wh.post(f"http://127.0.0.1:{free_port()}/", b"{}", {}, 5)
    assert refused == wh.Attempt(None, "connection refused")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        slow = wh.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.3)
    assert slow.status is None and slow.error == "no complete answer within 0.3 s"


class TricklingReceiver:
    """A receiver on 127.0.0.1 that reads the request, then sends ``head`` at once and
    ``trickle`` one byte every ``interval`` seconds: each byte arrives well within a per-read
    timeout, so only a deadline for the whole attempt ends it."""

    def __init__(self, head: bytes, trickle: bytes, interval: float = 0.5) -> None:
        self.head = head
        self.trickle = trickle
        self.interval = interval
        self.sent = 0  # bytes of ``trickle`` sent
        self.closed_by_client = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(10)
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            received = b""
            while b"\r\n\r\n" not in received and len(received) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                received += chunk
            try:
                conn.sendall(self.head)
                for byte in self.trickle:
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                self.closed_by_client.set()
                return
            conn.settimeout(0.2)
            with contextlib.suppress(OSError):
                if conn.recv(1) == b"":
                    self.closed_by_client.set()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)


@pytest.fixture
def trickling() -> Iterator[Callable[[bytes, bytes], TricklingReceiver]]:
    made: list[TricklingReceiver] = []

    def make(head: bytes, trickle: bytes) -> TricklingReceiver:
        made.append(TricklingReceiver(head, trickle))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def test_an_attempt_has_a_deadline_however_slowly_the_receiver_answers(
    trickling: Callable[[bytes, bytes], TricklingReceiver],
) -> None:
    # the status line and headers arrive a byte every 0.5 s: 60 bytes would take 30 s
    slow = trickling(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 30 + b"\r\n\r\n")
    started = time.monotonic()
    attempt = wh.post(slow.url, b"{}", {}, 2)
    took = time.monotonic() - started
    assert attempt == wh.Attempt(None, "no complete answer within 2 s")
    assert wh.classify(attempt.status) is wh.Outcome.RETRY
    assert 1.9 <= took < 3.0, took
    assert 2 <= slow.sent <= 5  # it was trickling, each byte within the per-read timeout
    assert slow.closed_by_client.wait(5)  # the connection was given up, not left open


def test_a_complete_answer_with_a_trickling_body_counts_and_ends_at_the_deadline(
    trickling: Callable[[bytes, bytes], TricklingReceiver],
) -> None:
    # the head is complete at once, so the outcome is known; the body is not waited for
    slow = trickling(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"y" * 100)
    started = time.monotonic()
    attempt = wh.post(slow.url, b"{}", {}, 2)
    took = time.monotonic() - started
    assert attempt == wh.Attempt(200, None, None)
    assert 1.9 <= took < 3.0, took


def test_webhook_sockets_do_not_set_keepalive(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver shuts down keep-alive sockets to the WhatsApp proxy's port when it ends a
    # pairing loop; webhook connections must never look like one.
    seen: list[int] = []
    create = socket.create_connection

    def recording(*args: object, **kwargs: object) -> socket.socket:
        sock = create(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        return sock

    monkeypatch.setattr(socket, "create_connection", recording)
    receiver.start()
    assert wh.post(receiver.url, b"{}", {}, 5).status == 200
    assert seen == [0]
