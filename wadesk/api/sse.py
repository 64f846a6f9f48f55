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


def format_event(envelope: Envelope) -> str:
    body = envelope.body.decode("utf-8")
    return f"id: {envelope.id}\nevent: {envelope.event}\ndata: {body}\n\n"


def serve(
    broker: EventBroker,
    stream: Stream,
    first: Envelope | None,
    heartbeat: float,
    client_gone: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """The response body of one stream: the current state first, then events, and a comment
    after ``heartbeat`` seconds without one.

    ``client_gone`` (the server's ``waitress.client_disconnected``) is asked at least every
    :data:`CLIENT_CHECK_INTERVAL` seconds; the stream ends as soon as it says True. Without
    it, a closed connection is noticed only when a write to it fails.
    """
    try:
        yield "retry: 3000\n\n" + (format_event(first) if first is not None else "")
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
            yield format_event(item)
            beat_at = time.monotonic() + heartbeat
    finally:
        broker.release(stream)
