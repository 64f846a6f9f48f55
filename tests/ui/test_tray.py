"""Close to the tray, notifications, and Quit from the tray menu (a tray is simulated: the
offscreen platform has none, and everything must also work without one)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from wadesk.config import Config
from wadesk.core.datadir import DataDir
from wadesk.core.events import IncomingMessage
from wadesk.ui import tray as traymod
from wadesk.ui.localapi import TokenStore
from wadesk.ui.window import MainWindow

from .fakes import FakeSession


@pytest.fixture
def tray_window(qtbot: Any, data: DataDir, fake_session: FakeSession, monkeypatch: pytest.MonkeyPatch) -> Any:
    notes: list[tuple[str, str]] = []
    monkeypatch.setattr(traymod.Tray, "visible", property(lambda self: True))
    monkeypatch.setattr(traymod.Tray, "notify", lambda self, title, text: notes.append((title, text)))
    monkeypatch.setattr(traymod.Tray, "show", lambda self: None)  # no tray host to show it in
    config = Config(data_dir=data.path)
    window = MainWindow(
        fake_session, data, config, use_tray=True, token_store=TokenStore(config, data, backend=None)
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.notes = notes
    yield window
    window.shutdown()
    assert window.wait_stopped(5)


def test_no_tray_on_this_platform() -> None:
    assert not traymod.available()


def test_close_hides_to_the_tray_and_keeps_running(
    qtbot: Any, tray_window: Any, fake_session: FakeSession
) -> None:
    assert tray_window.tray is not None
    tray_window.close()
    assert not tray_window.isVisible()
    assert not tray_window.is_shut_down
    assert not fake_session.stopped
    assert tray_window.notes == [
        ("wadesk is still running", "Open it from the tray icon; Quit from its menu.")
    ]
    tray_window.close()  # said once only
    assert len(tray_window.notes) == 1
    tray_window.tray.showRequested.emit()
    assert tray_window.isVisible()


def test_incoming_message_notifies_while_hidden(
    qtbot: Any, tray_window: Any, fake_session: FakeSession
) -> None:
    tray_window.close()
    tray_window.notes.clear()
    fake_session.receive("15550002222", "are you there?", push_name="Ben")
    qtbot.waitUntil(lambda: bool(tray_window.notes))
    assert tray_window.notes == [("Ben", "are you there?")]
    fake_session.receive("15550003333", "no name")
    qtbot.waitUntil(lambda: len(tray_window.notes) == 2)
    assert tray_window.notes[1] == ("+1 555-000-3333", "no name")


def test_a_file_without_a_caption_is_named_in_the_notification(
    qtbot: Any, tray_window: Any, fake_session: FakeSession
) -> None:
    tray_window.close()
    tray_window.notes.clear()
    media = {"id": "med_1", "kind": "image", "mimetype": "image/jpeg", "size": 12_800, "state": "stored"}
    document = {
        **media,
        "id": "med_2",
        "kind": "document",
        "filename": "terms.pdf",
        "mimetype": "application/pdf",
    }
    for mid, text, file in (("m1", "", media), ("m2", "please sign", document)):
        fake_session.emit(
            IncomingMessage(
                id=mid,
                wa_id=f"WA{mid}",
                chat="15550002222@s.whatsapp.net",
                sender="15550002222@s.whatsapp.net",
                push_name="Ben",
                text=text,
                timestamp=time.time(),
                is_group=False,
                media=file,
            )
        )
    qtbot.waitUntil(lambda: len(tray_window.notes) == 2)
    assert tray_window.notes == [("Ben", "Photo, 12 KB"), ("Ben", "terms.pdf: please sign")]


def test_quit_from_the_tray_stops_everything(qtbot: Any, tray_window: Any, fake_session: FakeSession) -> None:
    with qtbot.waitSignal(tray_window.quitRequested):
        tray_window.tray.quitRequested.emit()
    assert tray_window.is_shut_down
    assert fake_session.stopped
    assert not tray_window.isVisible()


def test_closing_to_the_tray_can_be_turned_off(
    qtbot: Any, tray_window: Any, fake_session: FakeSession
) -> None:
    tray_window.settings.setValue("window/close_to_tray", "false")
    with qtbot.waitSignal(tray_window.quitRequested):
        tray_window.close()
    assert fake_session.stopped


def test_quit_from_the_tray_while_the_window_is_hidden(
    qtbot: Any, tray_window: Any, fake_session: FakeSession
) -> None:
    tray_window.close()
    assert not tray_window.isVisible() and not tray_window.is_shut_down
    with qtbot.waitSignal(tray_window.quitRequested):
        tray_window.tray.quitRequested.emit()
    assert fake_session.stopped
