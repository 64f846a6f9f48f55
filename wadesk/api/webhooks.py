"""Signed, durable webhooks.

Every event a receiver subscribed to (``WEBHOOK_EVENTS``) is written to the store's
``webhook_queue`` table before anything is sent, one row per receiver. Each receiver has
a delivery thread that posts its rows strictly in order: the next event waits until the
one before it was delivered or given up, so a receiver always sees events in the order
they happened. Rows are deleted only once delivered (2xx) or given up, so events survive
restarts and crashes; delivery is therefore *at least once*: a receiver should ignore an
``id`` it has already seen.

* network errors, HTTP 5xx and 429 are retried with exponential backoff and jitter
  (1 s doubling to 5 min, or the receiver's ``Retry-After``) for up to 24 hours;
* any other status (3xx, other 4xx) is final: the event is dropped and the log says why.

A POST carries the envelope ``{"event", "id", "timestamp", "payload"}`` as its body, signed
as the Standard Webhooks spec (https://www.standardwebhooks.com/) says::

    webhook-id: <the event's id: the envelope's "id", the same in every retry>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">
    X-Wadesk-Event: <the envelope's "event">

keyed by the bytes of the ``whsec_<base64>`` secret (``WEBHOOK_SECRET``, or the one kept in
the data folder). While ``WEBHOOK_SECRET`` holds two secrets, ``webhook-signature`` carries
both signatures, space separated, and a receiver with either secret accepts the delivery.
Any Standard Webhooks verifier checks a delivery (``standardwebhooks.Webhook(secret).verify``);
:func:`verify` does the same here.

Delivery threads never run on the session's or the API's threads: a slow or dead
receiver holds up only its own queue.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import email.utils
import hashlib
import hmac
import http.client
import logging
import math
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..config import webhook_keys
from ..core.backoff import backoff_delay
from ..core.events import MessageQueued
from ..core.session import QueuedEvent, StorageError, WebhookQueue
from .feed import Envelope

log = logging.getLogger("wadesk.webhooks")

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_HEADER = "X-Wadesk-Event"
MAX_AGE = 24 * 3600.0  # give up on an event this old
TIMEOUT = 10.0  # connect + response, per attempt
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
RETRY_AFTER_CAP = 3600.0
SIGNATURE_TOLERANCE = 300  # seconds either way a receiver accepts a timestamp for (the spec's 5 min)

Secret = str | bytes | Iterable[bytes]


# ---- signing (Standard Webhooks, symmetric: "v1") -------------------------------------------


def keys_of(secret: Secret) -> tuple[bytes, ...]:
    """The HMAC keys of ``secret``: a ``WEBHOOK_SECRET`` value (``whsec_<base64>``, or two of
    them space separated), raw key bytes (as ``standardwebhooks.Webhook`` takes bytes), or
    keys already decoded. A malformed secret raises ValueError."""
    if isinstance(secret, str):
        return webhook_keys(secret)
    if isinstance(secret, bytes):
        keys: tuple[bytes, ...] = (secret,)
    else:
        keys = tuple(secret)
    if not keys or not all(keys):
        raise ValueError("a webhook key must not be empty")
    return keys


def _mac(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: Secret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``
    for each key, space separated."""
    content = _signed_content(msg_id, int(timestamp), body)
    return " ".join("v1," + base64.b64encode(_mac(key, content)).decode("ascii") for key in keys_of(secret))


