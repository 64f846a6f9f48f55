"""The session core with the REAL neonize client against the fake WhatsApp server.

The pytest process was started with the test CA (tests/conftest.py) and its neonize
library trusts the fake root key, so the session runs in this process exactly as in the
product; only the proxy setting points it at the fake server.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator

import pytest

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DataDir
from wadesk.core.events import (
    IncomingMessage,
    MessageFailed,
    MessageReceipt,
    MessageSent,
    QRCodeUpdated,
    StateChanged,
    Status,
)
from wadesk.core.session import Session

from .conftest import EventLog

pytestmark = pytest.mark.e2e

PEER = "15550002222"


class Running:
    """A started session with its event log."""

    def __init__(self, session: Session, log: EventLog) -> None:
        self.session = session
        self.log = log

    def qr(self, after: int = 0, timeout: float = 15) -> str:
        return self.log.wait(lambda e: isinstance(e, QRCodeUpdated), timeout, after).qr

    def state(self, status: Status, after: int = 0, timeout: float = 15):
        return self.log.wait_state(status, timeout, after)


@pytest.fixture
def start_session(tmp_path) -> Iterator[Callable[..., Running]]:
    """Start real sessions on a data folder; all are stopped (and must stop in 5 s) afterwards."""
    running: list[Running] = []

    def start(proxy: str | None, data_dir=None) -> Running:
        config = Config(data_dir=data_dir or tmp_path / "data", proxy=proxy, send_interval=0)
        session = open_session(config, DataDir(config.data_dir).prepare())
        log = EventLog()
        session.subscribe(log)
        session.start()
        item = Running(session, log)
        running.append(item)
        return item

    yield start
    for item in running:
        started = time.monotonic()
        assert item.session.stop(5.0)
        assert time.monotonic() - started < 5.0
        item.session.store.close()


@pytest.fixture
def paired(fake_wa, start_session) -> Running:
    run = start_session(fake_wa.proxy_url)
    fake_wa.scan(run.qr())
    run.state(Status.CONNECTED)
    return run


def test_qr_rotation_scan_and_connected(fake_wa, start_session):
    run = start_session(fake_wa.proxy_url)
    first = run.qr()
    assert first.startswith("https://wa.me/settings/linked_devices#")
    assert fake_wa.is_own_qr(first)
    waiting = run.state(Status.WAITING_FOR_SCAN)
    assert waiting.qr == first and waiting.qr_expires_at > time.time()

    mark = run.log.mark()
    new_refs = fake_wa.rotate_qr()
    rotated = run.qr(after=mark)
    assert rotated != first
    assert rotated.split("#", 1)[1].startswith(new_refs[0] + ",")
    assert run.session.state.qr == rotated

    fake_wa.scan(rotated)
    connected = run.state(Status.CONNECTED)
    assert connected.account.phone == "+" + fake_wa.phone.phone
    assert connected.account.jid.startswith(fake_wa.phone.phone)


def test_session_files_are_owner_only(fake_wa, start_session, tmp_path):
    old = os.umask(0o022)  # a permissive umask: the modes must not depend on it
    try:
        run = start_session(fake_wa.proxy_url)
        fake_wa.scan(run.qr())
        run.state(Status.CONNECTED)
    finally:
        os.umask(old)
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir() if p.is_file()}
    assert "whatsapp.db" in files and "wadesk.db" in files
    assert os.path.getsize(data / "whatsapp.db") > 0  # neonize wrote the account's keys there
    assert files == dict.fromkeys(files, 0o600)


def test_send_is_decrypted_by_the_peer_and_reported_sent(fake_wa, paired):
    record, created = paired.session.send("+1 555 000 2222", "hello")
    assert created and record.status == "queued"
    wa_id, text = fake_wa.wait_text_from_client(PEER)
    assert text == "hello"
    sent = paired.log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)
    assert sent.wa_id == wa_id
    assert sent.to == "15550002222@s.whatsapp.net"
    stored = paired.session.store.get(record.id)
    assert (stored.status, stored.wa_id) == ("sent", wa_id)


def test_incoming_message_event(fake_wa, paired):
    wa_id = fake_wa.peer(PEER).send_text("hi there, from the peer")
    event = paired.log.wait(lambda e: isinstance(e, IncomingMessage), timeout=15)
    assert event.text == "hi there, from the peer"
    assert event.sender == "15550002222@s.whatsapp.net"
    assert event.wa_id == wa_id
    assert event.is_group is False
    assert event.push_name  # the fake peer sends a push name
    assert [m.text for m in paired.session.store.list(direction="in")] == ["hi there, from the peer"]


def test_server_drop_reconnects_and_sends_after(fake_wa, paired):
    mark = paired.log.mark()
    fake_wa.drop_connection()
    reconnecting = paired.state(Status.RECONNECTING, after=mark)
    assert reconnecting.attempt == 1 and reconnecting.reason
    paired.state(Status.CONNECTED, after=mark, timeout=20)
    record, _ = paired.session.send(PEER, "after the drop")
    _, text = fake_wa.wait_text_from_client(PEER, timeout=15)
    assert text == "after the drop"
    paired.log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)


def test_messages_queued_while_disconnected_go_out_in_order(fake_wa, start_session):
    run = start_session(fake_wa.proxy_url)
    texts = [f"queued before pairing {i}" for i in range(5)]
    for text in texts:
        run.session.send(PEER, text)
    fake_wa.scan(run.qr())
    run.state(Status.CONNECTED)
    for expected in texts:
        _, text = fake_wa.wait_text_from_client(PEER, timeout=15)
        assert text == expected
    assert fake_wa.texts_received(PEER) == texts


def test_restart_on_same_data_folder_connects_without_qr(fake_wa, start_session, paired, tmp_path):
    assert paired.session.stop(5.0)
    again = start_session(fake_wa.proxy_url, data_dir=tmp_path / "data")
    connected = again.state(Status.CONNECTED)
    assert connected.account.phone == "+" + fake_wa.phone.phone
    assert not again.log.of(QRCodeUpdated)


def test_logout_returns_to_waiting_for_scan_with_new_qr(fake_wa, paired):
    old_qrs = {e.qr for e in paired.log.of(QRCodeUpdated)}
    mark = paired.log.mark()
    paired.session.logout()
    fake_wa.wait_for(lambda k, d: k == "device-removed-by-client", 10, what="remove-companion-device")
    paired.state(Status.LOGGED_OUT, after=mark)
    waiting = paired.state(Status.WAITING_FOR_SCAN, after=mark)
    assert waiting.qr and waiting.qr not in old_qrs
    assert fake_wa.is_own_qr(waiting.qr)


def test_phone_unlinks_device_logged_out_then_new_qr(fake_wa, paired):
    mark = paired.log.mark()
    fake_wa.remove_device()
    logged_out = paired.state(Status.LOGGED_OUT, after=mark)
    assert "phone" in logged_out.reason
    assert paired.qr(after=mark)
    # and a fresh pairing works again
    fake_wa.scan(paired.session.state.qr)
    paired.state(Status.CONNECTED, after=mark)


def test_stream_replaced_fails_with_reason(fake_wa, paired):
    mark = paired.log.mark()
    fake_wa.replace_stream()
    failed = paired.state(Status.FAILED, after=mark)
    assert "took over" in failed.reason


@pytest.mark.parametrize(("code", "words"), [("402", "temporarily banned"), ("405", "outdated")])
def test_login_failures_land_in_failed(fake_wa, paired, code, words):
    fake_wa.set_login_failure(code)
    mark = paired.log.mark()
    fake_wa.drop_connection()
    failed = paired.state(Status.FAILED, after=mark, timeout=20)
    assert words in failed.reason


def test_reach_out_timelock_fails_the_message_without_retry(fake_wa, paired):
    fake_wa.set_message_error(PEER, "463")
    record, _ = paired.session.send(PEER, "first contact")
    failed = paired.log.wait(lambda e: isinstance(e, MessageFailed) and e.id == record.id, timeout=15)
    assert "463" in failed.reason
    assert paired.session.store.get(record.id).attempts == 1
    assert paired.session.state.status is Status.CONNECTED


def test_read_receipt_updates_the_message(fake_wa, paired):
    record, _ = paired.session.send(PEER, "will be read")
    wa_id, _ = fake_wa.wait_text_from_client(PEER)
    paired.log.wait(lambda e: isinstance(e, MessageSent) and e.id == record.id)
    fake_wa.send_receipt(wa_id, PEER, type="read")
    receipt = paired.log.wait(lambda e: isinstance(e, MessageReceipt) and e.id == record.id, timeout=15)
    assert receipt.status == "read"
    assert paired.session.store.get(record.id).status == "read"


def test_pairing_code_while_waiting_for_scan(fake_wa, start_session):
    run = start_session(fake_wa.proxy_url)
    run.qr()
    code = run.session.request_pairing_code("+1 555 000 1111")
    assert len(code.replace("-", "")) == 8
    fake_wa.wait_for(lambda k, d: k == "pair-code-requested", 10, what="pairing code request")


def test_no_server_reconnecting_with_reason_and_stop_is_quick(start_session):
    run = start_session(proxy=None)  # the real web.whatsapp.com: no DNS on this machine
    first = run.state(Status.RECONNECTING, timeout=20)
    assert first.attempt == 1
    assert first.reason.startswith("Cannot reach WhatsApp")
    assert first.next_try_at > first.since
    second = run.state(Status.RECONNECTING, after=run.log.mark(), timeout=20)
    assert second.attempt == 2
    started = time.monotonic()
    assert run.session.stop(5.0)
    assert time.monotonic() - started < 5.0
    states = [e.state.status for e in run.log.of(StateChanged)]
    assert Status.CONNECTED not in states


def test_stop_while_waiting_for_scan_is_quick(fake_wa, start_session):
    run = start_session(fake_wa.proxy_url)
    run.qr()
    started = time.monotonic()
    assert run.session.stop(5.0)
    assert time.monotonic() - started < 5.0
