"""The data folder: one place for everything wadesk keeps, readable by its owner only.

Layout::

    <data dir>/                  0700
        whatsapp.db (+ -wal/-shm)  0600  neonize's session: the account's keys
        wadesk.db   (+ -wal/-shm)  0600  our outbox, message log and webhook queue
        api-token                  0600  generated API token (if none is configured)
        webhook-secret             0600  generated webhook secret, whsec_<base64> (if none is configured)
        media/                     0700  sent and received files, by their sha256 (tmp/: arriving)
        lock                       0600  held (OS lock) by the one wadesk using the folder
        state.json                 0600  what the databases held when last seen

One process owns a folder: :meth:`DataDir.open` takes an exclusive OS lock on ``lock``
(``flock``; the OS drops it when the process ends, however it ends, so a ``kill -9`` leaves
no stale lock) and checks the databases (:mod:`wadesk.core.integrity`) before anything
can create or open them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

from . import integrity

log = logging.getLogger(__name__)

SESSION_DB = "whatsapp.db"
STORE_DB = "wadesk.db"
API_TOKEN_FILE = "api-token"  # noqa: S105 (a file name)
WEBHOOK_SECRET_FILE = "webhook-secret"  # noqa: S105 (a file name)
LOCK_FILE = "lock"
DIR_MODE = 0o700
FILE_MODE = 0o600
MODES = ("headless", "desktop")


class DataDirError(OSError):
    """The data folder cannot be used; the message says why and where."""

    def one_line(self) -> str:
        """What the command line and the window say (after "wadesk: ")."""
        return f"invalid WADESK_DATA_DIR: {self}"


class DataDirRefused(DataDirError):
    """The folder itself is usable, but wadesk must not start on it; the message is the line."""

    def one_line(self) -> str:
        return str(self)


class DataDirBusy(DataDirRefused):
    """Another wadesk holds the folder's lock."""

    def __init__(self, path: Path, pid: int | None, mode: str | None) -> None:
        holder = f"pid {pid}" if pid else "pid unknown"
        if mode:
            holder += f", {mode}"
        super().__init__(
            f"the data folder {path} is in use by another wadesk ({holder}); "
            "stop it first or use another --data-dir"
        )
        self.pid = pid
        self.mode = mode


class DamagedDatabase(DataDirRefused):
    """A database in the folder is damaged, or missing while the record says it held data."""

    def __init__(self, message: str, problems: list[integrity.Problem]) -> None:
        super().__init__(message)
        self.problems = problems


