"""Our own SQLite database (WAL): the durable outbox, the message log and the webhook queue.

A message is committed (synchronous=FULL) before ``enqueue`` returns, so whoever
accepted it can promise it will go out. Outgoing messages move
queued -> sending -> sent | failed (and sent -> delivered -> read from receipts);
a crash while 'sending' puts the message back to 'queued' at the next start, marked
``possible_duplicate`` (its first attempt may have reached WhatsApp).

Two connections: writes go through one (serialised by a lock, ``BEGIN IMMEDIATE``), reads
through another, so that a read never waits for a write lock (WAL readers see the last
commit). Every SQLite failure leaves as a :class:`StorageError` saying what kind of
trouble it is (locked, full, I/O, damaged); :attr:`Store.health` tells whether the last
write worked, so callers can pause and answer "try again later" instead of failing.

Claiming the next message costs the same whatever the size of the queue or the history:
``outbox_heads`` holds, for each chat with unfinished outgoing messages, the oldest one
(its head). Only heads can be sent next (per-chat order), so the claim walks the heads.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

from .events import MediaFacts, MessageStatus

IDEMPOTENCY_TTL = 24 * 3600
_FTS_WORD = re.compile(r"\w+", re.UNICODE)

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        chat TEXT NOT NULL,
        sender TEXT,
        push_name TEXT,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        wa_id TEXT,
        wa_timestamp REAL,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        is_group INTEGER NOT NULL DEFAULT 0,
        source TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX messages_outbox ON messages (status, next_attempt_at) WHERE direction = 'out';
    CREATE INDEX messages_wa_id ON messages (wa_id);
    CREATE INDEX messages_chat ON messages (chat, seq);
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX idempotency_age ON idempotency (created_at);
    CREATE TABLE webhook_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        receiver TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX webhook_queue_receiver ON webhook_queue (receiver, seq);
    """,
    """
    ALTER TABLE messages ADD COLUMN possible_duplicate INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_unfinished ON messages (chat, seq)
        WHERE direction = 'out' AND status IN ('queued', 'sending');
    CREATE TABLE outbox_heads (
        chat TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX outbox_heads_seq ON outbox_heads (seq);
    """,
    """
    CREATE TABLE media (
        id TEXT PRIMARY KEY,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        kind TEXT NOT NULL,
        mimetype TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        filename TEXT,
        caption TEXT,
        seconds REAL,
        width INTEGER,
        height INTEGER,
        pages INTEGER,
        thumbnail BLOB,
        state TEXT NOT NULL,
        reason TEXT,
        source BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX media_sha256 ON media (sha256);
    CREATE INDEX media_pending ON media (next_attempt_at) WHERE state = 'pending';
    ALTER TABLE messages ADD COLUMN media_id TEXT REFERENCES media (id);
    """,
    """
    ALTER TABLE messages ADD COLUMN sender_lid TEXT;
    ALTER TABLE messages ADD COLUMN mentions TEXT;
    CREATE TABLE contacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        jid TEXT UNIQUE,
        lid TEXT UNIQUE,
        push_name TEXT,
        on_whatsapp INTEGER,
        checked_at REAL,
        last_seen REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX contacts_last_seen ON contacts (last_seen);
    """,
    """
    CREATE TABLE chats (
        jid TEXT PRIMARY KEY,
        is_group INTEGER NOT NULL DEFAULT 0,
        name TEXT,
        last_seq INTEGER,
        last_at REAL,
        read_seq INTEGER NOT NULL DEFAULT 0,
        unread INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        draft TEXT,
        joined INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX chats_activity ON chats (coalesce(last_at, created_at));
    INSERT INTO chats (jid, is_group, last_seq, last_at, read_seq, created_at, updated_at)
        SELECT chat, max(is_group), max(seq), max(coalesce(wa_timestamp, created_at)), max(seq),
               min(created_at), max(updated_at)
        FROM messages GROUP BY chat;
    UPDATE chats SET failed = (
        SELECT count(*) FROM messages m WHERE m.chat = chats.jid AND m.status = 'failed'
    );
    CREATE TRIGGER chats_on_message AFTER INSERT ON messages BEGIN
        INSERT INTO chats (jid, is_group, last_seq, last_at, unread, created_at, updated_at)
            VALUES (new.chat, new.is_group, new.seq, coalesce(new.wa_timestamp, new.created_at),
                    new.direction = 'in', new.created_at, new.created_at)
        ON CONFLICT (jid) DO UPDATE SET
            last_seq = new.seq,
            last_at = max(coalesce(last_at, 0), coalesce(new.wa_timestamp, new.created_at)),
            unread = unread + (new.direction = 'in'),
            updated_at = new.created_at;
    END;
    CREATE TRIGGER chats_on_failure AFTER UPDATE OF status ON messages
        WHEN new.status = 'failed' AND old.status != 'failed' BEGIN
        UPDATE chats SET failed = failed + 1, updated_at = new.updated_at WHERE jid = new.chat;
    END;
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text, content = 'messages', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
    END;
    """,
    """
    CREATE TABLE event_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX event_log_age ON event_log (created_at);
    """,
    """
    ALTER TABLE messages ADD COLUMN recipient_lid TEXT;
    """,
)

# the unfinished outgoing messages, as the partial index messages_unfinished spells it
_UNFINISHED = "direction = 'out' AND status IN ('queued', 'sending')"
WRITE_BUSY_MS = 5000  # how long a write waits for another process's lock
WRITE_BUSY_MS_UNAVAILABLE = 250  # ... while the store is known to be unavailable
READ_BUSY_MS = 1000
# The next message to send: the oldest due head. CROSS JOIN keeps SQLite from scanning
# the messages (the history) and looking up heads: it walks outbox_heads in seq order.
CLAIM_SQL = (
    "SELECT m.* FROM outbox_heads h CROSS JOIN messages m ON m.seq = h.seq"
    " WHERE m.status = 'queued' AND m.next_attempt_at <= ? ORDER BY h.seq LIMIT 1"
)

