"""Server-Sent Events for ``GET /events``.

Every open stream has a bounded queue. Publishing never blocks: a client too slow to
keep up is told so and disconnected instead of holding anything up. Each stream occupies
one server thread while open, so their number is capped; :meth:`EventBroker.close` ends
them all at shutdown. A stream whose client is gone ends within :data:`CLIENT_CHECK_INTERVAL`
(when the server can tell, see :func:`serve`), so its slot is free again at once rather
than at the next heartbeat write.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator

from .eventlog import Logged, Replay
from .feed import Envelope, dumps

_CLOSE = object()
CLIENT_CHECK_INTERVAL = 0.5  # seconds between two looks at whether the client is still there


class Stream:
    def __init__(self, events: frozenset[str] | None, size: int) -> None:
        self.events = events
        self.queue: queue.Queue[object] = queue.Queue(size)
        self.lagging = False
        self.closed = False


class EventBroker:
    def __init__(self, *, max_streams: int = 8, queue_size: int = 1000) -> None:
        self.max_streams = max_streams
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._streams: set[Stream] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self, events: frozenset[str] | None = None) -> Stream | None:
        """A new stream, or None when closed or at the limit."""
        with self._lock:
            if self._closed or len(self._streams) >= self.max_streams:
                return None
            stream = Stream(events, self.queue_size)
            self._streams.add(stream)
            return stream

    def release(self, stream: Stream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)

    def publish(self, envelope: Envelope) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            if stream.events is not None and envelope.event not in stream.events:
                continue
            try:
                stream.queue.put_nowait(envelope)
            except queue.Full:
                stream.lagging = True
                self.release(stream)

    def close(self) -> None:
        """End every stream (at shutdown) and refuse new ones."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            stream.closed = True
            with contextlib.suppress(queue.Full):  # when full, the flag is seen before the next item
                stream.queue.put_nowait(_CLOSE)


RETRY_MS = 3000  # how long a browser waits before reconnecting


def format_event(envelope: Envelope | Logged, *, with_id: bool = True, retry: bool = False) -> str:
    """One SSE block. ``retry`` puts the reconnection hint inside it: a block of its own
    (no data) becomes an empty default event in some clients."""
    body = envelope.body.decode("utf-8")
    head = f"retry: {RETRY_MS}\n" if retry else ""
    if with_id:
        head += f"id: {envelope.id}\n"
    return f"{head}event: {envelope.event}\ndata: {body}\n\n"


def gap_note(after: str) -> str:
    """The first block when ``Last-Event-ID`` is not in the log (no id: the client keeps its own)."""
    note = dumps(
        {
            "error": "replay_incomplete",
            "message": f"event {after} is no longer in the event log (or was never ours); "
            "events from the oldest one kept follow",
            "after": after,
        }
    )
    return f"event: replay.gap\ndata: {note}\n\n"


REPLAY_PAGE = 500  # logged events read and written at a time


def serve(
    broker: EventBroker,
    stream: Stream,
    first: Envelope | None,
    heartbeat: float,
    client_gone: Callable[[], bool] | None = None,
    catch_up: Callable[[str | None, int], Replay] | None = None,
    after: str | None = None,
) -> Iterator[str]:
    """The response body of one stream: with ``catch_up`` (the event log's reader), what
    the client missed since the event ``after`` (its ``Last-Event-ID``); then the current
    state (``first``, without an id: it is not in the log, and the client's last id must
    stay a logged one); then events as they come, and a comment after ``heartbeat``
    seconds without one. The stream is subscribed before the log is read, so an event
    published meanwhile comes once (replayed ids are skipped live).

    ``client_gone`` (the server's ``waitress.client_disconnected``) is asked at least every
    :data:`CLIENT_CHECK_INTERVAL` seconds; the stream ends as soon as it says True. Without
    it, a closed connection is noticed only when a write to it fails.
    """
    try:
        seen: set[str] = set()
        retry = f"retry: {RETRY_MS}\n"
        if catch_up is not None:
            page = catch_up(after, REPLAY_PAGE)
            if page.gap and after is not None:
                yield retry + gap_note(after)
                retry = ""
            while page.events:
                blocks = [format_event(e) for e in page.events]
                seen.update(e.id for e in page.events)
                yield retry + "".join(blocks)
                retry = ""
                if len(page.events) < REPLAY_PAGE or stream.closed:
                    break
                page = catch_up(page.events[-1].id, REPLAY_PAGE)
        if first is not None:
            yield retry + format_event(first, with_id=False)
            retry = ""
        elif retry:
            yield ": connected\n\n"
        pending_retry = bool(retry)
        beat_at = time.monotonic() + heartbeat
        while not stream.closed:
            if stream.lagging:
                note = dumps({"error": "too_slow", "message": "events were dropped; reconnect"})
                yield f"event: error\ndata: {note}\n\n"
                return
            if client_gone is not None and client_gone():
                return
            wait = beat_at - time.monotonic()
            if client_gone is not None:
                wait = min(wait, CLIENT_CHECK_INTERVAL)
            try:
                item = stream.queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                if time.monotonic() >= beat_at:
                    yield ": keep-alive\n\n"
                    beat_at = time.monotonic() + heartbeat
                continue
            if item is _CLOSE:
                return
            assert isinstance(item, Envelope)
            if item.id in seen:  # replayed already (published while the log was read)
                continue
            yield format_event(item, retry=pending_retry)
            pending_retry = False
            beat_at = time.monotonic() + heartbeat
    finally:
        broker.release(stream)
