"""The start-up check of the data folder's databases, and the record of what they held.

wadesk refuses to start on a damaged database instead of letting SQLite or neonize fail
later (a ``/send`` answering 500) or start over (an empty outbox). The check only reads:
each database is opened read-only (or, when SQLite would first have to roll back a write
that a crash interrupted, a copy of it is checked), so a damaged file stays exactly as it
was, for recovery.

A database that vanished or was emptied cannot be checked, so the folder keeps a record,
``state.json``, of what its databases held when last seen: the page count and size of our
store, and whether neonize's database held a paired device. A store that is missing,
empty, or smaller than it was, or a paired device's database that is missing or empty, is
refused like a damaged one. ``--reset-store`` moves the refused files (with their
``-wal``/``-shm``/``-journal`` companions) aside under a ``.damaged-<time>`` name; nothing
is ever deleted.

Nothing here imports Qt, Flask or neonize.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
CHECK_PREFIX = ".check-"  # a temporary copy of a database with a hot journal, checked there
COMPANIONS = ("-wal", "-shm", "-journal")
FILE_MODE = 0o600
QUICK_CHECK_LIMIT = 10  # SQLite stops after this many problems: enough to say what is wrong
BUSY_TIMEOUT_S = 2.0  # at start: someone else (an sqlite3 shell?) holding a lock for longer is an error
RECORD_BUSY_TIMEOUT_S = 0.2  # while running: a record not updated is better than a thread held up
RECORD_VERSION = 1


@dataclass(frozen=True)
class DbState:
    """One database file as it is now."""

    path: Path
    size: int | None  # None: there is no such file
    pages: int = 0
    page_size: int = 0
    paired: bool = False  # neonize's database: it holds a device
    damage: str | None = None  # what SQLite said about it, one line
    error: str | None = None  # it could not be read, for another reason than damage

    @property
    def holds_data(self) -> bool:
        return self.pages > 0


@dataclass(frozen=True)
class Problem:
    """A database wadesk refuses to start on."""

    path: Path
    reason: str  # "is damaged (SQLite: ...)", "is missing, but ..."
    resettable: bool = True  # --reset-store may move it aside

    @property
    def text(self) -> str:
        return f"the database {self.path} {self.reason}"


# ---- looking at one database ---------------------------------------------------------------


def examine(path: Path, *, session: bool = False, check: bool = True) -> DbState:
    """What ``path`` holds. ``check`` runs SQLite's quick_check (it reads every page; only
    at start, while no other connection has the file open); ``session`` also asks whether
    neonize's device table holds a device. Never writes to the file or its companions
    (SQLite may create a missing ``-shm`` index next to a WAL it reads)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return DbState(path, None)
    except OSError as exc:
        return DbState(path, None, error=exc.strerror or str(exc))
    if size == 0 and not _companion_size(path, "-wal"):
        return DbState(path, 0)
    # At start nobody else has the file open: without a WAL or a journal to read along, open it
    # as immutable, so that SQLite creates no -wal/-shm next to it either.
    alone = check and not _companion_size(path, "-wal") and not _companion_size(path, "-journal")
    uri = path.absolute().as_uri() + ("?immutable=1" if alone else "?mode=ro")
    try:
        return _query(path, uri, size, session=session, check=check)
    except sqlite3.DatabaseError as exc:
        if _code(exc) == sqlite3.SQLITE_READONLY:
            # a hot journal (or a WAL to recover) needs a writable connection: check a copy
            return _examine_copy(path, size, session=session, check=check)
        return _state_for_error(path, size, exc)


def _query(path: Path, target: str, size: int, *, session: bool, check: bool) -> DbState:
    timeout = BUSY_TIMEOUT_S if check else RECORD_BUSY_TIMEOUT_S
    with contextlib.closing(sqlite3.connect(target, uri=True, timeout=timeout)) as db:
        if check:
            rows = [str(row[0]) for row in db.execute(f"PRAGMA quick_check({QUICK_CHECK_LIMIT})")]
            if rows != ["ok"]:
                return DbState(path, size, damage=_summary(rows))
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        paired = False
        if session and pages:
            try:
                paired = bool(db.execute("SELECT count(*) FROM whatsmeow_device").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if _code(exc) != sqlite3.SQLITE_ERROR:  # anything but "no such table"
                    raise
        return DbState(path, size, pages=pages, page_size=page_size, paired=paired)


def _examine_copy(path: Path, size: int, *, session: bool, check: bool) -> DbState:
    try:
        with tempfile.TemporaryDirectory(prefix=CHECK_PREFIX, dir=path.parent) as tmp:
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-journal"):
                if _companion_size(path, suffix) is not None:
                    shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
            return _query(path, copy.absolute().as_uri(), size, session=session, check=check)
    except sqlite3.DatabaseError as exc:
        return _state_for_error(path, size, exc)
    except OSError as exc:
        return DbState(path, size, error=f"cannot copy it to check it: {exc.strerror or exc}")


def _state_for_error(path: Path, size: int, exc: sqlite3.DatabaseError) -> DbState:
    if _code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return DbState(path, size, damage=_one_line(str(exc)))
    return DbState(path, size, error=_one_line(str(exc)))


def _code(exc: sqlite3.Error) -> int:
    """The primary SQLite result code (the extended code's low byte)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _companion_size(path: Path, suffix: str) -> int | None:
    try:
        return os.stat(f"{path}{suffix}").st_size
    except OSError:
        return None


def _summary(rows: list[str]) -> str:
    """quick_check's report as one line: its first three findings and how many more."""
    lines = [
        line.strip()
        for row in rows
        for line in row.splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]
    shown = "; ".join(lines[:3]) or "quick_check failed"
    return _one_line(shown + (f"; and {len(lines) - 3} more" if len(lines) > 3 else ""))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---- the record ----------------------------------------------------------------------------


def load_record(folder: Path) -> dict[str, Any]:
    """The record kept in ``folder`` (empty if there is none or it cannot be read)."""
    try:
        data = json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_record(folder: Path, record: dict[str, Any]) -> None:
    """Write the record atomically (a temporary file renamed over it), owner-only."""
    path = Path(folder) / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    body = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        with contextlib.suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _when(entry: dict[str, Any]) -> str:
    seen = str(entry.get("seen") or "")
    return seen.replace("T", " ").replace("Z", " UTC") if seen else "an earlier start"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.0f} {unit}"


