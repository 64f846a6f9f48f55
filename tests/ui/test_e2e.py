"""The real window with the real neonize client, against the fake WhatsApp server.

Everything a person does is done through the widgets: the QR code is read back from the
widget's pixels, the message is typed and sent with the Send button, and what the window
shows is what is checked. The client runs in this process (the root conftest started it
with the test CA and patched the library's pinned key).
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakewa.phone import qr_ref
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QMessageBox, QPushButton

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DataDir
from wadesk.ui.localapi import TokenStore
from wadesk.ui.window import PAGE_MESSAGES, PAGE_PAIRING, MainWindow

from .qtimage import decode_qr

pytestmark = pytest.mark.e2e

PHONE = "15550001111"  # the fake account's phone
PEER = "15550002222"
WAIT_MS = 30_000


class Harness:
    """Builds real windows on one data folder; stops their sessions at the end."""

    def __init__(self, qtbot: Any, fake_wa: Any, data: DataDir) -> None:
        self.qtbot = qtbot
        self.fake_wa = fake_wa
        self.data = data
        self.config = Config(data_dir=data.path, proxy=fake_wa.proxy_url, send_interval=0)
        self.windows: list[MainWindow] = []
        self.shown: list[str] = []  # every banner text the last window displayed, in order

    def open(self) -> MainWindow:
        session = open_session(self.config, self.data)
        window = MainWindow(
            session,
            self.data,
            self.config,
            use_tray=False,
            token_store=TokenStore(self.config, self.data, backend=None),
        )
        self.qtbot.addWidget(window)
        self.windows.append(window)
        self.shown = []
        # connected after the window's own slot: records what the window showed
        window.bridge.stateChanged.connect(lambda _state: self.shown.append(window.banner.text))
        window.show()
        self.qtbot.waitExposed(window)
        session.start()
        return window

    def close(self, window: MainWindow) -> float:
        """Close the window; seconds until it asked to quit, its session stopped."""
        started = time.monotonic()
        with self.qtbot.waitSignal(window.quitRequested, timeout=6000):
            window.close()
        elapsed = time.monotonic() - started
        assert window.wait_stopped(1)  # quitRequested comes as the stopper thread ends
        assert window.jobs.wait(5)
        window.session.store.close()
        return elapsed

    def wait_banner(self, window: MainWindow, prefix: str, timeout: int = WAIT_MS) -> None:
        self.qtbot.waitUntil(lambda: window.banner.text.startswith(prefix), timeout=timeout)

    def scan_qr_from_pixels(self, window: MainWindow) -> str:
        self.qtbot.waitUntil(lambda: window.pairing.qr.code is not None, timeout=WAIT_MS)
        assert window.pages.currentIndex() == PAGE_PAIRING
        [decoded] = decode_qr(window.pairing.qr.grab())
        assert self.fake_wa.is_own_qr(decoded)
        self.fake_wa.scan(decoded)
        return decoded

    def start_chat(self, window: MainWindow, number: str) -> str:
        """Ctrl+N, type the number, Start chat: WhatsApp is asked whether it has an account,
        then its chat opens. Returns the chat's JID."""
        self.qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        dialog = window.new_chat_dialog
        assert dialog is not None and dialog.isVisible()
        self.qtbot.keyClicks(dialog.number, number)
        self.qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
        jid = "".join(ch for ch in number if ch.isdigit()) + "@s.whatsapp.net"
        self.qtbot.waitUntil(lambda: window.messenger.current_chat == jid, timeout=WAIT_MS)
        self.qtbot.waitUntil(lambda: not window.model.loading, timeout=WAIT_MS)
        assert window.new_chat_dialog is None  # closed
        return jid

    def open_paired(self) -> tuple[MainWindow, str]:
        """A new window, linked by scanning the QR code read from its pixels; returns it and the code."""
        window = self.open()
        code = self.scan_qr_from_pixels(window)
        self.wait_banner(window, "Connected as")
        return window, code


@pytest.fixture
def harness(qtbot: Any, fake_wa: Any, data: DataDir) -> Iterator[Harness]:
    h = Harness(qtbot, fake_wa, data)
    yield h
    for window in h.windows:
        if not window.is_shut_down:
            assert h.close(window) < 5.0


