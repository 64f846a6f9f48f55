"""A window on a real Session whose WhatsApp side is the fake driver (tests/fake_driver.py).

The ``make_rig`` and ``rig`` fixtures (conftest.py) build one; a test plays the peers by
emitting the driver events the real driver posts (:meth:`Rig.incoming`, :meth:`Rig.receive`)
and looks at what the window shows.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from fake_driver import FakeDriverFactory

from wadesk.core import driver as drv
from wadesk.core.session import Session
from wadesk.ui.window import PAGE_MESSAGES, MainWindow

ACCOUNT_JID = "15550001111:1@s.whatsapp.net"
PEER = "15550002222"
PEER_JID = f"{PEER}@s.whatsapp.net"


def jid_of(who: str) -> str:
    return who if "@" in who else f"{who.lstrip('+')}@s.whatsapp.net"


class Rig:
    """A window on a real Session whose WhatsApp side is the fake driver."""

    def __init__(self, qtbot: Any, window: MainWindow, session: Session, factory: FakeDriverFactory) -> None:
        self.qtbot = qtbot
        self.window = window
        self.session = session
        self.factory = factory
        self._ids = itertools.count(1)

    @property
    def compose(self) -> Any:
        return self.window.compose

    @property
    def chats(self) -> Any:
        return self.window.chat_model

    @property
    def driver(self) -> Any:
        return self.factory.current

    def start(self) -> None:
        if not self.factory.drivers:
            self.session.start()
            self.factory.wait_for_driver(1)

    def connect(self, open_chat: str | None = PEER_JID) -> None:
        """Connected as Anna; by default the peer's chat is open (as a new chat)."""
        self.start()
        self.driver.emit(drv.Connected, jid=ACCOUNT_JID, phone="15550001111", push_name="Anna")
        self.qtbot.waitUntil(lambda: self.window.banner.text.startswith("Connected as"))
        self.qtbot.waitUntil(lambda: self.window.pages.currentIndex() == PAGE_MESSAGES)
        if open_chat is not None:
            self.open(open_chat)

    def open(self, jid: str) -> None:
        """Open a chat (as choosing it does) and wait for its first page."""
        self.window.messenger.open_chat(jid)
        self.wait_open(jid)

    def wait_open(self, jid: str) -> None:
        window = self.window
        self.qtbot.waitUntil(
            lambda: window.model.chat == jid and not window.model.loading and not window.log_view.settling
        )

    def idle(self, timeout: float = 5.0) -> None:
        """Every read and background call the window asked for has come back."""
        self.qtbot.waitUntil(
            lambda: self.window.loader.busy == 0 and self.window.jobs.busy == 0, timeout=int(timeout * 1000)
        )

    def incoming(
        self,
        who: str,
        text: str,
        push_name: str = "",
        *,
        group: str | None = None,
        timestamp: float | None = None,
        media: drv.IncomingMedia | None = None,
    ) -> str:
        """A message from a person (a phone number) in their chat, or in ``group``; returns
        its WhatsApp id."""
        n = next(self._ids)
        sender = jid_of(who)
        wa_id = f"IN{n:04d}{time.time_ns() % 10**6}"
        self.driver.emit(
            drv.Incoming,
            wa_id=wa_id,
            chat=group or sender,
            sender=sender,
            push_name=push_name,
            text=text,
            timestamp=timestamp or time.time(),
            is_group=group is not None,
            media=media,
        )
        return wa_id

    def receive(
        self,
        data: bytes,
        kind: str = "image",
        mimetype: str = "image/png",
        *,
        download: bytes | Exception | None = None,
        caption: str | None = None,
        **more: Any,
    ) -> str:
        """A peer's file arrives in the open chat (downloaded from ``download``, by default
        ``data``); returns the conversation's message id once the window shows it."""
        n = next(self._ids)
        source = f"source-{n}".encode()
        self.factory.downloads[source] = data if download is None else download
        before = {e.id for e in self.window.model.entries()}
        self.incoming(
            PEER,
            caption or "",
            "Ben",
            media=drv.IncomingMedia(
                kind=kind,
                mimetype=mimetype,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                source=source,
                caption=caption,
                **more,
            ),
        )
        self.qtbot.waitUntil(lambda: len(self.window.model.entries()) > len(before), timeout=5000)
        [new] = [e for e in self.window.model.entries() if e.id not in before]
        return new.id

    def row(self, message_id: str) -> Any:
        model = self.window.model
        return model.index(model.entries().index(model.entry(message_id)))

    def queued(self) -> list[Any]:
        return [r for r in self.session.messages(limit=50) if r.direction == "out"]

    def type_and_send(self, text: str) -> None:
        self.compose.message.setPlainText(text)
        self.compose.submit()
        self.qtbot.waitUntil(lambda: self.compose.message.toPlainText() == "" and not self.compose.busy)

    def media_files(self) -> list[str]:
        return sorted(p.name for p in self.session.media_files.folder.iterdir() if p.is_file())
