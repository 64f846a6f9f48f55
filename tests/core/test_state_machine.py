"""Every transition of the session state machine, driven through a fake driver."""

from __future__ import annotations

import time

import pytest

from wadesk.core import driver as drv
from wadesk.core import session as session_mod
from wadesk.core.events import (
    IncomingMessage,
    MessageFailed,
    MessageReceipt,
    MessageSent,
    QRCodeUpdated,
    StateChanged,
    Status,
)
from wadesk.core.session import FIRST_QR_TTL, NEXT_QR_TTL, SessionError, qr_ttl

QR1 = "https://wa.me/settings/linked_devices#ref1,noise,ident,adv,6"
QR2 = "https://wa.me/settings/linked_devices#ref2,noise,ident,adv,6"


def connect(factory, log, phone="15550001111", push_name="Alice"):
    mark = log.mark()
    factory.current.emit(drv.Connected, jid=f"{phone}:1@s.whatsapp.net", phone=phone, push_name=push_name)
    return log.wait_state(Status.CONNECTED, after=mark)


def test_starts_in_starting(make_session):
    session, factory, _log = make_session()
    assert session.state.status is Status.STARTING
    assert factory.current.started.is_set()


def test_qr_moves_to_waiting_for_scan_and_rotation_replaces_code(make_session):
    session, factory, log = make_session()
    before = time.time()
    factory.current.emit(drv.QRCode, code=QR1)
    state = log.wait_state(Status.WAITING_FOR_SCAN)
    assert state.qr == QR1
    assert before + FIRST_QR_TTL - 1 <= state.qr_expires_at <= time.time() + FIRST_QR_TTL + 1

    factory.current.emit(drv.QRCode, code=QR2)
    log.wait(lambda e: isinstance(e, QRCodeUpdated) and e.qr == QR2)
    assert session.state.qr == QR2
    # a rotation is a new code, not a new state
    waiting = [e for e in log.of(StateChanged) if e.state.status is Status.WAITING_FOR_SCAN]
    assert len(waiting) == 1


def test_qr_ttl_first_of_batch_and_following():
    assert qr_ttl(0.0, 0.0, 1000.0) == FIRST_QR_TTL
    # the next code arrives when the previous expired: whatsmeow's own rotation
    assert qr_ttl(1000.0, FIRST_QR_TTL, 1060.0) == NEXT_QR_TTL
    assert qr_ttl(1060.0, NEXT_QR_TTL, 1080.2) == NEXT_QR_TTL
    # a code that arrives early starts a new batch pushed by the server
    assert qr_ttl(1000.0, FIRST_QR_TTL, 1005.0) == FIRST_QR_TTL


def test_pair_then_connected_carries_account(make_session):
    session, factory, log = make_session()
    factory.current.emit(drv.QRCode, code=QR1)
    log.wait_state(Status.WAITING_FOR_SCAN)
    factory.current.emit(drv.PairSuccess, jid="15550001111:1@s.whatsapp.net")
    state = connect(factory, log)
    assert state.account.phone == "+15550001111"
    assert state.account.push_name == "Alice"
    assert state.account.jid == "15550001111:1@s.whatsapp.net"
    assert session.state.qr is None
    assert "+15550001111" in state.describe()


