"""The data folder: one place for everything wadesk keeps, readable by its owner only.

Layout::

    <data dir>/                  0700
        whatsapp.db (+ -wal/-shm)  0600  neonize's session: the account's keys
        wadesk.db   (+ -wal/-shm)  0600  our outbox, message log and webhook queue
        api-token                  0600  generated API token (if none is configured)
        webhook-secret             0600  generated webhook HMAC key (if none is configured)
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

SESSION_DB = "whatsapp.db"
STORE_DB = "wadesk.db"
API_TOKEN_FILE = "api-token"  # noqa: S105 (a file name)
WEBHOOK_SECRET_FILE = "webhook-secret"  # noqa: S105 (a file name)
DIR_MODE = 0o700
FILE_MODE = 0o600


class DataDirError(OSError):
    """The data folder cannot be used; the message says why and where."""


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

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
    def prepare(self) -> DataDir:
        """Create the folder (0700) and pre-create the session database (0600).

        neonize's Go SQLite driver would create the session file with the process
        umask (often 0644); creating it first, empty, makes SQLite keep our mode.
        """
        try:
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
            for db in (self.session_db, self.store_db):
                self._ensure_private_file(db)
            self.tighten()
        except DataDirError:
            raise
        except PermissionError as exc:
            who = f"user {os.getuid()}" if hasattr(os, "getuid") else "this user"
            raise DataDirError(
                f"cannot use data folder {self.path}: {exc.strerror or exc} (it must be writable by {who})"
            ) from exc
        except OSError as exc:
            raise DataDirError(f"cannot use data folder {self.path}: {exc.strerror or exc}") from exc
        return self

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
    def secret(self, name: str, *, nbytes: int = 32) -> tuple[str, bool]:
        """Return (value, created): read the secret kept in ``name``, or generate and keep one."""
        path = self.file(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
            if value:
                if stat.S_IMODE(path.stat().st_mode) & 0o077:
                    os.chmod(path, FILE_MODE)
                return value, False
        except FileNotFoundError:
            pass
        value = secrets.token_urlsafe(nbytes)
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, (value + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return value, True