OUT_PENDING = ("queued", "sending")
RECEIPT_RANK = {"sent": 0, "delivered": 1, "read": 2, "played": 3}


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script (a trigger's body holds semicolons too)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement in a migration: {pending!r}")


def new_message_id() -> str:
    """Sortable, unguessable id: 'msg_' + 12 hex digits of milliseconds + 10 random."""
    return f"msg_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def request_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class MessageRecord:
    id: str
    direction: str
    chat: str
    text: str
    status: MessageStatus
    created_at: float
    updated_at: float
    sender: str | None = None
    push_name: str | None = None
    wa_id: str | None = None
    wa_timestamp: float | None = None
    error: str | None = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    is_group: bool = False
    source: str | None = None
    possible_duplicate: bool = False  # an earlier attempt may have reached WhatsApp
    media_id: str | None = None
    media: MediaRecord | None = None
    sender_lid: str | None = None
    mentions: str | None = None  # JSON list of JIDs
    recipient_lid: str | None = None  # out, sent to a person: the LID WhatsApp names them by
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("seq")
        out.pop("next_attempt_at")
        out.pop("media_id")
        out["mentions"] = json.loads(self.mentions) if self.mentions else []
        if self.direction == "in":
            out["sender_phone"] = phone_of(self.sender)
        out["media"] = self.media.to_dict() if self.media is not None else None
        out["is_group"] = bool(self.is_group)
        if self.direction == "out":
            out["to"] = out.pop("chat")
            out["to_lid"] = out.pop("recipient_lid")
            out.pop("sender")
            out.pop("push_name")
            out.pop("sender_lid")
        else:
            out.pop("recipient_lid")
        return out


def fts_query(text: str) -> str | None:
    """An FTS5 query for what a person typed: every word must occur (as a word or the start
    of one). Each word is quoted, so FTS5's operators and punctuation are just text."""
    words = [w for w in (_FTS_WORD.findall(text)) if w]
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words[:20])


def phone_of(jid: str | None) -> str | None:
    """'+4915…' for a phone-number JID, None for a LID or nothing."""
    if not jid or not jid.endswith("@s.whatsapp.net"):
        return None
    return "+" + jid.partition("@")[0].partition(":")[0]


@dataclass(frozen=True)
class Contact:
    """A person wadesk has met: by phone-number JID, LID, or both once both are known."""

    jid: str | None
    lid: str | None
    push_name: str | None
    on_whatsapp: bool | None
    checked_at: float | None
    last_seen: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone": phone_of(self.jid),
            "jid": self.jid,
            "lid": self.lid,
            "push_name": self.push_name,
            "on_whatsapp": self.on_whatsapp,
            "last_seen": self.last_seen,
        }


MEDIA_LABELS = {
    "image": "📷 Photo",
    "video": "🎥 Video",
    "audio": "🎵 Audio",
    "voice": "🎤 Voice message",
    "sticker": "Sticker",
    "document": "📄 Document",
}


def preview_of(text: str, media_kind: str | None = None, filename: str | None = None) -> str:
    """One line for a chat list: the text, or what the file is (its caption after it)."""
    line = " ".join(text.split())
    if media_kind is None:
        return line
    if media_kind == "document" and filename:
        label = f"📄 {filename}"
    else:
        label = MEDIA_LABELS.get(media_kind, "📎 File")
    return f"{label}: {line}" if line else label


@dataclass(frozen=True)
class ChatRecord:
    """A chat (a person or a group) and its newest message, for a chat list."""

    jid: str
    is_group: bool
    name: str | None  # the group's name, or the person's push name
    last_at: float | None  # newest activity (None for a joined group with no messages here)
    unread: int  # received messages not shown yet
    failed: int  # messages that failed since the chat was last shown
    draft: str | None
    joined: bool  # a group this account is in (as last listed)
    last_id: str | None = None
    last_direction: str | None = None
    last_status: MessageStatus | None = None
    last_text: str = ""
    last_media_kind: str | None = None
    last_filename: str | None = None
    last_sender: str | None = None
    last_push_name: str | None = None
    last_seq: int = 0
    lid: str | None = None  # a person's LID, when known
    contact_jid: str | None = None  # a person's phone-number JID, when known

    @property
    def phone(self) -> str | None:
        return phone_of(self.contact_jid or self.jid)

    @property
    def preview(self) -> str:
        return preview_of(self.last_text, self.last_media_kind, self.last_filename)

    def to_dict(self) -> dict[str, Any]:
        return {
            "jid": self.jid,
            "is_group": self.is_group,
            "name": self.name,
            "phone": None if self.is_group else self.phone,
            "lid": self.lid,
            "last_activity": self.last_at,
            "unread": self.unread,
            "failed": self.failed,
            "last_message": None
            if self.last_id is None
            else {
                "id": self.last_id,
                "direction": self.last_direction,
                "status": self.last_status.value if self.last_status else None,
                "preview": self.preview,
                "sender": self.last_sender,
            },
        }


class StorageError(Exception):
    """Our database cannot be written (or read) right now.

    ``kind`` is ``locked`` (another process holds the lock), ``full`` (disk or quota full),
    ``io`` (I/O error, read-only or vanished file) or ``damaged`` (SQLite says the file is
    corrupt). Nothing was changed by the failed operation.
    """

    def __init__(self, kind: str, detail: str, operation: str = "") -> None:
        super().__init__(f"the message store cannot be written ({kind}): {detail}")
        self.kind = kind
        self.detail = detail
        self.operation = operation

    @property
    def retry_after(self) -> int:
        """Seconds a client should wait before trying again."""
        return 30 if self.kind in ("full", "damaged") else 5


def classify_sqlite_error(exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary in (5, 6) or "locked" in text or "busy" in text:  # SQLITE_BUSY, SQLITE_LOCKED
        return "locked"
    if primary == 13 or "full" in text:  # SQLITE_FULL
        return "full"
    if primary in (11, 26) or "malformed" in text or "not a database" in text:  # CORRUPT, NOTADB
        return "damaged"
    return "io"


@dataclass(frozen=True)
class StorageHealth:
    """Whether the last write to the store worked; ``since`` is when that became so."""

    available: bool = True
    kind: str | None = None
    reason: str | None = None
    since: float = 0.0
    failures: int = 0  # failed operations since start

    @property
    def retry_after(self) -> int:
        return 30 if self.kind in ("full", "damaged") else 5

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "kind": self.kind,
            "reason": self.reason,
            "since": self.since or None,
            "failures": self.failures,
        }


