"""Our own SQLite database (WAL): the durable outbox, the message log and the webhook queue.

A message is committed (synchronous=FULL) before ``enqueue`` returns, so whoever
accepted it can promise it will go out. Outgoing messages move
queued -> sending -> sent | failed (and sent -> delivered -> read from receipts);
a crash while 'sending' puts the message back to 'queued' at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IDEMPOTENCY_TTL = 24 * 3600

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
)

OUT_PENDING = ("queued", "sending")
RECEIPT_RANK = {"sent": 0, "delivered": 1, "read": 2, "played": 3}


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
    status: str
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
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("seq")
        out.pop("next_attempt_at")
        out["is_group"] = bool(self.is_group)
        if self.direction == "out":
            out["to"] = out.pop("chat")
            out.pop("sender")
            out.pop("push_name")
        return out


class IdempotencyConflict(Exception):
    """The idempotency key was used before, within 24 h, for a different request."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._last_purge = 0.0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing --
    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for i, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={i}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _record(row: sqlite3.Row | None) -> MessageRecord | None:
        if row is None:
            return None
        data = dict(row)
        data["is_group"] = bool(data["is_group"])
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
    ) -> tuple[MessageRecord, bool]:
        """Durably queue a message. Returns (record, created); created is False when the
        idempotency key was seen within 24 h for the same request (nothing is queued)."""
        now = time.time()
        with self.transaction() as db:
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
                    record = self._record(existing.fetchone())
                    if record is not None:
                        return record, False
            message_id = new_message_id()
            db.execute(
                "INSERT INTO messages (id, direction, chat, text, status, is_group, source, created_at,"
                " updated_at)"
                " VALUES (?, 'out', ?, ?, 'queued', ?, ?, ?, ?)",
                (message_id, chat, text, int(is_group), source, now, now),
            )
            if idempotency_key is not None:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency (key, message_id, request_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (idempotency_key, message_id, fingerprint, now),
                )
            record = self._record(db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())
        assert record is not None
        return record, True

    def claim_next(self, now: float | None = None) -> MessageRecord | None:
        """Take the oldest due message whose chat has no older unfinished message, and
        mark it 'sending'. Per-chat order is kept; one slow chat does not block the rest."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            row = db.execute(
                """
                SELECT m.* FROM messages m
                WHERE m.direction = 'out' AND m.status = 'queued' AND m.next_attempt_at <= ?
                  AND NOT EXISTS (
                    SELECT 1 FROM messages o
                    WHERE o.direction = 'out' AND o.chat = m.chat AND o.seq < m.seq
                      AND o.status IN ('queued', 'sending'))
                ORDER BY m.seq LIMIT 1
                """,
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE seq = ?",
                (now, row["seq"]),
            )
            data = dict(row) | {"status": "sending", "attempts": row["attempts"] + 1, "updated_at": now}
            return self._record(data)  # type: ignore[arg-type]

    def next_due_at(self) -> float | None:
        row = self.query(
            "SELECT min(next_attempt_at) FROM messages WHERE direction = 'out' AND status = 'queued'"
        )[0]
        return row[0]

    def mark_sent(self, message_id: str, wa_id: str, wa_timestamp: float) -> MessageRecord | None:
        return self._update(message_id, status="sent", wa_id=wa_id, wa_timestamp=wa_timestamp, error=None)

    def mark_failed(self, message_id: str, reason: str) -> MessageRecord | None:
        return self._update(message_id, status="failed", error=reason)

    def mark_retry(self, message_id: str, reason: str, next_attempt_at: float) -> MessageRecord | None:
        return self._update(message_id, status="queued", error=reason, next_attempt_at=next_attempt_at)

    def release(self, message_id: str) -> None:
        """Give a claimed message back to the queue untouched (the connection went away)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE messages SET status = 'queued', attempts = max(0, attempts - 1), next_attempt_at = 0,"
                " updated_at = ? WHERE id = ? AND status = 'sending'",
                (time.time(), message_id),
            )

    def requeue_interrupted(self) -> int:
        """Put messages that were being sent when the process died back in the queue."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE messages SET status = 'queued', updated_at = ?"
                " WHERE direction = 'out' AND status = 'sending'",
                (time.time(),),
            )
            return cur.rowcount

    def _update(self, message_id: str, **fields: Any) -> MessageRecord | None:
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id))  # noqa: S608
            return self._record(db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())

    def apply_receipt(self, wa_ids: tuple[str, ...], status: str) -> tuple[list[MessageRecord], list[str]]:
        """Record delivered/read/played for our sent messages; never moves a status backwards.

        Returns the records that changed, and the WhatsApp ids no sent message carries (yet).
        """
        changed = []
        unknown = []
        with self.transaction() as db:
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
                record = self._record(dict(row) | {"status": status, "updated_at": now})  # type: ignore[arg-type]
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
    ) -> MessageRecord | None:
        """Store a received message; None if this WhatsApp id was stored already (redelivery)."""
        now = time.time()
        with self.transaction() as db:
            if db.execute(
                "SELECT 1 FROM messages WHERE direction = 'in' AND wa_id = ? AND chat = ?", (wa_id, chat)
            ).fetchone():
                return None
            message_id = new_message_id()
            db.execute(
                "INSERT INTO messages (id, direction, chat, sender, push_name, text, status, wa_id,"
                " wa_timestamp, is_group, created_at, updated_at)"
                " VALUES (?, 'in', ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?)",
                (message_id, chat, sender, push_name, text, wa_id, timestamp, int(is_group), now, now),
            )
            return self._record(db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone())

    # -- reading --
    def get(self, message_id: str) -> MessageRecord | None:
        return self._record(
            next(iter(self.query("SELECT * FROM messages WHERE id = ?", (message_id,))), None)
        )

    def list(
        self,
        *,
        limit: int = 50,
        before: int | None = None,
        direction: str | None = None,
        newest_first: bool = True,
    ) -> list[MessageRecord]:
        """Messages by insertion order; ``before`` is a ``seq`` cursor for pagination."""
        where, params = [], []
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
        return [r for r in (self._record(row) for row in rows) if r is not None]

    def outbox_depth(self) -> int:
        return int(
            self.query(
                "SELECT count(*) FROM messages WHERE direction = 'out' AND status IN ('queued', 'sending')"
            )[0][0]
        )

    def count_by_status(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM messages WHERE direction = 'out' GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