def test_pair_send_receive_reconnect(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    window = harness.open()
    # the window shows a QR code; its pixels are what the phone scans
    harness.wait_banner(window, "Scan the QR code")
    harness.scan_qr_from_pixels(window)
    harness.wait_banner(window, "Connected as +1 555-000-1111")
    assert window.banner.property("tone") == "ok"
    qtbot.waitUntil(lambda: window.pages.currentIndex() == PAGE_MESSAGES)

    # a new chat (WhatsApp says the number has an account), a text, Send
    text = "hello from the wadesk window"
    harness.start_chat(window, "+1 555 000 2222")
    qtbot.keyClicks(window.compose.message, text)
    assert window.compose.send_button.isEnabled()
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.compose.message.toPlainText() == "")  # queued: the form is cleared
    _, received = fake_wa.wait_text_from_client(PEER, timeout=20)
    assert received == text
    qtbot.waitUntil(lambda: any(e.outgoing for e in window.model.entries()), timeout=WAIT_MS)
    [sent] = [e for e in window.model.entries() if e.outgoing]
    qtbot.waitUntil(
        lambda: window.model.entry(sent.id).status in ("sent", "delivered", "read"), timeout=WAIT_MS
    )
    assert not window.compose.has_attachment and window.compose.message.toPlainText() == ""
    assert window.model.entry(sent.id).chat == f"{PEER}@s.whatsapp.net"
    assert window.messenger.header.title.text() == "+1 555-000-2222"

    # a peer's message appears in the open chat
    fake_wa.peer(PEER).send_text("hi back from the peer")
    qtbot.waitUntil(
        lambda: any(not e.outgoing and e.text == "hi back from the peer" for e in window.model.entries()),
        timeout=WAIT_MS,
    )
    [incoming] = [e for e in window.model.entries() if not e.outgoing]
    assert "+1 555-000-2222" in incoming.sender_label
    assert abs(incoming.at - time.time()) < 120  # shown at the time it was sent
    assert window.model.entries()[-1] == incoming  # newest last

    # the server drops the connection: Reconnecting, then Connected again
    harness.shown.clear()
    fake_wa.drop_connection()

    def reconnected() -> bool:
        texts = harness.shown
        first = next((i for i, t in enumerate(texts) if t.startswith("Reconnecting (attempt 1")), None)
        return first is not None and any(t.startswith("Connected as +1 555-000-1111") for t in texts[first:])

    qtbot.waitUntil(reconnected, timeout=WAIT_MS)
    reconnecting = next(t for t in harness.shown if t.startswith("Reconnecting"))
    assert reconnecting.endswith(": Connection to WhatsApp lost")
    harness.wait_banner(window, "Connected as +1 555-000-1111")

    # and sending still works
    window.compose.message.setPlainText("after the reconnect")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    assert fake_wa.wait_text_from_client(PEER, timeout=20)[1] == "after the reconnect"

    # closing the window stops the session within 5 s
    worker = window.session._worker
    assert harness.close(window) < 5.0
    assert worker is not None and not worker.is_alive()


