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

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject

from .bridge import Results

log = logging.getLogger("wadesk.ui")

THREAD_NAME = "wadesk-ui-loader"


@dataclass
class _Job:
    id: int
    fn: Callable[[], Any]
    name: str
    write: bool
    wanted: Callable[[], bool] | None


class Loader(Results):
    """Runs store calls on one thread; ``on_done(result)`` or ``on_error(exc)`` follow in
    the GUI thread (not after :meth:`close`)."""

    _what = "loading, job"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        self._thread.start()
        self.calls = 0  # calls run so far (tests, the benchmark)

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
        if self._closed:
            log.debug("%s asked for after the loader closed: not run", name)
            return next(self._ids)
        job = self._expect(on_done, on_error)
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
                result, ok = self._call(job.fn)
                self.calls += 1
            if not ok and self._closed:
                log.warning("%s failed while the window closed: %s", job.name, result)
            self._report(job.id, ok, result)

    def close(self) -> None:
        """No more results are delivered and no more calls taken; writes asked for before
        are still made, then the thread ends."""
        if self._closed:
            return
        super().close()
        self._queue.put(None)

    def wait(self, timeout: float) -> bool:
        """After :meth:`close`: join the thread for up to ``timeout`` seconds."""
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()
