"""A stand-in for :class:`wadesk.core.Session` for narrow window tests (no neonize, no network):
the states, pairing, the account menu, closing. Tests of chats and messages use the real
Session on ``tests/fake_driver.py`` (see ``tests/ui/rig.py``).

It keeps messages in a real :class:`~wadesk.core.store.Store` and emits the same events
as the core, from whatever thread calls :meth:`FakeSession.emit` (tests use a thread to
check that the window only reacts in the GUI thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wadesk.core.events import (
    Event,
    IncomingMessage,
    MessageQueued,
    QRCodeUpdated,
    SessionState,
    StateChanged,
    Status,
)
from wadesk.core.recipients import parse_recipient
from wadesk.core.session import validate_text
from wadesk.core.store import StorageHealth, Store


class FakeSession:
    def __init__(self, store_path: Path, state: SessionState | None = None) -> None:
        self.store = Store(store_path)
        self.session_db = Path(store_path).with_name("whatsapp.db")
        self.started_at = time.time()
        self.reconnects = 0
        self._state = state or SessionState(Status.STARTING)
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = threading.RLock()
        self.calls: list[str] = []
        self.started = False
        self.stopped = False
        self.stopped_in: int | None = None  # the thread that called stop()
        self.stop_hangs = False  # stop() ignores its timeout (waits for block)
        self.send_threads: list[int] = []  # the threads send() ran in
        self.pair_code = "ABCD-EFGH"
        self.pair_error: Exception | None = None
        self.logout_error: Exception | None = None
        self.block = threading.Event()  # set() lets blocking calls return
        self.block.set()

    # -- the Session API the window uses --
    @property
    def state(self) -> SessionState:
        return self._state

    def outbox_depth(self) -> int:
        return self.store.outbox_depth()

    def message(self, message_id: str) -> Any:
        return self.store.get(message_id)

    def messages(self, **kwargs: Any) -> list[Any]:
        return self.store.list(**kwargs)

    check_recipients = True

    def chats(self, *, limit: int = 50, offset: int = 0, query: str | None = None) -> list[Any]:
        return self.store.chats(limit=limit, offset=offset, query=(query or "").strip() or None)

    def chat(self, jid: str) -> Any:
        return self.store.chat(jid)

    def conversation(self, chat: str, *, before: int | None = None, limit: int = 50) -> list[Any]:
        return self.store.conversation(chat, before=before, limit=limit)

    def search_messages(self, text: str, *, chat: str | None = None, limit: int = 50) -> list[Any]:
        return self.store.search(text, chat=chat, limit=limit)

    def set_draft(self, chat: str, text: str | None) -> None:
        self.store.set_draft(chat, text)

    def open_chat(self, recipient: str) -> Any:
        target = parse_recipient(recipient)
        self.store.ensure_chat(target.jid, is_group=target.is_group)
        return self.store.chat(target.jid)

    def mark_chat_read(self, chat: str, *, send_receipts: bool = False) -> int:
        return len(self.store.mark_chat_read(chat))

    def media(self, media_id: str) -> Any:
        return self.store.media(media_id)

    @property
    def storage(self) -> StorageHealth:
        return self.store.health

    dead_threads: dict[str, str] = {}  # noqa: RUF012 (never written)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        self.started = True
        self.calls.append("start")

    def stop(self, timeout: float = 5.0) -> bool:
        self.calls.append("stop")
        self.stopped_in = threading.get_ident()
        if not self.block.wait(30 if self.stop_hangs else timeout):
            return False
        self.stopped = True
        return True

    def send(self, recipient: str, text: str, **kw: Any) -> tuple[Any, bool]:
        target = parse_recipient(recipient)
        validate_text(text)
        self.send_threads.append(threading.get_ident())
        self.block.wait(10)
        self.calls.append(f"send {target.jid}")
        record, created = self.store.enqueue(
            target.jid, text, is_group=target.is_group, source=kw.get("source")
        )
        self.emit(MessageQueued(id=record.id, to=record.chat, text=text))
        return record, created

    def request_pairing_code(self, phone: str) -> str:
        self.calls.append(f"pair {phone}")
        self.block.wait(10)
        if self.pair_error is not None:
            raise self.pair_error
        return self.pair_code

    def logout(self) -> None:
        self.calls.append("logout")
        self.block.wait(10)
        if self.logout_error is not None:
            raise self.logout_error
        self.set_state(SessionState(Status.LOGGED_OUT, reason="logged out by you"))

    def refresh_qr(self) -> None:
        self.calls.append("refresh_qr")

    def reconnect(self) -> None:
        self.calls.append("reconnect")

    # -- driving it from tests --
    def emit(self, event: Event) -> None:
        with self._lock:
            for callback in list(self._subscribers):
                callback(event)

    def set_state(self, state: SessionState) -> None:
        # as the real session does: connected means linked, and the link outlives a lost
        # connection or a failure (the device stays in the session database)
        linked = state.status is Status.CONNECTED or (
            state.status in (Status.STARTING, Status.RECONNECTING, Status.FAILED) and self._state.paired
        )
        if linked and not state.paired:
            state = state.evolve(paired=True)
        old, self._state = self._state, state
        self.emit(StateChanged(state=state, previous=old.status))

    def show_qr(self, code: str, ttl: float = 60.0) -> None:
        expires = time.time() + ttl
        if self._state.status is Status.WAITING_FOR_SCAN and self._state.qr is not None:
            self._state = self._state.evolve(qr=code, qr_expires_at=expires)
        else:
            self.set_state(SessionState(Status.WAITING_FOR_SCAN, qr=code, qr_expires_at=expires))
        self.emit(QRCodeUpdated(qr=code, expires_at=expires))

    def receive(self, sender_phone: str, text: str, push_name: str = "") -> IncomingMessage:
        jid = f"{sender_phone}@s.whatsapp.net"
        record = self.store.record_incoming(
            wa_id=f"WA{time.time_ns()}",
            chat=jid,
            sender=jid,
            push_name=push_name,
            text=text,
            timestamp=time.time(),
            is_group=False,
        )
        assert record is not None
        event = IncomingMessage(
            id=record.id,
            wa_id=record.wa_id or "",
            chat=jid,
            sender=jid,
            push_name=push_name,
            text=text,
            timestamp=record.wa_timestamp or time.time(),
            is_group=False,
        )
        self.emit(event)
        return event
