"""Helpers for the tests of the data folder's start-up check: a folder as a run of wadesk
leaves it, and the ways a database gets damaged or lost."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DataDir
from wadesk.core.integrity import examine

STORE_MESSAGES = 300
DAMAGES = ("truncated to 0", "cut in half", "overwritten", "one zeroed page", "vanished")
# how the start-up check describes each damage (after "the database <path> ")
SAID = {
    "truncated to 0": "is empty, but it held",
    "cut in half": "is damaged (SQLite: database disk image is malformed)",
    "overwritten": "is damaged (SQLite: file is not a database)",
    "one zeroed page": "is damaged (SQLite: ",
    "vanished": "is missing, but it held",
}


def used_folder(path: Path, messages: int = STORE_MESSAGES) -> Path:
    """A data folder as a run of wadesk leaves it: a store with queued messages, its record."""
    data = DataDir(path).open("headless")
    session = open_session(Config(data_dir=path), data)
    for i in range(messages):
        session.store.enqueue("15550001111@s.whatsapp.net", f"message {i} " + "x" * 100)
    session.store.close()
    data.close()
    return path


def checkpoint(db: Path) -> None:
    """Fold the WAL into the file, as a clean stop of SQLite does, so the file holds all pages."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def damage(db: Path, how: str) -> None:
    """Damage the store ``db`` (checkpointed first) in one of the ways of :data:`DAMAGES`."""
    checkpoint(db)
    size = db.stat().st_size
    if how == "truncated to 0":
        os.truncate(db, 0)
    elif how == "cut in half":
        os.truncate(db, size // 2)
    elif how == "overwritten":
        db.write_bytes(os.urandom(size))
    elif how == "one zeroed page":
        with open(db, "r+b") as f:
            f.seek(4096 * (size // 4096 // 2))
            f.write(bytes(4096))
        assert examine(db).damage, "the zeroed page did not make quick_check fail"
    elif how == "vanished":
        db.unlink()
    else:
        raise ValueError(how)


def crash_after(db: Path, sql: str) -> None:
    """Run ``sql`` on ``db`` in a process that dies right after the commit, as kill -9 would:
    the change stays in the -wal file (with its -shm index)."""
    code = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute(sys.argv[2])\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db), sql], check=True, timeout=30)
    assert Path(f"{db}-wal").stat().st_size > 0


def paired_session_db(path: Path) -> None:
    """A stand-in for neonize's database holding a paired device (the check reads only that)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO whatsmeow_device VALUES ('15550001111.0:1@s.whatsapp.net')")
        conn.commit()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of the folder and its content (the lock file aside: it names the last owner)."""
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "lock"}
