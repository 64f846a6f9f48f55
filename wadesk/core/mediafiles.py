"""Media files in the data folder: content-addressed, owner-only, durable before use.

Layout::

    <data>/media/            0700
        <sha256 hex>         0600  one file per distinct content (sent or received)
        tmp/                 0700  files being received from a client or downloaded

A file enters by :meth:`MediaFiles.begin` (a temporary file written and hashed as it
arrives, never held whole in memory) and :meth:`Incoming.commit` (fsync, rename to its
hash, fsync of the folder), so that a message row that names it is only committed after
the file is safely on disk. Anything left in ``tmp/`` by a crash is removed at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TooLarge(Exception):
    """More bytes arrived than the limit allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"is larger than {limit // (1024 * 1024)} MB")
        self.limit = limit


class Incoming:
    """A file being written: ``write`` chunks, then ``commit`` (or ``discard``)."""

    def __init__(self, files: MediaFiles, limit: int) -> None:
        self._files = files
        self.limit = limit
        self.path = files.tmp / f"{secrets.token_hex(12)}.part"
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise TooLarge(self.limit)
        self._hash.update(chunk)
        self._file.write(chunk)

    def copy_from(self, stream: BinaryIO) -> Incoming:
        while chunk := stream.read(CHUNK):
            self.write(chunk)
        return self

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def finish(self) -> Path:
        """Flush and fsync the temporary file; returns its path (for checks before commit)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        return self.path

    def commit(self) -> str:
        """Move the file to its content address; returns its sha256. Idempotent for equal
        content (an existing file with the same hash is kept)."""
        self.finish()
        sha = self.sha256
        target = self._files.path(sha)
        if target.exists():
            self.path.unlink(missing_ok=True)
        else:
            os.replace(self.path, target)
            self._files.sync_dir()
        return sha

    def discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path.exists() and exc[0] is not None:
            self.discard()


class MediaFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.tmp = self.folder / "tmp"
        for d in (self.folder, self.tmp):
            d.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(d, DIR_MODE)

    def clean_tmp(self) -> int:
        """Remove what a crash left half-written; returns how many files."""
        removed = 0
        for entry in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        return removed

    def begin(self, limit: int) -> Incoming:
        return Incoming(self, limit)

    def put(self, data: bytes, limit: int) -> str:
        """Store ``data``; returns its sha256."""
        incoming = self.begin(limit)
        try:
            incoming.write(data)
            return incoming.commit()
        except BaseException:
            incoming.discard()
            raise

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.folder / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def delete(self, sha256: str) -> bool:
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def sync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
