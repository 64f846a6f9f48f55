"""The WhatsApp session: one state machine, the durable outbox, typed events.

Threads:

* the **session worker** owns the state machine. Every driver callback (they arrive on
  Go threads) and every command is put on its queue and handled there, one at a time,
  so state changes never race.
* the **sender** drains the outbox while CONNECTED, one message at a time, paced by
  ``send_interval``. Sending blocks on the network, so it has a thread of its own.

Neither thread ends on an error. When our database cannot be written (another process
holds its lock, the disk is full), the outbox pauses and retries with backoff, and a
received message or receipt that could not be stored is kept in memory and stored as
soon as the database takes writes again. A thread that dies anyway is recorded in
:attr:`Session.dead_threads` (``/health`` turns 503) and logged once with its traceback.

What is guaranteed for outgoing messages: neonize 0.5.2 cannot send with a message id of
our choosing, so a send cut short after it was written to WhatsApp (a crash, or a lost
connection before WhatsApp's answer) cannot be proven sent or not. Only that one
message can be repeated, at most once per such fault; it is marked
``possible_duplicate``, and ``uncertain="fail"`` fails it instead (at most once).
Errors that prove nothing left (not connected, refused before the write, refused by
WhatsApp) are retried without that mark.
* callers (HTTP handlers, the GUI bridge) call :meth:`Session.send`,
  :meth:`Session.logout`, :meth:`Session.request_pairing_code` from their own threads;
  blocking WhatsApp calls run on the caller's thread, never on the worker.

Subscribers (:meth:`Session.subscribe`) are called from those threads, one event at a
time and in order; they must return quickly (put on a queue, emit a Qt signal).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import driver as drv
from .backoff import backoff_delay
from .events import (
    Account,
    ChatsChanged,
    Event,
    GroupParticipants,
    IncomingMessage,
    MessageFailed,
    MessageQueued,
    MessageReceipt,
    MessageSent,
    MessageStatus,
    QRCodeUpdated,
    SessionState,
    StateChanged,
    Status,
    facts_of,
)
from .media import MediaError, MediaKind
from .media import resolve as resolve_media
from .mediafiles import Incoming, MediaFiles, TooLarge
from .recipients import Recipient, RecipientError, bare_jid, parse_recipient
from .store import (
    MEDIA_DELETED,
    MEDIA_PENDING,
    MEDIA_SKIPPED,
    MEDIA_STORED,
    MEDIA_UNAVAILABLE,
    RECEIPT_RANK,
    ChatRecord,
    Contact,
    EventLogTable,
    IdempotencyConflict,
    MediaRecord,
    MessageRecord,
    NewMedia,
    QueuedEvent,
    StorageError,
    StorageHealth,
    Store,
    WebhookQueue,
    phone_of,
    request_hash,
)

log = logging.getLogger("wadesk.session")

MAX_TEXT = 65_536
FIRST_QR_TTL = 60.0  # whatsmeow shows the first code of a batch for 60 s ...
NEXT_QR_TTL = 20.0  # ... and each following one for 20 s
QR_ROUNDS = 5  # fresh batches requested automatically before waiting for refresh_qr()
CONNECT_TIMEOUT = 30.0  # an attempt with no QR and no connection after this is a failure
STOP_TIMEOUT = 5.0
SEND_GRACE = 2.0  # at stop, a send in flight may finish for this long before the connection is cut
SEND_RETRY_GRACE = 7.0  # after a drop, how long a send in flight may take to finish (whatsmeow: 5 s)
MAX_SEND_ATTEMPTS = 10
SEND_RETRY_CAP = 300.0
EARLY_RECEIPT_TTL = 300.0  # how long a receipt for a not yet recorded message is kept
STORAGE_RETRY_FIRST = 0.2  # seconds before retrying a write the database refused ...
STORAGE_RETRY_CAP = 10.0  # ... doubling up to this
MAX_DOWNLOAD_ATTEMPTS = 8
RECIPIENT_CHECK_TTL = 86400.0  # how long WhatsApp's answer on a number is trusted
MEDIA_CLEANUP_EVERY = 600.0  # seconds between two looks for sent files past their retention
MAX_DEFERRED = 100_000  # received messages and receipts held in memory while the store is down
UNCERTAIN_MODES = ("resend", "fail")
MEDIA_KINDS = tuple(k.value for k in MediaKind)

__all__ = [
    "MAX_TEXT",
    "MEDIA_DELETED",
    "MEDIA_PENDING",
    "MEDIA_SKIPPED",
    "MEDIA_STORED",
    "MEDIA_UNAVAILABLE",
    "ChatRecord",
    "Contact",
    "GroupNotFound",
    "IdempotencyConflict",
    "MediaError",
    "MediaRecord",
    "MessageRecord",
    "NotGroupAdmin",
    "QueuedEvent",
    "RecipientError",
    "Session",
    "SessionError",
    "StorageError",
    "TextError",
    "TooLarge",
    "WebhookQueue",
    "validate_text",
]


class SessionError(RuntimeError):
    """The request cannot be served in the current state; the message says why."""


class GroupNotFound(SessionError):
    """WhatsApp says there is no such group (or this account is not in it)."""


class NotGroupAdmin(SessionError):
    """WhatsApp refused a change to a group: this account is not one of its admins."""


class TextError(ValueError):
    """The message text is not acceptable; ``str(err)`` is the reason."""


def validate_text(text: object) -> str:
    if not isinstance(text, str):
        raise TextError("must be text")
    if not text.strip():
        raise TextError("is empty")
    if len(text) > MAX_TEXT:
        raise TextError(f"is {len(text)} characters long; the limit is {MAX_TEXT}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise TextError("is not valid Unicode text (it contains a lone surrogate)") from None
    return text


def explain_connect_error(error: str) -> str:
    """Turn a Go dial error into a reason a person understands (the raw text is logged)."""
    low = error.lower()
    if "no such host" in low or ("lookup" in low and "web.whatsapp.com" in low):
        return "Cannot reach WhatsApp: the name web.whatsapp.com cannot be resolved (no network or no DNS)"
    if "connection refused" in low:
        return "Cannot reach WhatsApp: the connection was refused" + (
            " by the proxy" if "proxy" in low else ""
        )
    if "timeout" in low or "deadline exceeded" in low:
        return "Cannot reach WhatsApp: the connection timed out"
    if "certificate" in low or "x509" in low or "tls" in low:
        return "Cannot reach WhatsApp: the secure connection failed (" + error.strip()[:160] + ")"
    if "network is unreachable" in low or "no route to host" in low:
        return "Cannot reach WhatsApp: the network is unreachable"
    return "Cannot reach WhatsApp: " + error.strip()[:200]


def describe_send_failure(failure: drv.SendFailed) -> tuple[bool, str]:
    """(permanent, reason) for a failed send, from what the driver says it means."""
    kind, code = failure.failure, failure.code
    if kind is drv.SendFailure.REACH_OUT_TIMELOCK:
        return True, (
            "WhatsApp refused to start a new chat with this contact (error 463, reach-out timelock): "
            "this account may only message contacts who wrote to it first"
        )
    if kind is drv.SendFailure.ADMINS_ONLY:
        return True, f"only admins may send to this group (error {code})"
    if kind is drv.SendFailure.REJECTED:
        what = _REJECTED.get(code or 0, "rejected")
        return True, f"WhatsApp rejected the message ({what}, error {code})"
    if kind is drv.SendFailure.UNDELIVERABLE:
        return True, f"WhatsApp cannot deliver to this address ({str(failure).strip()[:160]})"
    return False, str(failure).strip()[:300] or "send failed"


_REJECTED = {
    400: "bad request",
    401: "not authorised",
    403: "forbidden",
    404: "recipient not found",
    406: "not acceptable",
}


def qr_ttl(previous_at: float, previous_ttl: float, now: float) -> float:
    """How long a new QR code stays valid.

    whatsmeow shows the first code of a batch for 60 s and each following one for 20 s.
    A code that arrives when the previous one ran out is the next of the batch; one that
    arrives earlier starts a new batch (the server sent fresh references).
    """
    if previous_at and now - previous_at >= previous_ttl - 1.0:
        return NEXT_QR_TTL
    return FIRST_QR_TTL


@dataclass(frozen=True)
class _Command:
    name: str
    future: Future[Any]
    args: tuple[Any, ...] = ()


_STOP = object()


class Session:
    """Owns the WhatsApp connection. Start with :meth:`start`, end with :meth:`stop`."""

    def __init__(
        self,
        store: Store,
        session_db: Path,
        *,
        device_name: str = "wadesk",
        proxy: str | None = None,
        send_interval: float = 1.0,
        driver_factory: Callable[[Callable[[drv.DriverEvent], None]], Any] | None = None,
        rng: random.Random | None = None,
        reconnect_delay: Callable[[int], float] | None = None,
        send_retry_delay: Callable[[int], float] | None = None,
        uncertain: str = "resend",
        media_files: MediaFiles | None = None,
        max_media_bytes: int = 64 * 1024 * 1024,
        media_download: frozenset[str] | None = None,
        media_retention: float = 7 * 86400.0,
        check_recipients: bool = True,
    ) -> None:
        if uncertain not in UNCERTAIN_MODES:
            raise ValueError(f"uncertain must be one of {UNCERTAIN_MODES}")
        self.store = store
        self.uncertain = uncertain
        self.media_files = media_files or MediaFiles(Path(store.path).parent / "media")
        self.max_media_bytes = max_media_bytes
        self.media_download = media_download if media_download is not None else frozenset(MEDIA_KINDS)
        self.media_retention = media_retention
        self.check_recipients = check_recipients
        self._own_jids: frozenset[str] = frozenset()  # this account's number JID and LID, bare
        self._downloads_cv = threading.Condition()
        self._downloads_dirty = False  # something to download may have arrived
        self._downloader: threading.Thread | None = None
        self.session_db = Path(session_db)
        self.send_interval = send_interval
        self._driver_factory = driver_factory or (
            lambda post: drv.NeonizeDriver(self.session_db, post, device_name=device_name, proxy=proxy)
        )
        self._rng = rng or random.Random()
        self._reconnect_delay = reconnect_delay or (lambda attempt: backoff_delay(attempt, rng=self._rng))
        self._send_retry_delay = send_retry_delay or (
            lambda attempt: backoff_delay(attempt, cap=SEND_RETRY_CAP, rng=self._rng)
        )
        self._queue: queue.Queue[Any] = queue.Queue()
        self._state = SessionState(Status.STARTING, paired=drv.has_paired_device(self.session_db))
        self._state_lock = threading.Lock()
        self._emit_lock = threading.RLock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._driver: Any = None
        self._worker: threading.Thread | None = None
        self._sender: threading.Thread | None = None
        self._stopping = threading.Event()
        self._outbox_cv = threading.Condition()
        self._outbox_dirty = True
        self._sending = threading.Event()  # the sender is inside driver.send_text
        self._send_done = threading.Event()  # set each time such a call ends
        self._sync_asked = 0  # sync() requests for a sender pass, and the last one answered
        self._sync_done = 0
        self._receipt_lock = threading.Lock()
        self._early_receipts: dict[str, tuple[str, float, float]] = {}  # wa_id -> (status, at, seen)
        # worker-only state
        self._timer: tuple[float, str] | None = None
        self._attempt = 0
        self._qr_rounds = 0
        self._last_qr_at = 0.0
        self._last_qr_ttl = 0.0
        self._pending_reason: str | None = None
        self._deferred: list[drv.Incoming | drv.Receipt] = []  # worker-only: events waiting for the store
        self._deferred_retry_at = 0.0
        self._deferred_failures = 0
        self._outbox_depth = 0  # last count read, answered while the store cannot be read
        self.dead_threads: dict[str, str] = {}  # thread name -> what ended it
        self.possible_duplicates = 0  # sends marked possible_duplicate since start
        self.started_at = time.time()
        self.reconnects = 0
        self.on_connected: Callable[[], None] | None = None  # e.g. tighten file modes

    # ---- public API -------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        with self._state_lock:
            return self._state

    @property
    def webhook_queue(self) -> WebhookQueue:
        """The durable queue the webhook dispatcher delivers from (in the same store)."""
        return WebhookQueue(self.store)

    @property
    def event_log(self) -> EventLogTable:
        """The store's log of recent public events (written by the API's event log)."""
        return EventLogTable(self.store)

    @property
    def storage(self) -> StorageHealth:
        """Whether our database takes writes (``available``), and if not why and since when."""
        return self.store.health

    @property
    def healthy(self) -> bool:
        """False once a core thread has died (the process should be restarted)."""
        return not self.dead_threads

    def outbox_depth(self) -> int:
        """Messages waiting to be sent; the last known count while the store cannot be read."""
        with contextlib.suppress(StorageError):
            self._outbox_depth = self.store.outbox_depth()
        return self._outbox_depth

    def message(self, message_id: str) -> MessageRecord | None:
        """One stored message (sent or received), or None. Raises :class:`StorageError`."""
        return self.store.get(message_id)

    def messages(
        self,
        *,
        limit: int = 50,
        before: int | None = None,
        direction: str | None = None,
        newest_first: bool = True,
    ) -> list[MessageRecord]:
        """A page of stored messages; ``before`` is the ``seq`` of the last one of the
        previous page. Raises :class:`StorageError`."""
        return self.store.list(limit=limit, before=before, direction=direction, newest_first=newest_first)

    # ---- chats ------------------------------------------------------------------------------
    def chats(self, *, limit: int = 50, offset: int = 0, query: str | None = None) -> list[ChatRecord]:
        """Chats (people and groups), newest activity first; ``query`` filters by name,
        number or JID. Raises :class:`StorageError`."""
        return self.store.chats(limit=limit, offset=offset, query=(query or "").strip() or None)

    def chat(self, jid: str) -> ChatRecord | None:
        return self.store.chat(jid)

    def conversation(
        self, chat: str, *, before: int | None = None, limit: int = 50, direction: str | None = None
    ) -> list[MessageRecord]:
        """One page of a chat's messages, oldest first; ``before``: the ``seq`` of the
        oldest message already shown (pages reach back through the (chat, seq) index)."""
        return self.store.conversation(chat, before=before, limit=limit, direction=direction)

    def search_messages(
        self,
        text: str,
        *,
        chat: str | None = None,
        before: int | None = None,
        limit: int = 50,
        direction: str | None = None,
    ) -> list[MessageRecord]:
        """Messages holding every word of ``text`` (full-text index), newest first."""
        return self.store.search(text, chat=chat, before=before, limit=limit, direction=direction)

    def set_draft(self, chat: str, text: str | None) -> None:
        self.store.set_draft(chat, text)

    def open_chat(self, recipient: str) -> ChatRecord:
        """A chat for a recipient in any notation (a new one is listed at once). Raises
        :class:`RecipientError`; WhatsApp is not asked (see :meth:`check_numbers`)."""
        target = parse_recipient(recipient)
        self.store.ensure_chat(target.jid, is_group=target.is_group)
        chat = self.store.chat(target.jid)
        assert chat is not None
        return chat

    def mark_chat_read(self, chat: str, *, send_receipts: bool = False) -> int:
        """The chat was shown: clear its unread count and failure marker. With
        ``send_receipts``, tell WhatsApp the received messages were read (best effort: not
        retried when not connected). Returns how many messages were unread."""
        if not send_receipts:  # the messages themselves are not needed (a chat may hold 100,000)
            return self.store.clear_unread(chat)
        unread = self.store.mark_chat_read(chat)
        if send_receipts and unread:
            driver = self._driver
            if driver is not None and self.state.status is Status.CONNECTED:
                by_sender: dict[str, list[str]] = {}
                for r in unread:
                    if r.wa_id:
                        by_sender.setdefault(r.sender or chat, []).append(r.wa_id)
                for sender, ids in by_sender.items():
                    try:
                        driver.mark_read(chat, sender, ids)
                    except drv.DriverError as exc:
                        log.info("could not send read receipts for %s: %s", chat, exc)
        return len(unread)

    def _sync_groups(self) -> None:
        """List the joined groups in the chats (after each connection; off the worker)."""
        driver = self._driver
        if driver is None:
            return
        try:
            groups = driver.joined_groups()
            self.store.set_joined_groups([(g.jid, g.name) for g in groups])
        except (drv.DriverError, StorageError) as exc:
            log.info("could not list the joined groups: %s", exc)
            return
        self._emit(ChatsChanged(tuple(g.jid for g in groups)))

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns an unsubscribe function."""
        with self._emit_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._emit_lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def start(self) -> None:
        if self._worker is not None:
            raise SessionError("the session was started already")
        self._worker = threading.Thread(
            target=self._guarded, args=(self._run,), name="wadesk-session", daemon=True
        )
        self._sender = threading.Thread(
            target=self._guarded, args=(self._sender_main,), name="wadesk-sender", daemon=True
        )
        self._downloader = threading.Thread(
            target=self._guarded, args=(self._media_main,), name="wadesk-media", daemon=True
        )
        with contextlib.suppress(OSError):
            left = self.media_files.clean_tmp()
            if left:
                log.info("removed %d half-written media file(s) left by the last shutdown", left)
        self._set_state(SessionState(Status.STARTING))
        self._worker.start()
        self._sender.start()
        self._downloader.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop everything; returns True if both threads ended within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with self._outbox_cv:
            self._outbox_cv.notify_all()
        with self._downloads_cv:
            self._downloads_cv.notify_all()
        if self._sender is not None:
            # Let a send in flight finish and be recorded before the connection is cut: cut
            # short, it may reach WhatsApp and still be queued again, a duplicate after restart.
            self._sender.join(min(SEND_GRACE, timeout / 2))
        self._queue.put(_STOP)
        ok = True
        for thread in (self._worker, self._sender, self._downloader):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                ok = ok and not thread.is_alive()
        if not ok:
            log.warning("session threads did not stop within %.1f s", timeout)
        return ok

    def send(
        self,
        recipient: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        source: str | None = None,
        mentions: tuple[str, ...] = (),
        mention_all: bool = False,
    ) -> tuple[MessageRecord, bool]:
        """Queue a text message durably; returns (record, created) at once. In a group,
        ``mentions`` (recipients) and ``mention_all`` mention people: the text gets the
        "@number" WhatsApp shows for each one it does not name already.

        Raises :class:`RecipientError` or :class:`TextError` for bad input and
        :class:`IdempotencyConflict` if the key was used for a different request, and
        :class:`StorageError` if it could not be committed (nothing was queued).
        The outcome is reported later as :class:`MessageSent` or :class:`MessageFailed`.
        """
        target: Recipient = parse_recipient(recipient)
        validate_text(text)
        text, jids = self._mentioning(target, text, mentions, mention_all)
        fingerprint = request_hash(target.jid, text, *jids)
        with self._emit_lock:  # 'queued' is published before the sender can report 'sent'
            record, created = self.store.enqueue(
                target.jid,
                text,
                is_group=target.is_group,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                source=source,
                mentions=tuple(jids),
            )
            if created:
                self._emit(MessageQueued(id=record.id, to=record.chat, text=text))
        if created:
            self._wake_sender()
        return record, created

    def _mentioning(
        self, target: Recipient, text: str, mentions: tuple[str, ...], mention_all: bool
    ) -> tuple[str, list[str]]:
        """The text with an "@number" for each person mentioned that it does not name already,
        and the mentioned JIDs, each once. ``mention_all`` asks WhatsApp for the group's
        participants (:class:`GroupNotFound`, :class:`SessionError`)."""
        jids: list[str] = []
        if mention_all:
            if not target.is_group:
                raise RecipientError("mention_all needs a group")
            jids = [p.jid for p in self.group(target.jid).participants]
        for i, m in enumerate(mentions):
            try:
                jids.append(parse_recipient(m).jid)
            except RecipientError as exc:
                raise RecipientError(f"mentions[{i}]: {exc}") from None
        jids = list(dict.fromkeys(jids))
        for jid in jids:
            user = jid.partition("@")[0]
            if f"@{user}" not in text:
                text = f"{text} @{user}" if text else f"@{user}"
        if jids:
            validate_text(text)
        return text, jids

    # ---- groups and contacts ----------------------------------------------------------------
    def _connected_driver(self) -> Any:
        driver = self._driver
        if driver is None or self.state.status is not Status.CONNECTED:
            raise SessionError(f"not connected to WhatsApp (now: {self.state.status.value})")
        return driver

    def groups(self) -> list[drv.GroupInfo]:
        """The groups this account is in (asks WhatsApp). Raises :class:`SessionError`."""
        try:
            return list(self._connected_driver().joined_groups())
        except drv.DriverError as exc:
            raise SessionError(f"WhatsApp did not list the groups: {exc}") from exc

    def group(self, jid: str) -> drv.GroupInfo:
        """One group with its participants. Raises :class:`RecipientError` for a bad JID,
        :class:`GroupNotFound` when WhatsApp says there is no such group or this account is not
        in it (any longer), else SessionError."""
        group = self._group_jid(jid)
        return self._group_request("describe the group", lambda d: d.group_info(group))

    @staticmethod
    def _group_jid(jid: str) -> str:
        target = parse_recipient(jid)
        if not target.is_group:
            raise RecipientError("is not a group ID (…@g.us)")
        return target.jid

    @staticmethod
    def _people(people: list[str], field: str = "participants") -> list[str]:
        """Phone numbers or JIDs of persons, as JIDs, each once; RecipientError names the bad one."""
        out: list[str] = []
        for i, p in enumerate(people):
            try:
                t = parse_recipient(p)
            except RecipientError as exc:
                raise RecipientError(f"{field}[{i}]: {exc}") from None
            if t.is_group:
                raise RecipientError(f"{field}[{i}]: must be a person, not a group")
            if t.jid not in out:
                out.append(t.jid)
        return out

    def _group_request(self, what: str, call: Callable[[Any], Any]) -> Any:
        driver = self._connected_driver()
        try:
            return call(driver)
        except drv.GroupRefused as exc:
            if exc.reason == "not_admin":
                raise NotGroupAdmin(f"only the group's admins may do that ({exc})") from exc
            if exc.reason == "not_in_group":
                raise GroupNotFound(f"this account is not in the group ({exc})") from exc
            raise GroupNotFound(str(exc)) from exc
        except drv.DriverError as exc:
            low = str(exc).lower()
            if "not exist" in low or "404" in low:
                raise GroupNotFound(str(exc)) from exc
            raise SessionError(f"WhatsApp did not {what}: {exc}") from exc

    def _learn_participants(self, results: list[drv.ParticipantResult]) -> None:
        for r in results:
            jid = (
                r.jid
                if r.jid.endswith("@s.whatsapp.net")
                else (f"{r.phone}@s.whatsapp.net" if r.phone else None)
            )
            lid = r.lid or (r.jid if r.jid.endswith("@lid") else None)
            if r.reason == "not_on_whatsapp" and jid and r.jid == jid:
                self.store.record_check(jid, False)
            elif jid and lid:
                self.store.link(jid, lid)  # known now, but no message was exchanged

    def create_group(
        self, name: str, participants: list[str]
    ) -> tuple[drv.GroupInfo, list[drv.ParticipantResult]]:
        """Create a group with this account as admin. Returns the group and, for each person
        asked for, whether WhatsApp added them (``reason`` None) or why not."""
        name = name.strip()
        if not name:
            raise RecipientError("name: is empty")
        people = self._people(participants)
        group, results = self._group_request("create the group", lambda d: d.create_group(name, people))
        self._learn_participants(results)
        return group, results

    def change_participants(
        self, group: str, action: str, participants: list[str]
    ) -> list[drv.ParticipantResult]:
        """Add, remove, promote or demote people in a group: one result per person."""
        if action not in drv.GROUP_ACTIONS:
            raise RecipientError(f"action: must be one of {', '.join(drv.GROUP_ACTIONS)}")
        jid = self._group_jid(group)
        people = self._people(participants)
        if not people:
            raise RecipientError("participants: name at least one person")
        results = self._group_request(
            f"{action} the participants", lambda d: d.change_participants(jid, action, people)
        )
        self._learn_participants(results)
        return list(results)

    def leave_group(self, group: str) -> None:
        jid = self._group_jid(group)
        self._group_request("let this account leave the group", lambda d: d.leave_group(jid))

    def invite_link(self, group: str, *, revoke: bool = False) -> str:
        """The group's invite link (https://chat.whatsapp.com/…); ``revoke`` makes a new one."""
        jid = self._group_jid(group)
        link = str(self._group_request("give the invite link", lambda d: d.invite_link(jid, revoke=revoke)))
        if link and not link.startswith("http"):
            link = f"https://chat.whatsapp.com/{link}"
        return link

    def check_numbers(self, phones: list[str]) -> list[dict[str, Any]]:
        """Whether each phone number has a WhatsApp account: phone, on_whatsapp, jid, lid.
        Answers are remembered (see :meth:`send`). Raises RecipientError, SessionError."""
        targets = [parse_recipient(p) for p in phones]
        for t in targets:
            if t.is_group or t.is_lid:
                raise RecipientError(f"{t.jid} is not a phone number")
        driver = self._connected_driver()
        try:
            answers = driver.check_numbers([t.user for t in targets])
        except drv.DriverError as exc:
            raise SessionError(f"WhatsApp did not answer: {exc}") from exc
        out = []
        for t, a in zip(targets, answers, strict=True):
            self.store.record_check(t.jid, a.on_whatsapp)
            lid = (a.lid or driver.lid_of(t.jid)) if a.on_whatsapp else None
            if lid:
                self.store.link(t.jid, lid)
            out.append({"phone": t.phone, "on_whatsapp": a.on_whatsapp, "jid": a.jid or t.jid, "lid": lid})
        return out

    def contacts(self, *, limit: int = 50, offset: int = 0) -> list[Contact]:
        """The people wadesk exchanged messages with, most recent first."""
        return self.store.contacts(limit=limit, offset=offset)

    def begin_media(self) -> Incoming:
        """A temporary file in the data folder for a media file a client sends: ``write``
        its chunks (:class:`TooLarge` past the limit), then pass it to :meth:`send_media`."""
        return self.media_files.begin(self.max_media_bytes)

    def send_media(
        self,
        recipient: str,
        file: Incoming | bytes,
        *,
        kind: str | None = None,
        mimetype: str | None = None,
        filename: str | None = None,
        caption: str | None = None,
        idempotency_key: str | None = None,
        source: str | None = None,
        mentions: tuple[str, ...] = (),
        mention_all: bool = False,
    ) -> tuple[MessageRecord, bool]:
        """Queue a media message durably: the file is checked (its kind from its content),
        fsynced into the data folder, and the outbox row committed before this returns.
        ``mentions`` and ``mention_all`` mention people in the caption, as :meth:`send` does
        in a text (an image, video or document only: the other kinds carry no caption).

        Raises :class:`RecipientError`, :class:`TextError` (the caption), :class:`MediaError`
        (naming the field), :class:`TooLarge`, :class:`IdempotencyConflict` or
        :class:`StorageError`; after any of them nothing is queued and no file is left."""
        if isinstance(file, bytes):
            incoming = self.begin_media()
            try:
                incoming.write(file)
            except BaseException:
                incoming.discard()
                raise
        else:
            incoming = file
        try:
            target: Recipient = parse_recipient(recipient)
            if caption:
                validate_text(caption)
            path = incoming.finish()
            if incoming.size == 0:
                raise MediaError("file", "is empty")
            info = resolve_media(path, kind=kind, mimetype=mimetype, filename=filename)
            jids: list[str] = []
            if mentions or mention_all:
                if str(info.kind) not in drv.CAPTIONED_KINDS:
                    raise MediaError("mentions", f"a {info.kind} has no caption to mention anyone in")
                caption, jids = self._mentioning(target, caption or "", mentions, mention_all)
        except BaseException:
            incoming.discard()
            raise
        sha = incoming.commit()
        new = NewMedia(
            kind=str(info.kind),
            mimetype=info.mimetype,
            size=incoming.size,
            sha256=sha,
            filename=filename or info.filename,
            caption=caption or None,
            seconds=info.seconds,
            width=info.width,
            height=info.height,
            pages=info.pages,
            thumbnail=info.thumbnail,
        )
        fingerprint = request_hash(
            target.jid, "media", sha, new.kind, caption or "", new.filename or "", *jids
        )
        try:
            with self._emit_lock:
                record, created = self.store.enqueue(
                    target.jid,
                    caption or "",
                    is_group=target.is_group,
                    idempotency_key=idempotency_key,
                    fingerprint=fingerprint,
                    source=source,
                    media=new,
                    mentions=tuple(jids),
                )
                if created:
                    self._emit(
                        MessageQueued(
                            id=record.id,
                            to=record.chat,
                            text=record.text,
                            media=record.media.to_dict() if record.media else None,
                        )
                    )
        except BaseException:
            self._forget_file(sha, other_than="")
            raise
        if created:
            self._wake_sender()
        return record, created

    def media(self, media_id: str) -> MediaRecord | None:
        """A media file's record (sent or received). Raises :class:`StorageError`."""
        return self.store.media(media_id)

    def media_path(self, media: MediaRecord) -> Path | None:
        """Where a stored media file is, or None if it is not (or no longer) on disk."""
        if media.state != MEDIA_STORED:
            return None
        path = self.media_files.path(media.sha256)
        return path if path.is_file() else None

    def media_thumbnail(self, media_id: str) -> bytes | None:
        return self.store.media_thumbnail(media_id)

    def _forget_file(self, sha256: str, *, other_than: str) -> None:
        """Delete a media file unless a stored record still needs it."""
        try:
            if not self.store.media_file_in_use(sha256, other_than):
                self.media_files.delete(sha256)
        except (StorageError, OSError) as exc:
            log.warning("could not remove media file %s: %s", sha256[:12], exc)

    def request_pairing_code(self, phone: str) -> str:
        """Ask WhatsApp for the 8-character code to type on the phone (pairing without a camera)."""
        target = parse_recipient(phone)
        if target.is_group:
            raise RecipientError("must be a phone number, not a group")
        state = self.state
        if state.status is Status.CONNECTED:
            raise SessionError("already paired: log out first to link another phone")
        driver = self._driver
        if state.status is not Status.WAITING_FOR_SCAN or state.qr is None or driver is None:
            raise SessionError(
                f"pairing is possible only while waiting for a scan (now: {state.status.value})"
            )
        try:
            return driver.pair_phone(target.user)
        except drv.DriverError as exc:
            raise SessionError(f"WhatsApp did not give a pairing code: {exc}") from exc

    def logout(self) -> None:
        """Unlink this device from the account, then start pairing again (fresh QR)."""
        state, driver = self.state, self._driver
        if state.status is not Status.CONNECTED or driver is None:
            raise SessionError(f"not connected to WhatsApp (now: {state.status.value}); cannot log out")
        try:
            driver.logout()
        except drv.DriverError as exc:
            raise SessionError(f"logging out failed: {exc}") from exc
        self._command("logged_out_by_user").result(STOP_TIMEOUT)

    def refresh_qr(self) -> None:
        """Request a fresh QR code if the last ones expired (no-op otherwise)."""
        self._command("refresh_qr")

    def reconnect(self) -> None:
        """Try to connect now: from FAILED, or to skip the wait while RECONNECTING."""
        self._command("reconnect")

    # ---- plumbing ----------------------------------------------------------------------------
    def _command(self, name: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if self._stopping.is_set() or self._worker is None:
            future.set_exception(SessionError("the session is not running"))
            return future
        self._queue.put(_Command(name, future, args))
        return future

    def _emit(self, event: Event) -> None:
        with self._emit_lock:
            for callback in list(self._subscribers):
                try:
                    callback(event)
                except Exception:
                    log.exception("an event subscriber failed on %s", type(event).__name__)

    def _set_state(self, new: SessionState) -> None:
        paired = new.status is Status.CONNECTED or (
            new.status in (Status.STARTING, Status.RECONNECTING, Status.FAILED)
            and drv.has_paired_device(self.session_db)
        )
        if paired != new.paired:
            new = new.evolve(paired=paired)
        with self._emit_lock:
            with self._state_lock:
                old = self._state
                self._state = new
            if new.same_phase(old) and old is not new:
                return
            if old is not new:
                log.info(
                    "session %s",
                    new.describe(),
                    extra={"state": new.status.value, "previous": old.status.value},
                )
            self._emit(StateChanged(state=new, previous=old.status if old is not new else None))
        if new.status is Status.CONNECTED:
            self._wake_sender()
            self._wake_downloads()

    def _wake_sender(self) -> None:
        with self._outbox_cv:
            self._outbox_dirty = True
            self._outbox_cv.notify_all()

    def supervised(self, main: Callable[[], None]) -> Callable[[], None]:
        """Wrap a thread's main function so that its death is logged and makes the session
        unhealthy (for threads of the front ends that the process depends on, e.g. webhooks)."""
        return lambda: self._guarded(main)

    def _guarded(self, main: Callable[[], None]) -> None:
        """Run a core thread's main function; if it ever ends by an exception, say so once
        (with the traceback in the record) and remember it, so that /health can tell."""
        name = threading.current_thread().name
        try:
            main()
        except BaseException as exc:
            self.dead_threads[name] = f"{type(exc).__name__}: {exc}"
            # one record, the traceback in its "exception" field; not re-raised, which would
            # print it again, raw, through threading.excepthook
            log.critical(
                "the %s thread died; wadesk must be restarted",
                name,
                exc_info=True,
                extra={"thread_name": name},
            )

    # ---- the worker: state machine -------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._start_driver()
            while True:
                now = time.time()
                timeout = None
                if self._timer is not None:
                    timeout = max(0.0, self._timer[0] - now)
                if self._deferred:
                    wait = max(0.0, self._deferred_retry_at - now)
                    timeout = wait if timeout is None else min(timeout, wait)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if self._timer is not None and self._timer[0] <= time.time():
                    self._guard_step(self._on_timer)
                if self._deferred and self._deferred_retry_at <= time.time():
                    self._guard_step(self._retry_deferred)
                if item is None:
                    continue
                try:
                    if isinstance(item, _Command):
                        self._on_command(item)
                    elif isinstance(item, drv.DriverEvent):
                        if self._driver is not None and item.driver_id == self._driver.id:
                            self._on_driver_event(item)
                except Exception as exc:
                    log.exception("session worker failed on %r", item)
                    if isinstance(item, _Command) and not item.future.done():
                        item.future.set_exception(exc)
        finally:
            if self._deferred:
                self._retry_deferred()
            if self._deferred:
                log.error(
                    "%d received message(s) or receipt(s) could not be stored before the stop: %s",
                    len(self._deferred),
                    self.store.health.reason,
                )
            self._stop_driver(timeout=STOP_TIMEOUT - 1.5)

    def _guard_step(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            log.exception("session worker failed in %s", getattr(step, "__name__", step))

    def _post(self, event: drv.DriverEvent) -> None:
        self._queue.put(event)

    def _start_driver(self) -> None:
        self._stop_driver()
        self._last_qr_at = 0.0
        driver = self._driver_factory(self._post)
        self._driver = driver
        try:
            driver.start()
        except drv.LibraryBusy as exc:  # not started; another client's call still runs
            log.warning("starting the WhatsApp client waits: %s", exc)
            self._driver = None
            self._schedule_reconnect(f"The WhatsApp client could not start yet: {exc}")
            return
        except Exception as exc:  # the library failed to load or to start
            log.exception("starting the WhatsApp client failed")
            self._driver = None
            self._fail(f"The WhatsApp client could not start: {exc}")
            return
        self._timer = (time.time() + CONNECT_TIMEOUT, "connect_timeout")

    def _stop_driver(self, timeout: float = 2.0) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            if not driver.stop(timeout):
                log.debug("the previous WhatsApp client call did not return; left behind (daemon thread)")

    def _schedule_reconnect(self, reason: str, *, let_send_finish: bool = False) -> None:
        self._attempt += 1
        when = time.time() + self._reconnect_delay(self._attempt)
        self._timer = (when, "reconnect")
        self.reconnects += 1
        # RECONNECTING first: the sender claims nothing more on this connection
        self._set_state(
            SessionState(Status.RECONNECTING, attempt=self._attempt, next_try_at=when, reason=reason)
        )
        if let_send_finish:
            self._let_send_finish()
        self._stop_driver()

    def _let_send_finish(self) -> None:
        """A send in flight when the connection dropped: whatsmeow reconnects by itself and
        resends the same frame (same message id, so WhatsApp keeps one copy) if it can within
        5 s. Stopping the client now would cut that short and leave the message uncertain;
        so wait for the send to end (:data:`SEND_RETRY_GRACE` at most, less if stopping)."""
        deadline = time.monotonic() + SEND_RETRY_GRACE
        while self._sending.is_set() and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                log.info("a send in flight did not end within %.0f s of the drop", SEND_RETRY_GRACE)
                return
            self._send_done.wait(min(left, 0.1))

    def _fail(self, reason: str, *, retry_at: float | None = None) -> None:
        self._stop_driver()
        self._timer = (retry_at, "reconnect") if retry_at else None
        self._set_state(SessionState(Status.FAILED, reason=reason))

    def _restart_pairing(self, reason: str | None = None) -> None:
        """Start over with a fresh unpaired client: a new QR batch follows."""
        self._pending_reason = reason
        self._start_driver()

    def _on_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is None:
            return
        _, what = timer
        if what == "reconnect":
            self._start_driver()
        elif what == "connect_timeout":
            if self._driver is not None:
                self._schedule_reconnect("Cannot reach WhatsApp: no answer within 30 s")

    def _on_command(self, cmd: _Command) -> None:
        if cmd.name == "logged_out_by_user":
            self._set_state(SessionState(Status.LOGGED_OUT, reason="logged out by you"))
            self._attempt = 0
            self._qr_rounds = 0
            self._restart_pairing("logged out; scan the QR code to link again")
        elif cmd.name == "refresh_qr":
            if self.state.qr_expired:
                self._qr_rounds = 0
                # no longer expired: new codes are on their way (asking again would restart the client)
                self._set_state(SessionState(Status.WAITING_FOR_SCAN))
                self._restart_pairing()
        elif cmd.name == "reconnect":
            if self.state.status in (Status.FAILED, Status.RECONNECTING, Status.LOGGED_OUT):
                self._timer = None
                self._start_driver()
        cmd.future.set_result(None)

    def _on_driver_event(self, ev: drv.DriverEvent) -> None:
        now = time.time()
        if isinstance(ev, drv.QRCode):
            self._timer = None
            self._attempt = 0
            if not self._last_qr_at:
                self._qr_rounds += 1
            ttl = qr_ttl(self._last_qr_at, self._last_qr_ttl, now)
            self._last_qr_at, self._last_qr_ttl = now, ttl
            self._set_state(
                SessionState(
                    Status.WAITING_FOR_SCAN,
                    qr=ev.code,
                    qr_expires_at=now + ttl,
                    reason=self._pending_reason,
                    since=self.state.since if self.state.status is Status.WAITING_FOR_SCAN else now,
                )
            )
            self._emit(QRCodeUpdated(qr=ev.code, expires_at=now + ttl))
        elif isinstance(ev, drv.PairSuccess):
            log.info("paired with %s; logging in", ev.jid)
        elif isinstance(ev, drv.PairFailed):
            log.warning("pairing failed: %s", ev.reason)
            self._pending_reason = f"pairing failed: {ev.reason}"
        elif isinstance(ev, drv.PairingEnded):
            self._on_pairing_ended(ev.status)
        elif isinstance(ev, drv.Connected):
            self._timer = None
            self._attempt = 0
            self._qr_rounds = 0
            self._pending_reason = None
            account = Account(
                jid=ev.jid,
                phone=f"+{ev.phone}" if ev.phone else "",
                push_name=ev.push_name,
                lid=ev.lid or None,
            )
            # a LID group mentions this account by its LID, a number group by its number; kept
            # while reconnecting, for messages announced then (downloads, deferred writes)
            self._own_jids = frozenset(bare_jid(j) for j in (account.jid, account.lid) if j)
            self._set_state(SessionState(Status.CONNECTED, account=account))
            if self.on_connected is not None:
                self.on_connected()
            threading.Thread(target=self._sync_groups, name="wadesk-groups", daemon=True).start()
        elif isinstance(ev, drv.Disconnected):
            if self.state.status is Status.WAITING_FOR_SCAN:
                return  # the QR loop ends too (PairingEnded follows); handled there
            self._schedule_reconnect("Connection to WhatsApp lost", let_send_finish=True)
        elif isinstance(ev, drv.LoggedOut):
            self._logged_out(
                "logged out from the phone" if ev.reason is drv.FailureReason.LOGGED_OUT else ev.reason.text
            )
        elif isinstance(ev, drv.StreamReplaced):
            self._fail(
                "Another WhatsApp Web or desktop session using this device took over. "
                "Close the other one, then reconnect."
            )
        elif isinstance(ev, drv.TemporaryBan):
            minutes = max(1, round(ev.expires_in / 60))
            self._fail(
                f"WhatsApp temporarily banned this account ({ev.code}); the ban ends in about "
                f"{minutes} min and wadesk will try again then",
                retry_at=now + max(ev.expires_in, 1.0) + self._rng.uniform(1, 10),
            )
        elif isinstance(ev, drv.ClientOutdated):
            self._fail("WhatsApp says this client is outdated: update wadesk")
        elif isinstance(ev, drv.ConnectFailure):
            if ev.reason.logs_out:
                self._logged_out(ev.reason.text)
            elif ev.reason is drv.FailureReason.CLIENT_OUTDATED:
                self._fail("WhatsApp says this client is outdated: update wadesk")
            elif ev.reason is drv.FailureReason.TEMP_BANNED:
                pass  # a TemporaryBan event carries the details
            else:
                detail = f" ({ev.message})" if ev.message else ""
                self._schedule_reconnect(f"WhatsApp refused the connection: {ev.reason.text}{detail}")
        elif isinstance(ev, drv.Incoming | drv.Receipt):
            self._store_or_defer(ev)
        elif isinstance(ev, drv.GroupChanged):
            self._on_group_changed(ev)
        elif isinstance(ev, drv.Exited):
            if ev.error is not None:
                log.info("connecting failed: %s", ev.error)
                self._schedule_reconnect(explain_connect_error(ev.error))
            elif self.state.status not in (Status.FAILED, Status.LOGGED_OUT):
                self._schedule_reconnect("The WhatsApp client stopped unexpectedly")

    # ---- received messages and receipts: stored in order, kept while the store is down ------------
    def _store_or_defer(self, ev: drv.Incoming | drv.Receipt) -> None:
        if self._deferred:  # keep the order: behind those already waiting
            self._defer(ev)
            return
        try:
            self._store_event(ev)
        except StorageError as exc:
            log.warning("cannot store a received %s now; kept until the store works: %s", _what(ev), exc)
            self._defer(ev)

    def _defer(self, ev: drv.Incoming | drv.Receipt) -> None:
        if len(self._deferred) >= MAX_DEFERRED:
            dropped = self._deferred.pop(0)
            log.error(
                "more than %d events wait for the store; dropped the oldest %s", MAX_DEFERRED, _what(dropped)
            )
        if not self._deferred:
            self._deferred_failures = 0
            self._deferred_retry_at = time.time() + STORAGE_RETRY_FIRST
        self._deferred.append(ev)

    def _retry_deferred(self) -> None:
        stored = 0
        while self._deferred:
            ev = self._deferred[0]
            try:
                self._store_event(ev)
            except StorageError:
                self._deferred_failures += 1
                delay = min(STORAGE_RETRY_CAP, STORAGE_RETRY_FIRST * 2**self._deferred_failures)
                self._deferred_retry_at = time.time() + delay
                return
            self._deferred.pop(0)
            stored += 1
        log.info("the store works again: %d kept event(s) stored", stored)

    def _store_event(self, ev: drv.Incoming | drv.Receipt) -> None:
        if isinstance(ev, drv.Incoming):
            self._on_incoming(ev)
            return
        now = time.time()
        with self._receipt_lock:
            changed, unknown = self.store.apply_receipt(ev.wa_ids, ev.status)
            # A receipt can overtake the sender recording the message's WhatsApp id:
            # keep it until then (the sender applies it right after recording).
            self._early_receipts = {
                k: v for k, v in self._early_receipts.items() if now - v[2] < EARLY_RECEIPT_TTL
            }
            for wa_id in unknown:
                kept = self._early_receipts.get(wa_id)
                if kept is None or RECEIPT_RANK[kept[0]] < RECEIPT_RANK[ev.status]:
                    self._early_receipts[wa_id] = (ev.status, ev.timestamp, now)
        self._emit_receipts(changed, ev.status, ev.timestamp)

    def _on_pairing_ended(self, status: str) -> None:
        if status == "err-client-outdated":
            self._fail("WhatsApp says this client is outdated: update wadesk")
        elif (
            status == "timeout"
            and self.state.status is Status.WAITING_FOR_SCAN
            and self._qr_rounds >= QR_ROUNDS
        ):
            self._stop_driver()
            log.info("no QR code was scanned in %d rounds; waiting for a request for a new one", QR_ROUNDS)
            self._set_state(
                SessionState(
                    Status.WAITING_FOR_SCAN, reason="the QR code expired: ask for a new one", qr_expired=True
                )
            )
        else:
            # the codes ran out, the server hung up, or pairing failed: new batch at once
            self._restart_pairing(self._pending_reason)

    def _logged_out(self, reason: str) -> None:
        self._stop_driver()
        # whatsmeow deletes the device from its store while it reports the logout: wait for
        # that, or the next client would try to log in with the removed device.
        deadline = time.monotonic() + 2.0
        while drv.has_paired_device(self.session_db) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._set_state(SessionState(Status.LOGGED_OUT, reason=reason))
        self._attempt = 0
        self._qr_rounds = 0
        self._restart_pairing(f"{reason}; scan the QR code to link again")

    def _on_incoming(self, ev: drv.Incoming) -> None:
        sender, sender_lid, chat = ev.sender, ev.sender_lid, ev.chat
        if sender.endswith("@lid"):
            # WhatsApp named the sender by LID alone (no number with the message); wadesk or
            # whatsmeow may have learnt the number before (a message that carried both, a
            # contact check, group info): the event and the stored message name it
            known = self._person(sender)
            if known["jid"]:
                if not ev.is_group and chat == sender:
                    chat = known["jid"]  # one chat per person: the one messages to the number are in
                sender, sender_lid = known["jid"], sender_lid or sender
        new = None
        if ev.media is not None:
            m = ev.media
            state, reason = MEDIA_PENDING, None
            if m.kind not in self.media_download:
                state, reason = MEDIA_SKIPPED, "not downloaded (WADESK_MEDIA_DOWNLOAD)"
            elif m.size > self.max_media_bytes:
                state, reason = (
                    MEDIA_SKIPPED,
                    f"larger than {self.max_media_bytes // 2**20} MB (WADESK_MAX_MEDIA_MB)",
                )
            new = NewMedia(
                **facts_of(m),
                kind=m.kind,
                mimetype=m.mimetype,
                size=m.size,
                sha256=m.sha256,
                state=state,
                reason=reason,
                source=m.source,
            )
        record = self.store.record_incoming(
            wa_id=ev.wa_id,
            chat=chat,
            sender=sender,
            push_name=ev.push_name,
            text=ev.text,
            timestamp=ev.timestamp,
            is_group=ev.is_group,
            media=new,
            sender_lid=sender_lid,
            mentions=ev.mentions,
        )
        if record is None:  # WhatsApp delivered it again (stored already)
            return
        if record.media is not None and record.media.state == MEDIA_PENDING:
            self._wake_downloads()  # announced once the first download attempt is done
            return
        self._emit_incoming(record)

    def _person(self, jid: str, name: str = "") -> dict[str, Any]:
        """phone, jid and lid of a person WhatsApp named by either, as far as wadesk knows."""
        lid = jid if jid.endswith("@lid") else None
        pn = jid if jid.endswith("@s.whatsapp.net") else None
        try:
            known = self.store.contact(lid=lid) if lid else self.store.contact(jid=pn) if pn else None
        except StorageError:
            known = None
        if known is not None:
            pn, lid = pn or known.jid, lid or known.lid
        driver = self._driver
        if driver is not None and not (pn and lid):
            # not met yet: whatsmeow's store may know the pair (WhatsApp names both in group
            # info, group notifications and usync answers)
            try:
                if lid:
                    pn = driver.pn_of(lid)
                elif pn:
                    lid = driver.lid_of(pn)
            except drv.DriverError:
                pass
        return {"jid": pn, "lid": lid, "phone": phone_of(pn), "push_name": name or None}

    def _on_group_changed(self, ev: drv.GroupChanged) -> None:
        actor = self._person(ev.actor, ev.actor_name) if ev.actor else None
        for action, jids in (
            ("join", ev.joined),
            ("leave", ev.left),
            ("promote", ev.promoted),
            ("demote", ev.demoted),
        ):
            if jids:
                self._emit(
                    GroupParticipants(
                        group=ev.group,
                        action=action,
                        participants=tuple(self._person(j) for j in jids),
                        by=actor,
                        timestamp=ev.timestamp,
                    )
                )

    def _wake_downloads(self) -> None:
        with self._downloads_cv:
            self._downloads_dirty = True
            self._downloads_cv.notify_all()

    def _emit_incoming(self, record: MessageRecord) -> None:
        mentions = tuple(json.loads(record.mentions)) if record.mentions else ()
        me = self._own_jids
        self._emit(
            IncomingMessage(
                id=record.id,
                wa_id=record.wa_id or "",
                chat=record.chat,
                sender=record.sender or "",
                push_name=record.push_name or "",
                text=record.text,
                timestamp=record.wa_timestamp or record.created_at,
                is_group=record.is_group,
                media=record.media.to_dict() if record.media else None,
                sender_phone=phone_of(record.sender),
                sender_lid=record.sender_lid,
                mentions=mentions,
                mentioned_me=any(bare_jid(m) in me for m in mentions),
            )
        )

    # ---- media: downloads of received files, and removal of sent ones ---------------------------------
    def _media_main(self) -> None:
        """Download received files while connected (oldest first, retrying with backoff);
        every few minutes remove sent files past their retention time."""
        next_cleanup = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_cleanup:
                    self._remove_old_media()
                    next_cleanup = time.monotonic() + self._cleanup_every
                wait = self._download_due()
            except StorageError as exc:
                log.warning("media downloads wait for the store: %s", exc)
                wait = 5.0
            except Exception:
                log.exception("the media thread failed; resuming in 5 s")
                wait = 5.0
            with self._downloads_cv:  # the predicate is read under the lock its setters notify with
                self._downloads_cv.wait_for(
                    lambda: self._stopping.is_set() or self._downloads_dirty, min(wait, self._cleanup_every)
                )
                self._downloads_dirty = False

    @property
    def _cleanup_every(self) -> float:
        """Look for sent files past their retention this often (a tenth of it, 1 s to 10 min)."""
        return min(MEDIA_CLEANUP_EVERY, max(1.0, self.media_retention / 10))

    def _download_due(self) -> float:
        """Try every due download; returns how long to wait before looking again."""
        while not self._stopping.is_set():
            driver = self._driver
            if driver is None or self.state.status is not Status.CONNECTED:
                return 5.0
            due = self.store.media_due(time.time())
            if not due:
                nxt = self.store.media_next_due()
                return max(0.2, nxt - time.time()) if nxt is not None else 60.0
            for media in due:
                if self._stopping.is_set() or self.state.status is not Status.CONNECTED:
                    break
                self._download_one(driver, media)
        return 0.0

    def _download_one(self, driver: Any, media: MediaRecord) -> None:
        source = self.store.media_source(media.id)
        first = media.attempts == 0
        try:
            if source is None:
                raise drv.DownloadFailed("WhatsApp's message did not say where the file is", final=True)
            data = driver.download(source)
            if len(data) > self.max_media_bytes:
                raise drv.DownloadFailed(f"larger than {self.max_media_bytes // 2**20} MB", final=True)
            if media.sha256 and hashlib.sha256(data).hexdigest() != media.sha256:
                raise drv.DownloadFailed("the file does not match WhatsApp's hash", final=True)
            self.media_files.put(data, self.max_media_bytes)
            updated = self.store.set_media_state(media.id, MEDIA_STORED, attempt=True)
            log.info("media %s (%s, %d bytes) downloaded", media.id, media.kind, len(data))
        except drv.NotRunning:
            return  # not connected any more: tried again later, attempt not counted
        except drv.DownloadFailed as exc:
            attempts = media.attempts + 1
            if exc.final or attempts >= MAX_DOWNLOAD_ATTEMPTS:
                reason = str(exc) if exc.final else f"gave up after {attempts} attempts: {exc}"
                updated = self.store.set_media_state(media.id, MEDIA_UNAVAILABLE, reason=reason, attempt=True)
                log.warning("media %s cannot be downloaded: %s", media.id, reason)
            else:
                delay = self._send_retry_delay(attempts)
                updated = self.store.set_media_state(
                    media.id,
                    MEDIA_PENDING,
                    reason=str(exc),
                    next_attempt_at=time.time() + delay,
                    attempt=True,
                )
                log.info(
                    "media %s download failed (attempt %d), retrying in %.0f s: %s",
                    media.id,
                    attempts,
                    delay,
                    exc,
                )
        except OSError as exc:  # writing the file: the disk
            updated = self.store.set_media_state(
                media.id,
                MEDIA_PENDING,
                reason=f"cannot write the file: {exc.strerror or exc}",
                next_attempt_at=time.time() + 30,
                attempt=True,
            )
        if first and updated is not None:
            record = self.store.media_message(media.id)
            if record is not None:
                self._emit_incoming(record)

    def _remove_old_media(self) -> None:
        for media in self.store.media_to_delete(time.time() - self.media_retention):
            self.store.set_media_state(media.id, MEDIA_DELETED, reason="removed after the retention time")
            self._forget_file(media.sha256, other_than=media.id)

    # ---- the sender: outbox ------------------------------------------------------------------------
    def _sender_main(self) -> None:
        """The sender thread: recover what a dead process left, then drain the outbox. An
        unexpected error restarts the loop after a pause; it never ends the thread."""
        recovered = False
        while not self._stopping.is_set():
            try:
                if not recovered:
                    self._recover_interrupted()
                    recovered = True
                self._send_loop()
                return
            except StorageError as exc:  # a step outside the loop's own handling
                self._storage_pause(exc, 1)
            except Exception:
                log.exception("the sender failed; resuming in 1 s")
                self._stopping.wait(1.0)

    def _recover_interrupted(self) -> None:
        """Messages left 'sending' by a process that died may have reached WhatsApp: queue
        them again marked possible_duplicate, or fail them (uncertain='fail')."""
        failures = 0
        while True:
            try:
                if self.uncertain == "fail":
                    records = self.store.requeue_interrupted(
                        fail_reason="interrupted while being sent: it may or may not have reached "
                        "WhatsApp, and is not sent again (WADESK_UNCERTAIN=fail)"
                    )
                else:
                    records = self.store.requeue_interrupted()
                break
            except StorageError as exc:
                failures += 1
                if not self._storage_pause(exc, failures):
                    return
        if not records:
            return
        self.possible_duplicates += len(records)
        if self.uncertain == "fail":
            log.warning(
                "%d message(s) interrupted by the last shutdown may or may not have been sent; "
                "failed without sending again (WADESK_UNCERTAIN=fail)",
                len(records),
                extra={"message_ids": [r.id for r in records]},
            )
            with self._emit_lock:
                for r in records:
                    self._emit(
                        MessageFailed(id=r.id, to=r.chat, reason=r.error or "", possible_duplicate=True)
                    )
        else:
            log.warning(
                "%d message(s) interrupted by the last shutdown may have been sent; queued again, "
                "marked possible_duplicate",
                len(records),
                extra={"message_ids": [r.id for r in records]},
            )

    def _storage_pause(self, exc: StorageError, failures: int) -> bool:
        """Wait before retrying a refused write (backoff); False if the session stops meanwhile."""
        delay = min(STORAGE_RETRY_CAP, STORAGE_RETRY_FIRST * 2 ** max(0, failures - 1))
        if failures == 1:
            log.warning("the outbox pauses: %s; retrying", exc, extra={"storage": exc.kind})
        return not self._stopping.wait(delay)

    def _persist(self, what: str, write: Callable[[], Any]) -> tuple[bool, Any]:
        """Run a store write until it succeeds: (True, result), or (False, None) if the
        session stopped first. Used for outcomes that must not be forgotten."""
        failures = 0
        while True:
            try:
                return True, write()
            except StorageError as exc:
                failures += 1
                if not self._storage_pause(exc, failures):
                    log.warning("stopping before %s could be recorded: %s", what, exc)
                    return False, None

    def _send_loop(self) -> None:
        wait = 0.0
        while True:
            with self._outbox_cv:
                self._outbox_cv.wait_for(
                    lambda: (
                        self._stopping.is_set()
                        or (self._outbox_dirty and self.state.status is Status.CONNECTED)
                        or self._sync_asked > self._sync_done
                    ),
                    timeout=wait,
                )
                self._outbox_dirty = False
                sync = self._sync_asked
            if self._stopping.is_set():
                return
            wait = self._drain_outbox()
            with self._outbox_cv:
                self._sync_done = sync
                self._outbox_cv.notify_all()

    def _drain_outbox(self) -> float:
        """Send what can be sent now, one at a time; returns how long to wait before the
        next pass (until the earliest message in backoff is due, 5 s at most)."""
        wait = 5.0
        failures = 0
        while self.state.status is Status.CONNECTED and not self._stopping.is_set():
            try:
                record = self.store.claim_next()
            except StorageError as exc:
                failures += 1
                if not self._storage_pause(exc, failures):
                    break
                continue
            if failures:
                log.info("the outbox resumes: the store takes writes again")
                failures = 0
            if record is None:
                try:
                    due = self.store.next_due_at()
                except StorageError:
                    due = time.time() + 1.0
                if due is not None:
                    wait = min(wait, max(0.05, due - time.time()))
                break
            self._send_one(record)
            if self.send_interval > 0 and self._stopping.wait(self.send_interval):
                break
        return wait

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until the worker has handled everything posted before this call and the
        sender has made one pass over the outbox since (what it could send now is sent).
        For tests that must show that something did *not* happen, without sleeping."""
        try:
            self._command("sync").result(timeout)
        except (SessionError, TimeoutError):  # not running, or the worker is stuck
            return False
        with self._outbox_cv:
            self._sync_asked += 1
            wanted = self._sync_asked
            self._outbox_cv.notify_all()
            return self._outbox_cv.wait_for(lambda: self._sync_done >= wanted, timeout)

    def _send_one(self, record: MessageRecord) -> None:
        driver = self._driver
        try:
            if driver is None or self.state.status is not Status.CONNECTED:
                raise drv.NotRunning()
            if self._not_on_whatsapp(driver, record):
                return
            outgoing = self._outgoing_media(record) if record.media is not None else None
            self._send_done.clear()
            self._sending.set()
            try:
                if outgoing is not None:
                    result = driver.send_media(record.chat, outgoing)
                elif record.mentions:
                    result = driver.send_text(record.chat, record.text, tuple(json.loads(record.mentions)))
                else:
                    result = driver.send_text(record.chat, record.text)
            finally:
                self._sending.clear()
                self._send_done.set()
        except drv.DriverError as exc:
            self._send_failed(record, exc)
            return
        except Exception as exc:  # a bug below us: the message may have left, so it is uncertain
            log.exception("sending %s failed unexpectedly", record.id)
            self._send_failed(record, drv.SendFailed(str(exc) or type(exc).__name__, written=True))
            return

        recipient_lid = self._recipient_lid(driver, record.chat)

        def record_sent() -> tuple[MessageRecord | None, tuple[str, float, float] | None]:
            with self._receipt_lock:
                updated = self.store.mark_sent(
                    record.id, result.wa_id, result.timestamp, recipient_lid=recipient_lid
                )
                return updated, self._early_receipts.pop(result.wa_id, None)

        ok, outcome = self._persist(f"the send of {record.id} (WhatsApp id {result.wa_id})", record_sent)
        log.info(
            "message %s sent to %s (WhatsApp id %s)%s",
            record.id,
            record.chat,
            result.wa_id,
            "" if ok else "; not recorded: it is queued again, marked possible_duplicate, at the next start",
            extra={"message_id": record.id, "wa_id": result.wa_id},
        )
        if not ok:
            return
        updated, early = outcome
        if updated is not None:
            with self._emit_lock:
                self._emit(
                    MessageSent(
                        id=record.id,
                        to=record.chat,
                        wa_id=result.wa_id,
                        sent_at=result.timestamp,
                        possible_duplicate=record.possible_duplicate,
                        media=record.media.to_dict() if record.media else None,
                        to_lid=updated.recipient_lid,
                    )
                )
        if early is not None:
            status, at, _ = early
            try:
                changed, _ = self.store.apply_receipt((result.wa_id,), status)
            except StorageError:
                self._queue.put(drv.Receipt("", (result.wa_id,), status, record.chat, at))
                return
            self._emit_receipts(changed, status, at)

    def _recipient_lid(self, driver: Any, chat: str) -> str | None:
        """The LID of the person a message went to: the chat itself when it is a LID, else the
        one WhatsApp named for the number (whatsmeow keeps the pairs it learns: usync answers,
        group info, messages). None for a group, or when WhatsApp named none."""
        if chat.endswith("@lid"):
            return chat
        if not chat.endswith("@s.whatsapp.net"):
            return None
        try:
            lid = driver.lid_of(chat)
        except Exception:  # the message went out: a failed look-up must not lose that
            log.debug("no LID for %s", chat, exc_info=True)
            lid = None
        if not lid:
            try:
                known = self.store.contact(jid=chat)
            except StorageError:
                known = None
            lid = known.lid if known is not None else None
        return lid or None

    def _not_on_whatsapp(self, driver: Any, record: MessageRecord) -> bool:
        """Before sending to a phone number, ask WhatsApp (once a day per number) whether it
        has an account; if not, fail the message with ``not_on_whatsapp`` (nothing is sent,
        instead of a "sent" that reaches nobody). True when the message was failed."""
        if not self.check_recipients or not record.chat.endswith("@s.whatsapp.net"):
            return False
        known = self.store.contact(jid=record.chat)
        if known is not None and known.checked_at and time.time() - known.checked_at < RECIPIENT_CHECK_TTL:
            on = known.on_whatsapp
        else:
            try:
                [answer] = driver.check_numbers([record.chat.partition("@")[0]])
            except (drv.DriverError, ValueError) as exc:  # unknown: the send itself will tell
                log.info("could not check %s before sending: %s", record.chat, exc)
                return False
            on = answer.on_whatsapp
            self._persist("the number check", lambda: self.store.record_check(record.chat, bool(on)))
        if on is not False:
            return False
        phone = phone_of(record.chat)
        self._fail_message(
            record,
            f"not_on_whatsapp: {phone} has no WhatsApp account; nothing was sent",
            possible_duplicate=False,
        )
        return True

    def _outgoing_media(self, record: MessageRecord) -> drv.OutgoingMedia:
        media = record.media
        assert media is not None
        try:
            data = self.media_files.read(media.sha256)
        except OSError as exc:
            raise drv.SendFailed(
                f"the media file is missing from the data folder ({exc.strerror or exc})",
                written=False,
                failure=drv.SendFailure.UNDELIVERABLE,
            ) from exc
        return drv.OutgoingMedia(
            kind=media.kind,
            data=data,
            mimetype=media.mimetype,
            filename=media.filename,
            caption=media.caption,
            seconds=media.seconds,
            width=media.width,
            height=media.height,
            pages=media.pages,
            thumbnail=self.store.media_thumbnail(media.id) if media.has_thumbnail else None,
            mentions=tuple(json.loads(record.mentions)) if record.mentions else (),
        )

    def _emit_receipts(self, records: list[MessageRecord], status: str, at: float) -> None:
        with self._emit_lock:
            for record in records:
                self._emit(
                    MessageReceipt(
                        id=record.id,
                        to=record.chat,
                        wa_id=record.wa_id or "",
                        status=MessageStatus(status),
                        at=at,
                    )
                )

    def _send_failed(self, record: MessageRecord, error: drv.DriverError) -> None:
        exc = drv.SendFailed.of(error)
        written = exc.written
        if not written and (self._stopping.is_set() or self.state.status is not Status.CONNECTED):
            # provably not sent, and not the message's fault: it waits for the next connection,
            # attempt not counted
            self._persist(f"giving {record.id} back to the queue", lambda: self.store.release(record.id))
            return
        if written:
            self._send_uncertain(record, str(exc))
            return
        permanent, reason = describe_send_failure(exc)
        if not permanent and record.attempts < MAX_SEND_ATTEMPTS:
            delay = self._send_retry_delay(record.attempts)
            log.warning(
                "message %s to %s failed (attempt %d), retrying in %.0f s: %s",
                record.id,
                record.chat,
                record.attempts,
                delay,
                reason,
            )
            self._persist(
                f"the retry of {record.id}",
                lambda: self.store.mark_retry(record.id, reason, time.time() + delay),
            )
            return
        if not permanent:
            reason = f"gave up after {record.attempts} attempts: {reason}"
        self._fail_message(record, reason, possible_duplicate=record.possible_duplicate)

    def _send_uncertain(self, record: MessageRecord, error: str) -> None:
        """The send failed after it may have been written to WhatsApp: resend it once more,
        marked possible_duplicate, or (uncertain='fail') fail it."""
        self.possible_duplicates += 1
        detail = error.strip()[:200] or "no answer"
        if self.uncertain == "fail" or record.attempts >= MAX_SEND_ATTEMPTS:
            reason = (
                f"may or may not have reached WhatsApp ({detail}); not sent again (WADESK_UNCERTAIN=fail)"
                if self.uncertain == "fail"
                else f"gave up after {record.attempts} attempts; the last may have reached WhatsApp "
                f"({detail})"
            )
            self._fail_message(record, reason, possible_duplicate=True)
            return
        reason = (
            f"may have reached WhatsApp before the error ({detail}); sent again, marked possible_duplicate"
        )
        log.warning(
            "message %s to %s: %s",
            record.id,
            record.chat,
            reason,
            extra={"message_id": record.id, "possible_duplicate": True},
        )
        delay = 0.0 if self.state.status is not Status.CONNECTED else self._send_retry_delay(record.attempts)
        self._persist(
            f"the retry of {record.id}",
            lambda: self.store.mark_retry(record.id, reason, time.time() + delay, possible_duplicate=True),
        )

    def _fail_message(self, record: MessageRecord, reason: str, *, possible_duplicate: bool) -> None:
        log.warning(
            "message %s to %s failed: %s", record.id, record.chat, reason, extra={"message_id": record.id}
        )
        ok, _ = self._persist(
            f"the failure of {record.id}",
            lambda: self.store.mark_failed(record.id, reason, possible_duplicate=possible_duplicate),
        )
        if ok:
            with self._emit_lock:
                self._emit(
                    MessageFailed(
                        id=record.id,
                        to=record.chat,
                        reason=reason,
                        possible_duplicate=possible_duplicate,
                        media=record.media.to_dict() if record.media else None,
                    )
                )


def _what(ev: drv.DriverEvent) -> str:
    return "message" if isinstance(ev, drv.Incoming) else "receipt"