def test_a_rotated_qr_code_replaces_the_shown_one(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    window = harness.open()
    qtbot.waitUntil(lambda: window.pairing.qr.code is not None, timeout=WAIT_MS)
    first = window.pairing.qr.code
    refs = fake_wa.rotate_qr()
    qtbot.waitUntil(lambda: window.pairing.qr.code not in (None, first), timeout=WAIT_MS)
    [shown] = decode_qr(window.pairing.qr.grab())
    assert shown == window.pairing.qr.code
    assert qr_ref(shown) == refs[0]  # the server's newest ref, on screen
    assert window.pairing.countdown_label.text().startswith("This code changes in")
    fake_wa.scan(shown)
    harness.wait_banner(window, "Connected as +1 555-000-1111")


def test_restart_reconnects_without_a_qr_and_keeps_the_log(
    qtbot: Any, harness: Harness, fake_wa: Any
) -> None:
    window, _ = harness.open_paired()
    jid = harness.start_chat(window, "+15550002222")
    window.compose.message.setPlainText("before the restart")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    fake_wa.wait_text_from_client(PEER, timeout=20)
    assert harness.close(window) < 5.0

    again = harness.open()
    assert again.pages.currentIndex() == PAGE_MESSAGES  # paired before: no pairing page, even while starting
    qtbot.waitUntil(lambda: again.chat_model.chat(jid) is not None, timeout=WAIT_MS)
    assert again.chat_model.chat(jid).last_text == "before the restart"
    row = again.chat_model.row_of(jid)
    rect = again.chat_list.visualRect(again.chat_model.index(row))
    qtbot.mouseClick(again.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: again.model.chat == jid and not again.model.loading, timeout=WAIT_MS)
    assert [e.text for e in again.model.entries()] == ["before the restart"]
    harness.wait_banner(again, "Connected as +1 555-000-1111")
    assert not any(t.startswith("Scan the QR code") for t in harness.shown)
    assert again.pairing.qr.code is None


def test_a_message_sent_while_reconnecting_goes_out_on_reconnect(
    qtbot: Any, harness: Harness, fake_wa: Any
) -> None:
    window, _ = harness.open_paired()
    harness.start_chat(window, "+15550002222")
    harness.shown.clear()
    fake_wa.drop_connection()
    qtbot.waitUntil(lambda: any(t.startswith("Reconnecting") for t in harness.shown), timeout=WAIT_MS)
    assert window.compose.offline_note.isVisible()
    window.compose.message.setPlainText("written while offline")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    # stored while offline: the window says it goes out later
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Queued: it goes out when"))
    [entry] = window.model.entries()
    assert fake_wa.wait_text_from_client(PEER, timeout=20)[1] == "written while offline"
    qtbot.waitUntil(lambda: window.model.entry(entry.id).status != "queued", timeout=WAIT_MS)
    assert window.model.entry(entry.id).status in ("sent", "delivered", "read")


def test_no_server_at_all(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    fake_wa.close()  # nothing answers on the proxy port
    window = harness.open()
    qtbot.waitUntil(lambda: window.banner.text.startswith("Reconnecting (attempt"), timeout=WAIT_MS)
    assert "Cannot reach WhatsApp" in window.banner.detail.text()
    assert window.pages.currentIndex() == PAGE_PAIRING  # never paired: the pairing page says what is going on
    assert window.pairing.qr.code is None
    # the messenger is not shown before a phone is linked; a chat opened anyway queues
    window.messenger.open_chat("15550002222@s.whatsapp.net")
    window.compose.message.setPlainText("kept for later")
    window.compose.submit()
    qtbot.waitUntil(lambda: window.outbox_label.text() == "Outbox: 1 waiting")
    assert window.session.store.outbox_depth() == 1
    assert harness.close(window) < 5.0


def test_link_with_phone_number(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    window = harness.open()
    qtbot.waitUntil(lambda: window.pairing.qr.code is not None, timeout=WAIT_MS)
    qtbot.mouseClick(window.pairing.phone_link, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(window.pairing.phone, "+1 555 000 1111")
    qtbot.mouseClick(window.pairing.get_code_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", window.pairing.code_label.text()) is not None,
        timeout=WAIT_MS,
    )
    fake_wa.wait_for(lambda kind, _data: kind == "pair-code-requested", what="pairing code request")
    assert window.pairing.copy_code_button.isEnabled()


def test_log_out_from_the_menu(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    window, first = harness.open_paired()
    ran_in: list[int] = []
    real_logout = window.session.logout

    def logout() -> None:
        ran_in.append(threading.get_ident())
        real_logout()

    window.session.logout = logout
    window.logout_action.trigger()
    box = window.findChild(QMessageBox, "logoutConfirm")
    assert box is not None
    qtbot.mouseClick(box.findChild(QPushButton, "confirmLogout"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(ran_in))
    assert ran_in != [threading.get_ident()]  # the network call ran off the GUI thread
    qtbot.waitUntil(lambda: any(t.startswith("Logged out") for t in harness.shown), timeout=WAIT_MS)
    # a fresh QR code to link again
    qtbot.waitUntil(lambda: window.pairing.qr.code not in (None, first), timeout=WAIT_MS)
    assert window.pages.currentIndex() == PAGE_PAIRING
    [decoded] = decode_qr(window.pairing.qr.grab())
    assert decoded == window.pairing.qr.code != first


def test_local_api_beside_the_window(qtbot: Any, harness: Harness, fake_wa: Any) -> None:
    from .test_localapi import call, free_port

    window, _ = harness.open_paired()
    port = free_port()
    window.settings.setValue("local_api/enabled", "true")
    window.settings.setValue("local_api/port", port)
    window.apply_api_setting()
    qtbot.waitUntil(lambda: window.api is not None, timeout=WAIT_MS)
    token = window.token_store.get().value
    status, body = call(f"http://127.0.0.1:{port}/status", token)
    assert status == 200 and body["state"] == "connected"
    status, body = call(
        f"http://127.0.0.1:{port}/send", token, {"to": "+1 555 000 2222", "text": "via the API"}
    )
    assert status == 202, body
    assert fake_wa.wait_text_from_client(PEER, timeout=20)[1] == "via the API"
    jid = f"{PEER}@s.whatsapp.net"

    def listed_as_sent() -> bool:
        chat = window.chat_model.chat(jid)
        return chat is not None and chat.last_text == "via the API" and str(chat.last_status) != "queued"

    qtbot.waitUntil(listed_as_sent, timeout=WAIT_MS)
    assert harness.close(window) < 5.0
    with pytest.raises(OSError):
        call(f"http://127.0.0.1:{port}/health")


def test_send_an_image_and_open_a_peers_document(
    qtbot: Any, harness: Harness, fake_wa: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window, _ = harness.open_paired()
    out = io.BytesIO()
    Image.new("RGB", (480, 320), (40, 160, 90)).save(out, "JPEG", quality=90)
    photo = out.getvalue()
    path = tmp_path / "shop front.jpg"
    path.write_bytes(photo)
    monkeypatch.setattr("wadesk.ui.window.QFileDialog.getOpenFileName", lambda *a: (str(path), ""))

    # attach with the button, write a caption, Send
    harness.start_chat(window, "+1 555 000 2222")
    qtbot.mouseClick(window.compose.attach_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.compose.attachment is not None, timeout=WAIT_MS)
    assert window.compose.card.detail.text().startswith("Photo · JPG · 480 × 320")
    qtbot.keyClicks(window.compose.message, "open until 6 today")
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    received = fake_wa.wait_media_from_client(PEER, kind="image", timeout=20)
    assert received.plaintext == photo  # what the peer decrypted from the media host
    assert received.caption == "open until 6 today"
    qtbot.waitUntil(lambda: any(e.outgoing for e in window.model.entries()), timeout=WAIT_MS)
    [sent] = [e for e in window.model.entries() if e.outgoing]
    qtbot.waitUntil(
        lambda: window.model.entry(sent.id).status in ("sent", "delivered", "read"), timeout=WAIT_MS
    )
    assert not window.compose.has_attachment and window.compose.message.toPlainText() == ""
    assert window.model.entry(sent.id).media.kind == "image"
    qtbot.waitUntil(lambda: isinstance(window.thumbnails.peek(sent.media.id), QPixmap), timeout=WAIT_MS)

    # the peer sends a document: a card in the log, and a double click opens it
    pdf = b"%PDF-1.4\n1 0 obj<</Type /Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    fake_wa.peer(PEER).send_media(
        "document", pdf, "application/pdf", filename="terms.pdf", caption="the terms"
    )
    qtbot.waitUntil(
        lambda: any(e.media is not None and e.media.filename == "terms.pdf" for e in window.model.entries()),
        timeout=WAIT_MS,
    )
    [doc] = [e for e in window.model.entries() if e.media is not None and e.media.filename == "terms.pdf"]
    assert (doc.media.state, doc.text) == ("stored", "the terms")
    opened: list[Path] = []
    monkeypatch.setattr(
        "wadesk.ui.window.QDesktopServices.openUrl",
        lambda url: opened.append(Path(url.toLocalFile())) or True,
    )
    view = window.log_view
    index = window.model.index(window.model.entries().index(doc))
    view.scrollTo(index)
    qtbot.wait(50)
    rect = view.bubbles.media_rect(index)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    qtbot.waitUntil(lambda: bool(opened), timeout=WAIT_MS)
    assert opened[0].name == "terms.pdf" and opened[0].read_bytes() == pdf


def test_a_new_chat_to_a_number_not_on_whatsapp_is_refused(
    qtbot: Any, harness: Harness, fake_wa: Any
) -> None:
    window, _ = harness.open_paired()
    fake_wa.set_on_whatsapp("15550009999", False)
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = window.new_chat_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.number, "+1 555 000 9999")
    qtbot.mouseClick(dialog.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "is not on WhatsApp" in dialog.status.text(), timeout=WAIT_MS)
    assert dialog.isVisible() and dialog.status.objectName() == "error"
    assert window.messenger.current_chat is None
    assert window.session.store.outbox_depth() == 0
    dialog.reject()


def test_three_peers_and_a_group_write_and_a_send_from_the_open_chat_reaches_that_peer_only(
    qtbot: Any, harness: Harness, fake_wa: Any
) -> None:
    ann, ben, cleo = "15550002222", "15550003333", "15550004444"
    group = fake_wa.create_group("Shop team", [ben, cleo])
    window, _ = harness.open_paired()
    chats = window.chat_model

    def arrived(jid: str, text: str) -> None:
        qtbot.waitUntil(lambda: (c := chats.chat(jid)) is not None and c.last_text == text, timeout=WAIT_MS)

    # Ann, Ben (twice), Cleo, then Ben in the group; each lands before the next is written
    writes = [
        (ann, None, "hello from Ann"),
        (ben, None, "hi, Ben here"),
        (ben, None, "are you open today?"),
        (cleo, None, "Cleo: the delivery is late"),
        (ben, group, "who closes today?"),
    ]
    for phone, into, text in writes:
        if into is None:
            fake_wa.peer(phone).send_text(text)
        else:
            fake_wa.peer(phone).send_group_text(into, text)
        arrived(into or f"{phone}@s.whatsapp.net", text)

    ann_jid, ben_jid, cleo_jid = (f"{p}@s.whatsapp.net" for p in (ann, ben, cleo))
    # four chats, newest activity first, with their unread counts
    qtbot.waitUntil(lambda: chats.chat(group).name == "Shop team", timeout=WAIT_MS)
    assert [(c.jid, c.unread) for c in chats.chats()] == [
        (group, 1),
        (cleo_jid, 1),
        (ben_jid, 2),
        (ann_jid, 1),
    ]
    assert window.messenger.current_chat is None

    # opening Ben's chat clears its count and shows only his two direct messages
    row = chats.row_of(ben_jid)
    rect = window.chat_list.visualRect(chats.index(row))
    qtbot.mouseClick(window.chat_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: window.model.chat == ben_jid and not window.model.loading, timeout=WAIT_MS)
    assert [(e.outgoing, e.text) for e in window.model.entries()] == [
        (False, "hi, Ben here"),
        (False, "are you open today?"),
    ]
    assert chats.chat(ben_jid).unread == 0
    assert [c.unread for c in chats.chats()] == [1, 1, 0, 1]  # the others keep theirs
    qtbot.waitUntil(lambda: window.session.chat(ben_jid).unread == 0, timeout=WAIT_MS)  # stored
    assert window.session.chat(group).unread == 1

    # a send from the open chat: Ben decrypts exactly it, nobody else gets anything
    typed, entered = "Yes, until 6 pm ", "(Grüße an alle) 🕕"
    text = typed + entered
    qtbot.keyClicks(window.compose.message, typed)  # QTest types ASCII only
    window.compose.message.insertPlainText(entered)  # as an input method enters the rest
    qtbot.mouseClick(window.compose.send_button, Qt.MouseButton.LeftButton)
    _, received = fake_wa.wait_text_from_client(ben, timeout=20)
    assert received.encode("utf-8") == text.encode("utf-8")
    qtbot.waitUntil(lambda: any(e.outgoing for e in window.model.entries()), timeout=WAIT_MS)
    [sent] = [e for e in window.model.entries() if e.outgoing]
    qtbot.waitUntil(
        lambda: window.model.entry(sent.id).status in ("sent", "delivered", "read"), timeout=WAIT_MS
    )
    assert sent.chat == ben_jid and sent.text == text
    assert chats.jid_at(0) == ben_jid  # the chat moved to the top
    assert fake_wa.texts_received(ben) == [text]
    for phone in (ann, cleo):
        assert fake_wa.texts_received(phone) == [] and fake_wa.media_received(phone) == []
    for member in (ben, cleo):
        assert fake_wa.group_texts_received(group, member) == []
