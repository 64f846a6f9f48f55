"""The window's reads of the store (and its small writes), on one worker thread, in order.

Every ``Session`` call that touches the database (the chat list, a conversation's pages,
search, one chat or message, the outbox count, drafts, opening a chat) goes through
:meth:`Loader.run`; the result comes back by a signal, in the GUI thread, in the order the
calls were made. One thread keeps the order simple: a chat's row read after a message was
stored is newer than the list read before it.

A call that is no longer wanted when its turn comes (the person opened another chat) can
say so: ``wanted`` is asked on the worker thread before the call runs. Writes (drafts) asked
for before :meth:`Loader.close` are still made; reads waiting then are dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger("wadesk.ui")

THREAD_NAME = "wadesk-ui-loader"


@dataclass
class _Job:
    id: int
    fn: Callable[[], Any]
    name: str
    write: bool
    wanted: Callable[[], bool] | None


class Loader(QObject):
    """Runs store calls on one thread; ``on_done(result)`` or ``on_error(exc)`` follow in
    the GUI thread (not after :meth:`close`)."""

    _finished = Signal(int, bool, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending: dict[
            int, tuple[Callable[[Any], None] | None, Callable[[BaseException], None] | None]
        ] = {}
        self._closed = False
        self._finished.connect(self._deliver)
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        self._thread.start()
        self.calls = 0  # calls run so far (tests, the benchmark)

    @property
    def busy(self) -> int:
        """Calls asked for whose result has not been delivered yet."""
        return len(self._pending)

    def run(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        *,
        name: str = "read",
        write: bool = False,
        wanted: Callable[[], bool] | None = None,
    ) -> int:
        job = next(self._ids)
        if self._closed:
            log.debug("%s asked for after the loader closed: not run", name)
            return job
        self._pending[job] = (on_done, on_error)
        self._queue.put(_Job(job, fn, name, write, wanted))
        return job

    def _main(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._closed and not job.write:
                continue
            if job.wanted is not None and not job.wanted():
                result, ok = None, True
            else:
                try:
                    result, ok = job.fn(), True
                except Exception as exc:  # noqa: BLE001  (reported to on_error in the GUI thread)
                    result, ok = exc, False
                self.calls += 1
            if not self._closed:
                with contextlib.suppress(RuntimeError):  # the window object is gone
                    self._finished.emit(job.id, ok, result)
            elif not ok:
                log.warning("%s failed while the window closed: %s", job.name, result)

    @Slot(int, bool, object)
    def _deliver(self, job: int, ok: bool, result: Any) -> None:
        callbacks = self._pending.pop(job, None)
        if callbacks is None or self._closed:
            return
        on_done, on_error = callbacks
        if ok:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(result)
        else:
            log.error("loading (job %s) failed: %s", job, result)

    def close(self) -> None:
        """No more results are delivered and no more calls taken; writes asked for before
        are still made, then the thread ends."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._queue.put(None)

    def wait(self, timeout: float) -> bool:
        """After :meth:`close`: join the thread for up to ``timeout`` seconds."""
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()
