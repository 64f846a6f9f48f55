"""The log of recent public events, so that clients can catch up on what they missed.

Every envelope the :class:`~.feed.EventFeed` makes is kept in the store's ``event_log``
table, exactly as it was delivered (its id, name and body), for ``max_age`` seconds and at
most ``max_events`` of them. ``GET /events`` replays it from ``Last-Event-ID``, and
``GET /events/history`` pages through it.

Writes are batched: a thread of its own commits what arrived every :data:`FLUSH_EVERY`
seconds, so an event costs no fsync of its own on the thread that emitted it. A reader
first commits what is waiting, so nothing published before a read is missing from it.
While the store refuses writes, events wait in memory (at most :data:`MAX_PENDING`, the
oldest dropped beyond that, with a warning) and readers see them all the same. What the
guarantee is: an event is in the log once it was published, unless the process dies within
:data:`FLUSH_EVERY` seconds of it, or it is older than the limits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.store import EventLogTable, StorageError
from .feed import Envelope

log = logging.getLogger("wadesk.api.eventlog")

FLUSH_EVERY = 0.1  # seconds
PRUNE_EVERY = 60.0
MAX_PENDING = 100_000  # events held in memory while the store refuses writes
RETRY_CAP = 10.0


@dataclass(frozen=True)
class Logged:
    """One logged event as a client receives it again."""

    id: str
    event: str
    body: bytes

    def envelope(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data


@dataclass(frozen=True)
class Replay:
    events: list[Logged]
    gap: bool  # the event asked for is not in the log (too old, or not an id of ours)


class EventLog:
    def __init__(
        self,
        table: EventLogTable,
        *,
        max_age: float = 24 * 3600.0,
        max_events: int = 100_000,
        supervise: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        self.table = table
        self.max_age = max_age
        self.max_events = max_events
        self._pending: list[Logged] = []
        self._lock = threading.Lock()  # guards _pending
        self._write = threading.Lock()  # one flush at a time (the thread and readers)
        self._wake = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._failures = 0
        self._retry_at = 0.0
        self._dropped = 0
        main = supervise(self._run) if supervise is not None else self._run
        self._thread = threading.Thread(target=main, name="wadesk-eventlog", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.max_events > 0

    # -- writing --
    def add(self, envelope: Envelope) -> None:
        """Keep one published envelope (a feed listener: never blocks on the store)."""
        if not self.enabled:
            return
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(0)
                self._dropped += 1
                if self._dropped in (1, 1000) or self._dropped % 100_000 == 0:
                    log.warning("the event log cannot be written; %d oldest event(s) dropped", self._dropped)
            self._pending.append(Logged(envelope.id, envelope.event, envelope.body))
            self._wake.notify()

    def flush(self) -> bool:
        """Commit what is waiting; False when the store refused (it stays waiting)."""
        with self._write:
            with self._lock:
                batch = list(self._pending)
                dropped = self._dropped
            if not batch:
                return True
            now = time.time()
            try:
                self.table.append([(e.id, e.event, e.body, now) for e in batch])
            except StorageError as exc:
                self._failures += 1
                self._retry_at = time.monotonic() + min(RETRY_CAP, 0.2 * 2**self._failures)
                if self._failures == 1:
                    log.warning("events wait in memory until the store takes writes again: %s", exc)
                return False
            if self._failures:
                log.info("the event log is written again")
            self._failures = 0
            with self._lock:  # the oldest of the batch may have been dropped meanwhile (full)
                del self._pending[: max(0, len(batch) - (self._dropped - dropped))]
            return True

    def _run(self) -> None:
        next_prune = time.monotonic() + 1.0
        while not self._stopping.is_set():
            with self._lock:
                if not self._pending:
                    self._wake.wait(min(PRUNE_EVERY, max(0.05, next_prune - time.monotonic())))
            if self._stopping.is_set():
                break
            time.sleep(FLUSH_EVERY)  # gather a batch
            if time.monotonic() >= self._retry_at:
                self.flush()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                try:
                    gone = self.table.prune(older_than=time.time() - self.max_age, keep=self.max_events)
                except StorageError as exc:
                    log.info("could not prune the event log: %s", exc)
                else:
                    if gone:
                        log.debug("event log: %d old event(s) removed", gone)
        self.flush()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        with self._lock:
            self._wake.notify_all()
        self._thread.join(timeout)

    # -- reading --
    def read(self, after: str | None, *, limit: int, events: frozenset[str] | None = None) -> Replay:
        """Events after the one with id ``after`` (None: from the oldest kept), oldest first."""
        self.flush()
        with self._lock:
            pending = list(self._pending)

        def wanted(e: Logged) -> bool:
            return events is None or e.event in events

        gap = False
        seq = 0
        if after is not None:
            found = self.table.seq_of(after)
            if found is None:
                ids = [e.id for e in pending]
                if after in ids:
                    rest = pending[ids.index(after) + 1 :]
                    return Replay([e for e in rest if wanted(e)][:limit], False)
                gap = True
            else:
                seq = found
        rows = [Logged(r.id, r.event, r.body) for r in self.table.after(seq, limit=limit, events=events)]
        if len(rows) < limit:
            have = {r.id for r in rows}
            rows += [e for e in pending if wanted(e) and e.id not in have][: limit - len(rows)]
        return Replay(rows, gap)