MEDIA_STORED = "stored"  # the file is in the data folder
MEDIA_PENDING = "pending"  # received, not downloaded yet (or retrying)
MEDIA_UNAVAILABLE = "unavailable"  # received, cannot be downloaded (expired link, refused)
MEDIA_SKIPPED = "skipped"  # received, not downloaded by configuration (or too large)
MEDIA_DELETED = "deleted"  # sent, its file removed after the retention time


def new_media_id() -> str:
    return f"med_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


@dataclass(frozen=True, kw_only=True)
class NewMedia(MediaFacts):
    """What is known of a media file before it is stored (sent: checked and in place;
    received: from WhatsApp's message, with ``source`` to download it)."""

    kind: str
    mimetype: str
    size: int
    sha256: str
    state: str = MEDIA_STORED
    reason: str | None = None
    source: bytes | None = None


@dataclass(frozen=True)
class MediaRecord:
    id: str
    direction: str
    kind: str
    mimetype: str
    size: int
    sha256: str
    state: str
    created_at: float
    updated_at: float
    filename: str | None = None
    caption: str | None = None
    seconds: float | None = None
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    reason: str | None = None
    attempts: int = 0
    has_thumbnail: bool = False

    @property
    def url(self) -> str:
        return f"/media/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        out = {
            k: getattr(self, k)
            for k in (
                "id",
                "kind",
                "mimetype",
                "size",
                "sha256",
                "filename",
                "caption",
                "seconds",
                "width",
                "height",
                "pages",
                "state",
                "reason",
            )
        }
        out["url"] = self.url
        return out


_MEDIA_FIELDS = (
    "id",
    "direction",
    "kind",
    "mimetype",
    "size",
    "sha256",
    "state",
    "created_at",
    "updated_at",
    "filename",
    "caption",
    "seconds",
    "width",
    "height",
    "pages",
    "reason",
    "attempts",
)


def _contact(row: Any) -> Contact:
    on = row[3]
    return Contact(row[0], row[1], row[2], None if on is None else bool(on), row[4], row[5])


def _media_columns(table: str = "") -> str:
    """The columns :func:`_media_record` reads, optionally prefixed by a table alias."""
    prefix = f"{table}." if table else ""
    return ", ".join(prefix + name for name in _MEDIA_FIELDS) + f", {prefix}thumbnail IS NOT NULL"


_MEDIA_COLUMNS = _media_columns()


def _media_record(row: Any) -> MediaRecord:
    """A MediaRecord from a row of ``SELECT {_MEDIA_COLUMNS}``."""
    values = dict(zip(_MEDIA_FIELDS, tuple(row)[: len(_MEDIA_FIELDS)], strict=True))
    return MediaRecord(**values, has_thumbnail=bool(row[len(_MEDIA_FIELDS)]))