class FolderLock:
    """An exclusive OS lock on ``<folder>/lock`` for as long as this process uses the folder.

    The lock file says who holds it (``{"pid": ..., "mode": ...}``) so that a second start
    can name the holder. The lock is released by :meth:`close` or by the OS when the
    process ends; it is kept alive here (not only by whoever took it), so that it cannot be
    dropped by the garbage collector while threads still use the folder at exit.
    """

    _held: ClassVar[set[FolderLock]] = set()
    # msvcrt locks a byte range, which others then cannot read: lock one byte well past the
    # pid/mode line, so that a second start can still read who holds the folder
    _WINDOWS_OFFSET = 1 << 16

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, folder: Path, mode: str) -> FolderLock:
        path = Path(folder) / LOCK_FILE
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, FILE_MODE)
        try:
            if not cls._try_lock(fd, path):
                pid, holder = cls._holder(fd)
                raise DataDirBusy(Path(folder), pid, holder)
            info = (json.dumps({"pid": os.getpid(), "mode": mode}) + "\n").encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, info)  # first, then cut: a reader sees the old line or the new one
            os.ftruncate(fd, len(info))
        except BaseException:
            os.close(fd)
            raise
        lock = cls(fd, path)
        cls._held.add(lock)
        return lock

    @classmethod
    def _try_lock(cls, fd: int, path: Path) -> bool:
        try:
            if os.name == "nt":
                import msvcrt

                os.lseek(fd, cls._WINDOWS_OFFSET, os.SEEK_SET)
                # msvcrt exists on Windows only; mypy checks this on Linux
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            return False
        except OSError as exc:
            if os.name == "nt" and exc.errno in (13, 36):  # EACCES / EDEADLOCK: held by another
                return False
            raise DataDirError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        return True

    @staticmethod
    def _holder(fd: int) -> tuple[int | None, str | None]:
        """(pid, mode) written by the holder; it may still be writing them: look a few times."""
        for _ in range(10):
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                os.lseek(fd, 0, os.SEEK_SET)
                line = os.read(fd, 512).split(b"\n", 1)[0]
                info = json.loads(line)
                pid = int(info["pid"])
                mode = str(info["mode"])
                return pid, mode if mode in MODES else None
            time.sleep(0.02)
        return None, None

    def close(self) -> None:
        """Release the lock (the lock file stays: removing it would race with a new holder)."""
        fd, self._fd = self._fd, None
        FolderLock._held.discard(self)
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases flock and msvcrt locks


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock: FolderLock | None = None
        self.notes: list[str] = []  # what the start-up check did, logged once the store is open
        self._record_lock = threading.Lock()

    # -- paths --
    @property
    def session_db(self) -> Path:
        return self.path / SESSION_DB

    @property
    def store_db(self) -> Path:
        return self.path / STORE_DB

    def file(self, name: str) -> Path:
        return self.path / name

    # -- setup --
    def open(self, mode: str, *, reset_store: bool = False) -> DataDir:
        """Take the folder for this process: create it, lock it, check its databases, then
        :meth:`prepare` it and record what the databases hold.

        Raises :class:`DataDirBusy` if another wadesk holds it, :class:`DamagedDatabase` if a
        database is damaged or vanished (unless ``reset_store``: then the refused files are
        moved aside, see :attr:`notes`), :class:`DataDirError` if the folder is unusable.
        The lock is held until :meth:`close` or the end of the process.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        with self._errors():
            self._make_folder()
            self.lock = FolderLock.acquire(self.path, mode)
            for leftover in self.path.glob(f"{integrity.CHECK_PREFIX}*"):  # a check cut short
                shutil.rmtree(leftover, ignore_errors=True)
        try:
            states = self._check(reset_store)
            self.prepare()
            with self._errors():
                self._write_record(states)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Release the folder's lock (taken by :meth:`open`)."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def prepare(self) -> DataDir:
        """Create the folder (0700) and pre-create the session database (0600).

        neonize's Go SQLite driver would create the session file with the process
        umask (often 0644); creating it first, empty, makes SQLite keep our mode.
        """
        with self._errors():
            self._make_folder()
            for db in (self.session_db, self.store_db):
                self._ensure_private_file(db)
            self.tighten()
        return self

    def _make_folder(self) -> None:
        self.path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if not self.path.is_dir():
            raise DataDirError(f"data folder {self.path} is not a directory")
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            os.chmod(self.path, DIR_MODE)
        probe = self.path / ".write-test"
        with open(probe, "w") as f:
            f.write("ok")
        probe.unlink()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """OSErrors as :class:`DataDirError` naming the folder (and who must be able to write it)."""
        try:
            yield
        except DataDirError:
            raise
        except PermissionError as exc:
            who = f"user {os.getuid()}" if hasattr(os, "getuid") else "this user"
            raise DataDirError(
                f"cannot use data folder {self.path}: {exc.strerror or exc} (it must be writable by {who})"
            ) from exc
        except OSError as exc:
            raise DataDirError(f"cannot use data folder {self.path}: {exc.strerror or exc}") from exc

    # -- the databases: check and record --
    def _states(self, *, check: bool) -> dict[str, integrity.DbState]:
        return {
            STORE_DB: integrity.examine(self.store_db, check=check),
            SESSION_DB: integrity.examine(self.session_db, session=True, check=check),
        }

    def _check(self, reset_store: bool) -> dict[str, integrity.DbState]:
        """Refuse damaged or vanished databases; with ``reset_store``, move them aside."""
        states = self._states(check=True)
        record = integrity.load_record(self.path)
        found = integrity.problems(states, record, store=STORE_DB, session=SESSION_DB)
        if not found:
            return states
        if not reset_store or any(not p.resettable for p in found):
            raise DamagedDatabase(integrity.refusal(found), found)
        with self._errors():
            self._reset(found)
        return self._states(check=False)

    def _reset(self, found: list[integrity.Problem]) -> None:
        """Move the refused databases aside (never delete them) and forget what they held."""
        history = []
        for problem in found:
            moved = integrity.move_aside(problem.path)
            what = ", ".join(f"{old.name} to {new.name}" for old, new in moved)
            done = f"moved {what} (in {self.path})" if moved else "nothing was left of it"
            self.notes.append(f"--reset-store: {problem.text}; {done}; starting with a new one")
            history.append(
                {
                    "file": problem.path.name,
                    "reason": problem.reason,
                    "moved_to": [new.name for _, new in moved],
                    "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
        with self._record_lock:
            record = integrity.load_record(self.path)
            integrity.save_record(self.path, integrity.forget(record, [p.path.name for p in found], history))

    def _write_record(self, states: dict[str, integrity.DbState]) -> None:
        with self._record_lock:
            record = integrity.load_record(self.path)
            record = integrity.update_record(record, states, store=STORE_DB, session=SESSION_DB)
            integrity.save_record(self.path, record)

    def remember(self) -> None:
        """Record what the databases hold now (their size, whether a device is paired), so
        that a later start notices one that vanished. Never raises: it runs on the session's
        thread too, and a record not updated only means less to compare with next time."""
        try:
            self._write_record(self._states(check=False))
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot update %s: %s", self.file(integrity.STATE_FILE), exc)

    def store_opened(self) -> None:
        """Our database is open: log what the start-up check set aside, record what it holds."""
        for note in self.notes:
            log.warning("%s", note)
        self.notes = []
        self.remember()

    def connected(self) -> None:
        """WhatsApp is connected: tighten the file modes, record that a device is paired."""
        self.tighten()
        self.remember()

    def _ensure_private_file(self, path: Path) -> None:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
        os.close(fd)

    def tighten(self) -> None:
        """Make every regular file in the folder owner-only (SQLite's -wal/-shm files included)."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.path):
                if entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        if stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & 0o077:
                            os.chmod(entry.path, FILE_MODE)

    # -- generated secrets --
    def secret(
        self, name: str, *, nbytes: int = 32, make: Callable[[int], str] = secrets.token_urlsafe
    ) -> tuple[str, bool]:
        """Return (value, created): read the secret kept in ``name``, or generate and keep one
        (``make(nbytes)``)."""
        path = self.file(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
            if value:
                if stat.S_IMODE(path.stat().st_mode) & 0o077:
                    os.chmod(path, FILE_MODE)
                return value, False
        except FileNotFoundError:
            pass
        value = make(nbytes)
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, (value + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return value, True
