"""Core events as public envelopes: ``{"event", "id", "timestamp", "payload"}``.

One :class:`EventFeed` subscribes to the session once and turns each core event into one
:class:`Envelope` (one id, one serialised body) that every listener shares: the webhook
queue, the ``/events`` stream, the metrics and the QR printer in the log. A webhook
receiver and an SSE client therefore see the same event id for the same event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.events import Event

if TYPE_CHECKING:
    from ..core.session import Session

log = logging.getLogger("wadesk.api.feed")


_RANDOM_BITS = 48
_id_lock = threading.Lock()
_last_id = (0, 0)  # milliseconds, random part of the last id made in this process


def new_event_id(now: float | None = None) -> str:
    """Sortable, unguessable: 'evt_' + 12 hex digits of milliseconds + 12 random.

    Ids made in one process sort in the order they were made, also within one millisecond
    or when the clock steps back: the random part then grows by a random step from the
    last one (as monotonic ULIDs do)."""
    global _last_id
    millis = int((time.time() if now is None else now) * 1000)
    with _id_lock:
        last_millis, last_random = _last_id
        if millis > last_millis:
            random = secrets.randbits(_RANDOM_BITS - 1)  # room to grow within the millisecond
        else:
            millis, random = last_millis, last_random + 1 + secrets.randbits(16)
            if random >= 1 << _RANDOM_BITS:
                millis, random = last_millis + 1, secrets.randbits(_RANDOM_BITS - 1)
        _last_id = (millis, random)
    return f"evt_{millis:012x}{random:012x}"


def dumps(data: Any) -> str:
    """Compact one-line JSON (newlines inside strings are escaped, as SSE needs)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Envelope:
    event: str  # the public event name: message, message.status, session.status, qr
    id: str
    timestamp: float
    payload: dict[str, Any]
    body: bytes  # the serialised envelope, exactly what a webhook receiver gets
    source: Event

    @classmethod
    def of(cls, event: Event, now: float | None = None) -> Envelope:
        now = time.time() if now is None else now
        event_id = new_event_id(now)
        timestamp = round(now, 3)
        payload = event.payload()
        body = dumps({"event": event.kind, "id": event_id, "timestamp": timestamp, "payload": payload})
        return cls(event.kind, event_id, timestamp, payload, body.encode("utf-8"), event)


Listener = Callable[[Envelope], None]


class EventFeed:
    """Subscribes to a session and hands every event, as an :class:`Envelope`, to each listener.

    Listeners run on the core's threads, in order: they must return quickly.
    """

    def __init__(self, session: Session) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = session.subscribe(self._on_event)

    def add(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _on_event(self, event: Event) -> None:
        if not event.public:
            return
        with self._lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        envelope = Envelope.of(event)
        for listener in listeners:
            try:
                listener(envelope)
            except Exception:
                log.exception("an event listener failed on %s", envelope.event)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
