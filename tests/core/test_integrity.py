"""The data folder's lock and the start-up check of its databases (in this process; the
command line and the gateway process are tested in tests/api/test_data_folder.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from datafolder import DAMAGES, SAID, crash_after, damage, digest, paired_session_db, snapshot, used_folder

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DamagedDatabase, DataDir, DataDirBusy
from wadesk.core.integrity import examine

# ---- the lock --------------------------------------------------------------------------------


def test_one_owner_per_folder_and_close_releases_it(tmp_path: Path) -> None:
    first = DataDir(tmp_path / "d").open("desktop")
    lock_file = tmp_path / "d" / "lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    assert json.loads(lock_file.read_text()) == {"pid": os.getpid(), "mode": "desktop"}
    with pytest.raises(DataDirBusy) as info:
        DataDir(tmp_path / "d").open("headless")
    assert info.value.one_line() == (
        f"the data folder {tmp_path / 'd'} is in use by another wadesk (pid {os.getpid()}, desktop); "
        "stop it first or use another --data-dir"
    )
    assert DataDir(tmp_path / "other").open("headless").lock is not None  # another folder is free
    first.close()
    second = DataDir(tmp_path / "d").open("headless")
    assert json.loads(lock_file.read_text()) == {"pid": os.getpid(), "mode": "headless"}
    second.close()


def test_a_refused_start_leaves_the_lock_free(tmp_path: Path) -> None:
    folder = used_folder(tmp_path / "d")
    (folder / "wadesk.db").write_bytes(b"")
    with pytest.raises(DamagedDatabase):
        DataDir(folder).open("headless")
    DataDir(folder).open("headless", reset_store=True).close()  # not still held by the refused one


# ---- the check -------------------------------------------------------------------------------


def test_a_new_folder_and_a_healthy_one_start(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "new").open("headless")
    assert data.store_db.stat().st_size == 0 and data.notes == []
    data.close()
    folder = used_folder(tmp_path / "used")
    record = json.loads((folder / "state.json").read_text())
    assert record["databases"]["wadesk.db"]["pages"] > 1
    assert stat.S_IMODE((folder / "state.json").stat().st_mode) == 0o600
    again = DataDir(folder).open("headless")
    assert again.notes == []
    again.close()


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_or_vanished_store_is_refused_and_left_as_it_is(tmp_path: Path, how: str) -> None:
    folder = used_folder(tmp_path / "d")
    db = folder / "wadesk.db"
    damage(db, how)
    before = snapshot(folder)
    with pytest.raises(DamagedDatabase) as info:
        DataDir(folder).open("headless")
    line = info.value.one_line()
    assert line.startswith(f"the database {db} {SAID[how]}")
    assert "--reset-store" in line and "\n" not in line
    assert snapshot(folder) == before


def test_a_paired_device_that_vanished_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    DataDir(folder).prepare()
    paired_session_db(folder / "whatsapp.db")
    DataDir(folder).open("headless").close()  # records that a device is paired
    assert json.loads((folder / "state.json").read_text())["databases"]["whatsapp.db"]["paired"] is True
    (folder / "whatsapp.db").unlink()
    with pytest.raises(DamagedDatabase, match=r"whatsapp\.db is missing, but it held the link to the phone"):
        DataDir(folder).open("headless")
    assert not (folder / "whatsapp.db").exists()  # not pre-created over the evidence


def test_an_unpaired_session_database_may_go(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    DataDir(folder).prepare()
    with sqlite3.connect(folder / "whatsapp.db") as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")  # logged out: no device
    conn.close()
    DataDir(folder).open("headless").close()
    (folder / "whatsapp.db").unlink()
    DataDir(folder).open("headless").close()


def test_a_store_that_lost_its_wal_is_refused(tmp_path: Path) -> None:
    """A copy of the folder taken while wadesk ran, without the -wal file, lacks what was
    committed last; the page count in the record notices."""
    folder = used_folder(tmp_path / "d", messages=0)
    DataDir(folder).open("headless").close()
    db = folder / "wadesk.db"
    with sqlite3.connect(db) as conn:  # hold a second connection open, as a running wadesk would
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executemany(
            "INSERT INTO messages (id, direction, chat, text, status, created_at, updated_at)"
            " VALUES (?, 'out', 'c', ?, 'queued', 0, 0)",
            [(f"m{i}", "y" * 500) for i in range(200)],
        )
        conn.commit()
        data = DataDir(folder)
        data.remember()
        snapshot = tmp_path / "copy"
        snapshot.mkdir()
        for name in ("wadesk.db", "state.json"):
            (snapshot / name).write_bytes((folder / name).read_bytes())
    conn.close()
    with pytest.raises(DamagedDatabase, match=r"has \d+ pages, fewer than the \d+ it had .*-wal file lost"):
        DataDir(snapshot).open("headless")


def test_a_hot_journal_is_checked_on_a_copy(tmp_path: Path) -> None:
    """A write that a crash interrupted (rollback journal, as neonize's database uses) needs a
    rollback before SQLite can read it: the check reads a copy and leaves both files alone."""
    folder = tmp_path / "d"
    folder.mkdir()
    db = folder / "whatsapp.db"
    code = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('CREATE TABLE whatsmeow_device (jid TEXT)')\n"
        "db.execute(\"INSERT INTO whatsmeow_device VALUES ('a')\")\n"
        "db.execute('PRAGMA cache_size=1')\n"
        "db.execute('BEGIN')\n"
        "db.executemany('INSERT INTO whatsmeow_device VALUES (?)', [('x' * 300,)] * 2000)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=30)
    journal = Path(f"{db}-journal")
    assert journal.stat().st_size > 0
    before = (digest(db), digest(journal))
    state = examine(db, session=True)
    assert state.damage is None and state.error is None
    assert state.paired and state.pages > 0
    assert (digest(db), digest(journal)) == before
    assert [p.name for p in folder.iterdir() if p.name.startswith(".check-")] == []


def test_a_copy_left_by_a_check_cut_short_is_removed(tmp_path: Path) -> None:
    leftover = tmp_path / "d" / ".check-abc123"
    leftover.mkdir(parents=True)
    (leftover / "whatsapp.db").write_bytes(b"a copy of the keys")
    DataDir(tmp_path / "d").open("headless").close()
    assert not leftover.exists()


# ---- --reset-store ---------------------------------------------------------------------------


def test_reset_store_moves_the_damaged_files_aside_and_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = used_folder(tmp_path / "d")
    db = folder / "wadesk.db"
    # leaves -wal and -shm; not a text change: that writes the search index too, and the WAL would
    # then hold page 1, whose copy in the WAL hides the damaged header
    crash_after(db, "UPDATE messages SET attempts = 7 WHERE seq = 1")
    with open(db, "r+b") as f:
        f.write(b"not a database at all" * 10)
    damaged = {suffix: Path(f"{db}{suffix}").read_bytes() for suffix in ("", "-wal")}
    data = DataDir(folder).open("headless", reset_store=True)
    aside = sorted(p.name for p in folder.iterdir() if ".damaged-" in p.name)
    assert len(aside) == 3 and aside[0].startswith("wadesk.db.damaged-")
    base = folder / aside[0]
    assert [p.name for p in (base, Path(f"{base}-shm"), Path(f"{base}-wal"))] == aside
    # moved, unchanged (the -shm is SQLite's index of the -wal, rewritten by any reader)
    assert {s: Path(f"{base}{s}").read_bytes() for s in ("", "-wal")} == damaged
    assert db.stat().st_size == 0 and not Path(f"{db}-wal").exists()
    assert len(data.notes) == 1
    assert f"moved wadesk.db to {base.name}" in data.notes[0] and str(folder) in data.notes[0]
    record = json.loads((folder / "state.json").read_text())
    assert record["moved_aside"][0]["moved_to"] == [base.name, f"{base.name}-wal", f"{base.name}-shm"]
    note = data.notes[0]
    with caplog.at_level("WARNING", logger="wadesk.core.datadir"):
        session = open_session(Config(data_dir=folder), data)  # a fresh store works
    assert [r.getMessage() for r in caplog.records] == [note]  # where the old file went, logged once
    assert data.notes == []
    assert session.store.enqueue("15550001111@s.whatsapp.net", "hello")[1]
    session.store.close()
    data.close()
    DataDir(folder).open("headless").close()  # and the next start has nothing to say


def test_reset_store_on_a_healthy_folder_changes_nothing(tmp_path: Path) -> None:
    folder = used_folder(tmp_path / "d")
    before = digest(folder / "wadesk.db")
    data = DataDir(folder).open("headless", reset_store=True)
    assert data.notes == [] and digest(folder / "wadesk.db") == before
    assert not [p for p in folder.iterdir() if ".damaged-" in p.name]
    data.close()