def test_disconnect_reconnects_with_backoff_then_connected(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    first = factory.current
    mark = log.mark()
    first.emit(drv.Disconnected)
    state = log.wait_state(Status.RECONNECTING, after=mark)
    assert state.attempt == 1
    assert state.reason == "Connection to WhatsApp lost"
    assert state.next_try_at is not None
    assert first.stopped.is_set()
    second = factory.wait_for_driver(2)
    assert second is not first
    connect(factory, log)
    assert session.state.attempt == 0
    assert session.reconnects == 1


def test_unreachable_retries_with_growing_attempts_and_readable_reason(make_session):
    delays = []

    def delay(attempt):
        delays.append(attempt)
        return 0.02

    _session, factory, log = make_session(reconnect_delay=delay)
    error = (
        'failed to dial whatsapp web websocket: Get "https://web.whatsapp.com/ws/chat": dial tcp: '
        "lookup web.whatsapp.com on 10.0.0.53:53: no such host"
    )
    for n in (1, 2, 3):
        mark = log.mark()
        factory.wait_for_driver(n).emit(drv.Exited, error=error)
        state = log.wait_state(Status.RECONNECTING, after=mark)
        assert state.attempt == n
        assert state.reason.startswith("Cannot reach WhatsApp")
        assert "web.whatsapp.com" in state.reason
    assert delays == [1, 2, 3]


def test_connect_timeout_counts_as_failed_attempt(make_session, monkeypatch):
    monkeypatch.setattr(session_mod, "CONNECT_TIMEOUT", 0.2)
    _session, _factory, log = make_session()
    state = log.wait_state(Status.RECONNECTING, timeout=5)
    assert "no answer" in state.reason


def test_logged_out_by_phone_then_fresh_qr(make_session):
    _session, factory, log = make_session()
    connect(factory, log)
    mark = log.mark()
    factory.current.emit(drv.LoggedOut, reason=drv.FailureReason.LOGGED_OUT, on_connect=False)
    state = log.wait_state(Status.LOGGED_OUT, after=mark)
    assert state.reason == "logged out from the phone"
    new = factory.wait_for_driver(2)
    new.emit(drv.QRCode, code=QR2)
    waiting = log.wait_state(Status.WAITING_FOR_SCAN, after=mark)
    assert waiting.qr == QR2
    assert "link again" in waiting.reason


def test_connect_failure_logged_out_at_login(make_session):
    _session, factory, log = make_session()
    factory.current.emit(drv.ConnectFailure, reason=drv.FailureReason.MAIN_DEVICE_GONE, message="")
    state = log.wait_state(Status.LOGGED_OUT)
    assert "phone" in state.reason
    factory.wait_for_driver(2)


def test_connect_failure_service_unavailable_retries(make_session):
    _session, factory, log = make_session()
    factory.current.emit(drv.ConnectFailure, reason=drv.FailureReason.SERVICE_UNAVAILABLE, message="503")
    state = log.wait_state(Status.RECONNECTING)
    assert "unavailable" in state.reason


def test_stream_replaced_fails_until_reconnect(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.current.emit(drv.StreamReplaced)
    state = log.wait_state(Status.FAILED)
    assert "took over" in state.reason
    assert session.sync()
    assert session._timer is None  # no automatic retry scheduled: it would fight the other session
    assert len(factory.drivers) == 1
    session.reconnect()
    factory.wait_for_driver(2)
    connect(factory, log)


def test_temporary_ban_fails_with_expiry_and_retries_after(make_session):
    _session, factory, log = make_session()
    factory.current.emit(drv.TemporaryBan, code="sending to too many people", expires_in=3600.0)
    state = log.wait_state(Status.FAILED)
    assert "temporarily banned" in state.reason
    assert "60 min" in state.reason


def test_client_outdated_fails(make_session):
    _session, factory, log = make_session()
    factory.current.emit(drv.ClientOutdated)
    state = log.wait_state(Status.FAILED)
    assert "outdated" in state.reason


def test_qr_rounds_expire_then_refresh(make_session, monkeypatch):
    monkeypatch.setattr(session_mod, "QR_ROUNDS", 2)
    session, factory, log = make_session()
    factory.current.emit(drv.QRCode, code=QR1)
    log.wait_state(Status.WAITING_FOR_SCAN)
    factory.current.emit(drv.PairingEnded, status="timeout")
    second = factory.wait_for_driver(2)  # first round over: a new batch at once
    second.emit(drv.QRCode, code=QR2)
    log.wait(lambda e: isinstance(e, QRCodeUpdated) and e.qr == QR2)
    second.emit(drv.PairingEnded, status="timeout")
    expired = log.wait(
        lambda e: (
            isinstance(e, StateChanged) and e.state.status is Status.WAITING_FOR_SCAN and e.state.qr is None
        )
    ).state
    assert "expired" in expired.reason
    assert len(factory.drivers) == 2
    session.refresh_qr()
    factory.wait_for_driver(3)


def test_stop_returns_quickly_in_every_state(make_session):
    for setup in ("starting", "waiting", "connected", "reconnecting", "failed"):
        session, factory, log = make_session(reconnect_delay=lambda a: 30.0)
        if setup == "waiting":
            factory.current.emit(drv.QRCode, code=QR1)
            log.wait_state(Status.WAITING_FOR_SCAN)
        elif setup == "connected":
            connect(factory, log)
        elif setup == "reconnecting":
            factory.current.emit(drv.Exited, error="dial tcp: connection refused")
            log.wait_state(Status.RECONNECTING)
        elif setup == "failed":
            factory.current.emit(drv.ClientOutdated)
            log.wait_state(Status.FAILED)
        started = time.monotonic()
        assert session.stop(5.0)
        assert time.monotonic() - started < 5.0
        assert factory.current.stopped.is_set()


def test_events_of_a_replaced_driver_are_ignored(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    old = factory.current
    old.emit(drv.Disconnected)
    factory.wait_for_driver(2)
    connect(factory, log)
    mark = log.mark()
    old.emit(drv.Disconnected)  # late event from the old client
    assert session.sync()  # handled by now (the worker is first in, first out)
    assert not [e for e in log.events[mark:] if isinstance(e, StateChanged)]


# ---- outbox --------------------------------------------------------------------------------


def test_send_waits_until_connected_then_goes_out_in_order(make_session):
    session, factory, log = make_session()
    records = [session.send("+1 555 000 2222", f"m{i}")[0] for i in range(3)]
    assert [r.status for r in records] == ["queued"] * 3
    assert session.sync()  # the sender made a pass while not connected
    assert factory.current.sent == []
    connect(factory, log)
    for r in records:
        log.wait(lambda e, r=r: isinstance(e, MessageSent) and e.id == r.id)
    assert factory.current.sent == [("15550002222@s.whatsapp.net", f"m{i}") for i in range(3)]
    stored = session.store.get(records[0].id)
    assert stored.status == "sent"
    assert stored.wa_id == "3EB000000001"


def test_queued_event_comes_before_sent(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    record, _ = session.send("15550002222", "hello")
    log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)
    kinds = [type(e).__name__ for e in log.events if getattr(e, "id", None) == record.id]
    assert kinds == ["MessageQueued", "MessageSent"]


def test_error_463_fails_without_retry(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.send_errors.append(drv.DriverError("server returned error 463"))
    record, _ = session.send("15550002222", "hi")
    failed = log.wait(lambda e: isinstance(e, MessageFailed) and e.id == record.id)
    assert "463" in failed.reason and "reach-out timelock" in failed.reason
    assert session.store.get(record.id).status == "failed"
    assert session.store.get(record.id).attempts == 1


def test_error_420_in_a_group_where_only_admins_may_send_fails_without_retry(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.send_errors.append(drv.DriverError("server returned error 420"))
    record, _ = session.send("120363000000000001@g.us", "may I?")
    failed = log.wait(lambda e: isinstance(e, MessageFailed) and e.id == record.id)
    assert failed.reason == "only admins may send to this group (error 420)"
    stored = session.store.get(record.id)
    assert (stored.status, stored.attempts, stored.possible_duplicate) == ("failed", 1, False)


def test_transient_error_retries_then_sends(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    factory.send_errors.extend([drv.DriverError("context deadline exceeded")] * 2)
    record, _ = session.send("15550002222", "hi")
    log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)
    assert session.store.get(record.id).attempts == 3


def test_transient_errors_give_up_after_max_attempts(make_session, monkeypatch):
    monkeypatch.setattr(session_mod, "MAX_SEND_ATTEMPTS", 3)
    session, factory, log = make_session()
    connect(factory, log)
    factory.send_errors.extend([drv.DriverError("info query timed out")] * 3)
    record, _ = session.send("15550002222", "hi")
    failed = log.wait(lambda e: isinstance(e, MessageFailed) and e.id == record.id)
    assert failed.reason.startswith("gave up after 3 attempts")


def test_a_slow_chat_does_not_block_another(make_session):
    session, factory, log = make_session(send_retry_delay=lambda a: 30.0)
    connect(factory, log)
    factory.send_errors.append(drv.DriverError("context deadline exceeded"))
    stuck, _ = session.send("15550002222", "first to A")
    later_a, _ = session.send("15550002222", "second to A")
    other, _ = session.send("15550003333", "to B")
    log.wait(lambda e: isinstance(e, MessageSent) and e.id == other.id)
    assert session.store.get(stuck.id).status == "queued"
    assert session.store.get(later_a.id).status == "queued"  # order within a chat is kept


def test_idempotency_key_returns_first_and_sends_once(make_session):
    session, factory, log = make_session()
    first, created1 = session.send("15550002222", "hi", idempotency_key="k1")
    again, created2 = session.send("+1 555 000 2222", "hi", idempotency_key="k1")
    assert created1 and not created2
    assert again.id == first.id
    with pytest.raises(session_mod.IdempotencyConflict):
        session.send("15550002222", "different", idempotency_key="k1")
    connect(factory, log)
    log.wait(lambda e: isinstance(e, MessageSent) and e.id == first.id)
    assert session.sync()
    assert factory.current.sent == [("15550002222@s.whatsapp.net", "hi")]


@pytest.mark.parametrize(
    ("to", "text", "error"),
    [
        ("not a number", "hi", session_mod.RecipientError),
        ("15550002222", "", session_mod.TextError),
        ("15550002222", "   \n", session_mod.TextError),
        ("15550002222", "x" * 65_537, session_mod.TextError),
        ("15550002222", 42, session_mod.TextError),
    ],
)
def test_bad_send_is_refused_and_nothing_queued(make_session, to, text, error):
    session, _factory, _log = make_session()
    with pytest.raises(error):
        session.send(to, text)
    assert session.store.outbox_depth() == 0


def test_text_limits_accept_one_and_65536_characters(make_session):
    session, _factory, _log = make_session()
    session.send("15550002222", "x")
    session.send("15550002222", "y" * 65_536)
    assert session.store.outbox_depth() == 2


def test_interrupted_send_is_queued_again_on_start(data):
    from wadesk.core.store import Store

    store = Store(data.store_db)
    record, _ = store.enqueue("15550002222@s.whatsapp.net", "hi")
    assert store.claim_next().id == record.id  # 'sending' when the process died
    store.close()
    store = Store(data.store_db)
    assert [r.id for r in store.requeue_interrupted()] == [record.id]
    again = store.get(record.id)
    assert again.status == "queued"
    assert again.possible_duplicate  # its first attempt may have reached WhatsApp
    store.close()


# ---- incoming, receipts, pairing code, logout ---------------------------------------------------


def test_incoming_message_is_stored_and_published_once(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    fields = {
        "wa_id": "FAKE1",
        "chat": "15550002222@s.whatsapp.net",
        "sender": "15550002222@s.whatsapp.net",
        "push_name": "Bob",
        "text": "ping",
        "timestamp": 1_700_000_000.0,
        "is_group": False,
    }
    factory.current.emit(drv.Incoming, **fields)
    factory.current.emit(drv.Incoming, **fields)  # redelivered after a reconnect
    event = log.wait(lambda e: isinstance(e, IncomingMessage))
    assert (event.sender, event.text, event.push_name, event.is_group) == (
        "15550002222@s.whatsapp.net",
        "ping",
        "Bob",
        False,
    )
    assert session.sync()  # the redelivery was handled
    assert len(log.of(IncomingMessage)) == 1
    stored = session.store.list(direction="in")
    assert [m.text for m in stored] == ["ping"]


def test_receipts_move_status_forward_only(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    record, _ = session.send("15550002222", "hi")
    sent = log.wait(lambda e: isinstance(e, MessageSent))
    chat = "15550002222@s.whatsapp.net"
    factory.current.emit(drv.Receipt, wa_ids=(sent.wa_id,), status="read", chat=chat, timestamp=1.0)
    log.wait(lambda e: isinstance(e, MessageReceipt) and e.status == "read")
    factory.current.emit(drv.Receipt, wa_ids=(sent.wa_id,), status="delivered", chat=chat, timestamp=2.0)
    assert session.sync()
    assert session.store.get(record.id).status == "read"
    assert [e.status for e in log.of(MessageReceipt)] == ["read"]


def test_a_receipt_that_overtakes_the_send_result_is_kept(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    chat = "15550002222@s.whatsapp.net"

    def receipt_first(result):
        factory.current.emit(drv.Receipt, wa_ids=(result.wa_id,), status="read", chat=chat, timestamp=5.0)
        deadline = time.monotonic() + 5
        while result.wa_id not in session._early_receipts:  # the worker has seen it
            assert time.monotonic() < deadline, "the receipt was not handled"
            time.sleep(0.01)

    factory.on_send = receipt_first
    record, _ = session.send("15550002222", "fast reader")
    receipt = log.wait(lambda e: isinstance(e, MessageReceipt) and e.id == record.id)
    assert receipt.status == "read"
    assert session.store.get(record.id).status == "read"
    kinds = [type(e).__name__ for e in log.events if getattr(e, "id", None) == record.id]
    assert kinds == ["MessageQueued", "MessageSent", "MessageReceipt"]
    assert session._early_receipts == {}


def test_pairing_code_only_while_waiting_for_scan(make_session):
    session, factory, log = make_session()
    with pytest.raises(SessionError):
        session.request_pairing_code("+1 555 000 1111")  # still starting
    factory.current.emit(drv.QRCode, code=QR1)
    log.wait_state(Status.WAITING_FOR_SCAN)
    assert session.request_pairing_code("+1 555 000 1111") == "ABCD-EFGH"
    assert factory.current.paired_with == ["15550001111"]
    with pytest.raises(session_mod.RecipientError):
        session.request_pairing_code("120363025246125888@g.us")
    connect(factory, log)
    with pytest.raises(SessionError, match="already paired"):
        session.request_pairing_code("+1 555 000 1111")


def test_logout_needs_connection_then_starts_fresh_pairing(make_session):
    session, factory, log = make_session()
    with pytest.raises(SessionError, match="not connected"):
        session.logout()
    connect(factory, log)
    mark = log.mark()
    session.logout()
    assert factory.drivers[0].logged_out
    state = log.wait_state(Status.LOGGED_OUT, after=mark)
    assert state.reason == "logged out by you"
    factory.wait_for_driver(2).emit(drv.QRCode, code=QR2)
    assert log.wait_state(Status.WAITING_FOR_SCAN, after=mark).qr == QR2


def test_every_transition_is_logged_once(make_session, caplog):
    caplog.set_level("INFO", logger="wadesk.session")
    _session, factory, log = make_session()
    factory.current.emit(drv.QRCode, code=QR1)
    log.wait_state(Status.WAITING_FOR_SCAN)
    factory.current.emit(drv.QRCode, code=QR2)
    log.wait(lambda e: isinstance(e, QRCodeUpdated) and e.qr == QR2)
    connect(factory, log)
    lines = [
        r.getMessage() for r in caplog.records if r.name == "wadesk.session" and r.msg.startswith("session")
    ]
    assert lines == [
        "session waiting for the QR code to be scanned",
        "session connected as +15550001111 (Alice)",
    ]


def test_sync_returns_once_the_sender_has_sent_what_it_could(make_session):
    session, factory, log = make_session()
    connect(factory, log)
    for i in range(3):
        session.send("15550002222", f"m{i}")
    assert session.sync()
    assert [text for _, text in factory.current.sent] == ["m0", "m1", "m2"]
