"""The only way core events and background work reach widgets: Qt signals.

The core calls subscribers on its own threads. :class:`SessionBridge` lives in the GUI
thread; its subscriber only emits a signal, and Qt queues the call to the GUI thread (the
receiver's thread), so no widget is ever touched from a core thread.

:class:`Background` runs blocking calls (log out, ask for a pairing code, the keyring) on
daemon threads and reports the outcome with a signal, delivered in the GUI thread too.
Daemon threads: a call stuck in the network never keeps the process from exiting.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from ..core.events import (
    ChatsChanged,
    Event,
    IncomingMessage,
    MessageFailed,
    MessageQueued,
    MessageReceipt,
    MessageSent,
    QRCodeUpdated,
    StateChanged,
)

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.ui")


class SessionBridge(QObject):
    """Re-emits the session's events as Qt signals (create it in the GUI thread)."""

    stateChanged = Signal(object)  # SessionState
    qrChanged = Signal(str, float)  # code, expires_at
    messageChanged = Signal(object)  # MessageQueued | MessageSent | MessageFailed | MessageReceipt
    incoming = Signal(object)  # IncomingMessage
    chatsChanged = Signal(object)  # tuple of JIDs (empty: any): read the chat list again

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = session.subscribe(self._on_core_event)

    def _on_core_event(self, event: Event) -> None:
        """Runs on a core thread (or the caller's thread for ``send``): emit and return."""
        if self._closed:
            return
        try:
            if isinstance(event, StateChanged):
                self.stateChanged.emit(event.state)
            elif isinstance(event, QRCodeUpdated):
                self.qrChanged.emit(event.qr, event.expires_at)
            elif isinstance(event, IncomingMessage):
                self.incoming.emit(event)
            elif isinstance(event, MessageQueued | MessageSent | MessageFailed | MessageReceipt):
                self.messageChanged.emit(event)
            elif isinstance(event, ChatsChanged):
                self.chatsChanged.emit(tuple(event.jids))
        except RuntimeError:  # the C++ object is gone (shutdown)
            pass

    def close(self) -> None:
        """Stop forwarding. After this returns no subscriber call is running or will run."""
        self._closed = True
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()


class Results(QObject):
    """Results of calls made on other threads, delivered in the GUI thread by a signal.

    A subclass runs ``fn`` somewhere and calls :meth:`_report` there; ``on_done(result)``
    or ``on_error(exception)`` then follow in the GUI thread, not after :meth:`close`."""

    _finished = Signal(int, bool, object)
    _what = "job"  # named in the log when a failure has no on_error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: dict[
            int, tuple[Callable[[Any], None] | None, Callable[[BaseException], None] | None]
        ] = {}
        self._closed = False
        self._finished.connect(self._deliver)

    @property
    def busy(self) -> int:
        """Calls asked for whose result has not been delivered yet."""
        return len(self._pending)

    def _expect(
        self,
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
    ) -> int:
        job = next(self._ids)
        self._pending[job] = (on_done, on_error)
        return job

    @staticmethod
    def _call(fn: Callable[[], Any]) -> tuple[Any, bool]:
        """Runs on the worker thread: the result, or the exception, and which it is."""
        try:
            return fn(), True
        except Exception as exc:  # noqa: BLE001  (reported to on_error in the GUI thread)
            return exc, False

    def _report(self, job: int, ok: bool, result: Any) -> None:
        """Worker thread: hand the outcome to the GUI thread (dropped after close)."""
        if not self._closed:
            with contextlib.suppress(RuntimeError):  # the C++ object is gone
                self._finished.emit(job, ok, result)

    @Slot(int, bool, object)
    def _deliver(self, job: int, ok: bool, result: Any) -> None:
        callbacks = self._pending.pop(job, None)
        self._delivered(job)
        if callbacks is None or self._closed:
            return
        on_done, on_error = callbacks
        if ok:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(result)
        else:
            log.error("%s %s failed: %s", self._what, job, result)

    def _delivered(self, job: int) -> None:
        """GUI thread, after a job's outcome arrived (a subclass forgets its thread)."""

    def close(self) -> None:
        """No more results are delivered; those on their way are dropped."""
        self._closed = True
        self._pending.clear()


class Background(Results):
    """Run blocking callables off the GUI thread; results come back as signals.

    ``run(fn, on_done, on_error)``: ``on_done(result)`` or ``on_error(exception)`` is called
    later in the GUI thread. Pending jobs are forgotten by :meth:`close`.
    """

    _what = "background"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: dict[int, threading.Thread] = {}

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        name: str = "job",
    ) -> int:
        job = self._expect(on_done, on_error)

        def work() -> None:
            result, ok = self._call(fn)
            self._report(job, ok, result)

        thread = threading.Thread(target=work, name=f"wadesk-ui-{name}", daemon=True)
        self._threads[job] = thread
        thread.start()
        return job

    def _delivered(self, job: int) -> None:
        self._threads.pop(job, None)

    def wait(self, timeout: float) -> bool:
        """Join running jobs for up to ``timeout`` seconds in total (any thread: tests, shutdown)."""
        deadline = time.monotonic() + timeout
        threads = list(self._threads.values())  # a snapshot: the GUI thread may drop finished jobs
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)