def signed_headers(secret: Secret, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: Secret,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance: float = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """What a receiver does, as ``standardwebhooks.Webhook(secret).verify(body, headers)``:
    True if ``webhook-signature`` has a ``v1`` signature made with (one of) the secret's
    key(s) over ``webhook-id``, ``webhook-timestamp`` and the raw ``body``, and the timestamp
    is within ``tolerance`` seconds of ``now`` either way. Header names in any case."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(ID_HEADER)
    timestamp = lower.get(TIMESTAMP_HEADER)
    signatures = lower.get(SIGNATURE_HEADER)
    if not (msg_id and timestamp and signatures):
        return False
    try:
        ts = float(timestamp)  # as the library reads it
    except ValueError:
        return False
    if not math.isfinite(ts) or abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    content = _signed_content(msg_id, math.floor(ts), raw)
    expected = [_mac(key, content) for key in keys_of(secret)]
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # another scheme (v1a: asymmetric) or not a signature
        try:
            given = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        if any(hmac.compare_digest(mac, given) for mac in expected):
            return True
    return False


# ---- outcome of an attempt ----------------------------------------------------------------


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DROP = "drop"


def classify(status: int | None) -> Outcome:
    """None is a network error. 2xx delivered; 429 and 5xx retried; anything else final."""
    if status is None or status == 429 or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    return Outcome.DROP


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(
    attempts: int,
    retry_after: float | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    rng: random.Random | None = None,
) -> float:
    """Wait after the ``attempts``-th failed attempt: backoff with jitter, or longer if the
    receiver asked for it with Retry-After (up to an hour)."""
    delay = backoff_delay(max(1, attempts), base=base, cap=cap, rng=rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def display_url(url: str) -> str:
    """The URL without credentials or query (for logs and metric labels)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


# ---- one HTTP attempt ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    status: int | None  # None: no HTTP response (network error, timeout)
    error: str | None = None
    retry_after: float | None = None


_ssl_context: ssl.SSLContext | None = None


def _context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT) -> Attempt:
    """POST ``body`` to ``url`` on a fresh connection (standard library only).

    ``timeout`` bounds the whole attempt (connect, send, the answer's head), not only each
    read: a receiver trickling a byte at a time would reset a per-read timeout for ever. At
    the deadline a timer shuts the socket down, which ends any read or write blocked on it;
    the attempt is then a network error ("no complete answer within N s"), retried. Once
    the status line and headers are in before the deadline, the outcome is known: the rest
    of the body is read only until the deadline. (A host name is resolved before the socket exists, so a slow
    resolver is bounded by the system's resolver timeout, not by this one.)

    The socket keeps the default of no SO_KEEPALIVE: the WhatsApp driver shuts down
    keep-alive sockets to its proxy's port when it ends a pairing loop.
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = dict(headers)
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    conn: http.client.HTTPConnection
    host = parts.hostname or ""  # configuration refuses URLs without a host
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    expired = threading.Event()

    def expire() -> None:
        expired.set()  # before looking at conn.sock: a socket made after this is checked below
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the TCP socket, even under TLS

    late = Attempt(None, f"no complete answer within {timeout:g} s")
    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        conn.connect()
        if expired.is_set():
            return late
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        if expired.is_set():
            return late
        with contextlib.suppress(OSError, http.client.HTTPException):
            response.read(65536)
        status = response.status
        error = None if 200 <= status < 300 else f"HTTP {status} {response.reason}".strip()
        return Attempt(status, error, parse_retry_after(response.getheader("Retry-After")))
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            return late
        return Attempt(None, _describe(exc, timeout))
    finally:
        timer.cancel()
        conn.close()


# ---- the dispatcher -----------------------------------------------------------------------

Sender = Callable[[str, bytes, dict[str, str], float], Attempt]


class WebhookDispatcher:
    """Queues events for every receiver and runs one delivery thread per receiver."""

    def __init__(
        self,
        queue: WebhookQueue,
        urls: Iterable[str],
        secret: Secret,
        *,
        events: Iterable[str] | None = None,
        metrics: Any = None,
        timeout: float = TIMEOUT,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        max_age: float = MAX_AGE,
        sender: Sender = post,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        supervise: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        self.queue = queue
        self.urls = tuple(dict.fromkeys(urls))
        self.events = frozenset(events) if events is not None else None
        self.metrics = metrics
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_age = max_age
        self._keys = keys_of(secret)  # a bad secret raises here, before any thread starts
        self._sender = sender
        self._clock = clock
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._intake_lock = threading.Lock()
        self._pending: collections.deque[Envelope] = collections.deque()  # not stored yet
        self._pending_logged = False
        self._last_backlog: dict[str, int] = {}
        self._supervise = supervise
        self._workers = {url: _Receiver(self, url) for url in self.urls}

    # -- intake (feed listener; runs on core threads) --
    def wants(self, envelope: Envelope) -> bool:
        if isinstance(envelope.source, MessageQueued):
            return False  # the caller has its 202; message.status reports what happens next
        return self.events is None or envelope.event in self.events

    def handle(self, envelope: Envelope) -> None:
        """Queue the event durably for every receiver (one transaction), then wake them.

        While the store cannot be written the event waits in memory, behind any others
        waiting, and the delivery threads store them as soon as it works again."""
        if not self._workers or not self.wants(envelope):
            return
        with self._intake_lock:
            self._pending.append(envelope)
            self._flush_locked()

    def flush_pending(self) -> bool:
        """Store the events waiting in memory; True when none is left waiting."""
        with self._intake_lock:
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        stored = 0
        while self._pending:
            envelope = self._pending[0]
            now = self._clock()
            try:
                self.queue.enqueue(self.urls, envelope.id, envelope.event, envelope.body, now)
            except StorageError as exc:
                if not self._pending_logged:
                    self._pending_logged = True
                    log.warning("webhooks: events wait in memory until the store works again: %s", exc)
                break
            self._pending.popleft()
            stored += 1
        if stored:
            if self._pending_logged and not self._pending:
                self._pending_logged = False
                log.info("webhooks: the store works again; events waiting in memory are queued")
            for worker in self._workers.values():
                worker.wake.set()
        return not self._pending

    # -- lifecycle --
    def start(self) -> None:
        if not self._workers:
            return
        waiting = self.backlog()
        log.info(
            "webhooks: %d receiver(s), events %s",
            len(self._workers),
            ", ".join(sorted(self.events)) if self.events is not None else "all",
            extra={"receivers": [display_url(u) for u in self.urls], "backlog": sum(waiting.values())},
        )
        for receiver, count in waiting.items():
            if count:
                log.info("webhooks: %d event(s) from before the restart wait for %s", count, receiver)
        try:
            everything = self.queue.backlog()
        except StorageError:
            everything = {}
        for receiver, count in everything.items():
            if receiver not in self._workers:
                log.warning(
                    "webhooks: %d queued event(s) for %s, which is no longer configured, are kept "
                    "but not sent",
                    count,
                    display_url(receiver),
                )
        for worker in self._workers.values():
            worker.start()

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the delivery threads; an attempt in flight is abandoned and retried at the next start."""
        self._stopping.set()
        for worker in self._workers.values():
            worker.wake.set()
        deadline = time.monotonic() + timeout
        ok = True
        for worker in self._workers.values():
            if worker.is_alive():
                worker.join(max(0.0, deadline - time.monotonic()))
                ok = ok and not worker.is_alive()
        return ok

    # -- reading --
    def backlog(self) -> dict[str, int]:
        """Events waiting, per configured receiver (display URL)."""
        if not self.urls:
            return {}
        counts = {display_url(u): 0 for u in self.urls}
        try:
            queued = self.queue.backlog()
        except StorageError:
            return dict(self._last_backlog or counts)  # the last count read
        for receiver, count in queued.items():
            if receiver in self._workers:
                counts[display_url(receiver)] = count
        waiting = len(self._pending)
        if waiting:
            counts = {k: v + waiting for k, v in counts.items()}
        self._last_backlog = counts
        return counts

    def total_backlog(self) -> int:
        return sum(self.backlog().values())

    # -- for the receivers --
    def headers_for(self, row: QueuedEvent, timestamp: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": f"wadesk/{__version__}",
            **signed_headers(self._keys, row.event_id, timestamp, row.body),
            EVENT_HEADER: row.event,
        }