def update_record(
    record: dict[str, Any], states: dict[str, DbState], *, store: str, session: str
) -> dict[str, Any]:
    """``record`` brought up to date with ``states`` (by file name).

    It never forgets what a database held: a file that is now empty, unreadable or damaged
    keeps its last entry (the start-up check refuses it), and the store's page count only
    grows (SQLite does not shrink a file that is never vacuumed)."""
    record = dict(record)
    record["version"] = RECORD_VERSION
    databases = dict(record.get("databases") or {})
    now = _now()
    for name, state in states.items():
        if state.error or state.damage or not state.holds_data:
            continue
        entry = dict(databases.get(name) or {})
        if name == store and state.pages < int(entry.get("pages") or 0):
            continue
        entry.setdefault("created", now)
        entry.update({"pages": state.pages, "bytes": state.pages * state.page_size, "seen": now})
        if name == session:
            entry["paired"] = state.paired
        databases[name] = entry
    record["databases"] = databases
    return record


def forget(record: dict[str, Any], names: list[str], moved: list[dict[str, Any]]) -> dict[str, Any]:
    """``record`` without the entries of ``names`` (reset), with ``moved`` added to its history."""
    record = dict(record)
    record["databases"] = {k: v for k, v in (record.get("databases") or {}).items() if k not in names}
    record["moved_aside"] = [*(record.get("moved_aside") or []), *moved][-20:]
    return record


# ---- the verdict -------------------------------------------------------------------------


def problems(
    states: dict[str, DbState], record: dict[str, Any], *, store: str, session: str
) -> list[Problem]:
    """What is wrong with the databases, given what the record says they held."""
    databases = record.get("databases") or {}
    found = []
    for name, state in states.items():
        entry = databases.get(name) or {}
        if name == store:
            held = int(entry.get("pages") or 0)
            what = f"{held} pages ({_size(int(entry.get('bytes') or 0))})"
        else:
            held = int(bool(entry.get("paired")))
            what = "the link to the phone (this device's keys)"
        if state.error:
            found.append(Problem(state.path, f"cannot be checked: {state.error}", resettable=False))
        elif state.damage:
            found.append(Problem(state.path, f"is damaged (SQLite: {state.damage})"))
        elif held and not state.holds_data:
            gone = "is missing" if state.size is None else "is empty"
            found.append(Problem(state.path, f"{gone}, but it held {what} when seen at {_when(entry)}"))
        elif name == store and state.pages < held:
            found.append(
                Problem(
                    state.path,
                    f"has {state.pages} pages, fewer than the {held} it had when seen at "
                    f"{_when(entry)} (was its -wal file lost?)",
                )
            )
    return found


def refusal(found: list[Problem]) -> str:
    """One line saying why wadesk does not start, and what the user can do."""
    text = "; ".join(p.text for p in found)
    if any(not p.resettable for p in found):
        return f"{text}; nothing was changed"
    return (
        f"{text}; nothing was changed. See Recovery in the README, or start once with "
        "--reset-store (it moves what is left aside, deletes nothing, and starts afresh)"
    )


# ---- --reset-store -----------------------------------------------------------------------


def move_aside(path: Path, stamp: str | None = None) -> list[tuple[Path, Path]]:
    """Rename ``path`` and its companions to ``<name>.damaged-<time>`` (+ the same suffixes,
    so SQLite still reads them together). Returns (old, new) for each file moved."""
    path = Path(path)
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S")
    present = [suffix for suffix in ("", *COMPANIONS) if os.path.lexists(f"{path}{suffix}")]
    base = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(os.path.lexists(f"{base}{suffix}") for suffix in ("", *COMPANIONS)):
        n += 1
        base = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    moved = []
    for suffix in present:
        old, new = Path(f"{path}{suffix}"), Path(f"{base}{suffix}")
        os.rename(old, new)
        moved.append((old, new))
    return moved
