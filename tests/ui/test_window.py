"""The main window: every state, sending and the conversation, the menus, the threading rules (the
states on a fake session, messages on the real session with the fake driver)."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from wadesk.config import Config
from wadesk.core import driver as drv
from wadesk.core.datadir import API_TOKEN_FILE, DataDir
from wadesk.core.events import Account, SessionState, Status
from wadesk.core.session import SessionError, StorageError
from wadesk.ui.localapi import KEYRING_SERVICE
from wadesk.ui.pairing import CODE_INSTRUCTION, INSTRUCTION
from wadesk.ui.status import Tone
from wadesk.ui.window import PAGE_MESSAGES, PAGE_PAIRING, MainWindow

from .conftest import MemoryKeyring
from .fakes import FakeSession
from .qtimage import decode_qr
from .rig import PEER, PEER_JID, Rig

ACCOUNT = Account("4915123456789@s.whatsapp.net", "+4915123456789", "Anna")
QR = "2@window-test-ref,bm9pc2Uta2V5LWJhc2U2NA==,aWRlbnRpdHkta2V5LWJhc2U2NA==,YWR2LXNlY3JldA=="

MakeWindow = Callable[..., MainWindow]


def connected(session: FakeSession) -> None:
    session.set_state(SessionState(Status.CONNECTED, account=ACCOUNT))


def banner(window: MainWindow) -> str:
    return window.banner.text


# ---- states ----------------------------------------------------------------------------------


def test_starting(make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    assert window.banner.title.text() == "Starting"
    assert window.banner.property("tone") == Tone.NEUTRAL.value
    assert window.pages.currentIndex() == PAGE_PAIRING  # nobody is paired in a new data folder
    assert window.pairing.qr.code is None
    assert not window.logout_action.isEnabled()


def test_waiting_for_scan_shows_a_scannable_code_and_a_countdown(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    fake_session.show_qr(QR, ttl=60)
    qtbot.waitUntil(lambda: window.pairing.qr.code == QR)
    assert window.banner.title.text() == "Scan the QR code"
    assert window.banner.property("tone") == Tone.INFO.value
    assert window.pages.currentIndex() == PAGE_PAIRING
    assert window.pairing.instruction.text() == INSTRUCTION
    assert decode_qr(window.pairing.qr.grab()) == [QR]
    assert window.pairing.countdown_label.text() in ("This code changes in 60 s", "This code changes in 59 s")
    assert window.ticker.isActive()
    first = window.pairing.countdown_label.text()
    qtbot.waitUntil(lambda: window.pairing.countdown_label.text() != first, timeout=5000)
    assert window.pairing.countdown_label.text().startswith("This code changes in 5")


def test_a_rotated_code_replaces_the_old_one_at_once(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    fake_session.show_qr(QR)
    qtbot.waitUntil(lambda: window.pairing.qr.code == QR)
    rotated = QR.replace("window-test-ref", "rotated-ref")
    fake_session.show_qr(rotated, ttl=20)  # a rotation: only a QRCodeUpdated event, no state change
    qtbot.waitUntil(lambda: window.pairing.qr.code == rotated)
    assert decode_qr(window.pairing.qr.grab()) == [rotated]
    assert window.pairing.countdown_label.text() in ("This code changes in 20 s", "This code changes in 19 s")


def test_expired_codes_offer_a_new_one(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    fake_session.set_state(
        SessionState(
            Status.WAITING_FOR_SCAN, reason="the QR code expired: ask for a new one", qr_expired=True
        )
    )
    qtbot.waitUntil(lambda: window.banner.title.text() == "The QR code expired")
    assert window.pairing.new_code_button.isVisible()
    assert window.pairing.qr.code is None
    assert decode_qr(window.pairing.qr.grab()) == []
    qtbot.mouseClick(window.pairing.new_code_button, Qt.MouseButton.LeftButton)
    assert fake_session.calls[-1] == "refresh_qr"
    # the banner offers the same
    assert window.banner.action.isVisible()
    assert window.banner.action.text() == "Get a new code"
    qtbot.mouseClick(window.banner.action, Qt.MouseButton.LeftButton)
    assert fake_session.calls.count("refresh_qr") == 2


def test_connected(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    qtbot.waitUntil(lambda: window.pages.currentIndex() == PAGE_MESSAGES)
    assert banner(window) == "Connected as +49 1512 3456789 (Anna)"
    assert window.banner.property("tone") == Tone.OK.value
    assert not window.banner.action.isVisible()
    assert window.logout_action.isEnabled()
    assert not window.compose.offline_note.isVisible()
    assert not window.ticker.isActive()


def test_reconnecting_counts_down_and_offers_to_reconnect_now(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    fake_session.set_state(
        SessionState(
            Status.RECONNECTING,
            attempt=2,
            next_try_at=time.time() + 3.5,
            reason="Connection to WhatsApp lost",
        )
    )
    qtbot.waitUntil(lambda: window.banner.title.text().startswith("Reconnecting (attempt 2, next try in"))
    assert window.banner.detail.text() == "Connection to WhatsApp lost"
    assert window.banner.property("tone") == Tone.WARN.value
    assert window.pages.currentIndex() == PAGE_MESSAGES  # paired: the chats and the form stay
    window.messenger.open_chat(PEER_JID)
    assert window.compose.offline_note.isVisible()
    first = window.banner.title.text()
    qtbot.waitUntil(lambda: window.banner.title.text() != first, timeout=5000)  # the countdown is live
    qtbot.mouseClick(window.banner.action, Qt.MouseButton.LeftButton)
    assert fake_session.calls[-1] == "reconnect"
    qtbot.waitUntil(
        lambda: window.banner.title.text() == "Reconnecting (attempt 2, trying now)", timeout=8000
    )


def test_logged_out(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    fake_session.set_state(SessionState(Status.LOGGED_OUT, reason="logged out from the phone"))
    qtbot.waitUntil(lambda: window.banner.title.text() == "Logged out")
    assert banner(window) == "Logged out: logged out from the phone"
    assert window.pages.currentIndex() == PAGE_PAIRING
    assert not window.logout_action.isEnabled()


def test_failed_offers_try_again(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    reason = "Another WhatsApp Web or desktop session using this device took over."
    fake_session.set_state(SessionState(Status.FAILED, reason=reason))
    qtbot.waitUntil(lambda: window.banner.title.text() == "Failed")
    assert banner(window) == f"Failed: {reason}"
    assert window.banner.property("tone") == Tone.ERROR.value
    assert window.banner.action.text() == "Try again"
    assert window.banner.accessibleDescription() == f"Failed: {reason}"
    qtbot.mouseClick(window.banner.action, Qt.MouseButton.LeftButton)
    assert fake_session.calls[-1] == "reconnect"


def test_events_from_core_threads_are_handled_in_the_gui_thread(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(fake_session)
    handled_in: list[int] = []
    original = window.on_state

    def recording(state: SessionState) -> None:
        handled_in.append(threading.get_ident())
        original(state)

    monkeypatch.setattr(window, "on_state", recording)
    # the bridge's signal was connected to the bound method already; reconnect to the recorder
    window.bridge.stateChanged.disconnect()
    window.bridge.stateChanged.connect(window.on_state)
    core = threading.Thread(target=connected, args=(fake_session,), name="fake-core")
    core.start()
    core.join(5)
    qtbot.waitUntil(lambda: bool(handled_in))
    assert handled_in == [threading.get_ident()]  # the GUI thread, not the core thread
    assert banner(window).startswith("Connected as")


# ---- sending and the conversation (the real session on the fake driver) -----------------------


def test_send_queues_durably_and_the_conversation_follows_the_status(qtbot: Any, rig: Rig) -> None:
    window = rig.window
    rig.connect()  # the peer's chat is open
    qtbot.keyClicks(window.compose.message, "hello from the window")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.compose.message.toPlainText() == "")  # queued: the form is cleared
    qtbot.waitUntil(lambda: len(window.model.entries()) == 1)
    [entry] = window.model.entries()
    assert (entry.outgoing, entry.text, entry.chat) == (True, "hello from the window", PEER_JID)
    qtbot.waitUntil(lambda: rig.factory.sent == [(PEER_JID, "hello from the window")])
    qtbot.waitUntil(lambda: window.model.entry(entry.id).status == "sent")
    qtbot.waitUntil(lambda: window.outbox_label.text() == "Outbox empty")
    record = rig.session.message(entry.id)
    assert record is not None and record.wa_id
    rig.driver.emit(drv.Receipt, wa_ids=(record.wa_id,), status="read", chat=PEER_JID, timestamp=time.time())
    qtbot.waitUntil(lambda: window.model.entry(entry.id).status_text == "read")
    index = window.model.index(0)
    assert "status read: hello from the window" in index.data(Qt.ItemDataRole.AccessibleTextRole)
    # the chat list shows it too: the chat, its last message, the tick
    qtbot.waitUntil(lambda: rig.chats.chat(PEER_JID) is not None)
    qtbot.waitUntil(lambda: str(rig.chats.chat(PEER_JID).last_status) == "read")
    assert rig.chats.chat(PEER_JID).last_text == "hello from the window"


def test_sending_runs_off_the_gui_thread_and_the_form_waits_for_it(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = rig.window
    rig.connect()
    gate = threading.Event()
    threads: list[int] = []
    real = rig.session.send

    def slow(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        gate.wait(10)  # the outbox write takes a while
        return real(*args, **kwargs)

    monkeypatch.setattr(rig.session, "send", slow)
    window.compose.message.setPlainText("slow disk")
    started = time.monotonic()
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - started < 1.0
    qtbot.waitUntil(lambda: bool(threads))
    assert window.compose.busy
    assert not window.compose.send_button.isEnabled()
    qtbot.keyClick(window.compose.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    gate.set()
    qtbot.waitUntil(lambda: window.compose.message.toPlainText() == "")
    assert threads != [threading.get_ident()]
    assert len(threads) == 1  # Ctrl+Enter while it was queued sent nothing more
    qtbot.waitUntil(lambda: [e.text for e in window.model.entries()] == ["slow disk"])
    assert not window.compose.busy


def test_a_message_the_outbox_refuses_stays_in_the_form(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = rig.window
    rig.connect()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise SessionError("database is locked")

    monkeypatch.setattr(rig.session, "send", refuse)
    window.compose.message.setPlainText("keep me")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.compose.text_status.objectName() == "error")
    assert window.compose.text_status.text() == "Could not queue the message: database is locked"
    assert window.compose.message.toPlainText() == "keep me"
    assert window.compose.send_button.isEnabled()  # it can be tried again


def test_a_message_the_store_cannot_take_says_nothing_was_lost(
    qtbot: Any, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = rig.window
    rig.connect()

    def full(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("full", "database or disk is full", "enqueue")

    monkeypatch.setattr(rig.session, "send", full)
    window.compose.message.setPlainText("keep me")
    window.compose.submit()
    qtbot.waitUntil(lambda: window.compose.text_status.objectName() == "error")
    assert window.compose.text_status.text().startswith("Not queued: wadesk cannot store messages right now")
    assert "the disk is full" in window.compose.text_status.text()


def test_failed_message_shows_the_reason(qtbot: Any, rig: Rig) -> None:
    window = rig.window
    rig.factory.send_errors.append(
        drv.SendFailed(
            "server returned error 463", written=False, failure=drv.SendFailure.REACH_OUT_TIMELOCK, code=463
        )
    )
    rig.connect()
    rig.type_and_send("blocked")
    qtbot.waitUntil(lambda: any(e.status == "failed" for e in window.model.entries()))
    [entry] = window.model.entries()
    assert entry.status_text.startswith("failed: WhatsApp refused to start a new chat with this contact")
    # the chat is open and on screen: no failure marker stays in the list
    qtbot.waitUntil(lambda: rig.chats.chat(PEER_JID) is not None)
    rig.idle()
    assert rig.chats.chat(PEER_JID).failed == 0


def test_a_failure_in_another_chat_marks_it_in_the_list(qtbot: Any, rig: Rig) -> None:
    rig.connect(open_chat="15550003333@s.whatsapp.net")
    rig.factory.send_errors.append(
        drv.SendFailed("error 403", written=False, failure=drv.SendFailure.REJECTED, code=403)
    )
    record, _ = rig.session.send("+15550002222", "refused")  # as the local API would
    qtbot.waitUntil(lambda: rig.chats.chat(PEER_JID) is not None and rig.chats.chat(PEER_JID).failed == 1)
    index = rig.chats.index(rig.chats.row_of(PEER_JID))
    assert "1 message not sent" in index.data(Qt.ItemDataRole.AccessibleTextRole)
    assert rig.chats.chat(PEER_JID).preview == "refused"
    rig.open(PEER_JID)  # shown: the marker clears
    assert rig.chats.chat(PEER_JID).failed == 0
    qtbot.waitUntil(lambda: rig.session.chat(PEER_JID).failed == 0)
    [entry] = rig.window.model.entries()
    assert entry.id == record.id and entry.status == "failed"


def test_sending_while_disconnected_says_it_waits(qtbot: Any, rig: Rig) -> None:
    window = rig.window
    rig.connect()
    rig.driver.emit(drv.Disconnected)
    qtbot.waitUntil(window.compose.offline_note.isVisible)
    assert (
        "messages wait in the outbox and go out when wadesk reconnects" in window.compose.offline_note.text()
    )
    window.compose.message.setPlainText("later")
    qtbot.keyClick(window.compose.message, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: window.statusBar().currentMessage() == "Queued: it goes out when wadesk is connected again."
    )
    qtbot.waitUntil(lambda: window.outbox_label.text() == "Outbox: 1 waiting")
    assert rig.session.outbox_depth() == 1


def test_the_outbox_count_shows_on_the_pairing_page_once_something_waits(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    fake_session.show_qr(QR)
    qtbot.waitUntil(lambda: window.pairing.qr.code == QR)
    assert window.pages.currentIndex() == PAGE_PAIRING
    assert not window.outbox_label.isVisible()
    fake_session.send("+15550002222", "through the local API")  # no state change follows
    qtbot.waitUntil(window.outbox_label.isVisible)
    assert window.outbox_label.text() == "Outbox: 1 waiting"


def test_incoming_messages_appear_with_sender_and_time(qtbot: Any, rig: Rig) -> None:
    window = rig.window
    rig.connect()
    rig.incoming(PEER, "hi there", "Ben")
    qtbot.waitUntil(lambda: len(window.model.entries()) == 1)
    [entry] = window.model.entries()
    assert entry.sender_label == "Ben (+1 555-000-2222)"
    assert entry.bubble_heading == ""  # a person's chat: the header names them, not each bubble
    assert entry.text == "hi there"
    record = rig.session.message(entry.id)
    assert entry.time_text == time.strftime("%H:%M", time.localtime(record.wa_timestamp))
    assert not entry.outgoing
    assert "Received from Ben (+1 555-000-2222)" in window.model.index(0).data(
        Qt.ItemDataRole.AccessibleTextRole
    )
    # answering it: Enter on the message goes to the message field of this chat
    window.log_view.setFocus()
    window.log_view.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.log_view, Qt.Key.Key_Return)
    assert window.compose.message.hasFocus()
    assert window.messenger.current_chat == PEER_JID


def test_the_conversation_survives_a_restart(qtbot: Any, make_rig: Callable[..., Rig]) -> None:
    first = make_rig()
    first.connect()
    first.type_and_send("sent before the restart")
    first.incoming(PEER, "received before the restart", "Ben")
    qtbot.waitUntil(lambda: len(first.window.model.entries()) == 2)
    first.window.shutdown()
    assert first.window.wait_stopped(5)
    first.session.store.close()
    again = make_rig()
    qtbot.waitUntil(lambda: again.chats.rowCount() == 1)  # read from the data folder, not connected
    assert again.chats.chat(PEER_JID).name == "Ben"
    again.open(PEER_JID)
    texts = [(e.outgoing, e.text) for e in again.window.model.entries()]
    assert texts == [(True, "sent before the restart"), (False, "received before the restart")]
    again.connect(open_chat=None)
    again.incoming(PEER, "newest")
    qtbot.waitUntil(lambda: again.window.model.rowCount() == 3)
    assert again.window.model.entries()[-1].text == "newest"  # newest last


def test_bubbles_paint(qtbot: Any, rig: Rig) -> None:
    window = rig.window
    rig.connect()
    rig.type_and_send("a fairly long message " * 20)
    rig.incoming(PEER, "short")
    qtbot.waitUntil(lambda: window.model.rowCount() == 2)
    view = window.log_view
    first = view.visualRect(window.model.index(0))
    second = view.visualRect(window.model.index(1))
    assert first.height() > second.height() > 0  # wrapped text makes a taller bubble
    assert not view.grab().isNull()


# ---- pairing by phone number ---------------------------------------------------------------


def test_pairing_code_by_phone_number(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    fake_session.show_qr(QR)
    qtbot.waitUntil(lambda: window.pairing.qr.code == QR)
    qtbot.mouseClick(window.pairing.phone_link, Qt.MouseButton.LeftButton)
    assert window.pairing.phone_mode
    assert not window.pairing.get_code_button.isEnabled()
    qtbot.keyClicks(window.pairing.phone, "0151 2345")
    assert "country code" in window.pairing.phone_status.text()
    assert not window.pairing.get_code_button.isEnabled()
    window.pairing.phone.clear()
    qtbot.keyClicks(window.pairing.phone, "+1 555 000 1111")
    assert window.pairing.get_code_button.isEnabled()
    fake_session.block.clear()  # the request is slow: the window must not wait for it
    started = time.monotonic()
    qtbot.mouseClick(window.pairing.get_code_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - started < 1.0
    assert not window.pairing.get_code_button.isEnabled()
    assert window.pairing.phone_status.text() == "Asking WhatsApp for a code…"
    fake_session.block.set()
    qtbot.waitUntil(lambda: window.pairing.code_label.text() == "ABCD-EFGH")
    assert fake_session.calls[-1] == "pair +1 555 000 1111"
    assert window.pairing.code_note.text() == CODE_INSTRUCTION
    qtbot.mouseClick(window.pairing.copy_code_button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "ABCD-EFGH"
    qtbot.mouseClick(window.pairing.qr_link, Qt.MouseButton.LeftButton)
    assert not window.pairing.phone_mode


def test_pairing_code_error_is_shown(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    fake_session.show_qr(QR)
    qtbot.waitUntil(lambda: window.pairing.qr.code == QR)
    fake_session.pair_error = SessionError("WhatsApp did not give a pairing code: rate limited")
    window.pairing.show_phone_form()
    window.pairing.phone.setText("+15550001111")
    qtbot.keyClick(window.pairing.phone, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "rate limited" in window.pairing.phone_status.text())
    assert window.pairing.phone_status.objectName() == "error"
    assert window.pairing.get_code_button.isEnabled()  # it can be tried again


# ---- account menu ---------------------------------------------------------------------------


def test_logout_asks_first_then_runs_off_the_gui_thread(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    qtbot.waitUntil(window.logout_action.isEnabled)
    ran_in: list[int] = []
    original = fake_session.logout

    def logout() -> None:
        ran_in.append(threading.get_ident())
        original()

    monkeypatch.setattr(fake_session, "logout", logout)
    window.logout_action.trigger()
    box = window.findChild(QMessageBox, "logoutConfirm")
    assert box is not None and box.isVisible()
    assert "+49 1512 3456789 (Anna)" in box.text()
    box.reject()  # Cancel: nothing happens
    assert ran_in == []
    window.logout_action.trigger()
    boxes = [b for b in window.findChildren(QMessageBox, "logoutConfirm") if b.isVisible()]
    [box] = boxes
    fake_session.block.clear()
    qtbot.mouseClick(
        box.findChild(type(window.compose.send_button), "confirmLogout"), Qt.MouseButton.LeftButton
    )
    assert window.statusBar().currentMessage() == "Logging out…"
    fake_session.block.set()
    qtbot.waitUntil(lambda: window.banner.title.text() == "Logged out")
    assert ran_in and ran_in[0] != threading.get_ident()


def test_logout_failure_is_reported(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    connected(fake_session)
    fake_session.logout_error = SessionError("logging out failed: timed out")
    window.logout()
    qtbot.waitUntil(
        lambda: any("timed out" in b.text() for b in window.findChildren(QMessageBox) if b.isVisible())
    )
    assert window.logout_action.isEnabled()


def test_copy_token_without_a_secure_keyring_uses_a_private_file(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, data: DataDir
) -> None:
    window = make_window(fake_session)  # no keyring backend
    QApplication.clipboard().clear()
    window.copy_token_action.trigger()
    qtbot.waitUntil(lambda: bool(QApplication.clipboard().text()))
    token = QApplication.clipboard().text()
    path = data.file(API_TOKEN_FILE)
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "No secure keyring is available" in window.statusBar().currentMessage()
    assert str(path) in window.statusBar().currentMessage()


def test_copy_token_with_a_secure_keyring_keeps_it_there(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, data: DataDir
) -> None:
    keyring = MemoryKeyring()
    window = make_window(fake_session, keyring=keyring)
    QApplication.clipboard().clear()
    window.copy_token_action.trigger()
    qtbot.waitUntil(lambda: bool(QApplication.clipboard().text()))
    [(service, _user)] = keyring.passwords
    assert service == KEYRING_SERVICE
    assert list(keyring.passwords.values()) == [QApplication.clipboard().text()]
    assert not data.file(API_TOKEN_FILE).exists()
    assert window.statusBar().currentMessage() == "Local API token copied."


def test_token_from_the_environment_wins(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, data: DataDir
) -> None:
    config = Config(data_dir=data.path, api_token="env-token-0123456789abcdef")
    window = make_window(fake_session, config=config, keyring=MemoryKeyring())
    window.copy_token_action.trigger()
    qtbot.waitUntil(lambda: QApplication.clipboard().text() == "env-token-0123456789abcdef")


def test_local_api_dialog_says_where_the_token_is(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession, data: DataDir
) -> None:
    window = make_window(fake_session)
    dialog = window.show_api_settings()
    qtbot.waitUntil(lambda: dialog.token is not None)
    assert dialog.token_edit.echoMode() == dialog.token_edit.EchoMode.Password
    assert "No secure keyring" in dialog.storage.text()
    assert not dialog.enabled.isChecked()
    dialog.reject()
    assert not window.api_enabled


def test_the_port_field_looks_disabled_while_the_local_api_is_off(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    dialog = window.show_api_settings()
    qtbot.waitUntil(lambda: dialog.token is not None)

    def background() -> str:
        image = dialog.port.grab().toImage()
        return image.pixelColor(8, image.height() // 2).name().upper()

    assert not dialog.port.isEnabled()
    assert background() == window.theme.surface_alt
    dialog.enabled.setChecked(True)
    assert dialog.port.isEnabled()
    assert background() == window.theme.surface
    dialog.reject()


def test_open_data_folder(
    make_window: MakeWindow, fake_session: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(
        "wadesk.ui.window.QDesktopServices.openUrl", lambda url: opened.append(url.toLocalFile()) or True
    )
    window = make_window(fake_session)
    window.open_folder_action.trigger()
    assert opened == [str(window.data.path)]


# ---- window ----------------------------------------------------------------------------------


def test_geometry_is_remembered(qtbot: Any, make_window: MakeWindow, data: DataDir) -> None:
    first = FakeSession(data.store_db)
    window = make_window(first)
    window.resize(700, 530)  # fits the offscreen screen (800 x 600): restoring keeps it on screen
    window.move(40, 30)
    qtbot.waitUntil(lambda: window.width() == 700 and window.x() == 40)
    window.shutdown()
    first.store.close()
    assert QSettings(str(data.file("desktop.ini")), QSettings.Format.IniFormat).contains("window/geometry")
    second = FakeSession(data.store_db)
    try:
        again = make_window(second)
        assert (again.width(), again.height()) == (700, 530)
        assert (again.x(), again.y()) == (40, 30)
    finally:
        second.store.close()


def test_closing_stops_the_session_off_the_gui_thread(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    assert fake_session.subscribers == 1
    quits: list[bool] = []
    window.quitRequested.connect(lambda: quits.append(True))
    fake_session.block.clear()  # stopping the session takes a while
    window.close()  # returns at once: the GUI thread does not wait for the session
    assert not window.isVisible()
    assert fake_session.subscribers == 0  # no event reaches a closed window
    qtbot.waitUntil(lambda: "stop" in fake_session.calls)
    assert fake_session.stopped_in != threading.get_ident()
    qtbot.wait(200)  # the event loop keeps running while the session stops ...
    assert quits == [] and not fake_session.stopped
    with qtbot.waitSignal(window.quitRequested, timeout=5000):
        fake_session.block.set()  # ... and quitRequested comes once it has stopped
    assert fake_session.stopped
    assert quits == [True]
    window.close()  # closing again does nothing more
    qtbot.wait(50)
    assert quits == [True] and fake_session.calls.count("stop") == 1


def test_quit_is_requested_even_if_the_session_does_not_stop_in_time(
    qtbot: Any, make_window: MakeWindow, fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    fake_session.stop_hangs = True  # stop() overruns its time limit
    fake_session.block.clear()
    started = time.monotonic()
    with qtbot.waitSignal(window.quitRequested, timeout=5000):
        window.shutdown(timeout=0.5)
    assert 0.9 <= time.monotonic() - started < 4.0  # the time limit and its half-second margin
    assert not fake_session.stopped
    fake_session.block.set()


def test_keyboard_and_accessibility(make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Chats", "&Account", "&Help"]
    assert [a.text() for a in window.chats_menu.actions() if a.text()] == [
        "&New chat…",
        "&Search",
        "Ne&xt chat",
        "&Previous chat",
        "&Back to the chats",
        "Send &read receipts",
    ]
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    assert [a.text() for a in window.account_menu.actions() if a.text()] == [
        "&Log out…",
        "&Open data folder",
        "&Copy local API token",
        "Local &API…",
    ]
    for widget in (
        window.banner,
        window.pairing.qr,
        window.pairing.phone_link,
        window.search,
        window.messenger.new_chat_button,
        window.chat_list,
        window.messenger.search_view,
        window.messenger.header,
        window.messenger.header.back,
        window.log_view,
        window.compose.recipient,
        window.compose.message,
        window.compose.send_button,
    ):
        assert widget.accessibleName(), widget
    assert window.windowTitle() == "wadesk"
    assert not window.windowIcon().isNull()


def tab_chain(qtbot: Any, window: MainWindow, start: Any, steps: int) -> list[Any]:
    """The widgets Tab visits from ``start``, pressing Tab ``steps`` times."""
    start.setFocus()
    visited = [QApplication.focusWidget()]
    for _ in range(steps):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        visited.append(QApplication.focusWidget())
    return visited


def test_tab_goes_top_to_bottom(qtbot: Any, make_window: MakeWindow, fake_session: FakeSession) -> None:
    window = make_window(fake_session)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    connected(fake_session)
    fake_session.set_state(
        SessionState(Status.RECONNECTING, attempt=1, next_try_at=time.time() + 60, reason="lost")
    )
    qtbot.waitUntil(window.banner.action.isVisible)
    window.messenger.open_chat(PEER_JID)
    qtbot.waitUntil(lambda: window.chat_model.chat(PEER_JID) is not None)
    compose = window.compose
    compose.message.setPlainText("hi")
    # the banner's action, the search, New chat, the chats, the conversation, then the form
    # from top to bottom, and round again
    assert tab_chain(qtbot, window, window.banner.action, 8) == [
        window.banner.action,
        window.search,
        window.messenger.new_chat_button,
        window.chat_list,
        window.log_view,
        compose.message,
        compose.attach_button,
        compose.send_button,
        window.banner.action,
    ]
    fake_session.show_qr(QR)
    qtbot.waitUntil(lambda: window.pages.currentIndex() == PAGE_PAIRING)
    window.pairing.show_phone_form()
    window.pairing.phone.setText("+15550001111")
    pairing = window.pairing
    assert tab_chain(qtbot, window, pairing.phone, 3) == [
        pairing.phone,
        pairing.get_code_button,
        pairing.qr_link,
        pairing.phone,
    ]