class _Receiver:
    """One receiver's delivery thread."""

    def __init__(self, dispatcher: WebhookDispatcher, url: str) -> None:
        self.d = dispatcher
        self.url = url
        self.label = display_url(url)
        self.wake = threading.Event()
        main = dispatcher._supervise(self.run) if dispatcher._supervise is not None else self.run
        self.thread = threading.Thread(target=main, name=f"wadesk-webhook-{self.label}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def run(self) -> None:
        d = self.d
        while not d._stopping.is_set():
            self.wake.clear()
            if d._pending and not d.flush_pending():
                d._stopping.wait(1.0)  # the store still refuses writes; what it holds goes on
            try:
                row = self._head()
            except Exception:
                log.exception("webhooks: reading the queue for %s failed", self.label)
                d._stopping.wait(5.0)
                continue
            if row is None:
                self.wake.wait(1.0 if d._pending else None)
                continue
            wait = row.next_attempt_at - d._clock()
            if wait > 0:
                self.wake.wait(wait)  # new events do not jump the queue: re-read, wait again
                continue
            try:
                self._deliver(row)
            except Exception:
                log.exception("webhooks: delivering %s to %s failed", row.event_id, self.label)
                d._stopping.wait(5.0)

    def _head(self) -> QueuedEvent | None:
        return self.d.queue.head(self.url)

    def _remove(self, row: QueuedEvent) -> None:
        self.d.queue.delete(row.seq)

    def _deliver(self, row: QueuedEvent) -> None:
        d = self.d
        now = d._clock()
        if now - row.created_at > d.max_age:
            self._drop(row, f"not delivered within {d.max_age / 3600:g} h")
            return
        attempt = d._sender(self.url, row.body, d.headers_for(row, int(now)), d.timeout)
        extra = {
            "receiver": self.label,
            "event": row.event,
            "event_id": row.event_id,
            "attempt": row.attempts + 1,
            "http_status": attempt.status,
        }
        outcome = classify(attempt.status)
        if outcome is Outcome.DELIVERED:
            self._delivered(row, extra)
        elif outcome is Outcome.RETRY:
            self._retry(row, attempt, extra)
        else:
            self._drop(row, f"the receiver answered {attempt.error}; not retried", extra)

    def _delivered(self, row: QueuedEvent, extra: dict[str, Any]) -> None:
        self._remove(row)
        if self.d.metrics is not None:
            self.d.metrics.webhook_deliveries.labels(self.label).inc()
        if row.attempts:
            log.info(
                "webhook %s delivered to %s after %d attempts",
                row.event_id,
                self.label,
                row.attempts + 1,
                extra=extra,
            )
        else:
            log.debug("webhook %s delivered to %s", row.event_id, self.label, extra=extra)

    def _retry(self, row: QueuedEvent, attempt: Attempt, extra: dict[str, Any]) -> None:
        d = self.d
        attempts = row.attempts + 1
        delay = retry_delay(attempts, attempt.retry_after, base=d.backoff_base, cap=d.backoff_cap, rng=d._rng)
        d.queue.reschedule(row.seq, attempts, d._clock() + delay, attempt.error)
        if d.metrics is not None:
            d.metrics.webhook_failures.labels(self.label, "retry").inc()
        log.warning(
            "webhook %s (%s) to %s failed (attempt %d): %s; next try in %.0f s",
            row.event_id,
            row.event,
            self.label,
            attempts,
            attempt.error,
            delay,
            extra=extra,
        )

    def _drop(self, row: QueuedEvent, reason: str, extra: dict[str, Any] | None = None) -> None:
        self._remove(row)
        if self.d.metrics is not None:
            self.d.metrics.webhook_failures.labels(self.label, "dropped").inc()
        log.error(
            "webhook %s (%s) to %s dropped: %s", row.event_id, row.event, self.label, reason, extra=extra
        )