class IdempotencyConflict(Exception):
    """The idempotency key was used before, within 24 h, for a different request."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id


class Store:
    def __init__(self, path: Path | str, *, busy_timeout: float = WRITE_BUSY_MS / 1000) -> None:
        """``busy_timeout``: seconds a write waits for a lock another process holds."""
        self.path = str(path)
        self._write_busy_ms = max(1, int(busy_timeout * 1000))
        self._lock = threading.RLock()  # the write connection
        self._rlock = threading.Lock()  # the read connection
        self._health_lock = threading.Lock()
        self._health = StorageHealth(since=time.time())
        self.failures_by_operation: dict[str, int] = {}
        self._db = sqlite3.connect(
            self.path, timeout=self._write_busy_ms / 1000, check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._busy_ms = self._write_busy_ms
        self._migrate()
        self._rdb = sqlite3.connect(
            self.path, timeout=READ_BUSY_MS / 1000, check_same_thread=False, isolation_level=None
        )
        self._rdb.row_factory = sqlite3.Row
        self._rdb.execute("PRAGMA query_only=ON")
        self._last_purge = 0.0

    def close(self) -> None:
        with self._lock, self._rlock:
            self._rdb.close()
            self._db.close()

    # -- health --
    @property
    def health(self) -> StorageHealth:
        with self._health_lock:
            return self._health

    def _succeeded(self) -> None:
        if self._health.available:
            return
        with self._health_lock:
            if self._health.available:
                return
            self._health = StorageHealth(since=time.time(), failures=self._health.failures)
        self._set_busy(self._write_busy_ms)

    def _failed(self, operation: str, exc: sqlite3.Error) -> StorageError:
        kind = classify_sqlite_error(exc)
        error = StorageError(kind, str(exc), operation)
        with self._health_lock:
            old = self._health
            self._health = StorageHealth(
                available=False,
                kind=kind,
                reason=error.args[0],
                since=old.since if not old.available and old.kind == kind else time.time(),
                failures=old.failures + 1,
            )
            self.failures_by_operation[operation] = self.failures_by_operation.get(operation, 0) + 1
        self._set_busy(min(self._write_busy_ms, WRITE_BUSY_MS_UNAVAILABLE))
        return error

    def _set_busy(self, ms: int) -> None:
        if self._busy_ms != ms:
            self._busy_ms = ms
            with contextlib.suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout={int(ms)}")

    # -- plumbing --
    def _migrate(self) -> None:
        with self.transaction("migrate") as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for i, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={i}")
            self._rebuild_heads(db)

    @staticmethod
    def _rebuild_heads(db: sqlite3.Connection) -> None:
        """Recompute every chat's head from the messages (cheap: only unfinished rows are read)."""
        db.execute("DELETE FROM outbox_heads")
        db.execute(
            f"INSERT INTO outbox_heads (chat, seq) SELECT chat, min(seq) FROM messages"  # noqa: S608
            f" WHERE {_UNFINISHED} GROUP BY chat"
        )

    @contextlib.contextmanager
    def transaction(self, operation: str = "write") -> Iterator[sqlite3.Connection]:
        """One write transaction. SQLite errors leave as :class:`StorageError` after a rollback
        (also when COMMIT itself fails: the connection is never left inside a transaction)."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._failed(operation, exc) from exc
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._failed(operation, exc) from exc
                raise
            self._succeeded()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read on the read connection: never waits for a write lock (WAL)."""
        with self._rlock:
            try:
                return self._rdb.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(classify_sqlite_error(exc), str(exc), "read") from exc

    @staticmethod
    def _record(row: sqlite3.Row | dict[str, Any] | None) -> MessageRecord | None:
        if row is None:
            return None
        data = dict(row)
        data["is_group"] = bool(data["is_group"])
        data["possible_duplicate"] = bool(data.get("possible_duplicate", 0))
        data["status"] = MessageStatus(data["status"])
        return MessageRecord(**data)

    # -- outbox --
    def enqueue(
        self,
        chat: str,
        text: str,
        *,
        is_group: bool = False,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        source: str | None = None,
        media: NewMedia | None = None,
        mentions: tuple[str, ...] = (),
    ) -> tuple[MessageRecord, bool]:
        """Durably queue a message (with ``media``: a media message whose file is in place).
        Returns (record, created); created is False when the idempotency key was seen within
        24 h for the same request (nothing is queued).
        Raises :class:`StorageError` when it cannot be committed (nothing is queued)."""
        now = time.time()
        with self.transaction("enqueue") as db:
            if idempotency_key is not None:
                if now - self._last_purge > 60:
                    db.execute("DELETE FROM idempotency WHERE created_at < ?", (now - IDEMPOTENCY_TTL,))
                    self._last_purge = now
                row = db.execute(
                    "SELECT message_id, request_hash FROM idempotency WHERE key = ? AND created_at >= ?",
                    (idempotency_key, now - IDEMPOTENCY_TTL),
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != fingerprint:
                        raise IdempotencyConflict(row["message_id"])
                    existing = db.execute("SELECT * FROM messages WHERE id = ?", (row["message_id"],))
                    record = self._with_media(db, self._record(existing.fetchone()))
                    if record is not None:
                        return record, False
            message_id = new_message_id()
            media_id = self._insert_media(db, "out", media, now) if media is not None else None
            cur = db.execute(
                "INSERT INTO messages (id, direction, chat, text, status, is_group, source, media_id,"
                " mentions, created_at, updated_at)"
                " VALUES (?, 'out', ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    chat,
                    text,
                    int(is_group),
                    source,
                    media_id,
                    json.dumps(list(mentions)) if mentions else None,
                    now,
                    now,
                ),
            )
            seq = cur.lastrowid
            # the chat's head stays if it has one (it is older)
            db.execute("INSERT OR IGNORE INTO outbox_heads (chat, seq) VALUES (?, ?)", (chat, seq))
            if idempotency_key is not None:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency (key, message_id, request_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (idempotency_key, message_id, fingerprint, now),
                )
            record = self._with_media(
                db, self._record(db.execute("SELECT * FROM messages WHERE seq = ?", (seq,)).fetchone())
            )
        assert record is not None
        return record, True

    def claim_next(self, now: float | None = None) -> MessageRecord | None:
        """Take the oldest due message that heads its chat, and mark it 'sending'.

        Per-chat order is kept (only a chat's oldest unfinished message can go), one slow
        chat does not block the rest, and the cost depends on the number of chats waiting,
        not on the number of queued messages or the size of the history."""
        now = time.time() if now is None else now
        with self.transaction("claim") as db:
            row = db.execute(CLAIM_SQL, (now,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE seq = ?",
                (now, row["seq"]),
            )
            data = dict(row) | {"status": "sending", "attempts": row["attempts"] + 1, "updated_at": now}
            return self._with_media(db, self._record(data))

    def next_due_at(self) -> float | None:
        """When the earliest waiting head becomes due (None: nothing waits)."""
        row = self.query(
            "SELECT min(m.next_attempt_at) FROM outbox_heads h CROSS JOIN messages m ON m.seq = h.seq"
            " WHERE m.status = 'queued'"
        )[0]
        return row[0]

    def mark_sent(
        self, message_id: str, wa_id: str, wa_timestamp: float, *, recipient_lid: str | None = None
    ) -> MessageRecord | None:
        """The message went out; ``recipient_lid`` is the LID of the person it went to, when known.
        A person a message went to is one wadesk exchanged messages with: a contact."""
        fields: dict[str, Any] = {
            "status": "sent",
            "wa_id": wa_id,
            "wa_timestamp": wa_timestamp,
            "error": None,
        }
        if recipient_lid:
            fields["recipient_lid"] = recipient_lid
        return self._update(message_id, "mark_sent", meet_recipient=True, **fields)

    def mark_failed(
        self, message_id: str, reason: str, *, possible_duplicate: bool | None = None
    ) -> MessageRecord | None:
        fields: dict[str, Any] = {"status": "failed", "error": reason}
        if possible_duplicate is not None:
            fields["possible_duplicate"] = int(possible_duplicate)
        return self._update(message_id, "mark_failed", **fields)

    def mark_retry(
        self, message_id: str, reason: str, next_attempt_at: float, *, possible_duplicate: bool | None = None
    ) -> MessageRecord | None:
        fields: dict[str, Any] = {"status": "queued", "error": reason, "next_attempt_at": next_attempt_at}
        if possible_duplicate is not None:
            fields["possible_duplicate"] = int(possible_duplicate)
        return self._update(message_id, "mark_retry", **fields)

    def release(self, message_id: str) -> None:
        """Give a claimed message back to the queue untouched (it provably was not sent)."""
        with self.transaction("release") as db:
            db.execute(
                "UPDATE messages SET status = 'queued', attempts = max(0, attempts - 1), next_attempt_at = 0,"
                " updated_at = ? WHERE id = ? AND status = 'sending'",
                (time.time(), message_id),
            )

    def requeue_interrupted(self, *, fail_reason: str | None = None) -> list[MessageRecord]:
        """Deal with the messages a dead process left 'sending', marking each a possible
        duplicate: queue it again, or (``fail_reason`` given) fail it with that reason.
        Returns the records as they are now."""
        out = []
        with self.transaction("requeue_interrupted") as db:
            sql = f"SELECT seq FROM messages WHERE {_UNFINISHED} AND status = 'sending'"  # noqa: S608
            rows = db.execute(sql).fetchall()
            now = time.time()
            for (seq,) in rows:
                if fail_reason is None:
                    db.execute(
                        "UPDATE messages SET status = 'queued', possible_duplicate = 1, next_attempt_at = 0,"
                        " updated_at = ? WHERE seq = ?",
                        (now, seq),
                    )
                else:
                    db.execute(
                        "UPDATE messages SET status = 'failed', possible_duplicate = 1, error = ?,"
                        " updated_at = ? WHERE seq = ?",
                        (fail_reason, now, seq),
                    )
                    self._advance_head(db, seq)
                record = self._record(db.execute("SELECT * FROM messages WHERE seq = ?", (seq,)).fetchone())
                if record is not None:
                    out.append(record)
        return out

    def _advance_head(self, db: sqlite3.Connection, seq: int) -> None:
        """Message ``seq`` is finished: if it headed its chat, the next unfinished one does."""
        head = db.execute("SELECT chat FROM outbox_heads WHERE seq = ?", (seq,)).fetchone()
        if head is None:
            return
        chat = head[0]
        nxt = db.execute(
            f"SELECT min(seq) FROM messages WHERE {_UNFINISHED} AND chat = ?",  # noqa: S608
            (chat,),
        ).fetchone()[0]
        if nxt is None:
            db.execute("DELETE FROM outbox_heads WHERE chat = ?", (chat,))
        else:
            db.execute("UPDATE outbox_heads SET seq = ? WHERE chat = ?", (nxt, chat))

    def _update(
        self, message_id: str, operation: str, *, meet_recipient: bool = False, **fields: Any
    ) -> MessageRecord | None:
        now = fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction(operation) as db:
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id))  # noqa: S608
            row = db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is not None and row["direction"] == "out" and row["status"] not in OUT_PENDING:
                self._advance_head(db, row["seq"])
            if meet_recipient and row is not None and row["direction"] == "out" and not row["is_group"]:
                chat = row["chat"]
                pn = chat if chat.endswith("@s.whatsapp.net") else None
                lid = row["recipient_lid"] or (chat if chat.endswith("@lid") else None)
                self._meet(db, pn, lid, None, now)
            return self._record(row)

    def apply_receipt(self, wa_ids: tuple[str, ...], status: str) -> tuple[list[MessageRecord], list[str]]:
        """Record delivered/read/played for our sent messages; never moves a status backwards.

        Returns the records that changed, and the WhatsApp ids no sent message carries (yet).
        """
        changed = []
        unknown = []
        with self.transaction("receipt") as db:
            for wa_id in wa_ids:
                row = db.execute(
                    "SELECT * FROM messages WHERE wa_id = ? AND direction = 'out'", (wa_id,)
                ).fetchone()
                if row is None:
                    unknown.append(wa_id)
                    continue
                if row["status"] not in RECEIPT_RANK or RECEIPT_RANK[row["status"]] >= RECEIPT_RANK[status]:
                    continue
                now = time.time()
                db.execute(
                    "UPDATE messages SET status = ?, updated_at = ? WHERE seq = ?", (status, now, row["seq"])
                )
                record = self._record(dict(row) | {"status": status, "updated_at": now})
                assert record is not None
                changed.append(record)
        return changed, unknown

    # -- incoming --
    def record_incoming(
        self,
        *,
        wa_id: str,
        chat: str,
        sender: str,
        push_name: str,
        text: str,
        timestamp: float,
        is_group: bool,
        media: NewMedia | None = None,
        sender_lid: str | None = None,
        mentions: tuple[str, ...] = (),
    ) -> MessageRecord | None:
        """Store a received message; None if this WhatsApp id was stored already (redelivery)."""
        now = time.time()
        with self.transaction("incoming") as db:
            # by the WhatsApp id's index ("+chat": not the chat's, which would read the whole chat)
            if db.execute(
                "SELECT 1 FROM messages WHERE wa_id = ? AND +chat = ? AND direction = 'in'", (wa_id, chat)
            ).fetchone():
                return None
            message_id = new_message_id()
            media_id = self._insert_media(db, "in", media, now) if media is not None else None
            db.execute(
                "INSERT INTO messages (id, direction, chat, sender, push_name, text, status, wa_id,"
                " wa_timestamp, is_group, media_id, sender_lid, mentions, created_at, updated_at)"
                " VALUES (?, 'in', ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    chat,
                    sender,
                    push_name,
                    text,
                    wa_id,
                    timestamp,
                    int(is_group),
                    media_id,
                    sender_lid,
                    json.dumps(list(mentions)) if mentions else None,
                    now,
                    now,
                ),
            )
            phone_jid = sender if sender.endswith("@s.whatsapp.net") else None
            self._meet(
                db, phone_jid, sender_lid or (sender if sender.endswith("@lid") else None), push_name, now
            )
            return self._with_media(
                db, self._record(db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())
            )

    # -- reading --
    def get(self, message_id: str) -> MessageRecord | None:
        record = self._record(
            next(iter(self.query("SELECT * FROM messages WHERE id = ?", (message_id,))), None)
        )
        return self._attach_media([record])[0] if record is not None else None

    def list(
        self,
        *,
        limit: int = 50,
        before: int | None = None,
        direction: str | None = None,
        newest_first: bool = True,
    ) -> list[MessageRecord]:
        """Messages by insertion order; ``before`` is a ``seq`` cursor for pagination."""
        where: list[str] = []
        params: list[Any] = []
        if direction:
            where.append("direction = ?")
            params.append(direction)
        if before is not None:
            where.append("seq < ?" if newest_first else "seq > ?")
            params.append(before)
        sql = "SELECT * FROM messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ?"
        rows = self.query(sql, (*params, limit))
        return self._attach_media([r for r in (self._record(row) for row in rows) if r is not None])

    # -- chats --
    _CHAT_SQL = (
        "SELECT c.jid, c.is_group, c.last_at, c.unread, c.failed, c.draft, c.joined, c.last_seq,"
        " coalesce(c.name, p.push_name, l.push_name, m.push_name) AS name,"
        " coalesce(p.lid, l.lid) AS lid, coalesce(p.jid, l.jid) AS contact_jid,"
        " m.id AS last_id, m.direction AS last_direction, m.status AS last_status,"
        " m.text AS last_text, m.sender AS last_sender, m.push_name AS last_push_name,"
        " x.kind AS last_media_kind, x.filename AS last_filename"
        " FROM chats c"
        " LEFT JOIN messages m ON m.seq = c.last_seq"
        " LEFT JOIN media x ON x.id = m.media_id"
        " LEFT JOIN contacts p ON c.is_group = 0 AND p.jid = c.jid"
        " LEFT JOIN contacts l ON c.is_group = 0 AND l.lid = c.jid"
    )

    @staticmethod
    def _chat(row: sqlite3.Row) -> ChatRecord:
        data = dict(row)
        data["is_group"] = bool(data["is_group"])
        data["joined"] = bool(data["joined"])
        data["last_status"] = MessageStatus(data["last_status"]) if data["last_status"] else None
        data["last_text"] = data["last_text"] or ""
        data["last_seq"] = data["last_seq"] or 0
        return ChatRecord(**data)

    def chats(
        self, *, limit: int = 50, offset: int = 0, query: str | None = None
    ) -> builtins.list[ChatRecord]:
        """Chats, newest activity first (of chats active in the same second, the one with the
        latest message first); ``query`` keeps those whose name, number or JID contains it
        (case-insensitive)."""
        where, params = "", cast(tuple[str, ...], ())
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            digits = "%" + "".join(ch for ch in query if ch.isdigit()) + "%"
            if digits == "%%":
                digits = like
            where = (
                " WHERE coalesce(c.name, p.push_name, l.push_name, m.push_name, '') LIKE ? ESCAPE '\\'"
                " OR c.jid LIKE ? ESCAPE '\\' OR c.jid LIKE ? ESCAPE '\\'"
                " OR coalesce(p.jid, l.jid, '') LIKE ? ESCAPE '\\'"
            )
            params = (like, like, digits, digits)
        rows = self.query(
            self._CHAT_SQL + where + " ORDER BY coalesce(c.last_at, c.created_at) DESC,"
            " c.last_seq DESC, c.jid LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [self._chat(r) for r in rows]

    def chat(self, jid: str) -> ChatRecord | None:
        rows = self.query(self._CHAT_SQL + " WHERE c.jid = ?", (jid,))
        return self._chat(rows[0]) if rows else None

    def ensure_chat(self, jid: str, *, is_group: bool, name: str | None = None) -> None:
        """A chat in the list before any message (a new chat, a joined group)."""
        now = time.time()
        with self.transaction("chat") as db:
            db.execute(
                "INSERT INTO chats (jid, is_group, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (jid) DO UPDATE SET name = coalesce(excluded.name, name)",
                (jid, int(is_group), name, now, now),
            )

    def set_joined_groups(self, groups: builtins.list[tuple[str, str]]) -> None:
        """The groups (jid, name) this account is in now: named, listed, marked joined;
        groups no longer among them stay in the list (their history) but are not joined."""
        now = time.time()
        with self.transaction("groups") as db:
            db.execute("UPDATE chats SET joined = 0 WHERE is_group = 1 AND joined = 1")
            for jid, name in groups:
                db.execute(
                    "INSERT INTO chats (jid, is_group, name, joined, created_at, updated_at)"
                    " VALUES (?, 1, ?, 1, ?, ?) ON CONFLICT (jid) DO UPDATE SET"
                    " name = coalesce(excluded.name, name), joined = 1, updated_at = excluded.updated_at",
                    (jid, name or None, now, now),
                )

    def mark_chat_read(self, jid: str) -> builtins.list[MessageRecord]:
        """The chat was shown: its unread count and failure marker clear. Returns the
        received messages that were unread (to tell WhatsApp they were read)."""
        with self.transaction("chat_read") as db:
            row = db.execute("SELECT read_seq, last_seq FROM chats WHERE jid = ?", (jid,)).fetchone()
            if row is None:
                return []
            unread = db.execute(
                "SELECT * FROM messages WHERE chat = ? AND seq > ? AND direction = 'in' ORDER BY seq",
                (jid, row["read_seq"]),
            ).fetchall()
            db.execute(
                "UPDATE chats SET unread = 0, failed = 0, read_seq = coalesce(last_seq, 0), updated_at = ?"
                " WHERE jid = ?",
                (time.time(), jid),
            )
        return [r for r in (self._record(u) for u in unread) if r is not None]

    def clear_unread(self, jid: str) -> int:
        """As :meth:`mark_chat_read`, without reading the messages (no receipts to send);
        returns how many received messages were unread."""
        with self.transaction("chat_read") as db:
            row = db.execute("SELECT unread FROM chats WHERE jid = ?", (jid,)).fetchone()
            if row is None:
                return 0
            db.execute(
                "UPDATE chats SET unread = 0, failed = 0, read_seq = coalesce(last_seq, 0), updated_at = ?"
                " WHERE jid = ?",
                (time.time(), jid),
            )
        return int(row["unread"])

    def set_draft(self, jid: str, text: str | None) -> None:
        now = time.time()
        with self.transaction("draft") as db:
            db.execute(
                "INSERT INTO chats (jid, is_group, draft, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (jid) DO UPDATE SET draft = excluded.draft",
                (jid, int(jid.endswith("@g.us")), text or None, now, now),
            )

    def conversation(
        self, chat: str, *, before: int | None = None, limit: int = 50, direction: str | None = None
    ) -> builtins.list[MessageRecord]:
        """One page of a chat, oldest first: the ``limit`` newest messages older than the
        ``before`` seq (the newest page without it). Uses the (chat, seq) index."""
        sql = "SELECT * FROM messages WHERE chat = ?"
        params: builtins.list[Any] = [chat]
        if before is not None:
            sql += " AND seq < ?"
            params.append(before)
        if direction is not None:
            sql += " AND direction = ?"
            params.append(direction)
        rows = self.query(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit))
        records = [r for r in (self._record(row) for row in reversed(rows)) if r is not None]
        return self._attach_media(records)

    def search(
        self,
        text: str,
        *,
        chat: str | None = None,
        before: int | None = None,
        limit: int = 50,
        direction: str | None = None,
    ) -> builtins.list[MessageRecord]:
        """Messages whose text holds every word of ``text`` (a word's start matches too:
        "deliv" finds "delivery"), newest first; ``before`` is a seq cursor."""
        match = fts_query(text)
        if match is None:
            return []
        sql = "SELECT m.* FROM messages_fts f JOIN messages m ON m.seq = f.rowid WHERE messages_fts MATCH ?"
        params: builtins.list[Any] = [match]
        if chat is not None:
            sql += " AND m.chat = ?"
            params.append(chat)
        if before is not None:
            sql += " AND f.rowid < ?"
            params.append(before)
        if direction is not None:
            sql += " AND m.direction = ?"
            params.append(direction)
        sql += " ORDER BY f.rowid DESC LIMIT ?"
        rows = self.query(sql, (*params, limit))
        return self._attach_media([r for r in (self._record(row) for row in rows) if r is not None])

    # -- contacts --
    @staticmethod
    def _meet(
        db: sqlite3.Connection,
        jid: str | None,
        lid: str | None,
        push_name: str | None,
        now: float,
        *,
        seen: bool = True,
    ) -> None:
        """Remember a person; one row per person, merged when a LID and a number meet.
        ``seen`` (an exchange with them) sets ``last_seen``, which lists them in contacts."""
        if not jid and not lid:
            return
        by_jid = db.execute("SELECT id, lid FROM contacts WHERE jid = ?", (jid,)).fetchone() if jid else None
        by_lid = (
            db.execute("SELECT id, jid, push_name, last_seen FROM contacts WHERE lid = ?", (lid,)).fetchone()
            if lid
            else None
        )
        last_seen = now if seen else None
        if by_jid and by_lid and by_jid[0] != by_lid[0]:  # met twice, now known as one
            db.execute("DELETE FROM contacts WHERE id = ?", (by_lid[0],))
            push_name = push_name or by_lid[2]
            if last_seen is None and by_lid[3] is not None:
                last_seen = max(
                    by_lid[3],
                    db.execute(
                        "SELECT coalesce(last_seen, 0) FROM contacts WHERE id = ?", (by_jid[0],)
                    ).fetchone()[0],
                )
            by_lid = None
        row = by_jid or by_lid
        if row is None:
            db.execute(
                "INSERT INTO contacts (jid, lid, push_name, last_seen, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (jid, lid, push_name or None, last_seen, now, now),
            )
            return
        db.execute(
            "UPDATE contacts SET jid = coalesce(?, jid), lid = coalesce(?, lid),"
            " push_name = coalesce(?, push_name), last_seen = coalesce(?, last_seen), updated_at = ?"
            " WHERE id = ?",
            (jid, lid, push_name or None, last_seen, now, row[0]),
        )

    def meet(self, jid: str | None, lid: str | None, push_name: str | None = None) -> None:
        with self.transaction("contact") as db:
            self._meet(db, jid, lid, push_name, time.time())

    def link(self, jid: str, lid: str) -> None:
        """Remember that a phone-number JID and a LID are one person, without listing them
        in contacts (nothing was exchanged with them)."""
        with self.transaction("contact") as db:
            self._meet(db, jid, lid, None, time.time(), seen=False)

    def record_check(self, jid: str, on_whatsapp: bool) -> None:
        """Remember WhatsApp's answer on whether this number has an account."""
        now = time.time()
        with self.transaction("contact_check") as db:
            if db.execute("SELECT 1 FROM contacts WHERE jid = ?", (jid,)).fetchone() is None:
                db.execute(
                    "INSERT INTO contacts (jid, created_at, updated_at) VALUES (?, ?, ?)", (jid, now, now)
                )
            db.execute(
                "UPDATE contacts SET on_whatsapp = ?, checked_at = ?, updated_at = ? WHERE jid = ?",
                (int(on_whatsapp), now, now, jid),
            )

    def contact(self, *, jid: str | None = None, lid: str | None = None) -> Contact | None:
        column, value = ("jid", jid) if jid else ("lid", lid)
        rows = self.query(
            "SELECT jid, lid, push_name, on_whatsapp, checked_at, last_seen FROM contacts"  # noqa: S608
            f" WHERE {column} = ?",
            (value,),
        )
        return _contact(rows[0]) if rows else None

    def contacts(self, *, limit: int = 50, offset: int = 0) -> builtins.list[Contact]:
        rows = self.query(
            "SELECT jid, lid, push_name, on_whatsapp, checked_at, last_seen FROM contacts"
            " WHERE last_seen IS NOT NULL ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_contact(r) for r in rows]

    # -- media --
    @staticmethod
    def _insert_media(db: sqlite3.Connection, direction: str, media: NewMedia, now: float) -> str:
        media_id = new_media_id()
        db.execute(
            "INSERT INTO media (id, direction, kind, mimetype, size, sha256, filename, caption, seconds,"
            " width, height, pages, thumbnail, state, reason, source, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                media_id,
                direction,
                media.kind,
                media.mimetype,
                media.size,
                media.sha256,
                media.filename,
                media.caption,
                media.seconds,
                media.width,
                media.height,
                media.pages,
                media.thumbnail,
                media.state,
                media.reason,
                media.source,
                now,
                now,
            ),
        )
        return media_id

    def _with_media(self, db: sqlite3.Connection, record: MessageRecord | None) -> MessageRecord | None:
        if record is None or record.media_id is None:
            return record
        row = db.execute(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id = ?", (record.media_id,)).fetchone()  # noqa: S608
        return replace(record, media=_media_record(row)) if row is not None else record

    def _attach_media(self, records: builtins.list[MessageRecord]) -> builtins.list[MessageRecord]:
        ids = [r.media_id for r in records if r.media_id]
        if not ids:
            return records
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.query(
                f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id IN ({','.join('?' * len(chunk))})",  # noqa: S608
                tuple(chunk),
            )
            found.update({row[0]: _media_record(row) for row in rows})
        return [replace(r, media=found.get(r.media_id)) if r.media_id else r for r in records]

    def media(self, media_id: str) -> MediaRecord | None:
        rows = self.query(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id = ?", (media_id,))  # noqa: S608
        return _media_record(rows[0]) if rows else None

    def media_thumbnail(self, media_id: str) -> bytes | None:
        rows = self.query("SELECT thumbnail FROM media WHERE id = ?", (media_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def media_source(self, media_id: str) -> bytes | None:
        """What WhatsApp's message said about a received file (to download it)."""
        rows = self.query("SELECT source FROM media WHERE id = ?", (media_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def media_message(self, media_id: str) -> MessageRecord | None:
        rows = self.query("SELECT id FROM messages WHERE media_id = ?", (media_id,))
        return self.get(rows[0][0]) if rows else None

    def media_due(self, now: float, limit: int = 20) -> builtins.list[MediaRecord]:
        """Received media waiting to be downloaded whose next attempt is due, oldest first."""
        rows = self.query(
            f"SELECT {_MEDIA_COLUMNS} FROM media WHERE state = 'pending' AND next_attempt_at <= ?"  # noqa: S608
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (now, limit),
        )
        return [_media_record(r) for r in rows]

    def media_next_due(self) -> float | None:
        return self.query("SELECT min(next_attempt_at) FROM media WHERE state = 'pending'")[0][0]

    def set_media_state(
        self,
        media_id: str,
        state: str,
        *,
        reason: str | None = None,
        next_attempt_at: float = 0.0,
        attempt: bool = False,
    ) -> MediaRecord | None:
        with self.transaction("media_state") as db:
            db.execute(
                "UPDATE media SET state = ?, reason = ?, next_attempt_at = ?, attempts = attempts + ?,"
                " updated_at = ? WHERE id = ?",
                (state, reason, next_attempt_at, int(attempt), time.time(), media_id),
            )
            row = db.execute(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE id = ?", (media_id,)).fetchone()  # noqa: S608
        return _media_record(row) if row is not None else None

    def media_to_delete(self, sent_before: float) -> builtins.list[MediaRecord]:
        """Sent media no longer needed: its message was sent before ``sent_before`` (and
        is not waiting to go out), or failed for good. Their files can go."""
        rows = self.query(
            f"SELECT {_media_columns('d')} FROM media d JOIN messages m ON m.media_id = d.id"  # noqa: S608
            " WHERE d.direction = 'out' AND d.state = 'stored'"
            " AND (m.status = 'failed' OR (m.status NOT IN ('queued', 'sending') AND m.updated_at < ?))",
            (sent_before,),
        )
        return [_media_record(r) for r in rows]

    def media_file_in_use(self, sha256: str, other_than: str) -> bool:
        """True if a stored media row other than ``other_than`` still needs this file."""
        rows = self.query(
            "SELECT 1 FROM media WHERE sha256 = ? AND id != ? AND state = 'stored' LIMIT 1",
            (sha256, other_than),
        )
        return bool(rows)

    def outbox_depth(self) -> int:
        return int(
            self.query(f"SELECT count(*) FROM messages WHERE {_UNFINISHED}")[0][0]  # noqa: S608
        )

    def count_by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}


@dataclass(frozen=True)
class QueuedEvent:
    """One event waiting for one webhook receiver."""

    seq: int
    receiver: str
    event_id: str
    event: str
    body: bytes
    attempts: int
    next_attempt_at: float
    created_at: float


class WebhookQueue:
    """The durable webhook queue in our store: one row per event and receiver, delivered
    in ``seq`` order per receiver, deleted once delivered or given up."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def enqueue(self, receivers: tuple[str, ...], event_id: str, event: str, body: bytes, now: float) -> None:
        """Queue one event for every receiver, in one transaction. Raises StorageError."""
        with self._store.transaction("webhook_enqueue") as db:
            db.executemany(
                "INSERT INTO webhook_queue (receiver, event_id, event, body, attempts, next_attempt_at,"
                " created_at) VALUES (?, ?, ?, ?, 0, 0, ?)",
                [(receiver, event_id, event, body, now) for receiver in receivers],
            )

    def head(self, receiver: str) -> QueuedEvent | None:
        """The oldest event waiting for ``receiver`` (read without waiting for writers)."""
        rows = self._store.query(
            "SELECT seq, receiver, event_id, event, body, attempts, next_attempt_at, created_at"
            " FROM webhook_queue WHERE receiver = ? ORDER BY seq LIMIT 1",
            (receiver,),
        )
        if not rows:
            return None
        r = rows[0]
        return QueuedEvent(r[0], r[1], r[2], r[3], bytes(r[4]), int(r[5]), float(r[6]), float(r[7]))

    def delete(self, seq: int) -> None:
        with self._store.transaction("webhook_delete") as db:
            db.execute("DELETE FROM webhook_queue WHERE seq = ?", (seq,))

    def reschedule(self, seq: int, attempts: int, next_attempt_at: float, error: str | None) -> None:
        with self._store.transaction("webhook_retry") as db:
            db.execute(
                "UPDATE webhook_queue SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?",
                (attempts, next_attempt_at, error, seq),
            )

    def backlog(self) -> dict[str, int]:
        """Events waiting, per receiver URL (receivers no longer configured included)."""
        rows = self._store.query("SELECT receiver, count(*) FROM webhook_queue GROUP BY receiver")
        return {str(r[0]): int(r[1]) for r in rows}


@dataclass(frozen=True)
class LoggedEvent:
    seq: int
    id: str
    event: str
    body: bytes
    created_at: float


class EventLogTable:
    """The recent public events (as delivered: id, name, serialised envelope), for clients
    that reconnect or poll. Bounded by age and count (:meth:`prune`)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append(self, rows: list[tuple[str, str, bytes, float]]) -> None:
        """Log (id, event, body, created_at) rows in one transaction. Raises StorageError."""
        with self._store.transaction("event_log") as db:
            db.executemany(
                "INSERT OR IGNORE INTO event_log (id, event, body, created_at) VALUES (?, ?, ?, ?)", rows
            )

    def seq_of(self, event_id: str) -> int | None:
        rows = self._store.query("SELECT seq FROM event_log WHERE id = ?", (event_id,))
        return int(rows[0][0]) if rows else None

    def after(self, seq: int, *, limit: int, events: frozenset[str] | None = None) -> list[LoggedEvent]:
        """Events logged after ``seq`` (0: from the oldest kept), oldest first."""
        sql = "SELECT seq, id, event, body, created_at FROM event_log WHERE seq > ?"
        params: list[Any] = [seq]
        if events is not None:
            sql += f" AND event IN ({', '.join('?' * len(events))})"
            params.extend(sorted(events))
        rows = self._store.query(sql + " ORDER BY seq LIMIT ?", (*params, limit))
        return [LoggedEvent(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), float(r[4])) for r in rows]

    def prune(self, *, older_than: float, keep: int) -> int:
        """Delete events logged before ``older_than`` and all but the newest ``keep``."""
        with self._store.transaction("event_log_prune") as db:
            gone = db.execute("DELETE FROM event_log WHERE created_at < ?", (older_than,)).rowcount
            newest = db.execute("SELECT max(seq) FROM event_log").fetchone()[0]
            if newest is not None:
                gone += db.execute("DELETE FROM event_log WHERE seq <= ?", (newest - keep,)).rowcount
        return int(gone)


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
